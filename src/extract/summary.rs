//! The attribute table `pkinspect extract` and `pkinspect show --summary`
//! print (name, type, dtype, shape, size, value), read from the document:
//! the top-level object's attributes, or the root itself; then the library
//! versions the file records (`saved with scikit-learn 1.9.1`).

use std::collections::HashMap;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde_json::{json, Value as J};

use super::Extracted;
use crate::py::repr::{escape_for_terminal, repr_bytes_head, repr_float, repr_str_head};

/// The table's columns.
pub const SUMMARY_COLUMNS: [&str; 6] = ["name", "type", "dtype", "shape", "size", "value"];

/// Characters of a value kept in a row, before the table cuts it to the width.
const VALUE_CHARS: usize = 400;

/// The narrowest the value column is cut to, however wide the other columns are.
const MIN_VALUE_CHARS: usize = 16;

/// Levels of a value shown inside another before `…`.
const VALUE_DEPTH: usize = 6;

/// The summary rows: the top-level object's attributes (name, type, dtype,
/// shape, size, value).
pub fn summary_rows(doc: &J) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    let shared = Shared::of(doc);
    let Some(pickles) = doc["pickles"].as_array() else { return rows };
    for p in pickles {
        let root = shared.resolve(&p["root"]);
        let attrs = match root.get("type").and_then(J::as_str) {
            Some("object") | Some("call") => root.get("state").or(root.get("dictitems")).map(|s| shared.resolve(s)),
            Some("dict") => Some(root),
            _ => None,
        };
        match attrs.and_then(|a| a.get("items")).and_then(J::as_object) {
            Some(m) => {
                for (k, v) in m {
                    rows.push(describe(k, shared.resolve(v), &shared));
                }
            }
            None => {
                // An .npz member's pickle is named by its key.
                let name = p["member"].as_str().and_then(|m| m.strip_suffix(".npy")).unwrap_or("(root)");
                rows.push(describe(name, root, &shared))
            }
        }
    }
    // Arrays copied as they are (.npy files and .npz members) have no pickle.
    for a in doc["arrays"].as_array().into_iter().flatten().filter(|a| a["pickle"].is_null()) {
        let name = a["path"].get(0).and_then(J::as_str).unwrap_or("(root)").to_string();
        let node = json!({"type": "ndarray", "class": "numpy.ndarray", "dtype": a["dtype"], "shape": a["shape"]});
        rows.push(describe(&name, &node, &shared));
    }
    rows
}

/// The table of [`summary_rows`], the value column cut so that a row fits
/// in `width` columns (the other columns permitting), then the line
/// `saved with LIBRARY VERSION, ...` when the file records versions.
pub fn summary_table(ex: &Extracted, width: usize) -> String {
    let mut rows = ex.summary_rows();
    // Borders and padding: "│ " before each column, " │" after the last.
    let frame = 3 * SUMMARY_COLUMNS.len() + 1;
    let others: usize = (0..5)
        .map(|c| {
            let cells = rows.iter().map(|r| r[c].chars().count());
            cells.chain([SUMMARY_COLUMNS[c].len()]).max().unwrap_or(0)
        })
        .sum();
    let room = width.saturating_sub(frame + others).max(MIN_VALUE_CHARS);
    for r in &mut rows {
        r[5] = cut(&r[5], room);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    t.set_width(u16::try_from(width).unwrap_or(u16::MAX));
    t.set_header(SUMMARY_COLUMNS);
    for row in rows {
        t.add_row(row);
    }
    let mut out = format!("{t}\n");
    if !ex.versions.is_empty() {
        let list: Vec<String> = ex.versions.iter().map(|v| format!("{} {}", v.library, v.version)).collect();
        out.push_str(&format!("saved with {}\n", list.join(", ")));
    }
    out
}

/// `s` cut to `max` characters, the last one `…`.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The document's shared values (`"id"`), to follow `{"type": "ref"}` nodes.
struct Shared<'d>(HashMap<u64, &'d J>);

impl<'d> Shared<'d> {
    /// Every node of `doc`'s pickles that carries an `"id"`.
    fn of(doc: &'d J) -> Shared<'d> {
        let mut map = HashMap::new();
        // An explicit stack: documents nest up to MAX_EXTRACT_DEPTH.
        let mut todo: Vec<&J> = doc["pickles"].as_array().into_iter().flatten().map(|p| &p["root"]).collect();
        while let Some(v) = todo.pop() {
            match v {
                J::Array(items) => todo.extend(items),
                J::Object(m) => {
                    if let (Some(id), false) = (m.get("id").and_then(J::as_u64), m.get("type") == Some(&json!("ref"))) {
                        map.insert(id, v);
                    }
                    todo.extend(m.values());
                }
                _ => {}
            }
        }
        Shared(map)
    }

    /// The node a `ref` stands for, or `v` itself.
    fn resolve<'a>(&'a self, v: &'a J) -> &'a J {
        if v.get("type").and_then(J::as_str) == Some("ref") {
            if let Some(target) = v.get("id").and_then(J::as_u64).and_then(|id| self.0.get(&id)) {
                return target;
            }
        }
        v
    }
}

/// One row: a value's name, type, dtype, shape, size (items of a
/// container, elements of an array) and value (repr-like; empty for arrays,
/// whose dtype and shape say what there is).
fn describe(name: &str, v: &J, shared: &Shared<'_>) -> [String; 6] {
    let ty = match v {
        J::Object(m) => match m.get("type").and_then(J::as_str) {
            Some("call") => "call (not run)".into(),
            Some("ndarray") => m.get("class").and_then(J::as_str).unwrap_or("ndarray").to_string(),
            Some("tensor") => format!("tensor ({})", m.get("torch_dtype").and_then(J::as_str).unwrap_or("?")),
            Some("global") => format!(
                "global {}.{}",
                m.get("module").and_then(J::as_str).unwrap_or(""),
                m.get("name").and_then(J::as_str).unwrap_or("")
            ),
            None => "?".into(),
            Some(_) => kind_of(v),
        },
        _ => kind_of(v),
    };
    let dtype = match v.get("dtype") {
        Some(J::String(s)) => s.clone(),
        Some(d @ J::Array(_)) => format!("struct ({} fields)", d.as_array().map_or(0, |a| a.len())),
        _ => String::new(),
    };
    let shape = v.get("shape").and_then(J::as_array).map(|s| shape_text(s)).unwrap_or_default();
    let size = match v {
        J::Array(a) => a.len().to_string(),
        J::String(s) => s.chars().count().to_string(),
        J::Object(m) => {
            if let Some(s) = m.get("shape").and_then(J::as_array) {
                s.iter().filter_map(J::as_u64).product::<u64>().to_string()
            } else if let Some(i) = m.get("items") {
                i.as_array()
                    .map(|a| a.len())
                    .or(i.as_object().map(|o| o.len()))
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        }
        _ => String::new(),
    };
    let is_array = matches!(v.get("type").and_then(J::as_str), Some("ndarray" | "tensor")) && v.get("items").is_none();
    let value = if is_array { String::new() } else { preview(v, shared) };
    [escape_for_terminal(name), escape_for_terminal(&ty), escape_for_terminal(&dtype), shape, size, value]
}

/// `(3, 4)`, `(3,)`, `()`.
fn shape_text(s: &[J]) -> String {
    match s {
        [one] => format!("({one},)"),
        _ => format!("({})", s.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// A value as Python would write it, as far as the document says (an
/// object as `Class(args…)`, an array by dtype and shape), cut after
/// [`VALUE_CHARS`] and escaped for the terminal.
fn preview(v: &J, shared: &Shared<'_>) -> String {
    let mut p = Preview { out: String::new(), shared };
    p.value(v, 0);
    escape_for_terminal(&cut(&p.out, VALUE_CHARS))
}

/// Writes values into `out` until it holds more than [`VALUE_CHARS`].
struct Preview<'s, 'd> {
    out: String,
    shared: &'s Shared<'d>,
}

impl Preview<'_, '_> {
    fn full(&self) -> bool {
        self.out.len() > VALUE_CHARS
    }

    /// Room left, in characters (at least one, so that a cut shows).
    fn room(&self) -> usize {
        (VALUE_CHARS + 1).saturating_sub(self.out.len()).max(1)
    }

    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn value(&mut self, v: &J, depth: usize) {
        if self.full() {
            return;
        }
        if depth > VALUE_DEPTH {
            return self.push("…");
        }
        match v {
            J::Null => self.push("None"),
            J::Bool(b) => self.push(if *b { "True" } else { "False" }),
            J::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
                Some(f) => self.push(&repr_float(f)),
                None => self.push(&n.to_string()),
            },
            J::String(s) => self.str(s),
            J::Array(items) => self.seq("[", items, "]", depth),
            J::Object(m) => self.node(v, m, depth),
        }
    }

    fn str(&mut self, s: &str) {
        let room = self.room();
        let mut r = repr_str_head(s, room);
        if s.chars().count() <= room {
            r.push(r.chars().next().unwrap_or('\''));
        }
        self.push(&r);
    }

    fn seq(&mut self, open: &str, items: &[J], close: &str, depth: usize) {
        self.push(open);
        for (i, item) in items.iter().enumerate() {
            if self.full() {
                return;
            }
            if i > 0 {
                self.push(", ");
            }
            self.value(item, depth + 1);
        }
        if open == "(" && items.len() == 1 {
            self.push(",");
        }
        self.push(close);
    }

    fn pairs<'a>(&mut self, pairs: impl Iterator<Item = (Option<&'a str>, &'a J, &'a J)>, depth: usize) {
        self.push("{");
        for (i, (key, k, v)) in pairs.enumerate() {
            if self.full() {
                return;
            }
            if i > 0 {
                self.push(", ");
            }
            match key {
                Some(key) => self.str(key),
                None => self.value(k, depth + 1),
            }
            self.push(": ");
            self.value(v, depth + 1);
        }
        self.push("}");
    }

    /// `(args, kw=value)`, and `…` last when `more`.
    fn args(&mut self, m: &serde_json::Map<String, J>, depth: usize, more: bool) {
        self.push("(");
        let mut first = true;
        for a in m.get("args").and_then(J::as_array).into_iter().flatten() {
            if !std::mem::take(&mut first) {
                self.push(", ");
            }
            self.value(a, depth + 1);
        }
        for (k, a) in m.get("kwargs").and_then(J::as_object).into_iter().flatten() {
            if !std::mem::take(&mut first) {
                self.push(", ");
            }
            self.push(&format!("{k}="));
            self.value(a, depth + 1);
        }
        if more {
            self.push(if first { "…" } else { ", …" });
        }
        self.push(")");
    }

    fn node(&mut self, v: &J, m: &serde_json::Map<String, J>, depth: usize) {
        let text = |key: &str| m.get(key).and_then(J::as_str).unwrap_or("");
        let items = || m.get("items").and_then(J::as_array).map(Vec::as_slice).unwrap_or(&[]);
        match text("type") {
            "int" | "float" => self.push(text("value")),
            "str" => match m.get("value").and_then(J::as_str) {
                Some(s) => self.str(s),
                None => self.push(&format!("<str of {} bytes>", m.get("nbytes").and_then(J::as_u64).unwrap_or(0))),
            },
            t @ ("bytes" | "bytearray") => match m.get("hex").and_then(J::as_str) {
                Some(hex) => {
                    let room = self.room();
                    let bytes = unhex(hex, room + 1);
                    let bytearray = t == "bytearray";
                    let mut r = repr_bytes_head(&bytes, room, bytearray);
                    if hex.len() / 2 <= room {
                        let prefix = if bytearray { "bytearray(b".len() } else { 1 };
                        let quote = r[prefix..].chars().next().unwrap_or('\'');
                        r.push(quote);
                        if bytearray {
                            r.push(')');
                        }
                    }
                    self.push(&r);
                }
                None => self.push(&format!("<{t} of {} bytes>", m.get("nbytes").and_then(J::as_u64).unwrap_or(0))),
            },
            "list" => self.seq("[", items(), "]", depth),
            "tuple" => self.seq("(", items(), ")", depth),
            "set" if items().is_empty() => self.push("set()"),
            "set" => self.seq("{", items(), "}", depth),
            "frozenset" => {
                self.push("frozenset(");
                self.seq("{", items(), "}", depth);
                self.push(")");
            }
            "dict" => match (m.get("items").and_then(J::as_object), m.get("pairs").and_then(J::as_array)) {
                (Some(o), _) => self.pairs(o.iter().map(|(k, v)| (Some(k.as_str()), v, v)), depth),
                (None, Some(p)) => self.pairs(p.iter().filter_map(|kv| Some((None, kv.get(0)?, kv.get(1)?))), depth),
                _ => self.push("{}"),
            },
            "global" => self.push(&format!("{}.{}", text("module"), text("name"))),
            "object" => {
                let class = text("class");
                self.push(class.rsplit('.').next().unwrap_or(class));
                // Its state (attributes) as `…`: the rows of a top-level object list them.
                let state = m.contains_key("state") || m.contains_key("states");
                self.args(m, depth, state);
            }
            "call" => {
                match m.get("func") {
                    Some(f) => self.value(f, depth + 1),
                    None => self.push("?"),
                }
                self.args(m, depth, false);
            }
            "ndarray" if m.contains_key("items") => {
                self.push("array(");
                self.seq("[", items(), "]", depth);
                self.push(", dtype=object)");
            }
            "ndarray" => self.push(&format!("array({}, shape={})", dtype_text(m.get("dtype")), shape_of(m))),
            "tensor" => self.push(&format!("tensor({}, shape={})", text("torch_dtype"), shape_of(m))),
            "scalar" => {
                self.push(&format!("{}(", dtype_text(m.get("dtype"))));
                match m.get("value") {
                    Some(J::Array(c)) if c.len() == 2 => {
                        self.push("(");
                        self.value(&c[0], depth + 1);
                        self.push("+");
                        self.value(&c[1], depth + 1);
                        self.push("j)");
                    }
                    Some(x) => self.value(x, depth + 1),
                    None => self.push(&format!("0x{}", text("hex"))),
                }
                self.push(")");
            }
            "dtype" => self.push(&format!("dtype({})", dtype_text(m.get("descr")))),
            "persistent" => {
                self.push("persistent_load(");
                if let Some(pid) = m.get("pid") {
                    self.value(pid, depth + 1);
                }
                self.push(")");
            }
            "external_buffer" => self.push("<out-of-band buffer>"),
            "unknown" => self.push(&format!("<unknown: {}>", text("why"))),
            "ref" => {
                let target = self.shared.resolve(v);
                if std::ptr::eq(target, v) {
                    self.push("<shared value>");
                } else {
                    self.value(target, depth + 1);
                }
            }
            "error" => self.push(&format!("<error: {}>", text("message"))),
            other => self.push(&format!("<{other}>")),
        }
    }
}

/// A dtype descriptor as numpy writes it: `'<f8'`, or a structured type's fields.
fn dtype_text(d: Option<&J>) -> String {
    match d {
        Some(J::String(s)) => format!("'{s}'"),
        Some(J::Array(f)) => format!("[{} fields]", f.len()),
        _ => "?".into(),
    }
}

fn shape_of(m: &serde_json::Map<String, J>) -> String {
    m.get("shape").and_then(J::as_array).map(|s| shape_text(s)).unwrap_or_else(|| "?".into())
}

/// The first `max` bytes of a hex string.
fn unhex(hex: &str, max: usize) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .take(max)
        .filter_map(|p| std::str::from_utf8(p).ok().and_then(|s| u8::from_str_radix(s, 16).ok()))
        .collect()
}

/// A short name for a document value's kind, for messages.
pub fn kind_of(v: &J) -> String {
    match v {
        J::Null => "None".into(),
        J::Bool(_) => "bool".into(),
        J::Number(n) if n.is_f64() => "float".into(),
        J::Number(_) => "int".into(),
        J::String(_) => "str".into(),
        J::Array(_) => "list".into(),
        J::Object(o) => match o.get("type").and_then(J::as_str) {
            Some("object") => o.get("class").and_then(J::as_str).unwrap_or("object").to_string(),
            Some(t) => t.to_string(),
            None => "object".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(root: J) -> Vec<[String; 6]> {
        summary_rows(&json!({"pickles": [{"member": null, "index": 0, "root": root}], "arrays": []}))
    }

    #[test]
    fn values_read_like_python() {
        let state = json!({"type": "dict", "items": {
            "n": 100, "C": 1.0, "tol": 0.0001, "name": "it's", "flag": true, "none": null,
            "big": {"type": "int", "value": "123456789012345678901234567890"},
            "nan": {"type": "float", "value": "nan"},
            "t": {"type": "tuple", "items": [1]},
            "s": {"type": "set", "items": []},
            "b": {"type": "bytes", "hex": "00ff41"},
            "d": {"type": "dict", "pairs": [[1, "a"]]},
            "g": {"type": "global", "module": "numpy", "name": "float64"},
            "esc": "\u{1b}[31mred",
            "hook": {"type": "call", "func": {"type": "global", "module": "posix", "name": "system"},
                     "args": ["echo hi"], "via": "reduce", "offset": 3, "verdict": "dangerous"},
            "a": {"type": "ndarray", "class": "numpy.ndarray", "dtype": "<f8", "shape": [3, 4], "order": "C",
                  "file": "arrays/a.npy"},
            "shared": {"type": "list", "id": 7, "items": [1, 2]},
            "again": {"type": "ref", "id": 7}
        }});
        let r = rows(json!({"type": "object", "class": "m.Est", "state": state}));
        let value = |name: &str| r.iter().find(|row| row[0] == name).map(|row| row[5].clone()).expect(name);
        assert_eq!(value("n"), "100");
        assert_eq!(value("C"), "1.0");
        assert_eq!(value("tol"), "0.0001");
        assert_eq!(value("name"), "\"it's\"");
        assert_eq!(value("flag"), "True");
        assert_eq!(value("none"), "None");
        assert_eq!(value("big"), "123456789012345678901234567890");
        assert_eq!(value("nan"), "nan");
        assert_eq!(value("t"), "(1,)");
        assert_eq!(value("s"), "set()");
        assert_eq!(value("b"), "b'\\x00\\xffA'");
        assert_eq!(value("d"), "{1: 'a'}");
        assert_eq!(value("g"), "numpy.float64");
        assert_eq!(value("esc"), "'\\x1b[31mred'");
        assert_eq!(value("hook"), "posix.system('echo hi')");
        assert_eq!(value("a"), "", "dtype and shape say what an array is");
        assert_eq!(value("again"), "[1, 2]");
        let a = r.iter().find(|row| row[0] == "a").expect("a");
        assert_eq!((a[2].as_str(), a[3].as_str(), a[4].as_str()), ("<f8", "(3, 4)", "12"));
    }

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(10_000);
        let r = rows(json!({"type": "dict", "items": {"s": long, "l": (0..5000).collect::<Vec<u32>>()}}));
        for row in &r {
            assert!(row[5].chars().count() <= VALUE_CHARS, "{}", row[5].len());
            assert!(row[5].ends_with('…'), "{}", row[5]);
        }
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
