//! The attribute table `pkinspect extract` and `pkinspect show --summary`
//! print (name, type, dtype, shape, size), read from the document: the
//! top-level object's attributes, or the root itself.

use serde_json::{json, Value as J};

/// The summary rows: the top-level object's attributes (name, type, dtype,
/// shape, size).
pub fn summary_rows(doc: &J) -> Vec<[String; 5]> {
    let mut rows = Vec::new();
    let Some(pickles) = doc["pickles"].as_array() else { return rows };
    for p in pickles {
        let root = &p["root"];
        let attrs = match root.get("type").and_then(J::as_str) {
            Some("object") | Some("call") => root.get("state").or(root.get("dictitems")),
            Some("dict") => Some(root),
            _ => None,
        };
        match attrs.and_then(|a| a.get("items")).and_then(J::as_object) {
            Some(m) => {
                for (k, v) in m {
                    rows.push(describe(k, v));
                }
            }
            None => {
                // An .npz member's pickle is named by its key.
                let name = p["member"].as_str().and_then(|m| m.strip_suffix(".npy")).unwrap_or("(root)");
                rows.push(describe(name, root))
            }
        }
    }
    // Arrays copied as they are (.npy files and .npz members) have no pickle.
    for a in doc["arrays"].as_array().into_iter().flatten().filter(|a| a["pickle"].is_null()) {
        let name = a["path"].get(0).and_then(J::as_str).unwrap_or("(root)").to_string();
        let node = json!({"type": "ndarray", "class": "numpy.ndarray", "dtype": a["dtype"], "shape": a["shape"]});
        rows.push(describe(&name, &node));
    }
    rows
}

/// One row: a value's name, type, dtype, shape and size (items of a
/// container, elements of an array).
fn describe(name: &str, v: &J) -> [String; 5] {
    let ty = match v {
        J::Null => "None".into(),
        J::Bool(_) => "bool".into(),
        J::Number(n) if n.is_f64() => "float".into(),
        J::Number(_) => "int".into(),
        J::String(_) => "str".into(),
        J::Array(_) => "list".into(),
        J::Object(m) => match m.get("type").and_then(J::as_str) {
            Some("object") => m.get("class").and_then(J::as_str).unwrap_or("object").to_string(),
            Some("call") => "call (not run)".into(),
            Some("ndarray") => m.get("class").and_then(J::as_str).unwrap_or("ndarray").to_string(),
            Some("tensor") => format!("tensor ({})", m.get("torch_dtype").and_then(J::as_str).unwrap_or("?")),
            Some("global") => format!(
                "global {}.{}",
                m.get("module").and_then(J::as_str).unwrap_or(""),
                m.get("name").and_then(J::as_str).unwrap_or("")
            ),
            Some(t) => t.to_string(),
            None => "?".into(),
        },
    };
    let dtype = match v.get("dtype") {
        Some(J::String(s)) => s.clone(),
        Some(d @ J::Array(_)) => format!("struct ({} fields)", d.as_array().map_or(0, |a| a.len())),
        _ => String::new(),
    };
    let shape = v
        .get("shape")
        .and_then(J::as_array)
        .map(|s| match &s[..] {
            [one] => format!("({one},)"),
            _ => format!("({})", s.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
        })
        .unwrap_or_default();
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
    [crate::py::repr::escape_for_terminal(name), ty, dtype, shape, size]
}
