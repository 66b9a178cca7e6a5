//! `__metadata__` (a map of strings to strings): the object graph around
//! the tensors, as the `extract` document's JSON (docs/extract.md) with
//! each array node naming its tensor instead of a `.npy` file, and the list
//! of what was left out.

use std::collections::HashMap;

use serde_json::{json, Value as J};

use super::Became;
use crate::convert::LeftOut;
use crate::extract::Document;
use crate::limits::MAX_CONVERT_GRAPH_BYTES;

/// The metadata entries, in order; adds the long values (blobs) the graph
/// drops to `left_out`. Takes the document's graph rather than copying it.
pub(super) fn metadata(
    mut doc: Document,
    by_file: &HashMap<String, Became>,
    left_out: &mut Vec<LeftOut>,
) -> Vec<(String, String)> {
    let pickles = doc.0.get_mut("pickles").map(J::take).unwrap_or(J::Array(Vec::new()));
    let mut pickles = Document(pickles);
    let torch = rewrite(&mut pickles.0, by_file, left_out);
    let source = doc.get("source").map(|s| json!({"format": s.get("format"), "outer": s.get("outer")}));
    let mut out = vec![
        ("format".to_string(), if torch { "pt" } else { "np" }.to_string()),
        ("pkinspect.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("pkinspect.source".to_string(), source.unwrap_or(J::Null).to_string()),
    ];
    let graph = pickles.to_string();
    if graph.len() <= MAX_CONVERT_GRAPH_BYTES {
        out.push(("pkinspect.graph".to_string(), graph));
    } else {
        out.push((
            "pkinspect.graph_omitted".to_string(),
            format!(
                "the object graph takes {} bytes of JSON, over the limit of {MAX_CONVERT_GRAPH_BYTES}",
                graph.len()
            ),
        ));
    }
    let listed: Vec<J> = left_out.iter().map(|l| json!({"name": l.name, "dtype": l.what, "why": l.why})).collect();
    out.push(("pkinspect.left_out".to_string(), J::Array(listed).to_string()));
    out
}

/// One step of a graph path, kept as a link to its parent's step: the
/// path's text is only made for what is left out.
enum Step<'a> {
    Root,
    Name(&'a str),
    Index(usize),
}

/// The dotted text of the path ending at step `at`.
fn path_text(steps: &[(usize, Step<'_>)], mut at: usize) -> String {
    let mut parts = Vec::new();
    loop {
        let (parent, step) = &steps[at];
        match step {
            Step::Root => break,
            Step::Name(n) => parts.push((*n).to_string()),
            Step::Index(i) => parts.push(i.to_string()),
        }
        at = *parent;
    }
    parts.reverse();
    parts.join(".")
}

/// Rewrites every node that names a staged file: an array names its
/// tensor (`"tensor"`), its fields' tensors (`"tensors"`) or why it was left
/// out (`"left_out"`); a blob is dropped and listed, and so is a tensor
/// `extract` could not rebuild (an object made by `torch._utils._rebuild_*`).
/// Returns whether the graph holds a PyTorch tensor.
fn rewrite(root: &mut J, by_file: &HashMap<String, Became>, left_out: &mut Vec<LeftOut>) -> bool {
    let mut torch = false;
    let mut steps: Vec<(usize, Step<'_>)> = vec![(0, Step::Root)];
    let mut stack: Vec<(&mut J, usize)> = vec![(root, 0)];
    while let Some((v, at)) = stack.pop() {
        match v {
            J::Object(m) => {
                let kind = m.get("type").and_then(J::as_str).unwrap_or("");
                torch |= kind == "tensor";
                let class = m.get("class").and_then(J::as_str).unwrap_or("");
                // A Parameter wraps a tensor node of its own; the others hold the data.
                if kind == "object" && class.starts_with("torch._utils._rebuild_") && !class.contains("parameter") {
                    torch = true;
                    let why = format!("a tensor pkinspect cannot rebuild yet ({class})");
                    left_out.push(LeftOut {
                        name: shown(&path_text(&steps, at)),
                        what: "tensor".into(),
                        why: why.clone(),
                    });
                    m.insert("left_out".into(), J::String(why));
                }
                if let Some(J::String(file)) = m.shift_remove("file") {
                    let note = match by_file.get(&file) {
                        Some(Became::Tensor(name)) => ("tensor", J::String(name.clone())),
                        Some(Became::Fields(fields)) => (
                            "tensors",
                            J::Object(fields.iter().map(|(f, n)| (f.clone(), J::String(n.clone()))).collect()),
                        ),
                        Some(Became::LeftOut(why)) => ("left_out", J::String(why.clone())),
                        None => {
                            let why = "a value over 1 MiB: not kept".to_string();
                            let what = m.get("type").and_then(J::as_str).unwrap_or("blob").to_string();
                            left_out.push(LeftOut { name: shown(&path_text(&steps, at)), what, why: why.clone() });
                            ("left_out", J::String(why))
                        }
                    };
                    m.insert(note.0.into(), note.1);
                }
                for (k, c) in m {
                    let step = match k.as_str() {
                        "items" | "dictitems" | "state" | "root" | "pairs" | "value" => None,
                        "args" => Some("__args__"),
                        "kwargs" => Some("__kwargs__"),
                        "listitems" | "setitems" => Some("__items__"),
                        "func" => Some("__func__"),
                        other => Some(other),
                    };
                    let child = match step {
                        None => at,
                        Some(name) => {
                            steps.push((at, Step::Name(name)));
                            steps.len() - 1
                        }
                    };
                    stack.push((c, child));
                }
            }
            J::Array(a) => {
                for (i, c) in a.iter_mut().enumerate() {
                    steps.push((at, Step::Index(i)));
                    stack.push((c, steps.len() - 1));
                }
            }
            _ => {}
        }
    }
    torch
}

/// A graph path for messages: the document's pickles are a list, so a
/// path starts with the pickle's index, dropped when it is the first.
fn shown(path: &str) -> String {
    let p = path.strip_prefix("0.").or_else(|| path.strip_prefix('0')).unwrap_or(path);
    if p.is_empty() {
        "root".into()
    } else {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_nodes_name_their_tensors_and_blobs_are_listed() {
        let doc = json!({"source": {"path": "/x/m.pkl", "format": "pickle", "outer": "pickle"},
            "pickles": [{"member": null, "index": 0, "root": {"type": "dict", "items": {
                "w": {"type": "ndarray", "dtype": "<f8", "shape": [2], "file": "arrays/w.npy"},
                "s": {"type": "str", "file": "blobs/s.bin", "nbytes": 2000000}}}}]});
        let by_file = HashMap::from([("arrays/w.npy".to_string(), Became::Tensor("w".into()))]);
        let mut left = Vec::new();
        let m = metadata(Document(doc), &by_file, &mut left);
        let get = |k: &str| m.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("format"), "np");
        let graph: J = serde_json::from_str(&get("pkinspect.graph")).unwrap();
        let items = &graph[0]["root"]["items"];
        assert_eq!(items["w"]["tensor"], "w");
        assert!(items["w"].get("file").is_none());
        assert_eq!(items["s"]["left_out"], "a value over 1 MiB: not kept");
        assert_eq!(
            left,
            [LeftOut { name: "s".into(), what: "str".into(), why: "a value over 1 MiB: not kept".into() }]
        );
        assert!(get("pkinspect.left_out").contains("\"name\":\"s\""));

        assert!(!get("pkinspect.source").contains("/x/"), "no local path in the output");

        // A path is made only for what is left out, through arguments and lists.
        let doc = json!({"pickles": [{"root": {"type": "dict", "items": {"m": {"type": "object", "class": "x.Y",
            "args": [[1, {"type": "bytes", "file": "blobs/b.bin"}]]}}}}]});
        let mut left = Vec::new();
        metadata(Document(doc), &HashMap::new(), &mut left);
        assert_eq!(left.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["m.__args__.0.1"]);
    }
}
