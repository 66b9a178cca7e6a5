//! The judge: walks one analysis's events and turns each import, call,
//! BUILD and anomaly into findings, holding every allowlisted name to its
//! uses (see [`super::uses`] for what launderers do with their arguments).

use std::collections::HashMap;
use std::rc::Rc;

use super::uses::{arg_kind, derived, made_by, Derived, Launder, Maker};
use super::{Finding, GlobalUse, Judged, Levels, Rule};
use crate::error::ErrorKind;
use crate::limits::{MAX_EXPR_CHARS, MAX_FINDINGS_PER_RULE};
use crate::pickle::opcodes::Opcode;
use crate::policy::{ArgKind, Given, Judgement, Policy, Use, UseVerdict, Uses, Verdict};
use crate::view::render::{global_name, Renderer};
use crate::vm::{Analysis, Anomaly, CallKind, Event, EventKind, Value, ValueId};

/// What a callable resolves to, for judging a call.
enum Target {
    /// A global name (module, name).
    Name(String, String),
    /// A computed global.
    Computed,
    /// Something else (a call result, a persistent object, an unknown).
    Indirect(&'static str),
}

pub(super) struct Judge<'a> {
    a: &'a Analysis,
    policy: &'a Policy,
    levels: &'a Levels,
    out: Judged,
    counts: HashMap<Rule, usize>,
    index: HashMap<(String, String), usize>,
    /// Each imported global value's entry in `out.globals` and verdict.
    /// The machine gives a `STACK_GLOBAL` of the same memoised names one
    /// value, so a file that repeats one (five bytes each) costs one lookup
    /// per repeat here, not a judgement of names of up to 1 MiB.
    imported: HashMap<ValueId, (usize, Rc<Judgement>)>,
    /// What each callable resolves to, with its verdict (see `imported`).
    targets: HashMap<(ValueId, bool), Rc<CallTarget>>,
    /// The last state a `BUILD` gave each `functools.partial` object: it
    /// replaces the function the partial calls.
    partial_state: HashMap<ValueId, ValueId>,
    /// What a state contract said of a state dict of a given length.
    state_verdicts: HashMap<(ValueId, usize, String, String), UseVerdict>,
}

/// A callable resolved and judged once (see [`Judge::call_target`]).
struct CallTarget {
    target: Target,
    /// For a name: its verdict and its entry in `out.globals`, if imported.
    judged: Option<(Judgement, Option<usize>)>,
    /// For a name on the built-in allowlist: the uses it permits.
    uses: Option<&'static Uses>,
    /// For a name: the launderer it is, if any.
    launder: Option<Launder>,
}

/// What a use is given, as values of the file (see [`Given`]).
#[derive(Clone, Copy)]
enum Input<'s> {
    /// Nothing to check.
    Nothing,
    /// A call's positional arguments (`None`: not a readable tuple) and
    /// whether it has keywords.
    Args(Option<&'s [ValueId]>, bool),
    /// A `BUILD` state.
    State(ValueId),
}

/// One call event, as the judge reads it.
struct CallSite {
    offset: u64,
    pickle: usize,
    kind: CallKind,
    func: ValueId,
    args: ValueId,
    kwargs: Option<ValueId>,
}

impl CallSite {
    /// True for the method calls of `APPEND`/`SETITEM`/`ADDITEMS`: `func`
    /// is the object whose method runs.
    fn is_method(&self) -> bool {
        matches!(self.kind, CallKind::Append | CallKind::SetItem | CallKind::Add)
    }
}

/// Where a use comes from, for its finding.
#[derive(Clone, Copy)]
enum Via<'s> {
    /// The opcode's own callee or target.
    Direct,
    /// A launderer called it.
    Launderer(&'s str, &'s str),
    /// `BUILD` on a `functools.partial` replaced its function.
    PartialBuild,
}

impl<'a> Judge<'a> {
    pub(super) fn new(a: &'a Analysis, policy: &'a Policy, levels: &'a Levels) -> Judge<'a> {
        Judge {
            a,
            policy,
            levels,
            out: Judged::default(),
            counts: HashMap::new(),
            index: HashMap::new(),
            imported: HashMap::new(),
            targets: HashMap::new(),
            partial_state: HashMap::new(),
            state_verdicts: HashMap::new(),
        }
    }

    fn add(
        &mut self,
        rule: Rule,
        offset: u64,
        pickle: usize,
        global: Option<String>,
        message: String,
        call: Option<String>,
    ) {
        self.add_lazy(rule, offset, pickle, || (global, message, call));
    }

    /// [`Judge::add`], the texts made only when the finding is kept (not
    /// ignored, not past [`MAX_FINDINGS_PER_RULE`]).
    fn add_lazy(
        &mut self,
        rule: Rule,
        offset: u64,
        pickle: usize,
        texts: impl FnOnce() -> (Option<String>, String, Option<String>),
    ) {
        // An ignored rule makes no finding and counts towards no cap.
        let Some(severity) = self.levels.severity(rule) else {
            return;
        };
        let n = self.counts.entry(rule).or_insert(0);
        *n += 1;
        if *n > MAX_FINDINGS_PER_RULE {
            *self.out.suppressed.entry(rule.code()).or_insert(0) += 1;
            return;
        }
        let (global, message, call) = texts();
        self.out.findings.push(Finding { rule, severity, offset, pickle, member: None, global, message, call });
    }

    fn global_use(&mut self, module: &str, name: &str, offset: u64, j: &Judgement) -> usize {
        let key = (module.to_string(), name.to_string());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.out.globals.push(GlobalUse {
            module: module.to_string(),
            name: name.to_string(),
            verdict: j.verdict,
            reason: j.reason.clone(),
            imports: 0,
            calls: 0,
            first_offset: offset,
        });
        self.index.insert(key, self.out.globals.len() - 1);
        self.out.globals.len() - 1
    }

    /// Resolves a callable through getattr(X, 'attr') and partial(X, ...),
    /// bounded by a fixed number of steps.
    fn resolve(&self, mut id: ValueId) -> Target {
        for _ in 0..32 {
            match self.a.value(id) {
                Value::Global(g) => return Target::Name(g.module.to_string(), g.name.to_string()),
                Value::ComputedGlobal { .. } => return Target::Computed,
                Value::Call(c) if makes_object(c.kind) => {
                    let (func, args) = (&c.func, &c.args);
                    let Value::Global(g) = self.a.value(*func) else {
                        return Target::Indirect("the result of another call");
                    };
                    let (module, name) = (&g.module, &g.name);
                    let items: &[ValueId] = self.a.tuple(*args).unwrap_or(&[]);
                    let called = !matches!(c.kind, CallKind::NewObj | CallKind::NewObjEx);
                    match (&**module, &**name, items) {
                        ("builtins", "getattr", [obj, attr, ..]) if called => {
                            let Some(attr) = self.a.full_str(*attr) else {
                                return Target::Indirect("getattr with a computed name");
                            };
                            return match self.resolve(*obj) {
                                Target::Name(m, n) => Target::Name(m, format!("{n}.{attr}")),
                                other => other,
                            };
                        }
                        ("functools" | "_functools", "partial", _) => {
                            // A BUILD of the partial replaces its function.
                            id = match (self.partial_state.get(&id).and_then(|st| self.a.tuple(*st)), items) {
                                (Some([f2, ..]), _) => *f2,
                                (_, [f, ..]) => *f,
                                _ => return Target::Indirect("a partial without a function"),
                            };
                        }
                        _ => return Target::Indirect("the result of another call"),
                    }
                }
                Value::Call(_) => return Target::Indirect("the result of another call"),
                Value::Persistent { .. } => return Target::Indirect("an object from persistent_load"),
                Value::Unknown(_) => return Target::Indirect("an unknown value"),
                _ => return Target::Indirect("a value that is not callable"),
            }
        }
        Target::Indirect("a chain of calls too long to follow")
    }

    pub(super) fn run(mut self) -> Judged {
        let a = self.a;
        let r = Renderer::new(a, MAX_EXPR_CHARS);
        for e in &a.events {
            self.event(e, &r);
        }
        if let Some(err) = &a.error {
            self.stream_error(err);
        }
        self.out.findings.sort_by_key(|f| (f.offset, f.rule));
        self.out
    }

    /// Judges one event of the machine.
    fn event(&mut self, e: &'a Event, r: &Renderer<'_>) {
        let (offset, pickle) = (e.offset, e.pickle);
        match &e.kind {
            EventKind::Import { via, module, name, written, value } => {
                self.import(offset, pickle, *via, module, name, written.as_ref(), *value)
            }
            EventKind::ComputedImport { value } => {
                let msg = "STACK_GLOBAL imports a name computed at load time".into();
                self.add(Rule::ComputedGlobal, offset, pickle, None, msg, Some(r.expr(*value)));
            }
            EventKind::Call { kind, func, args, kwargs, .. } => {
                // Rendered only for a finding: most calls are safe.
                let expr = || r.call(*kind, *func, *args, *kwargs);
                let site = CallSite { offset, pickle, kind: *kind, func: *func, args: *args, kwargs: *kwargs };
                self.judge_call(site, expr);
            }
            EventKind::Build { target, state } => self.judge_build(offset, pickle, *target, *state, r),
            EventKind::PersistentId { pid } => {
                let call = Some(format!("persistent_load({})", r.expr(*pid)));
                self.add(Rule::PersistentId, offset, pickle, None, "persistent id for the loader".into(), call);
            }
            EventKind::Extension { code, resolved } => {
                let msg = match resolved {
                    Some((m, n)) => {
                        format!("EXT code {code} resolves to {} through an in-stream registration", global_name(m, n))
                    }
                    None => format!("EXT code {code} is not registered in the stream"),
                };
                self.add(Rule::ExtensionCode, offset, pickle, None, msg, None);
            }
            // Array data: recorded for extraction, nothing to judge.
            EventKind::ArrayPayload { .. } => {}
            EventKind::ExternalBuffer => {
                let msg = "NEXT_BUFFER: data outside the file".into();
                self.add(Rule::ExternalBuffer, offset, pickle, None, msg, None);
            }
            EventKind::Anomaly(an) => self.anomaly(offset, pickle, an),
        }
    }

    /// Judges an import: PK101, PK103, PK114 or PK115 by the name's verdict.
    #[allow(clippy::too_many_arguments)]
    fn import(
        &mut self,
        offset: u64,
        pickle: usize,
        via: Opcode,
        module: &str,
        name: &str,
        written: Option<&(String, String)>,
        value: ValueId,
    ) {
        let (i, j) = match self.imported.get(&value) {
            Some((i, j)) => (*i, j.clone()),
            None => {
                let j = self.policy.judge(module, name);
                let i = self.global_use(module, name, offset, &j);
                let j = Rc::new(j);
                self.imported.insert(value, (i, j.clone()));
                (i, j)
            }
        };
        self.out.globals[i].imports += 1;
        let rule = match j.verdict {
            Verdict::Dangerous => Rule::DangerousImport,
            Verdict::Unknown if is_torchscript(module) => Rule::TorchScriptClass,
            Verdict::Unknown if module.starts_with("torch.nn.modules.") => Rule::PickledModule,
            Verdict::Unknown => Rule::UnknownImport,
            Verdict::Safe | Verdict::Conditional => return,
        };
        self.add_lazy(rule, offset, pickle, || {
            let g = global_name(module, name);
            let shown = match written {
                Some((m, n)) => format!("{g} (written as {})", global_name(m, n)),
                None => g.clone(),
            };
            (Some(g), format!("{} imports {shown}: {}", via.name(), j.reason), None)
        });
    }

    /// The error that ended reading: PK202 when the input ran out, PK201
    /// for anything else.
    fn stream_error(&mut self, err: &crate::Error) {
        let truncated = match err.kind() {
            ErrorKind::UnexpectedEof { .. } => true,
            ErrorKind::BadLength { declared, remaining: Some(r), .. } => *declared > *r as i128,
            _ => false,
        };
        let pickle = self.a.pickles.len().saturating_sub(1);
        let rule = if truncated { Rule::TruncatedStream } else { Rule::MalformedStream };
        self.add(rule, err.offset(), pickle, None, err.to_string(), None);
    }

    /// What a method call on `obj` runs: code of the class that made it.
    fn class_of(&self, obj: ValueId) -> Target {
        match self.a.value(obj) {
            Value::Call(_) => match made_by(self.a, obj) {
                Some(Maker::Value(by)) => self.resolve(by),
                Some(Maker::Name(m, n)) => Target::Name(m.to_string(), n.to_string()),
                None => Target::Indirect("the result of a method call"),
            },
            // A method of a module attribute or class itself (`os.environ[k] = v`).
            Value::Global(g) => Target::Name(g.module.to_string(), g.name.to_string()),
            Value::ComputedGlobal { .. } => Target::Computed,
            Value::Persistent { .. } => Target::Indirect("an object from persistent_load"),
            _ => Target::Indirect("an unknown value"),
        }
    }

    /// What `func` resolves to (through its class for a method call), with
    /// the verdict on the name: worked out once per callable value.
    fn call_target(&mut self, func: ValueId, method: bool) -> Rc<CallTarget> {
        if let Some(t) = self.targets.get(&(func, method)) {
            return t.clone();
        }
        let target = if method { self.class_of(func) } else { self.resolve(func) };
        let (judged, uses, launder) = match &target {
            Target::Name(m, n) => {
                let j = self.policy.judge(m, n);
                let i = self.index.get(&(m.clone(), n.clone())).copied();
                let uses = if j.verdict == Verdict::Safe { self.policy.builtin_uses(m, n) } else { None };
                (Some((j, i)), uses, Launder::of(m, n))
            }
            _ => (None, None, None),
        };
        let t = Rc::new(CallTarget { target, judged, uses, launder });
        // What a call's result resolves to can change (a BUILD of a
        // partial replaces its function); a global's cannot.
        if !matches!(self.a.value(func), Value::Call(_)) {
            self.targets.insert((func, method), t.clone());
        }
        t
    }

    /// Judges one call; `expr` renders it for the findings, if there are any.
    fn judge_call(&mut self, c: CallSite, expr: impl Fn() -> String) {
        let (offset, pickle) = (c.offset, c.pickle);
        let info = self.call_target(c.func, c.is_method());
        match (&info.target, &info.judged) {
            (Target::Name(m, n), Some((judged, global))) => self.named_call(&c, &info, (m, n), judged, *global, &expr),
            (Target::Name(..), None) => {}
            (Target::Computed, _) => self.add_lazy(Rule::ComputedGlobal, offset, pickle, || {
                (None, "calls a global whose name is computed at load time".into(), Some(expr()))
            }),
            (Target::Indirect(what), _) => self.indirect_call(&c, what, &expr),
        }
    }

    /// A call of a named global: its verdict (a conditional one judged by
    /// the arguments), the use the opcode makes of it, and, for a
    /// launderer, the uses it makes of its arguments.
    fn named_call(
        &mut self,
        c: &CallSite,
        info: &CallTarget,
        (m, n): (&str, &str),
        judged: &Judgement,
        global: Option<usize>,
        expr: &dyn Fn() -> String,
    ) {
        // builtins.getattr(X, 'attr') itself: as safe as X.attr.
        let conditional;
        let j = if judged.verdict == Verdict::Conditional && makes_object(c.kind) {
            conditional = self.conditional_call(m, n, c.args);
            &conditional
        } else {
            judged
        };
        if let Some(i) = global {
            self.out.globals[i].calls += 1;
        }
        self.call_verdict(c, (m, n), j, expr);
        if j.verdict == Verdict::Dangerous {
            return;
        }
        let (used, kw) = self.use_of(c);
        if j.verdict == Verdict::Safe {
            let input = Input::Args(self.a.tuple(c.args), kw);
            self.judge_use(c.offset, c.pickle, m, n, info.uses, used, input, Via::Direct, expr);
        }
        // What a launderer does with its arguments.
        // (`partial.__new__(partial, f, ...)` makes a partial too; the
        // functions' `__new__` is object's, which fails.)
        if let (Some(l), Use::Call) = (info.launder, used) {
            if !matches!(c.kind, CallKind::NewObj | CallKind::NewObjEx) || l == Launder::Partial {
                let items = self.a.tuple(c.args).unwrap_or(&[]);
                let is = |id: ValueId, m: &str, n: &str| self.is_global(id, m, n);
                for mut d in derived(self.a, l, items, &is) {
                    d.kwargs |= kw;
                    self.judge_derived(c.offset, c.pickle, &d, Via::Launderer(m, n), expr);
                }
            }
        }
    }

    /// PK102 or PK104 for a call of a denied or unknown name.
    fn call_verdict(&mut self, c: &CallSite, (m, n): (&str, &str), j: &Judgement, expr: &dyn Fn() -> String) {
        let rule = match j.verdict {
            Verdict::Safe => return,
            // Reported at the import: TorchScript's own unpickler makes
            // these objects, not Python code.
            Verdict::Unknown if is_torchscript(m) => return,
            Verdict::Dangerous => Rule::DangerousCall,
            Verdict::Unknown | Verdict::Conditional => Rule::UnknownCall,
        };
        let kind = c.kind;
        self.add_lazy(rule, c.offset, c.pickle, || {
            let g = global_name(m, n);
            let how = match kind {
                CallKind::Append | CallKind::SetItem | CallKind::Add => format!("method call on a {g} object"),
                CallKind::SetState => format!("BUILD calls a planted __setstate__ = {g}"),
                _ => format!("calls {g}"),
            };
            (Some(g), format!("{how}: {}", j.reason), Some(expr()))
        });
    }

    /// The use the opcode makes of its callee, and whether it passes keywords.
    fn use_of(&self, c: &CallSite) -> (Use, bool) {
        let kw = c.kwargs.is_some_and(|k| !self.is_empty_dict(k));
        let used = match c.kind {
            CallKind::Append | CallKind::SetItem | CallKind::Add => Use::Items,
            CallKind::NewObj | CallKind::NewObjEx if self.a.items(c.args).is_empty() && !kw => Use::New,
            _ => Use::Call,
        };
        (used, kw)
    }

    /// A call of something that is not a name: an instance of a named class
    /// is that class's `invoke` (its `__call__` runs); anything else is PK105.
    fn indirect_call(&mut self, c: &CallSite, what: &'static str, expr: &dyn Fn() -> String) {
        let class = match self.a.value(c.func) {
            Value::Call(_) if !c.is_method() => made_by(self.a, c.func).map(|by| self.maker_target(by)),
            _ => None,
        };
        if let Some(t) = class {
            if let (Target::Name(m, n), Some((j, _))) = (&t.target, &t.judged) {
                if j.verdict == Verdict::Safe {
                    let input = Input::Args(self.a.tuple(c.args), false);
                    self.judge_use(c.offset, c.pickle, m, n, t.uses, Use::Invoke, input, Via::Direct, expr);
                    return;
                }
            }
        }
        self.add_lazy(Rule::IndirectCall, c.offset, c.pickle, || (None, format!("calls {what}"), Some(expr())))
    }

    /// What made an object, resolved and judged like a callable.
    fn maker_target(&mut self, by: Maker) -> Rc<CallTarget> {
        match by {
            Maker::Value(v) => self.call_target(v, false),
            Maker::Name(m, n) => {
                let j = self.policy.judge(m, n);
                let uses = if j.verdict == Verdict::Safe { self.policy.builtin_uses(m, n) } else { None };
                let target = Target::Name(m.to_string(), n.to_string());
                Rc::new(CallTarget { target, judged: Some((j, None)), uses, launder: None })
            }
        }
    }

    /// True when `id` is the global `module name`.
    fn is_global(&self, id: ValueId, module: &str, name: &str) -> bool {
        matches!(self.a.value(id), Value::Global(g) if &*g.module == module && &*g.name == name)
    }

    fn is_empty_dict(&self, id: ValueId) -> bool {
        matches!(self.a.value(id), Value::Dict(p) if p.is_empty()) || matches!(self.a.value(id), Value::None)
    }

    /// Judges one use of the allowlisted `module name`: a PK112/PK113
    /// finding when its entry does not permit it.
    #[allow(clippy::too_many_arguments)]
    fn judge_use(
        &mut self,
        offset: u64,
        pickle: usize,
        module: &str,
        name: &str,
        uses: Option<&'static Uses>,
        used: Use,
        input: Input<'_>,
        via: Via<'_>,
        expr: &dyn Fn() -> String,
    ) {
        // The common case without reading arguments or state: a permitted
        // use with no contract to check.
        if uses.is_some_and(|u| u.permits_any(used)) {
            return;
        }
        let a = self.a;
        let verdict = match input {
            Input::Nothing => self.policy.judge_use(module, name, used, Given::Nothing),
            Input::Args(args, kw) => {
                let kinds: Option<Vec<ArgKind<'_>>> = args.map(|t| t.iter().map(|&i| arg_kind(a, i)).collect());
                self.policy.judge_use(module, name, used, Given::Args(kinds.as_deref(), kw))
            }
            Input::State(state) => {
                // One state dict may be applied by any number of BUILDs: its
                // pairs are read once per length (dicts only grow).
                let pairs = a.pairs(state);
                let key = (state, pairs.len(), module.to_string(), name.to_string());
                if let Some(v) = self.state_verdicts.get(&key) {
                    v.clone()
                } else {
                    let view: Option<Vec<(&str, ArgKind<'_>)>> = match a.value(state) {
                        Value::Dict(_) => {
                            Some(pairs.iter().filter_map(|&(k, v)| Some((a.full_str(k)?, arg_kind(a, v)))).collect())
                        }
                        _ => None,
                    };
                    let v = self.policy.judge_use(module, name, used, Given::State(view.as_deref()));
                    self.state_verdicts.insert(key, v.clone());
                    v
                }
            }
        };
        let (rule, tail) = match verdict {
            UseVerdict::Permitted => return,
            UseVerdict::Gadget { effect, why } => (Rule::GadgetUse, format!("a known gadget ({effect}); {why}")),
            UseVerdict::Unlisted { why } => (Rule::UnlistedUse, why),
        };
        self.add_lazy(rule, offset, pickle, || {
            let g = global_name(module, name);
            let how = match used {
                Use::Ref => format!("uses {g} as a value"),
                Use::New => format!("instantiates {g} without its constructor"),
                Use::Call => format!("calls {g}"),
                Use::Build => format!("BUILD on a {g} object"),
                Use::Items => format!("adds items to a {g} object"),
                Use::Invoke => format!("calls a {g} object"),
                Use::BuildClass => format!("BUILD sets attributes of the class {g}"),
            };
            let via = match via {
                Via::Direct => String::new(),
                Via::Launderer(m, n) => format!(" through {}", global_name(m, n)),
                Via::PartialBuild => " through a functools.partial whose BUILD set it".to_string(),
            };
            (Some(g), format!("{how}{via}: {tail}"), Some(expr()))
        });
    }

    /// Judges a use a launderer makes of one of its arguments, as if the
    /// file made it directly.
    fn judge_derived(&mut self, offset: u64, pickle: usize, d: &Derived, via: Via<'_>, expr: &dyn Fn() -> String) {
        let t = self.call_target(d.value, false);
        let calls = matches!(d.use_, Use::Call | Use::New);
        let through = match via {
            Via::Launderer(m, n) => format!("through {}", global_name(m, n)),
            _ => "through a functools.partial whose BUILD set it".to_string(),
        };
        match (&t.target, &t.judged) {
            (Target::Name(m, n), Some((j, global))) => {
                if calls {
                    if let Some(i) = *global {
                        self.out.globals[i].calls += 1;
                    }
                }
                let rule = match j.verdict {
                    Verdict::Safe => {
                        let input = Input::Args(Some(&d.args[..]), d.kwargs);
                        return self.judge_use(offset, pickle, m, n, t.uses, d.use_, input, via, expr);
                    }
                    _ if !calls => return,
                    Verdict::Dangerous => Rule::DangerousCall,
                    Verdict::Unknown | Verdict::Conditional => Rule::UnknownCall,
                };
                self.add_lazy(rule, offset, pickle, || {
                    let g = global_name(m, n);
                    (Some(g.clone()), format!("calls {g} {through}: {}", j.reason), Some(expr()))
                });
            }
            (Target::Name(..), None) => {}
            (Target::Computed, _) if calls => self.add_lazy(Rule::ComputedGlobal, offset, pickle, || {
                (None, format!("calls a global whose name is computed at load time {through}"), Some(expr()))
            }),
            (Target::Indirect(what), _)
                if calls
                    && matches!(
                        self.a.value(d.value),
                        Value::Call(_) | Value::Persistent { .. } | Value::Unknown(_)
                    ) =>
            {
                self.add_lazy(Rule::IndirectCall, offset, pickle, || {
                    (None, format!("calls {what} {through}"), Some(expr()))
                })
            }
            _ => {}
        }
    }

    /// Judges a `BUILD`: the `build` use of the class that made the
    /// target, `build-class` on a class object, and a partial's new function.
    fn judge_build(&mut self, offset: u64, pickle: usize, target: ValueId, state: ValueId, r: &Renderer<'_>) {
        let expr = || format!("{}.__setstate__({})", r.expr(target), r.expr(state));
        if let Value::Global(_) = self.a.value(target) {
            let t = self.call_target(target, false);
            if let (Target::Name(m, n), Some((j, _))) = (&t.target, &t.judged) {
                if matches!(j.verdict, Verdict::Safe | Verdict::Unknown | Verdict::Conditional) {
                    self.judge_use(offset, pickle, m, n, t.uses, Use::BuildClass, Input::Nothing, Via::Direct, &expr);
                }
            }
            return;
        }
        let Some(by) = made_by(self.a, target) else { return };
        let t = self.maker_target(by);
        let (Target::Name(m, n), Some((j, _))) = (&t.target, &t.judged) else { return };
        if t.launder == Some(Launder::Partial) {
            // partial.__setstate__((func, args, kwds, dict)): the partial
            // now calls `func`, judged as a call with those arguments.
            self.partial_state.insert(target, state);
            if let Some([f, rest @ ..]) = self.a.tuple(state) {
                let args = rest.first().map(|a| self.a.items(*a).to_vec()).unwrap_or_default();
                let kwargs = rest.get(1).is_some_and(|k| !self.is_empty_dict(*k));
                let d = Derived { value: *f, use_: Use::Call, args, kwargs };
                self.judge_derived(offset, pickle, &d, Via::PartialBuild, &expr);
            }
            return;
        }
        if j.verdict == Verdict::Safe {
            self.judge_use(offset, pickle, m, n, t.uses, Use::Build, Input::State(state), Via::Direct, &expr);
        }
    }

    /// Judges a call of a conditional global by its arguments.
    fn conditional_call(&self, module: &str, name: &str, args: ValueId) -> Judgement {
        let items: &[ValueId] = self.a.tuple(args).unwrap_or(&[]);
        let target = match (module, name, items) {
            ("builtins", "getattr", [obj, attr, ..]) => match (self.resolve(*obj), self.a.full_str(*attr)) {
                (Target::Name(m, n), Some(attr)) => Some((m, format!("{n}.{attr}"))),
                _ => None,
            },
            (_, "partial", [f, ..]) => match self.resolve(*f) {
                Target::Name(m, n) => Some((m, n)),
                _ => None,
            },
            _ => None,
        };
        match target {
            Some((m, n)) => {
                let j = self.policy.judge(&m, &n);
                match j.verdict {
                    Verdict::Safe => j,
                    Verdict::Dangerous => Judgement {
                        verdict: Verdict::Dangerous,
                        reason: format!("reaches {}: {}", global_name(&m, &n), j.reason),
                    },
                    _ if name == "getattr" => Judgement {
                        verdict: Verdict::Dangerous,
                        reason: format!("getattr reaches {}, which is not allowlisted", global_name(&m, &n)),
                    },
                    _ => Judgement {
                        verdict: Verdict::Unknown,
                        reason: format!("wraps {}: {}", global_name(&m, &n), j.reason),
                    },
                }
            }
            None => Judgement {
                verdict: Verdict::Dangerous,
                reason: format!("{name} with arguments that cannot be resolved"),
            },
        }
    }

    fn anomaly(&mut self, offset: u64, pickle: usize, an: &Anomaly) {
        let rule = match an {
            Anomaly::StackUnderflow { .. }
            | Anomaly::NoMark { .. }
            | Anomaly::TypeMismatch { .. }
            | Anomaly::OddItems { .. } => Rule::StackAnomaly,
            Anomaly::MemoMissing { .. }
            | Anomaly::MemoOverwrite { .. }
            | Anomaly::MemoEmptyStack
            | Anomaly::MemoBadKey => Rule::MemoAnomaly,
            // Reported through the ComputedImport event.
            Anomaly::ComputedGlobal => return,
            Anomaly::DottedName { .. } => Rule::DottedGlobal,
            Anomaly::AboveProtocol { .. } | Anomaly::BadProto { .. } => Rule::ProtocolViolation,
            Anomaly::FrameCrossing { .. }
            | Anomaly::FrameNotFinished { .. }
            | Anomaly::FramePastInput
            | Anomaly::StopInsideFrame { .. }
            | Anomaly::PayloadInFrame => Rule::FrameViolation,
            Anomaly::ParserDifferential { .. } => Rule::ParserDifferential,
            Anomaly::BadExtension { .. } => Rule::ExtensionCode,
            Anomaly::MissingStop => Rule::TruncatedStream,
            Anomaly::TrailingData { .. } => Rule::TrailingData,
            Anomaly::AnotherPickle { .. } => Rule::MultiplePickles,
            // Documentation attributes change no behaviour (functools.wraps
            // copies them; real objects carry them in their state).
            Anomaly::DunderState { attr } if BENIGN_DUNDERS.contains(&attr.as_str()) => return,
            Anomaly::DunderState { .. } => Rule::SetstateHijack,
            Anomaly::UnusualPadding { .. } => Rule::PayloadAnomaly,
            Anomaly::LimitExceeded { .. } => Rule::LimitExceeded,
        };
        self.add(rule, offset, pickle, None, an.message(), None);
    }
}

/// True for the opcodes whose result is an object a class or function
/// made: `REDUCE`, `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX` (not the method
/// calls of `APPEND`/`SETITEM`/`ADDITEMS` or a planted `__setstate__`).
fn makes_object(kind: CallKind) -> bool {
    matches!(kind, CallKind::Reduce | CallKind::Inst | CallKind::Obj | CallKind::NewObj | CallKind::NewObjEx)
}

/// Dunder attributes a BUILD state may set without a finding: they describe
/// an object, the unpickler and Python never call them.
const BENIGN_DUNDERS: &[&str] = &["__doc__", "__module__", "__name__", "__qualname__", "__annotations__"];

/// True for the module of a TorchScript class reference (`__torch__.a.B`).
fn is_torchscript(module: &str) -> bool {
    module.strip_prefix("__torch__").is_some_and(|r| r.is_empty() || r.starts_with('.'))
}
