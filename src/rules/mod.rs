//! The rule registry and the judging stage: machine events in, findings out.
//!
//! Every finding carries a stable [`Rule`] code. Codes are never reused or
//! renumbered (a test snapshots the table); severities come from
//! [`Rule::default_severity`], or from the [`Levels`] a policy file sets
//! (which may also drop a rule). This is the only place that decides what is
//! dangerous: the machine reports, the [`Policy`] classifies names, and
//! [`check`] turns both into [`Finding`]s.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::error::ErrorKind;
use crate::limits::{MAX_EXPR_CHARS, MAX_FINDINGS_PER_RULE};
use crate::policy::{ArgKind, Given, Judgement, Policy, Use, UseVerdict, Uses, Verdict};
use crate::view::render::{global_name, Renderer};
use crate::vm::{Analysis, Anomaly, CallKind, EventKind, Value, ValueId};

mod container;
mod registry;
mod uses;
pub use container::{container_finding, container_rule};
pub use registry::{Levels, Rule, Severity};
use uses::{arg_kind, derived, made_by, Derived, Launder, Maker};

/// One finding.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// The rule.
    #[serde(serialize_with = "ser_rule")]
    pub rule: Rule,
    /// Its severity.
    pub severity: Severity,
    /// Absolute byte offset of the opcode (or error).
    pub offset: u64,
    /// Index of the pickle in the file.
    pub pickle: usize,
    /// Archive member, for containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The global concerned, as `module.name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    /// What was found.
    pub message: String,
    /// The call as a Python-like expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

fn ser_rule<S: serde::Serializer>(r: &Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.code())
}

/// One imported global and what the policy says of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GlobalUse {
    /// Module as imported.
    pub module: String,
    /// Name, possibly dotted.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
    /// How many times it is imported.
    pub imports: usize,
    /// How many times it is called (directly or via getattr/partial resolution).
    pub calls: usize,
    /// Offset of the first import.
    pub first_offset: u64,
}

/// What judging one analysis produced.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    /// Findings, in offset order.
    pub findings: Vec<Finding>,
    /// Every distinct global, in first-import order.
    pub globals: Vec<GlobalUse>,
    /// Findings dropped past `MAX_FINDINGS_PER_RULE`, per rule code.
    pub suppressed: BTreeMap<&'static str, usize>,
}

/// What a callable resolves to, for judging a call.
enum Target {
    /// A global name (module, name).
    Name(String, String),
    /// A computed global.
    Computed,
    /// Something else (a call result, a persistent object, an unknown).
    Indirect(&'static str),
}

struct Judge<'a> {
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

    fn str_of(&self, id: ValueId) -> Option<&'a str> {
        self.a.full_str(id)
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
                            let Some(attr) = self.str_of(*attr) else {
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

    fn run(mut self) -> Judged {
        let a = self.a;
        let r = Renderer::new(a, MAX_EXPR_CHARS);
        for e in &a.events {
            match &e.kind {
                EventKind::Import { via, module, name, written, value } => {
                    let (i, j) = match self.imported.get(value) {
                        Some((i, j)) => (*i, j.clone()),
                        None => {
                            let j = self.policy.judge(module, name);
                            let i = self.global_use(module, name, e.offset, &j);
                            let j = Rc::new(j);
                            self.imported.insert(*value, (i, j.clone()));
                            (i, j)
                        }
                    };
                    self.out.globals[i].imports += 1;
                    let rule = match j.verdict {
                        Verdict::Dangerous => Rule::DangerousImport,
                        Verdict::Unknown if is_torchscript(module) => Rule::TorchScriptClass,
                        Verdict::Unknown if module.starts_with("torch.nn.modules.") => Rule::PickledModule,
                        Verdict::Unknown => Rule::UnknownImport,
                        Verdict::Safe | Verdict::Conditional => continue,
                    };
                    self.add_lazy(rule, e.offset, e.pickle, || {
                        let g = global_name(module, name);
                        let shown = match written {
                            Some((m, n)) => format!("{g} (written as {})", global_name(m, n)),
                            None => g.clone(),
                        };
                        (Some(g), format!("{} imports {shown}: {}", via.name(), j.reason), None)
                    });
                }
                EventKind::ComputedImport { value } => {
                    self.add(
                        Rule::ComputedGlobal,
                        e.offset,
                        e.pickle,
                        None,
                        "STACK_GLOBAL imports a name computed at load time".into(),
                        Some(r.expr(*value)),
                    );
                }
                EventKind::Call { kind, func, args, kwargs, .. } => {
                    // Rendered only for a finding: most calls are safe.
                    let expr = || r.call(*kind, *func, *args, *kwargs);
                    self.judge_call(e.offset, e.pickle, *kind, *func, *args, *kwargs, expr);
                }
                EventKind::Build { target, state } => self.judge_build(e.offset, e.pickle, *target, *state, &r),
                EventKind::PersistentId { pid } => {
                    self.add(
                        Rule::PersistentId,
                        e.offset,
                        e.pickle,
                        None,
                        "persistent id for the loader".into(),
                        Some(format!("persistent_load({})", r.expr(*pid))),
                    );
                }
                EventKind::Extension { code, resolved } => {
                    let msg = match resolved {
                        Some((m, n)) => format!(
                            "EXT code {code} resolves to {} through an in-stream registration",
                            global_name(m, n)
                        ),
                        None => format!("EXT code {code} is not registered in the stream"),
                    };
                    self.add(Rule::ExtensionCode, e.offset, e.pickle, None, msg, None);
                }
                // Array data: recorded for extraction, nothing to judge.
                EventKind::ArrayPayload { .. } => {}
                EventKind::ExternalBuffer => {
                    self.add(
                        Rule::ExternalBuffer,
                        e.offset,
                        e.pickle,
                        None,
                        "NEXT_BUFFER: data outside the file".into(),
                        None,
                    );
                }
                EventKind::Anomaly(an) => self.anomaly(e.offset, e.pickle, an),
            }
        }
        if let Some(err) = &a.error {
            let truncated = match err.kind() {
                ErrorKind::UnexpectedEof { .. } => true,
                ErrorKind::BadLength { declared, remaining: Some(r), .. } => *declared > *r as i128,
                _ => false,
            };
            let pickle = a.pickles.len().saturating_sub(1);
            let rule = if truncated { Rule::TruncatedStream } else { Rule::MalformedStream };
            self.add(rule, err.offset(), pickle, None, err.to_string(), None);
        }
        self.out.findings.sort_by_key(|f| (f.offset, f.rule));
        self.out
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
    #[allow(clippy::too_many_arguments)]
    fn judge_call(
        &mut self,
        offset: u64,
        pickle: usize,
        kind: CallKind,
        func: ValueId,
        args: ValueId,
        kwargs: Option<ValueId>,
        expr: impl Fn() -> String,
    ) {
        let method = matches!(kind, CallKind::Append | CallKind::SetItem | CallKind::Add);
        let info = self.call_target(func, method);
        match (&info.target, &info.judged) {
            (Target::Name(m, n), Some((judged, global))) => {
                // builtins.getattr(X, 'attr') itself: as safe as X.attr.
                let conditional;
                let j = if judged.verdict == Verdict::Conditional && makes_object(kind) {
                    conditional = self.conditional_call(m, n, args);
                    &conditional
                } else {
                    judged
                };
                if let Some(i) = *global {
                    self.out.globals[i].calls += 1;
                }
                let rule = match j.verdict {
                    Verdict::Safe => None,
                    // Reported at the import: TorchScript's own unpickler
                    // makes these objects, not Python code.
                    Verdict::Unknown if is_torchscript(m) => None,
                    Verdict::Dangerous => Some(Rule::DangerousCall),
                    Verdict::Unknown | Verdict::Conditional => Some(Rule::UnknownCall),
                };
                if let Some(rule) = rule {
                    self.add_lazy(rule, offset, pickle, || {
                        let g = global_name(m, n);
                        let how = match kind {
                            CallKind::Append | CallKind::SetItem | CallKind::Add => {
                                format!("method call on a {g} object")
                            }
                            CallKind::SetState => format!("BUILD calls a planted __setstate__ = {g}"),
                            _ => format!("calls {g}"),
                        };
                        (Some(g), format!("{how}: {}", j.reason), Some(expr()))
                    });
                }
                if j.verdict == Verdict::Dangerous {
                    return;
                }
                // The use the opcode makes of its callee.
                let kw = kwargs.is_some_and(|k| !self.is_empty_dict(k));
                let used = match kind {
                    CallKind::Append | CallKind::SetItem | CallKind::Add => Use::Items,
                    CallKind::NewObj | CallKind::NewObjEx if self.a.items(args).is_empty() && !kw => Use::New,
                    _ => Use::Call,
                };
                if j.verdict == Verdict::Safe {
                    let input = Input::Args(self.a.tuple(args), kw);
                    self.judge_use(offset, pickle, m, n, info.uses, used, input, Via::Direct, &expr);
                }
                // What a launderer does with its arguments.
                // (`partial.__new__(partial, f, ...)` makes a partial too; the
                // functions' `__new__` is object's, which fails.)
                if let (Some(l), Use::Call) = (info.launder, used) {
                    if !matches!(kind, CallKind::NewObj | CallKind::NewObjEx) || l == Launder::Partial {
                        let items = self.a.tuple(args).unwrap_or(&[]);
                        let is = |id: ValueId, m: &str, n: &str| self.is_global(id, m, n);
                        for mut d in derived(self.a, l, items, &is) {
                            d.kwargs |= kw;
                            self.judge_derived(offset, pickle, &d, Via::Launderer(m, n), &expr);
                        }
                    }
                }
            }
            (Target::Name(..), None) => {}
            (Target::Computed, _) => self.add_lazy(Rule::ComputedGlobal, offset, pickle, || {
                (None, "calls a global whose name is computed at load time".into(), Some(expr()))
            }),
            (Target::Indirect(what), _) => {
                // An instance of a named class, called: its __call__ runs.
                let class = match self.a.value(func) {
                    Value::Call(_) if !method => made_by(self.a, func).map(|by| self.maker_target(by)),
                    _ => None,
                };
                if let Some(t) = class {
                    if let (Target::Name(m, n), Some((j, _))) = (&t.target, &t.judged) {
                        if j.verdict == Verdict::Safe {
                            let input = Input::Args(self.a.tuple(args), false);
                            self.judge_use(offset, pickle, m, n, t.uses, Use::Invoke, input, Via::Direct, &expr);
                            return;
                        }
                    }
                }
                self.add_lazy(Rule::IndirectCall, offset, pickle, || (None, format!("calls {what}"), Some(expr())))
            }
        }
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
            ("builtins", "getattr", [obj, attr, ..]) => match (self.resolve(*obj), self.str_of(*attr)) {
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

/// Judges an analysis against a policy.
pub fn check(analysis: &Analysis, policy: &Policy) -> Judged {
    check_with(analysis, policy, &Levels::default())
}

/// Judges an analysis against a policy, with severities from `levels`.
pub fn check_with(analysis: &Analysis, policy: &Policy, levels: &Levels) -> Judged {
    Judge {
        a: analysis,
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
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Analyzer;

    #[test]
    fn codes_are_unique_and_stable() {
        let mut seen = std::collections::HashSet::new();
        for r in Rule::ALL {
            assert!(seen.insert(r.code()), "repeated code {}", r.code());
            assert!(seen.insert(r.slug()), "repeated slug {}", r.slug());
        }
        // A rename or renumbering must show up here, in review.
        let table: Vec<String> =
            Rule::ALL.iter().map(|r| format!("{} {} {}", r.code(), r.slug(), r.default_severity().as_str())).collect();
        assert_eq!(
            table.join("\n"),
            "PK101 dangerous-import error\nPK102 dangerous-call error\nPK103 unknown-import warning\n\
             PK104 unknown-call warning\nPK105 indirect-call warning\nPK106 setstate-hijack error\n\
             PK107 extension-code warning\nPK108 computed-global error\nPK109 dotted-global warning\n\
             PK110 persistent-id info\nPK111 external-buffer warning\nPK112 gadget-use error\nPK113 unlisted-use warning\nPK114 torchscript-class warning\nPK115 pickled-module warning\nPK201 malformed-stream error\n\
             PK202 truncated-stream error\nPK203 stack-anomaly warning\nPK204 memo-anomaly warning\n\
             PK205 protocol-violation warning\nPK206 frame-violation error\nPK207 trailing-data warning\n\
             PK208 multiple-pickles warning\nPK209 limit-exceeded error\nPK210 payload-anomaly warning\nPK211 parser-differential error\n\
             PK301 container-error error\nPK302 archive-anomaly error\nPK303 decompression-limit error\n\
             PK304 torch-anomaly warning\n\
             PK305 unsafe-companion-path error\nPK306 missing-companion warning\nPK307 polyglot-file error"
        );
    }

    fn codes(p: &[u8]) -> Vec<&'static str> {
        let j = check(&Analyzer::new().run(p), &Policy::builtin());
        j.findings.iter().map(|f| f.rule.code()).collect()
    }

    #[test]
    fn dangerous_call_shows_expression() {
        let j = check(&Analyzer::new().run(b"cos\nsystem\n(S'echo hi'\ntR."), &Policy::builtin());
        assert_eq!(j.findings.len(), 2);
        assert_eq!(j.findings[1].rule, Rule::DangerousCall);
        assert_eq!(j.findings[1].call.as_deref(), Some("os.system('echo hi')"));
        assert_eq!(j.findings[1].offset, 24);
    }

    #[test]
    fn getattr_on_allowlisted_class_is_safe() {
        // getattr(zoneinfo.ZoneInfo, '_unpickle')('Europe/Berlin', 1)
        let p = b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x08zoneinfo\x8c\x08ZoneInfo\x93\x8c\x09_unpickle\x86R\x8c\x0dEurope/Berlin\x4b\x01\x86R.";
        assert_eq!(codes(p), Vec::<&str>::new());
        // getattr reaching something else is dangerous.
        let p = b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x06random\x8c\x06Random\x93\x8c\x04seed\x86R)R.";
        assert!(codes(p).contains(&"PK102"));
    }

    #[test]
    fn levels_change_severity_or_drop_findings() {
        let a = Analyzer::new().run(b"cmypkg\nThing\n)R.");
        let mut levels = Levels::default();
        assert!(levels.is_default());
        levels.set(Rule::UnknownImport, Some(Severity::Error));
        levels.set(Rule::UnknownCall, None);
        assert!(!levels.is_default());
        let j = check_with(&a, &Policy::builtin(), &levels);
        let got: Vec<(&str, Severity)> = j.findings.iter().map(|f| (f.rule.code(), f.severity)).collect();
        assert_eq!(got, vec![("PK103", Severity::Error)]);
        // The global is still listed with its verdict.
        assert_eq!(j.globals[0].verdict, Verdict::Unknown);
        assert_eq!(j.globals[0].calls, 1);
        // Defaults without levels.
        let j = check(&a, &Policy::builtin());
        let got: Vec<(&str, Severity)> = j.findings.iter().map(|f| (f.rule.code(), f.severity)).collect();
        assert_eq!(got, vec![("PK103", Severity::Warning), ("PK104", Severity::Warning)]);
    }

    /// The findings of `p`, as (code, message).
    fn findings(p: &[u8]) -> Vec<(&'static str, String)> {
        let j = check(&Analyzer::new().run(p), &Policy::builtin());
        j.findings.iter().map(|f| (f.rule.code(), f.message.clone())).collect()
    }

    #[test]
    fn an_allowed_name_is_judged_by_its_use() {
        // numpy.memmap('/tmp/x', 'uint8', 'w+', 0, (16,)): a file overwrite.
        let p = b"cnumpy\nmemmap\n(S'/tmp/pkinspect-fixture'\nS'uint8'\nS'w+'\nI0\n(I16\nttR.";
        let f = findings(p);
        assert_eq!(f.iter().map(|f| f.0).collect::<Vec<_>>(), ["PK112"], "{f:?}");
        assert!(f[0].1.starts_with("calls numpy.memmap: a known gadget (file-"), "{f:?}");
        // The same name as the subtype numpy's _reconstruct is handed, then BUILD: clean.
        let p = b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nmemmap\n(I0\ntS'b'\ntR(I1\n(I0\ntNI00\nS''\ntb.";
        assert_eq!(findings(p), vec![]);
        // Instantiated by copyreg._reconstructor with the base `object`:
        // memmap's own constructor never runs.
        let p = b"ccopyreg\n_reconstructor\n(cnumpy\nmemmap\ncbuiltins\nobject\nNtR.";
        assert_eq!(findings(p).iter().map(|f| f.0).collect::<Vec<_>>(), ["PK113"]);
        // With memmap as the base, _reconstructor calls it with the path.
        let p = b"ccopyreg\n_reconstructor\n(cnumpy\nmemmap\ncnumpy\nmemmap\nS'/tmp/pkinspect-fixture'\ntR.";
        let f = findings(p);
        assert!(f.iter().any(|f| f.0 == "PK112" && f.1.contains("through copyreg._reconstructor")), "{f:?}");
    }

    #[test]
    fn launderers_pass_on_the_call_they_make() {
        // __generator_ctor('echo', os.system) calls os.system('echo').
        let p = b"cnumpy.random._pickle\n__generator_ctor\n(S'echo pkinspect-fixture'\ncos\nsystem\ntR.";
        let j = check(&Analyzer::new().run(p), &Policy::builtin());
        let codes: Vec<_> = j.findings.iter().map(|f| f.rule.code()).collect();
        assert_eq!(codes, ["PK101", "PK102"]);
        assert!(j.findings[1].message.contains("through numpy.random._pickle.__generator_ctor"));
        // The laundered call is counted as a call of the name.
        assert_eq!(j.globals.iter().find(|g| &*g.name == "system").map(|g| g.calls), Some(1));
        // partial(int) whose BUILD makes it call numpy.memmap, then called.
        let p = b"cfunctools\npartial\n(cbuiltins\nint\ntR(cnumpy\nmemmap\n(S'/tmp/pkinspect-fixture'\ntNNtb)R.";
        let f = findings(p);
        assert!(f.iter().any(|f| f.0 == "PK112" && f.1.contains("functools.partial whose BUILD")), "{f:?}");
        assert!(f.iter().any(|f| f.0 == "PK112" && f.1.starts_with("calls numpy.memmap")), "{f:?}");
    }

    #[test]
    fn build_and_instances_are_uses_too() {
        // BUILD with a slot state on pandas' DictWrapper: setattr reaches set_option.
        let p = b"\x80\x02cpandas._config.config\nDictWrapper\n)\x81N}U\x07backendU\x03mods\x86b.";
        let f = findings(p);
        assert!(
            f.iter().any(|f| f.0 == "PK112" && f.1.starts_with("BUILD on a pandas._config.config.DictWrapper")),
            "{f:?}"
        );
        // BUILD on a class object itself.
        let p = b"csklearn.linear_model._logistic\nLogisticRegression\n(N}S'predict'\nI1\nstb.";
        assert!(findings(p).iter().any(|f| f.0 == "PK113" && f.1.contains("attributes of the class")));
        // Calling an instance of sklearn's Parallel runs the tasks it is given.
        let p = b"\x80\x02csklearn.utils.parallel\nParallel\n)\x81]\x85R.";
        assert!(findings(p)
            .iter()
            .any(|f| f.0 == "PK112" && f.1.starts_with("calls a sklearn.utils.parallel.Parallel")));
    }

    #[test]
    fn partial_is_judged_by_its_target() {
        let p = b"cfunctools\npartial\n(cos\nsystem\nS'echo'\ntR)R.";
        let c = codes(p);
        assert!(c.contains(&"PK101") && c.contains(&"PK102"), "{c:?}");
    }
}
