//! Lists, tuples, sets and dicts of the value graph, written with an
//! explicit stack instead of recursion: `pickle.load` builds containers
//! nested to any depth (its unpickler is a loop), so a list nested 10,000
//! deep is an ordinary file and extracts like any other. Only objects,
//! calls and arrays recurse (through [`Emitter::value`]), bounded by
//! `MAX_EXTRACT_DEPTH`; every node counts against `MAX_EXTRACT_NODES`, and
//! a value met twice is written once, so the document stays as large as
//! the graph.

use serde_json::{json, Map, Value as J};

use super::json::node;
use super::{Emitter, Seg};
use crate::vm::{Value, ValueId};

/// The kinds of container written here.
#[derive(Clone, Copy)]
enum Kind {
    List,
    Tuple,
    Set,
    FrozenSet,
    /// A dict whose keys are distinct strings (written as `"items"`).
    Items,
    /// Any other dict (written as `"pairs"`).
    Pairs,
}

/// A container being written: its children, the next one, what was
/// written of them, and its id when it is shared.
struct Frame<'a> {
    kind: Kind,
    id: Option<u64>,
    items: &'a [ValueId],
    pairs: &'a [(ValueId, ValueId)],
    /// The key of each pair (`Pairs`).
    keys: Vec<J>,
    /// The string keys (`Items`).
    names: Vec<String>,
    next: usize,
    out: Vec<J>,
}

impl Frame<'_> {
    fn len(&self) -> usize {
        match self.kind {
            Kind::Items | Kind::Pairs => self.pairs.len(),
            _ => self.items.len(),
        }
    }
}

impl<'a> Emitter<'_, 'a> {
    /// True for the values written here.
    pub(super) fn is_container(&self, id: ValueId) -> bool {
        matches!(self.v(id), Value::List(_) | Value::Tuple(_) | Value::Set(_) | Value::FrozenSet(_) | Value::Dict(_))
    }

    /// The container `root` at `path`, its nested containers included,
    /// without recursion.
    pub(super) fn containers(&mut self, root: ValueId, path: &mut Vec<Seg>) -> J {
        let mut stack: Vec<Frame<'a>> = Vec::new();
        let mut done = self.open(root, &mut stack);
        loop {
            if let Some(j) = done.take() {
                match stack.last_mut() {
                    None => return j,
                    Some(top) => {
                        top.out.push(j);
                        path.pop();
                    }
                }
            }
            let Some(top) = stack.last_mut() else { return J::Null };
            if top.next == top.len() {
                let frame = stack.pop().expect("a frame is open");
                done = Some(close(frame));
                continue;
            }
            let i = top.next;
            top.next += 1;
            let (child, seg) = match top.kind {
                Kind::Items => (top.pairs[i].1, J::String(top.names[i].clone())),
                Kind::Pairs => {
                    let (k, v) = top.pairs[i];
                    // The key first (ids follow the order values are met).
                    let kj = self.value(k, path);
                    let seg = self.key_step(k);
                    stack.last_mut().expect("a frame is open").keys.push(kj);
                    (v, seg)
                }
                _ => (top.items[i], json!(i)),
            };
            path.push(seg);
            done = if self.is_container(child) { self.open(child, &mut stack) } else { Some(self.value(child, path)) };
        }
    }

    /// Starts writing container `id`: a frame on `stack`, or its node at
    /// once (a `ref` to it, or an error).
    fn open(&mut self, id: ValueId, stack: &mut Vec<Frame<'a>>) -> Option<J> {
        let my_id = match self.begin(id) {
            Ok(n) => n,
            Err(j) => return Some(j),
        };
        let a = self.a;
        let (kind, items, pairs): (Kind, &'a [ValueId], &'a [(ValueId, ValueId)]) = match a.value(id) {
            Value::List(_) => (Kind::List, a.items(id), &[]),
            Value::Tuple(_) => (Kind::Tuple, a.items(id), &[]),
            Value::Set(_) => (Kind::Set, a.items(id), &[]),
            Value::FrozenSet(_) => (Kind::FrozenSet, a.items(id), &[]),
            Value::Dict(r) => {
                let pairs = a.dict(*r);
                match self.str_keys(pairs) {
                    Some(names) => {
                        let f = Frame {
                            kind: Kind::Items,
                            id: my_id,
                            items: &[],
                            pairs,
                            keys: Vec::new(),
                            names,
                            next: 0,
                            out: Vec::new(),
                        };
                        stack.push(f);
                        return None;
                    }
                    None => (Kind::Pairs, &[], pairs),
                }
            }
            _ => return Some(J::Null),
        };
        stack.push(Frame {
            kind,
            id: my_id,
            items,
            pairs,
            keys: Vec::new(),
            names: Vec::new(),
            next: 0,
            out: Vec::new(),
        });
        None
    }

    /// A dict's keys when all are distinct strings (the `"items"` form).
    pub(super) fn str_keys(&self, pairs: &[(ValueId, ValueId)]) -> Option<Vec<String>> {
        let keys: Vec<String> =
            pairs.iter().map(|(k, _)| self.a.full_str(*k).map(str::to_string)).collect::<Option<_>>()?;
        let mut seen = std::collections::HashSet::new();
        keys.iter().all(|s| seen.insert(s.as_str())).then_some(keys)
    }

    /// The path step of a dict key that is not a distinct string.
    pub(super) fn key_step(&self, k: ValueId) -> Seg {
        match self.v(k) {
            Value::Int(i) => json!(i),
            _ => match self.a.full_str(k) {
                Some(s) => J::String(s.to_string()),
                None => J::String(crate::view::render::Renderer::new(self.a, 200).expr(k)),
            },
        }
    }
}

/// The node of a finished container (with its id when shared).
fn close(f: Frame<'_>) -> J {
    let j = match f.kind {
        Kind::List => J::Array(f.out),
        Kind::Tuple => node([("type", json!("tuple")), ("items", J::Array(f.out))]),
        Kind::Set => node([("type", json!("set")), ("items", J::Array(f.out))]),
        Kind::FrozenSet => node([("type", json!("frozenset")), ("items", J::Array(f.out))]),
        Kind::Items => {
            let m: Map<String, J> = f.names.into_iter().zip(f.out).collect();
            node([("type", json!("dict")), ("items", J::Object(m))])
        }
        Kind::Pairs => {
            let pairs: Vec<J> = f.keys.into_iter().zip(f.out).map(|(k, v)| J::Array(vec![k, v])).collect();
            node([("type", json!("dict")), ("pairs", J::Array(pairs))])
        }
    };
    super::json::with_id(j, f.id)
}
