//! The reachable graph of one pickle: its nodes (values of the analysis
//! arena), the edges an expression of each mentions, discovery from the
//! result and the stream's other roots, reference counts and cycles.

use crate::vm::{Analysis, BlobView, CallKind, Value, ValueId};

use super::effects::StreamEffects;
use super::NONE;

/// Where a node stands in the definition order.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Color {
    White,
    Gray,
    Black,
}

/// A value of the arena reachable in this pickle.
pub(super) struct Node {
    pub(super) id: ValueId,
    /// References from expressions and patches (the result counts as one).
    pub(super) refs: u32,
    pub(super) atom: bool,
    pub(super) named: bool,
    /// On a cycle.
    pub(super) cycle: bool,
    /// A list, dict or set on a cycle: created empty, filled later.
    pub(super) split: bool,
    pub(super) patched: bool,
    /// Discovered from an event rather than from the result.
    pub(super) extra_root: bool,
    /// Estimated length and nesting height of the inline text.
    pub(super) len: usize,
    pub(super) height: u32,
    /// The inline text shows a call or an import.
    pub(super) interesting: bool,
    /// Tarjan state.
    pub(super) index: u32,
    pub(super) low: u32,
    pub(super) on_stack: bool,
    /// Definition order.
    pub(super) color: Color,
    pub(super) pos: u32,
}

/// The reachable graph of one pickle.
pub(super) struct Graph<'a, 'l> {
    pub(super) a: &'a Analysis,
    /// Arena id → index in `nodes` (shared across pickles, reset after each).
    pub(super) local: &'l mut Vec<u32>,
    pub(super) nodes: Vec<Node>,
    /// Edges seen during discovery, to bound the closure walks.
    pub(super) edges: usize,
}

/// The `i`-th value an expression of `id` mentions, in rendering order.
///
/// Matches what [`Renderer`] writes: the elements of a call's argument tuple
/// are the call's own children, and `cls.__new__(cls, ...)` mentions `cls`
/// twice.
///
/// [`Renderer`]: crate::view::render::Renderer
pub(super) fn edge_at(a: &Analysis, id: ValueId, i: usize) -> Option<ValueId> {
    match a.value(id) {
        Value::Tuple(_) | Value::List(_) | Value::Set(_) | Value::FrozenSet(_) => a.items(id).get(i).copied(),
        Value::Dict(r) => a.dict(*r).get(i / 2).map(|&(k, v)| if i % 2 == 0 { k } else { v }),
        Value::ComputedGlobal { module, name } => match i {
            0 => Some(*module),
            1 => Some(*name),
            _ => None,
        },
        Value::Persistent { pid } => (i == 0).then_some(*pid),
        Value::Call(c) => {
            let (kind, func, args, kwargs) = (&c.kind, &c.func, &c.args, &c.kwargs);
            let nf = if matches!(kind, CallKind::NewObj | CallKind::NewObjEx) { 2 } else { 1 };
            if i < nf {
                return Some(*func);
            }
            let j = i - nf;
            let n_args = match a.tuple_or_list(*args) {
                Some(t) => {
                    if j < t.len() {
                        return Some(t[j]);
                    }
                    t.len()
                }
                _ => {
                    if j == 0 {
                        return Some(*args);
                    }
                    1
                }
            };
            match kwargs {
                Some(kw) if j == n_args => match a.value(*kw) {
                    Value::Dict(p) if p.is_empty() => None,
                    _ => Some(*kw),
                },
                _ => None,
            }
        }
        _ => None,
    }
}

/// Estimated text length of a value without children; `None` for the others.
/// Mirrors [`crate::view::render::atom`], without building the text.
pub(super) fn atom_len(a: &Analysis, v: &Value) -> Option<usize> {
    fn blob<T: ?Sized>(b: BlobView<'_, T>, len: impl Fn(&T) -> usize) -> usize {
        match b {
            BlobView::Full(d) => len(d),
            BlobView::Part(p) => p.prefix.as_deref().map_or(0, len) + 40,
        }
    }
    fn bytes_len(d: &[u8]) -> usize {
        3 + d
            .iter()
            .map(|&c| match c {
                b'\\' | b'\'' | b'\t' | b'\n' | b'\r' => 2,
                0x20..=0x7e => 1,
                _ => 4,
            })
            .sum::<usize>()
    }
    Some(match v {
        Value::None | Value::Bool(_) => 5,
        Value::Int(_) => 20,
        Value::BigInt(i) => match &**i {
            crate::py::num::PyInt::Big { limbs, .. } if limbs.len() <= 450 => limbs.len().saturating_mul(10) + 1,
            _ => 40,
        },
        Value::Float(_) => 24,
        Value::Str(r) => blob(a.str(*r), |s: &str| s.len() + 2),
        Value::Bytes(b) => blob(b.as_view(), bytes_len),
        Value::ByteArray(b) => blob(b.as_view(), |d: &[u8]| bytes_len(d) + 11),
        Value::Global(g) => g.module.len() + g.name.len() + 1,
        Value::Buffer { .. } => 40,
        Value::Unknown(_) => 30,
        _ => return None,
    })
}

impl<'a, 'l> Graph<'a, 'l> {
    /// An empty graph over `a`, with `local` all [`NONE`].
    pub(super) fn new(a: &'a Analysis, local: &'l mut Vec<u32>) -> Self {
        Graph { a, local, nodes: Vec::new(), edges: 0 }
    }

    /// Empties the graph, leaving `local` all [`NONE`] again.
    pub(super) fn reset(&mut self) {
        for n in &self.nodes {
            self.local[n.id as usize] = NONE;
        }
        self.nodes.clear();
    }

    /// The node of arena id `id`, if it is in the graph.
    pub(super) fn node_of(&self, id: ValueId) -> Option<u32> {
        match self.local.get(id as usize) {
            Some(&l) if l != NONE => Some(l),
            _ => None,
        }
    }

    /// True when `id` is in the graph and has a statement of its own.
    pub(super) fn is_named(&self, id: ValueId) -> bool {
        self.node_of(id).is_some_and(|l| self.nodes[l as usize].named)
    }

    /// Adds `id` if new, returning its index and whether it was new.
    fn add(&mut self, id: ValueId) -> Option<(u32, bool)> {
        let slot = self.local.get_mut(id as usize)?;
        if *slot != NONE {
            return Some((*slot, false));
        }
        let l = self.nodes.len() as u32;
        *slot = l;
        let v = self.a.value(id);
        let len = atom_len(self.a, v);
        self.nodes.push(Node {
            id,
            refs: 0,
            atom: len.is_some(),
            named: false,
            cycle: false,
            split: false,
            patched: false,
            extra_root: false,
            len: len.unwrap_or(0),
            height: 0,
            interesting: matches!(v, Value::Global(_)),
            index: NONE,
            low: 0,
            on_stack: false,
            color: Color::White,
            pos: NONE,
        });
        Some((l, true))
    }

    /// Discovery: the result first, then what the stream did besides
    /// (latest first, so an earlier value used by a later one is not a
    /// root of its own). Returns the result's node.
    pub(super) fn discover_all(&mut self, result: Option<ValueId>, fx: &StreamEffects) -> Option<u32> {
        let root = result.and_then(|r| self.discover(r, fx).map(|(l, _)| l));
        if let Some(r) = root {
            let n = &mut self.nodes[r as usize];
            n.refs = n.refs.saturating_add(1);
        }
        for x in fx.extra.iter().rev() {
            if let Some((l, true)) = self.discover(x.id, fx) {
                self.nodes[l as usize].extra_root = true;
            }
        }
        root
    }

    /// Finds every value reachable from `start` (through expressions and
    /// patches) and counts references.
    fn discover(&mut self, start: ValueId, fx: &StreamEffects) -> Option<(u32, bool)> {
        let (l, new) = self.add(start)?;
        if !new {
            return Some((l, false));
        }
        let mut stack = vec![start];
        let touch = |g: &mut Self, c: ValueId, stack: &mut Vec<ValueId>| {
            g.edges += 1;
            if let Some((cl, new)) = g.add(c) {
                let n = &mut g.nodes[cl as usize];
                n.refs = n.refs.saturating_add(1);
                if new {
                    stack.push(c);
                }
            }
        };
        while let Some(id) = stack.pop() {
            // `cls.__new__(cls, ...)` writes `cls` twice: that counts as two
            // references (so a composite `cls` is named), unless it is a literal.
            let dup = match self.a.value(id) {
                Value::Call(c) if matches!(c.kind, CallKind::NewObj | CallKind::NewObjEx) => {
                    atom_len(self.a, self.a.value(c.func)).is_some()
                }
                _ => false,
            };
            let mut i = 0;
            while let Some(c) = edge_at(self.a, id, i) {
                i += 1;
                if dup && i == 2 {
                    continue;
                }
                touch(self, c, &mut stack);
            }
            if let Some(ps) = fx.by_target.get(&id) {
                if let Some(n) = self.node_of(id) {
                    self.nodes[n as usize].patched = true;
                }
                for &p in ps {
                    let (args, k) = fx.patches[p].op.args();
                    for &c in &args[..k] {
                        touch(self, c, &mut stack);
                    }
                }
            }
        }
        Some((l, true))
    }

    /// Marks the nodes on cycles (Tarjan, iterative) and returns all nodes
    /// children first.
    pub(super) fn find_cycles(&mut self) -> Vec<u32> {
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut counter = 0u32;
        let mut tstack: Vec<u32> = Vec::new();
        let mut calls: Vec<(u32, usize)> = Vec::new();
        for start in 0..self.nodes.len() as u32 {
            if self.nodes[start as usize].index != NONE {
                continue;
            }
            self.visit(start, &mut counter, &mut tstack, &mut calls);
            while let Some(&mut (v, ref mut i)) = calls.last_mut() {
                let vid = self.nodes[v as usize].id;
                if let Some(c) = edge_at(self.a, vid, *i) {
                    *i += 1;
                    let Some(w) = self.node_of(c) else { continue };
                    if w == v {
                        self.nodes[v as usize].cycle = true;
                    }
                    if self.nodes[w as usize].index == NONE {
                        self.visit(w, &mut counter, &mut tstack, &mut calls);
                    } else if self.nodes[w as usize].on_stack {
                        let wi = self.nodes[w as usize].index;
                        let n = &mut self.nodes[v as usize];
                        n.low = n.low.min(wi);
                    }
                    continue;
                }
                calls.pop();
                let (low, index) = (self.nodes[v as usize].low, self.nodes[v as usize].index);
                if low == index {
                    let from = tstack.iter().rposition(|&x| x == v).unwrap_or(0);
                    let scc: Vec<u32> = tstack.drain(from..).collect();
                    let cyclic = scc.len() > 1;
                    for &x in &scc {
                        let n = &mut self.nodes[x as usize];
                        n.on_stack = false;
                        n.cycle |= cyclic;
                    }
                    order.extend(scc);
                }
                if let Some(&(p, _)) = calls.last() {
                    let n = &mut self.nodes[p as usize];
                    n.low = n.low.min(low);
                }
            }
        }
        order
    }

    /// Starts Tarjan's visit of `v`.
    fn visit(&mut self, v: u32, counter: &mut u32, tstack: &mut Vec<u32>, calls: &mut Vec<(u32, usize)>) {
        let n = &mut self.nodes[v as usize];
        n.index = *counter;
        n.low = *counter;
        n.on_stack = true;
        *counter += 1;
        tstack.push(v);
        calls.push((v, 0));
    }

    /// The named nodes an expression of `id` mentions, in writing order. With
    /// `top`, `id` itself is expanded even when named.
    pub(super) fn closure(&self, id: ValueId, top: bool, out: &mut Vec<u32>) {
        let Some(l) = self.node_of(id) else { return };
        let n = &self.nodes[l as usize];
        if !top && n.named {
            out.push(l);
            return;
        }
        if n.atom {
            return;
        }
        // Unnamed nodes are on no cycle and referenced once, so this walk is
        // finite and, over all statements, linear; the step bound is a guard.
        let mut steps = 0usize;
        let mut stack: Vec<(ValueId, usize)> = vec![(id, 0)];
        while let Some(top) = stack.last_mut() {
            let (x, i) = *top;
            let Some(c) = edge_at(self.a, x, i) else {
                stack.pop();
                continue;
            };
            top.1 += 1;
            steps += 1;
            if steps > self.edges.saturating_add(1) {
                break;
            }
            let Some(cl) = self.node_of(c) else { continue };
            let ch = &self.nodes[cl as usize];
            if ch.named {
                out.push(cl);
            } else if !ch.atom {
                stack.push((c, 0));
            }
        }
    }
}
