//! Python-like text for symbolic values: `os.system('echo hi')`.
//!
//! Used for the call expressions in findings and by `pkinspect show`. Every
//! rendering has a character budget and a depth bound, so a value graph built
//! to explode (a memo DAG that doubles at each level, a list containing
//! itself) costs bounded time and output. Text that comes from the file —
//! string contents, global names — is escaped: strings through Python's own
//! `repr` rules, names so that no control character or bidi override reaches
//! a terminal.

use crate::limits::{MAX_RENDER_DEPTH, MAX_SHOWN_GLOBAL};
use crate::py::repr::{
    cut_dotted, escape_for_terminal, repr_bytearray, repr_bytes, repr_bytes_head, repr_float, repr_str, repr_str_head,
};
use crate::vm::{Analysis, BlobView, CallKind, UnknownWhy, Value, ValueId};

/// Renders values of one [`Analysis`] within a character budget.
pub struct Renderer<'a> {
    analysis: &'a Analysis,
    budget: usize,
    /// Values to print as a name instead of expanding (used by `show`).
    names: Option<&'a dyn Fn(ValueId) -> Option<String>>,
}

/// A global's printable dotted name, escaped for terminals, cut at
/// [`MAX_SHOWN_GLOBAL`].
pub fn global_name(module: &str, name: &str) -> String {
    escape_for_terminal(&cut_dotted(module, name, MAX_SHOWN_GLOBAL))
}

/// The literal text of a value that has no children, if it is one (`a`
/// holds the value and its text).
pub fn atom(a: &Analysis, v: &Value) -> Option<String> {
    Some(match v {
        Value::None => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => big_int(i),
        Value::Float(x) => float_literal(*x),
        Value::Str(r) => blob_text(a.str(*r), repr_str),
        Value::Bytes(b) => blob_text(b.as_view(), repr_bytes),
        Value::ByteArray(b) => blob_text(b.as_view(), repr_bytearray),
        Value::Global(g) => global_name(&g.module, &g.name),
        Value::Buffer { readonly } => {
            if *readonly {
                "<out-of-band buffer, read-only>".into()
            } else {
                "<out-of-band buffer>".into()
            }
        }
        Value::Unknown(why) => format!("<unknown: {}>", unknown_text(*why)),
        _ => return None,
    })
}

fn float_literal(x: f64) -> String {
    // repr gives 'inf'/'nan', which are not Python literals.
    if x.is_nan() {
        "float('nan')".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "float('inf')".into()
        } else {
            "-float('inf')".into()
        }
    } else {
        repr_float(x)
    }
}

fn blob_text<T: ?Sized>(b: BlobView<'_, T>, repr: impl Fn(&T) -> String) -> String {
    match b {
        BlobView::Full(d) => repr(d),
        BlobView::Part(p) => match &p.prefix {
            Some(d) => format!("{}…<{} bytes at offset {}>", repr(d), p.len, p.offset),
            None => format!("<{} bytes at offset {}>", p.len, p.offset),
        },
    }
}

/// Decimal text of a big integer, or its size past CPython's own
/// 4300-digit limit (converting is quadratic; a file must not make it slow).
fn big_int(i: &crate::py::num::PyInt) -> String {
    match i {
        crate::py::num::PyInt::Big { limbs, negative } if limbs.len() > 450 => {
            format!("<{}int of {} bits>", if *negative { "negative " } else { "" }, limbs.len() * 32)
        }
        other => other.to_decimal(),
    }
}

fn unknown_text(why: UnknownWhy) -> &'static str {
    match why {
        UnknownWhy::StackUnderflow => "stack underflow",
        UnknownWhy::MissingMemo => "missing memo entry",
        UnknownWhy::UnregisteredExtension => "unregistered extension code",
        UnknownWhy::Unreadable => "unreadable",
    }
}

impl<'a> Renderer<'a> {
    /// A renderer that writes at most `budget` characters per call.
    pub fn new(analysis: &'a Analysis, budget: usize) -> Self {
        Renderer { analysis, budget, names: None }
    }

    /// Prints the values `names` maps to a name as that name.
    pub fn with_names(mut self, names: &'a dyn Fn(ValueId) -> Option<String>) -> Self {
        self.names = Some(names);
        self
    }

    /// `id` as a Python-like expression, cut with `…` past the budget.
    pub fn expr(&self, id: ValueId) -> String {
        let mut out = String::new();
        self.write(id, 0, &mut out, true);
        if out.chars().count() > self.budget {
            let cut: String = out.chars().take(self.budget.saturating_sub(1)).collect();
            return cut + "…";
        }
        out
    }

    /// The expression of a call: `func(args)` in the form its opcode implies.
    pub fn call(&self, kind: CallKind, func: ValueId, args: ValueId, kwargs: Option<ValueId>) -> String {
        let mut out = String::new();
        self.write_call(kind, func, args, kwargs, 0, &mut out);
        if out.chars().count() > self.budget {
            let cut: String = out.chars().take(self.budget.saturating_sub(1)).collect();
            return cut + "…";
        }
        out
    }

    fn full(&self, out: &str) -> bool {
        out.len() > self.budget.saturating_mul(4)
    }

    /// The start of a `str`, `bytes` or `bytearray` literal longer than the
    /// budget, or `None` for any other value. Its first `budget + 1`
    /// characters alone take the expression past the budget, so [`Self::expr`]
    /// and [`Self::call`] cut it where they would cut the whole literal, and
    /// the output is the same; what changes is the cost: a 64 KiB value
    /// rendered once per call that uses it (a memo reference costs the file
    /// two bytes) made a 200 KB file take 15 s to scan.
    fn literal_head(&self, v: &Value) -> Option<String> {
        let max = self.budget + 1;
        match v {
            Value::Str(r) => {
                let s = self.analysis.str(*r).full()?;
                // More characters than `max` (bytes bound characters from above).
                (s.len() > max && s.chars().nth(max).is_some()).then(|| repr_str_head(s, max))
            }
            Value::Bytes(b) => b.full().filter(|d| d.len() > max).map(|d| repr_bytes_head(d, max, false)),
            Value::ByteArray(b) => b.full().filter(|d| d.len() > max).map(|d| repr_bytes_head(d, max, true)),
            _ => None,
        }
    }

    /// Writes `id` at nesting `depth`: as its name when the caller names it
    /// (unless it is the `top` value being defined), as a literal when it
    /// has no children, else through [`Self::write_composite`].
    fn write(&self, id: ValueId, depth: usize, out: &mut String, top: bool) {
        if self.full(out) {
            return;
        }
        if !top {
            if let Some(names) = self.names {
                if let Some(n) = names(id) {
                    out.push_str(&n);
                    return;
                }
            }
        }
        let v = self.analysis.value(id);
        if let Some(head) = self.literal_head(v) {
            out.push_str(&head);
            out.push('…');
            return;
        }
        if let Some(a) = atom(self.analysis, v) {
            out.push_str(&a);
            return;
        }
        if depth >= MAX_RENDER_DEPTH {
            out.push('…');
            return;
        }
        self.write_composite(v, depth, out);
    }

    /// A value with children: a container, a call, `find_class(...)` or
    /// `persistent_load(...)`.
    fn write_composite(&self, v: &Value, depth: usize, out: &mut String) {
        match v {
            Value::Tuple(r) => {
                let items = self.analysis.range(*r);
                out.push('(');
                self.seq(items, depth, out);
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            Value::List(items) => {
                out.push('[');
                self.seq(items, depth, out);
                out.push(']');
            }
            Value::Set(items) if items.is_empty() => out.push_str("set()"),
            Value::Set(items) => {
                out.push('{');
                self.seq(items, depth, out);
                out.push('}');
            }
            Value::FrozenSet(r) => {
                out.push_str("frozenset({");
                self.seq(self.analysis.range(*r), depth, out);
                out.push_str("})");
            }
            Value::Dict(r) => self.dict(self.analysis.dict(*r), depth, out),
            Value::ComputedGlobal { module, name } => {
                out.push_str("find_class(");
                self.write(*module, depth + 1, out, false);
                out.push_str(", ");
                self.write(*name, depth + 1, out, false);
                out.push(')');
            }
            Value::Call(c) => {
                self.write_call(c.kind, c.func, c.args, c.kwargs, depth, out);
            }
            Value::Persistent { pid } => {
                out.push_str("persistent_load(");
                self.write(*pid, depth + 1, out, false);
                out.push(')');
            }
            _ => out.push('?'),
        }
    }

    /// `{k: v, ...}`, stopping once the output is full.
    fn dict(&self, pairs: &[(ValueId, ValueId)], depth: usize, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in pairs.iter().enumerate() {
            if self.full(out) {
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            self.write(*k, depth + 1, out, false);
            out.push_str(": ");
            self.write(*v, depth + 1, out, false);
        }
        out.push('}');
    }

    fn seq(&self, items: &[ValueId], depth: usize, out: &mut String) {
        for (i, item) in items.iter().enumerate() {
            if self.full(out) {
                out.push('…');
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            self.write(*item, depth + 1, out, false);
        }
    }

    /// Arguments: the elements of a tuple or list, else `*value`.
    fn args(&self, args: ValueId, depth: usize, out: &mut String) {
        match self.analysis.tuple_or_list(args) {
            Some(items) => self.seq(items, depth, out),
            None => {
                out.push('*');
                self.write(args, depth + 1, out, false);
            }
        }
    }

    fn write_call(
        &self,
        kind: CallKind,
        func: ValueId,
        args: ValueId,
        kwargs: Option<ValueId>,
        depth: usize,
        out: &mut String,
    ) {
        let method = |name: &str, out: &mut String| {
            self.write(func, depth + 1, out, false);
            out.push('.');
            out.push_str(name);
            out.push('(');
        };
        match kind {
            CallKind::Reduce | CallKind::Inst | CallKind::Obj | CallKind::SetState => {
                self.write(func, depth + 1, out, false);
                out.push('(');
            }
            CallKind::NewObj | CallKind::NewObjEx => {
                self.write(func, depth + 1, out, false);
                out.push_str(".__new__(");
                self.write(func, depth + 1, out, false);
                if !self.analysis.tuple_or_list(args).is_some_and(|t| t.is_empty()) {
                    out.push_str(", ");
                }
            }
            CallKind::Append => method("append", out),
            CallKind::SetItem => method("__setitem__", out),
            CallKind::Add => method("add", out),
        }
        self.args(args, depth, out);
        if let Some(kw) = kwargs {
            match self.analysis.value(kw) {
                Value::Dict(pairs) if pairs.is_empty() => {}
                _ => {
                    out.push_str(", **");
                    self.write(kw, depth + 1, out, false);
                }
            }
        }
        out.push(')');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::{Analyzer, EventKind};

    fn first_call(p: &[u8]) -> String {
        let a = Analyzer::new().run(p);
        let r = Renderer::new(&a, 200);
        a.events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Call { kind, func, args, kwargs, .. } => Some(r.call(*kind, *func, *args, *kwargs)),
                _ => None,
            })
            .expect("a call")
    }

    #[test]
    fn calls_read_like_python() {
        assert_eq!(first_call(b"cos\nsystem\n(S'echo pwned'\ntR."), "os.system('echo pwned')");
        assert_eq!(first_call(b"\x80\x04\x8c\x03foo\x8c\x03Bar\x93K\x01\x85\x81."), "foo.Bar.__new__(foo.Bar, 1)");
        assert_eq!(first_call(b"\x80\x04\x8c\x03foo\x8c\x03Bar\x93)\x81."), "foo.Bar.__new__(foo.Bar)");
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(first_call(b"cfoo\x1b[31m\nbar\n)R."), "foo\\x1b[31m.bar()");
    }

    /// A long literal is rendered only as far as the budget reaches, with
    /// the same result as rendering it whole and cutting: every kind, both
    /// quote choices, escapes, multi-byte text, and lengths around the budget.
    #[test]
    fn long_literals_cut_as_if_whole() {
        let budget = 200;
        let r_of = |body: &[u8]| {
            let a = Analyzer::new().run(body);
            let id = a.pickles[0].root.expect("root");
            let whole = atom(&a, a.value(id)).expect("a literal");
            let cut: String = if whole.chars().count() > budget {
                whole.chars().take(budget - 1).collect::<String>() + "…"
            } else {
                whole.clone()
            };
            (Renderer::new(&a, budget).expr(id), cut)
        };
        let texts = ["ab'c", "a\"b", "a'b\"c", "\\\t\n\u{7f}é€😀x"];
        for n in [1, 150, 200, 201, 202, 2000] {
            for t in texts {
                let s: String = t.chars().cycle().take(n).collect();
                // BINUNICODE
                let mut p = b"X".to_vec();
                p.extend_from_slice(&(s.len() as u32).to_le_bytes());
                p.extend_from_slice(s.as_bytes());
                p.push(b'.');
                let (got, want) = r_of(&p);
                assert_eq!(got, want, "str of {n} chars of {t:?}");
                // BINBYTES and BYTEARRAY8
                let b: Vec<u8> = s.bytes().chain([0u8, 0xff]).cycle().take(n).collect();
                for (op, width) in [(b'B', 4), (0x96u8, 8)] {
                    let mut p = vec![0x80, 5, op];
                    p.extend_from_slice(&(b.len() as u64).to_le_bytes()[..width]);
                    p.extend_from_slice(&b);
                    p.push(b'.');
                    let (got, want) = r_of(&p);
                    assert_eq!(got, want, "bytes op {op:#x} of {n} bytes of {t:?}");
                }
            }
        }
        // The quote is chosen from the whole value: a `'` past the budget
        // still makes it `"`.
        let s = "x".repeat(300) + "'";
        let mut p = b"X".to_vec();
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s.as_bytes());
        p.push(b'.');
        let (got, want) = r_of(&p);
        assert!(got.starts_with("\"x"), "{got}");
        assert_eq!(got, want);
    }

    #[test]
    fn long_global_names_are_cut() {
        assert_eq!(global_name("os", "system"), "os.system");
        let g = global_name("m", &"é".repeat(1000));
        assert!(g.starts_with("m.éé") && g.ends_with('…'));
        assert!(g.len() <= MAX_SHOWN_GLOBAL + '…'.len_utf8(), "{}", g.len());
        let g = global_name(&"x".repeat(2000), "y");
        assert_eq!(g, format!("{}.…", "x".repeat(MAX_SHOWN_GLOBAL)));
    }

    #[test]
    fn doubling_dag_is_bounded() {
        let mut p = b"\x80\x02cos\nsystem\n]".to_vec();
        for _ in 0..60 {
            p.extend_from_slice(b"2\x86");
        }
        p.extend_from_slice(b"\x85R.");
        let s = first_call(&p);
        assert!(s.chars().count() <= 200, "{}", s.len());
        assert!(s.starts_with("os.system((("));
    }
}
