//! `pkinspect trace`: the machine's events as normalised records, one JSON
//! object per line, in the same format `scripts/oracle.py` records from
//! CPython's own unpickler (with stub globals), so the two can be compared
//! (`scripts/differential.py`).
//!
//! # Records
//!
//! Every record has `op` and `pickle` (the index of the pickle in the file).
//! The fields the oracle also produces, and which the comparison uses, are:
//!
//! | `op` | fields |
//! |---|---|
//! | `import` | `module`, `name`: as *written* in the stream (before the Python 2 mapping) |
//! | `call` | `kind`, `callable`, `args` |
//! | `build` | `target` |
//! | `persid` | `pid` (a shape) |
//! | `buffer` | (none) |
//!
//! `kind` is how CPython invokes the callable, which is what a stub can observe:
//! `call` (`f(*args)`: `REDUCE`, and `INST`/`OBJ` with arguments or on a
//! non-class), `new` (`cls.__new__(cls, *args)`: `NEWOBJ`, `NEWOBJ_EX`),
//! `new_inst` (`INST`/`OBJ` with no arguments on a class: `cls.__new__(cls)`),
//! `setstate` (a `__setstate__` planted by an earlier `BUILD`), `append`,
//! `setitem`, `add` (methods called on an object by `APPEND(S)`,
//! `SETITEM(S)`, `ADDITEMS`). pkinspect's own call kind is in `opcode_kind`.
//! `callable` and `target` are the written `module.name` of a global, or
//! `<indirect>` for anything else.
//!
//! `args` is the list of argument *shapes* (or `null` when the arguments are
//! not a tuple, which CPython refuses before calling): `None`, `True`,
//! `False`, `int:<decimal>` (or `int` outside i64), `float:<16 hex digits of
//! the IEEE bits>`, `str:<text>` (or `str` past 1,024 UTF-8 bytes; lone
//! surrogates become U+FFFD on both sides), `bytes:<hex>` (or `bytes` past 32
//! bytes), `buffer` (bytearray, out-of-band buffer, memoryview), `tuple/<len>`,
//! `list`, `dict`, `set`, `frozenset` (mutable containers have no length: they
//! may grow after the call), `global:<module.name>`, `object` (the result of a
//! call or of `persistent_load`), `unknown`.
//!
//! pkinspect-only records: `ext` (an `EXT` code), `computed_import`,
//! `array_payload` (joblib raw array bytes skipped),
//! `anomaly`, `error`; around each file, `file` (first) and `summary` (last,
//! with the rule codes of the findings the default policy gives).

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::{json, Value as Json};

use crate::policy::Policy;
use crate::rules::check;
use crate::vm::{Analysis, CallKind, EventKind, Value, ValueId};

/// Longest string (in UTF-8 bytes) whose text is part of its shape.
pub const SHORT_STR: usize = 1024;
/// Longest bytes value whose contents are part of its shape.
pub const SHORT_BYTES: usize = 32;

/// Turns an analysis into normalised records, in stream order.
pub struct Tracer<'a> {
    a: &'a Analysis,
    /// Written `module.name` of each imported global value.
    written: HashMap<ValueId, String>,
}

impl<'a> Tracer<'a> {
    /// A tracer over `a`.
    pub fn new(a: &'a Analysis) -> Tracer<'a> {
        let mut written = HashMap::new();
        for e in &a.events {
            if let EventKind::Import { module, name, written: w, value, .. } = &e.kind {
                let (m, n) = w.as_ref().map(|(m, n)| (m.as_str(), n.as_str())).unwrap_or((module, name));
                written.insert(*value, format!("{m}.{n}"));
            }
        }
        Tracer { a, written }
    }

    /// The written `module.name` of a global value.
    fn global_name(&self, id: ValueId) -> Option<String> {
        match self.a.value(id) {
            Value::Global(g) => {
                Some(self.written.get(&id).cloned().unwrap_or_else(|| format!("{}.{}", g.module, g.name)))
            }
            _ => None,
        }
    }

    fn callable(&self, id: ValueId) -> String {
        self.global_name(id).unwrap_or_else(|| "<indirect>".to_string())
    }

    /// The normalised shape of one value.
    pub fn shape(&self, id: ValueId) -> String {
        let v = self.a.value(id);
        match v {
            Value::None => "None".into(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Int(i) => format!("int:{i}"),
            Value::BigInt(b) => match b.as_i64() {
                Some(i) => format!("int:{i}"),
                None => "int".into(),
            },
            Value::Float(x) => format!("float:{:016x}", x.to_bits()),
            Value::Str(_) => match self.a.full_str(id) {
                Some(s) if s.len() <= SHORT_STR => format!("str:{s}"),
                _ => "str".into(),
            },
            Value::Bytes(_) if v.full_bytes().is_some_and(|b| b.len() <= SHORT_BYTES) => {
                let b = v.full_bytes().unwrap_or_default();
                let mut s = String::from("bytes:");
                for byte in b.iter() {
                    s.push_str(&format!("{byte:02x}"));
                }
                s
            }
            Value::Bytes(_) => "bytes".into(),
            Value::ByteArray(_) | Value::Buffer { .. } => "buffer".into(),
            Value::Tuple(items) => format!("tuple/{}", items.len()),
            Value::List(_) => "list".into(),
            Value::Dict(_) => "dict".into(),
            Value::Set(_) => "set".into(),
            Value::FrozenSet(_) => "frozenset".into(),
            Value::Global(_) => format!("global:{}", self.callable(id)),
            Value::Call { .. } | Value::Persistent { .. } => "object".into(),
            Value::ComputedGlobal { .. } | Value::Unknown(_) => "unknown".into(),
        }
    }

    /// The shapes of a call's arguments, or `None` when they are not a tuple.
    fn args(&self, args: ValueId) -> Option<Vec<String>> {
        match self.a.value(args) {
            Value::Tuple(r) => Some(self.a.range(*r).iter().map(|&i| self.shape(i)).collect()),
            _ => None,
        }
    }

    /// How CPython invokes the callable (see the module documentation).
    fn kind(&self, kind: CallKind, func: ValueId, args: ValueId) -> &'static str {
        match kind {
            CallKind::Reduce => "call",
            CallKind::Inst | CallKind::Obj => {
                let no_args = matches!(self.a.value(args), Value::Tuple(v) if v.is_empty());
                if no_args && matches!(self.a.value(func), Value::Global(_)) {
                    "new_inst"
                } else {
                    "call"
                }
            }
            CallKind::NewObj | CallKind::NewObjEx => "new",
            CallKind::SetState => "setstate",
            CallKind::Append => "append",
            CallKind::SetItem => "setitem",
            CallKind::Add => "add",
        }
    }

    /// Every record, in stream order (without the `file`/`summary` lines).
    pub fn records(&self) -> Vec<Json> {
        let mut out = Vec::with_capacity(self.a.events.len() + 1);
        for e in &self.a.events {
            let (p, o) = (e.pickle, e.offset);
            let r = match &e.kind {
                EventKind::Import { via, module, name, written, .. } => {
                    let (wm, wn) = written.as_ref().map(|(m, n)| (m.as_str(), n.as_str())).unwrap_or((module, name));
                    let mut r = json!({"op": "import", "pickle": p, "offset": o, "module": wm, "name": wn,
                                       "via": via.name()});
                    if written.is_some() {
                        r["mapped"] = json!(format!("{module}.{name}"));
                    }
                    r
                }
                EventKind::ComputedImport { .. } => json!({"op": "computed_import", "pickle": p, "offset": o}),
                EventKind::Call { kind, func, args, .. } => json!({
                    "op": "call", "pickle": p, "offset": o,
                    "kind": self.kind(*kind, *func, *args),
                    "opcode_kind": kind,
                    "callable": self.callable(*func),
                    "args": self.args(*args),
                }),
                EventKind::Build { target, .. } => {
                    json!({"op": "build", "pickle": p, "offset": o, "target": self.callable(*target)})
                }
                EventKind::PersistentId { pid } => {
                    json!({"op": "persid", "pickle": p, "offset": o, "pid": self.shape(*pid)})
                }
                EventKind::Extension { code, resolved } => {
                    let resolved = resolved.as_ref().map(|(m, n)| format!("{m}.{n}"));
                    json!({"op": "ext", "pickle": p, "offset": o, "code": code, "resolved": resolved})
                }
                EventKind::ExternalBuffer => json!({"op": "buffer", "pickle": p, "offset": o}),
                EventKind::ArrayPayload { offset, len, .. } => {
                    json!({"op": "array_payload", "pickle": p, "offset": o, "at": offset, "len": len})
                }
                EventKind::Anomaly(an) => json!({"op": "anomaly", "pickle": p, "offset": o, "anomaly": an}),
            };
            out.push(r);
        }
        if let Some(err) = &self.a.error {
            let pickle = self.a.pickles.len().saturating_sub(1);
            out.push(
                json!({"op": "error", "pickle": pickle, "offset": err.offset(), "message": err.kind().to_string()}),
            );
        }
        out
    }
}

/// The sorted, distinct rule codes the default policy finds in `a`.
pub fn rule_codes(a: &Analysis, policy: &Policy) -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = check(a, policy).findings.iter().map(|f| f.rule.code()).collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Writes one file's trace: a `file` line, every record, a `summary` line.
pub fn write_trace<W: Write>(path: &str, a: &Analysis, policy: &Policy, out: &mut W) -> io::Result<()> {
    writeln!(out, "{}", json!({"op": "file", "path": path}))?;
    for r in Tracer::new(a).records() {
        writeln!(out, "{r}")?;
    }
    let summary = json!({
        "op": "summary", "pickles": a.pickles.len(), "ops": a.ops,
        "error": a.error.is_some(), "rules": rule_codes(a, policy),
    });
    writeln!(out, "{summary}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Analyzer;

    fn ops(data: &[u8]) -> Vec<Json> {
        let a = Analyzer::new().run(data);
        Tracer::new(&a).records()
    }

    #[test]
    fn reduce_is_a_call_with_shapes() {
        let r = ops(b"cos\nsystem\n(S'echo hi'\nI7\nI01\nNtR.");
        assert_eq!(r[0]["op"], "import");
        assert_eq!(r[0]["module"], "os");
        assert_eq!(r[1]["op"], "call");
        assert_eq!(r[1]["kind"], "call");
        assert_eq!(r[1]["callable"], "os.system");
        assert_eq!(r[1]["args"], json!(["str:echo hi", "int:7", "True", "None"]));
    }

    #[test]
    fn python2_names_are_written_names() {
        let r = ops(b"c__builtin__\neval\n(S'1'\ntR.");
        assert_eq!(r[0]["module"], "__builtin__");
        assert_eq!(r[0]["mapped"], "builtins.eval");
        assert_eq!(r[1]["callable"], "__builtin__.eval");
    }

    #[test]
    fn inst_without_args_is_new_inst() {
        let r = ops(b"(ifoo\nBar\n.");
        assert_eq!(r[1]["kind"], "new_inst");
        assert_eq!(r[1]["opcode_kind"], "inst");
        let r = ops(b"(S'a'\nifoo\nBar\n.");
        assert_eq!(r[1]["kind"], "call");
    }

    #[test]
    fn floats_and_bytes_shapes() {
        // BINFLOAT 1.5, SHORT_BINBYTES b'\x00\xff', TUPLE2, with GLOBAL and REDUCE.
        let mut p = b"\x80\x03cm\nf\nG".to_vec();
        p.extend_from_slice(&1.5f64.to_be_bytes());
        p.extend_from_slice(b"C\x02\x00\xff\x86R.");
        let r = ops(&p);
        assert_eq!(r[1]["args"], json!(["float:3ff8000000000000", "bytes:00ff"]));
    }
}
