//! `pkinspect show`: the object graph a pickle builds, as Python-like code.
//!
//! For each pickle of the file the output is a list of statements that end
//! with `result = <expr>`:
//!
//! ```text
//! # pickle 0 at offset 0, protocol 4
//! _v3 = sklearn.linear_model._logistic.LogisticRegression.__new__(sklearn.linear_model._logistic.LogisticRegression)
//! _v9 = numpy.dtype('f8', False, True)
//! _v9.__setstate__((3, '<', None, None, None, -1, -1, 0))  # BUILD at offset 512
//! _v3.__setstate__({'penalty': 'l2', 'coef_': _v7, ...})  # BUILD at offset 1234
//! result = _v3
//! ```
//!
//! A node gets a name (`_v<id>`, the id of its value in the analysis arena)
//! and a statement of its own when it is referenced more than once, when
//! something is done to it after its creation (`BUILD`, `APPEND` on an object,
//! ...), when it lies on a cycle, or when writing it inline would make its
//! parent's expression too long or too deeply nested. Every other node is
//! written inline where it is used, so each node's text appears once and the
//! output stays linear in the number of nodes even for a memo DAG whose
//! expansion is exponential. A list, dict or set on a cycle is created empty
//! (`_v1 = []`) and filled once its elements exist (`_v1.extend([_v1, 2])`).
//!
//! Calls and imports whose result the pickle discards (`REDUCE` then `POP`)
//! are shown too, as expression statements, since loading still performs
//! them. Anomalies and the error that ended reading follow as comments.
//!
//! Nothing here recurses over the graph: discovery, cycle detection (Tarjan),
//! naming and ordering use explicit stacks, and expression text comes from
//! [`Renderer`], whose depth is bounded. Output is cut at
//! [`MAX_SHOW_OUTPUT`] bytes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Write};

use crate::limits::MAX_SHOW_OUTPUT;
use crate::py::repr::escape_for_terminal;
use crate::view::render::Renderer;
use crate::vm::{Analysis, Anomaly, BlobView, CallKind, EventKind, PickleInfo, Value, ValueId};

/// Most characters of one expression in a statement (the [`Renderer`] budget).
pub const EXPR_BUDGET: usize = 10_000;

/// An inline expression longer than this (estimated) gets its larger or
/// call-bearing children named, so that the statement fits [`EXPR_BUDGET`]
/// and no call is hidden past a truncation.
const SOFT_LEN: usize = 4_000;

/// A child at least this long (estimated) is named when its parent is too long.
const BIG_CHILD: usize = 200;

/// Most nesting levels written inline before a child is named; well under
/// [`crate::limits::MAX_RENDER_DEPTH`], where the renderer would cut.
const MAX_INLINE_HEIGHT: u32 = 24;

/// A literal referenced more than once is named when its text is longer.
const LONG_ATOM: usize = 64;

/// The same for a global's name, which reads better inline.
const LONG_GLOBAL: usize = 256;

/// Anomaly comments written per pickle before the rest are counted.
const MAX_ANOMALY_LINES: usize = 100;

const NONE: u32 = u32::MAX;

/// Writes the object graph of every pickle in `analysis` as Python-like code.
pub fn show<W: Write>(analysis: &Analysis, out: &mut W) -> io::Result<()> {
    show_limited(analysis, out, MAX_SHOW_OUTPUT)
}

/// [`show`] with an output limit in bytes.
fn show_limited<W: Write>(analysis: &Analysis, out: &mut W, limit: usize) -> io::Result<()> {
    let mut sink = Sink { w: io::BufWriter::new(out), written: 0, limit };
    match write_all(analysis, &mut sink) {
        Ok(()) => {}
        Err(Stop::Io(e)) => return Err(e),
        Err(Stop::Full) => {
            let msg = format!("# … output truncated at {limit} bytes\n");
            sink.w.write_all(msg.as_bytes())?;
        }
    }
    sink.w.flush()
}

/// Why writing stopped early.
enum Stop {
    /// The output limit was reached.
    Full,
    /// The writer failed.
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

/// A line writer that refuses to go past `limit` bytes.
struct Sink<W: Write> {
    w: io::BufWriter<W>,
    written: usize,
    limit: usize,
}

impl<W: Write> Sink<W> {
    fn line(&mut self, s: &str) -> Result<(), Stop> {
        let n = s.len() + 1;
        if self.written.saturating_add(n) > self.limit {
            return Err(Stop::Full);
        }
        self.w.write_all(s.as_bytes())?;
        self.w.write_all(b"\n")?;
        self.written += n;
        Ok(())
    }
}

fn write_all<W: Write>(a: &Analysis, sink: &mut Sink<W>) -> Result<(), Stop> {
    // Event indices per pickle; the last slot holds events of no known pickle.
    let np = a.pickles.len();
    let mut by_pickle: Vec<Vec<usize>> = vec![Vec::new(); np + 1];
    for (i, e) in a.events.iter().enumerate() {
        by_pickle[e.pickle.min(np)].push(i);
    }
    let mut local = vec![NONE; a.values.len()];
    for (index, info) in a.pickles.iter().enumerate() {
        if index > 0 {
            sink.line("")?;
        }
        let mut g = Graph::new(a, &mut local);
        let result = g.show_pickle(index, info, &by_pickle[index], sink);
        g.reset();
        result?;
    }
    let rest = &by_pickle[np];
    if !rest.is_empty() {
        if np > 0 {
            sink.line("")?;
        }
        write_anomalies(a, rest, sink)?;
    }
    if let Some(err) = &a.error {
        sink.line(&format!("# error: {}", escape_for_terminal(&err.to_string())))?;
    }
    Ok(())
}

fn write_anomalies<W: Write>(a: &Analysis, events: &[usize], sink: &mut Sink<W>) -> Result<(), Stop> {
    let mut shown = 0usize;
    let mut more = 0usize;
    for &ei in events {
        let e = &a.events[ei];
        let EventKind::Anomaly(an) = &e.kind else {
            continue;
        };
        if shown < MAX_ANOMALY_LINES {
            sink.line(&format!("# anomaly at offset {}: {}", e.offset, anomaly_text(an)))?;
            shown += 1;
        } else {
            more += 1;
        }
    }
    if more > 0 {
        sink.line(&format!("# … and {more} more anomalies"))?;
    }
    Ok(())
}

fn anomaly_text(an: &Anomaly) -> String {
    an.message()
}

/// Something done to an object after it was created.
#[derive(Clone, Copy)]
enum PatchOp {
    Build(ValueId),
    Append(ValueId),
    SetItem(ValueId, ValueId),
    Add(ValueId),
}

impl PatchOp {
    fn args(self) -> ([ValueId; 2], usize) {
        match self {
            PatchOp::Build(x) | PatchOp::Append(x) | PatchOp::Add(x) => ([x, x], 1),
            PatchOp::SetItem(k, v) => ([k, v], 2),
        }
    }
}

struct Patch {
    target: ValueId,
    offset: u64,
    op: PatchOp,
    /// Index of the event, for stream order.
    seq: usize,
}

/// What made a value a root of its own (besides the pickle's result).
#[derive(Clone, Copy, PartialEq)]
enum RootWhy {
    Call,
    Import,
    Patched,
}

struct ExtraRoot {
    id: ValueId,
    offset: u64,
    why: RootWhy,
    seq: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Color {
    White,
    Gray,
    Black,
}

struct Node {
    id: ValueId,
    /// References from expressions and patches (the result counts as one).
    refs: u32,
    atom: bool,
    named: bool,
    /// On a cycle.
    cycle: bool,
    /// A list, dict or set on a cycle: created empty, filled later.
    split: bool,
    patched: bool,
    /// Discovered from an event rather than from the result.
    extra_root: bool,
    /// Estimated length and nesting height of the inline text.
    len: usize,
    height: u32,
    /// The inline text shows a call or an import.
    interesting: bool,
    /// Tarjan state.
    index: u32,
    low: u32,
    on_stack: bool,
    /// Definition order.
    color: Color,
    pos: u32,
}

/// A statement placed after the definitions its expression needs.
struct Post {
    /// Largest definition position among its dependencies (-1: none).
    key: i64,
    /// 0 for fills, 1 for stream-ordered statements.
    class: u8,
    seq: usize,
    kind: PostKind,
}

enum PostKind {
    Fill(u32),
    Patch(usize),
    Discard { node: u32, offset: u64, why: RootWhy },
}

/// The reachable graph of one pickle.
struct Graph<'a, 'l> {
    a: &'a Analysis,
    /// Arena id → index in `nodes` (shared across pickles, reset after each).
    local: &'l mut Vec<u32>,
    nodes: Vec<Node>,
    /// Edges seen during discovery, to bound the closure walks.
    edges: usize,
}

/// The `i`-th value an expression of `id` mentions, in rendering order.
///
/// Matches what [`Renderer`] writes: the elements of a call's argument tuple
/// are the call's own children, and `cls.__new__(cls, ...)` mentions `cls`
/// twice.
fn edge_at(a: &Analysis, id: ValueId, i: usize) -> Option<ValueId> {
    match a.value(id) {
        Value::Tuple(_) | Value::List(_) | Value::Set(_) | Value::FrozenSet(_) => a.items(id).get(i).copied(),
        Value::Dict(pairs) => pairs.get(i / 2).map(|&(k, v)| if i % 2 == 0 { k } else { v }),
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
fn atom_len(a: &Analysis, v: &Value) -> Option<usize> {
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

fn name_of(id: ValueId) -> String {
    format!("_v{id}")
}

fn name_len(id: ValueId) -> usize {
    2 + id.checked_ilog10().unwrap_or(0) as usize + 1
}

impl<'a, 'l> Graph<'a, 'l> {
    fn new(a: &'a Analysis, local: &'l mut Vec<u32>) -> Self {
        Graph { a, local, nodes: Vec::new(), edges: 0 }
    }

    fn reset(&mut self) {
        for n in &self.nodes {
            self.local[n.id as usize] = NONE;
        }
        self.nodes.clear();
    }

    fn node_of(&self, id: ValueId) -> Option<u32> {
        match self.local.get(id as usize) {
            Some(&l) if l != NONE => Some(l),
            _ => None,
        }
    }

    fn is_named(&self, id: ValueId) -> bool {
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

    /// Finds every value reachable from `start` (through expressions and
    /// patches) and counts references.
    fn discover(
        &mut self,
        start: ValueId,
        patches: &[Patch],
        by_target: &HashMap<ValueId, Vec<usize>>,
    ) -> Option<(u32, bool)> {
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
            if let Some(ps) = by_target.get(&id) {
                if let Some(n) = self.node_of(id) {
                    self.nodes[n as usize].patched = true;
                }
                for &p in ps {
                    let (args, k) = patches[p].op.args();
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
    fn find_cycles(&mut self) -> Vec<u32> {
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

    fn visit(&mut self, v: u32, counter: &mut u32, tstack: &mut Vec<u32>, calls: &mut Vec<(u32, usize)>) {
        let n = &mut self.nodes[v as usize];
        n.index = *counter;
        n.low = *counter;
        n.on_stack = true;
        *counter += 1;
        tstack.push(v);
        calls.push((v, 0));
    }

    /// Decides which nodes get a statement of their own.
    fn choose_names(&mut self, order: &[u32]) {
        for n in &mut self.nodes {
            let long = match self.a.value(n.id) {
                Value::Global(_) => n.len > LONG_GLOBAL,
                _ => n.len > LONG_ATOM,
            };
            n.named = n.patched || n.cycle || (n.refs > 1 && (!n.atom || long));
            n.split = n.cycle && matches!(self.a.value(n.id), Value::List(_) | Value::Dict(_) | Value::Set(_));
        }
        for &v in order {
            if self.nodes[v as usize].atom {
                continue;
            }
            let (mut len, mut height, mut interesting) = self.inline_size(v);
            if len > SOFT_LEN || height > MAX_INLINE_HEIGHT {
                let id = self.nodes[v as usize].id;
                let mut i = 0;
                while let Some(c) = edge_at(self.a, id, i) {
                    i += 1;
                    let Some(cl) = self.node_of(c) else { continue };
                    let ch = &mut self.nodes[cl as usize];
                    if ch.named {
                        continue;
                    }
                    let too_long = len > SOFT_LEN && (ch.len >= BIG_CHILD || (ch.interesting && !ch.atom));
                    if too_long || ch.height >= MAX_INLINE_HEIGHT {
                        ch.named = true;
                    }
                }
                (len, height, interesting) = self.inline_size(v);
            }
            let n = &mut self.nodes[v as usize];
            n.len = len;
            n.height = height;
            n.interesting |= interesting;
        }
    }

    /// Estimated length, height and whether it shows a call, of `v`'s text
    /// with its children as currently named.
    fn inline_size(&self, v: u32) -> (usize, u32, bool) {
        let id = self.nodes[v as usize].id;
        let value = self.a.value(id);
        let mut len: usize = 16;
        let mut height = 0;
        let mut interesting =
            matches!(value, Value::Call { .. } | Value::ComputedGlobal { .. } | Value::Persistent { .. });
        let mut i = 0;
        while let Some(c) = edge_at(self.a, id, i) {
            i += 1;
            let Some(cl) = self.node_of(c) else { continue };
            let ch = &self.nodes[cl as usize];
            if ch.named {
                len = len.saturating_add(name_len(c) + 2);
            } else {
                len = len.saturating_add(ch.len + 2);
                height = height.max(ch.height);
                interesting |= ch.interesting;
            }
        }
        (len, height + 1, interesting)
    }

    /// The named nodes an expression of `id` mentions, in writing order. With
    /// `top`, `id` itself is expanded even when named.
    fn closure(&self, id: ValueId, top: bool, out: &mut Vec<u32>) {
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

    /// What a named node's definition needs defined first.
    fn def_deps(&self, v: u32) -> Vec<u32> {
        let n = &self.nodes[v as usize];
        let mut deps = Vec::new();
        if !n.split {
            self.closure(n.id, true, &mut deps);
        }
        deps
    }

    /// Gives definition positions to `roots` and what they need, depth first,
    /// children before parents. Split containers met are queued for filling.
    fn place(&mut self, roots: &[u32], defs: &mut Vec<u32>, fills: &mut VecDeque<u32>) {
        for &r in roots {
            if self.nodes[r as usize].color != Color::White || !self.nodes[r as usize].named {
                continue;
            }
            self.nodes[r as usize].color = Color::Gray;
            let mut frames: Vec<(u32, Vec<u32>, usize)> = vec![(r, self.def_deps(r), 0)];
            while let Some(top) = frames.last_mut() {
                if top.2 < top.1.len() {
                    let d = top.1[top.2];
                    top.2 += 1;
                    // A gray dependency would be a cycle, which naming rules
                    // out; skipping it keeps this finite regardless.
                    if self.nodes[d as usize].color == Color::White {
                        self.nodes[d as usize].color = Color::Gray;
                        let deps = self.def_deps(d);
                        frames.push((d, deps, 0));
                    }
                    continue;
                }
                let v = top.0;
                frames.pop();
                let n = &mut self.nodes[v as usize];
                n.color = Color::Black;
                n.pos = defs.len() as u32;
                defs.push(v);
                if n.split {
                    fills.push_back(v);
                }
            }
        }
    }

    /// Places the contents of queued split containers, recording the fills.
    fn drain_fills(&mut self, defs: &mut Vec<u32>, fills: &mut VecDeque<u32>, posts: &mut Vec<(Post, Vec<u32>)>) {
        while let Some(m) = fills.pop_front() {
            let mut deps = vec![m];
            self.closure(self.nodes[m as usize].id, true, &mut deps);
            self.place(&deps, defs, fills);
            let seq = posts.len();
            posts.push((Post { key: -1, class: 0, seq, kind: PostKind::Fill(m) }, deps));
        }
    }

    fn show_pickle<W: Write>(
        &mut self,
        index: usize,
        info: &PickleInfo,
        events: &[usize],
        sink: &mut Sink<W>,
    ) -> Result<(), Stop> {
        let a = self.a;
        sink.line(&format!("# pickle {index} at offset {}, protocol {}", info.start, info.proto))?;

        // Patches and roots from the events, in stream order.
        let mut patches: Vec<Patch> = Vec::new();
        let mut extra: Vec<ExtraRoot> = Vec::new();
        for &seq in events {
            let e = &a.events[seq];
            let offset = e.offset;
            match &e.kind {
                EventKind::Build { target, state } => {
                    patches.push(Patch { target: *target, offset, op: PatchOp::Build(*state), seq });
                    extra.push(ExtraRoot { id: *target, offset, why: RootWhy::Patched, seq });
                }
                EventKind::Call {
                    kind: kind @ (CallKind::Append | CallKind::SetItem | CallKind::Add),
                    func,
                    args,
                    ..
                } => {
                    let op = match (kind, a.tuple(*args)) {
                        (CallKind::Append, Some(&[x])) => PatchOp::Append(x),
                        (CallKind::Add, Some(&[x])) => PatchOp::Add(x),
                        (CallKind::SetItem, Some(&[k, v])) => PatchOp::SetItem(k, v),
                        _ => continue,
                    };
                    patches.push(Patch { target: *func, offset, op, seq });
                    extra.push(ExtraRoot { id: *func, offset, why: RootWhy::Patched, seq });
                }
                // The hook's call is shown by the BUILD patch it belongs to.
                EventKind::Call { kind: CallKind::SetState, .. } => {}
                EventKind::Call { result, .. } => {
                    extra.push(ExtraRoot { id: *result, offset, why: RootWhy::Call, seq })
                }
                EventKind::Import { value, .. } | EventKind::ComputedImport { value } => {
                    extra.push(ExtraRoot { id: *value, offset, why: RootWhy::Import, seq })
                }
                _ => {}
            }
        }
        // BUILDs that call a `__setstate__` an earlier BUILD planted.
        let mut hooks: HashMap<u64, ValueId> = HashMap::new();
        for &seq in events {
            let e = &a.events[seq];
            if let EventKind::Call { kind: CallKind::SetState, func, .. } = &e.kind {
                hooks.insert(e.offset, *func);
            }
        }
        let mut by_target: HashMap<ValueId, Vec<usize>> = HashMap::new();
        for (i, p) in patches.iter().enumerate() {
            by_target.entry(p.target).or_default().push(i);
        }

        // Discovery: the result first, then what the stream did besides
        // (latest first, so an earlier value used by a later one is not a
        // root of its own).
        let root = info.root.and_then(|r| self.discover(r, &patches, &by_target).map(|(l, _)| l));
        if let Some(r) = root {
            let n = &mut self.nodes[r as usize];
            n.refs = n.refs.saturating_add(1);
        }
        for x in extra.iter().rev() {
            if let Some((l, true)) = self.discover(x.id, &patches, &by_target) {
                self.nodes[l as usize].extra_root = true;
            }
        }

        let order = self.find_cycles();
        self.choose_names(&order);
        drop(order);

        // Definition order, and the statements placed after definitions.
        let mut defs: Vec<u32> = Vec::new();
        let mut fills: VecDeque<u32> = VecDeque::new();
        let mut posts: Vec<(Post, Vec<u32>)> = Vec::new();
        let mut result_deps = Vec::new();
        if let Some(r) = root {
            self.closure(self.nodes[r as usize].id, false, &mut result_deps);
        }
        self.place(&result_deps, &mut defs, &mut fills);
        self.drain_fills(&mut defs, &mut fills, &mut posts);

        let mut timed: Vec<(usize, PostKind, Vec<u32>)> = Vec::new();
        for (i, p) in patches.iter().enumerate() {
            let Some(t) = self.node_of(p.target) else {
                continue;
            };
            let mut deps = vec![t];
            let (args, k) = p.op.args();
            for &c in &args[..k] {
                self.closure(c, false, &mut deps);
            }
            timed.push((p.seq, PostKind::Patch(i), deps));
        }
        let mut seen_roots: HashSet<ValueId> = HashSet::new();
        for x in &extra {
            let Some(l) = self.node_of(x.id) else {
                continue;
            };
            let n = &self.nodes[l as usize];
            if !n.extra_root || n.refs > 0 || x.why == RootWhy::Patched || !seen_roots.insert(x.id) {
                continue;
            }
            let mut deps = Vec::new();
            self.closure(x.id, false, &mut deps);
            timed.push((x.seq, PostKind::Discard { node: l, offset: x.offset, why: x.why }, deps));
        }
        timed.sort_by_key(|t| t.0);
        for (_, _, deps) in &timed {
            self.place(deps, &mut defs, &mut fills);
            self.drain_fills(&mut defs, &mut fills, &mut posts);
        }
        // Anything still unplaced (not expected): in arena order.
        let mut rest: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&l| self.nodes[l as usize].named && self.nodes[l as usize].color == Color::White)
            .collect();
        rest.sort_by_key(|&l| self.nodes[l as usize].id);
        self.place(&rest, &mut defs, &mut fills);
        self.drain_fills(&mut defs, &mut fills, &mut posts);

        let key_of = |g: &Self, deps: &[u32]| {
            deps.iter().map(|&d| g.nodes[d as usize].pos).filter(|&p| p != NONE).map(i64::from).max().unwrap_or(-1)
        };
        for (post, deps) in posts.iter_mut() {
            post.key = key_of(self, deps);
        }
        let mut prev = -1i64;
        let mut all: Vec<Post> = posts.into_iter().map(|(p, _)| p).collect();
        for (seq, kind, deps) in timed {
            // Stream-ordered statements keep their order.
            let key = key_of(self, &deps).max(prev);
            prev = key;
            // A named discarded value already has its definition.
            if let PostKind::Discard { node, .. } = kind {
                if self.nodes[node as usize].named {
                    continue;
                }
            }
            all.push(Post { key, class: 1, seq, kind });
        }
        all.sort_by_key(|p| (p.key, p.class, p.seq));

        // Writing.
        let names = |id: ValueId| {
            if self.is_named(id) {
                Some(name_of(id))
            } else {
                None
            }
        };
        let r = Renderer::new(a, EXPR_BUDGET).with_names(&names);
        let reference = |id: ValueId| {
            if self.is_named(id) {
                name_of(id)
            } else {
                r.expr(id)
            }
        };
        let mut pi = 0;
        let write_posts = |upto: i64, pi: &mut usize, sink: &mut Sink<W>| -> Result<(), Stop> {
            while *pi < all.len() && all[*pi].key <= upto {
                let text = match &all[*pi].kind {
                    PostKind::Fill(m) => {
                        let id = self.nodes[*m as usize].id;
                        let method = if matches!(a.value(id), Value::List(_)) { "extend" } else { "update" };
                        format!("{}.{method}({})", name_of(id), r.expr(id))
                    }
                    PostKind::Patch(i) => {
                        let p = &patches[*i];
                        let t = name_of(p.target);
                        match p.op {
                            PatchOp::Build(s) => match hooks.get(&p.offset) {
                                Some(&hook) => format!(
                                    "{t}.__setstate__({})  # BUILD at offset {}, with __setstate__ = {}",
                                    reference(s),
                                    p.offset,
                                    reference(hook)
                                ),
                                None => format!("{t}.__setstate__({})  # BUILD at offset {}", reference(s), p.offset),
                            },
                            PatchOp::Append(x) => {
                                format!("{t}.append({})  # APPEND(S) at offset {}", reference(x), p.offset)
                            }
                            PatchOp::SetItem(k, v) => {
                                format!("{t}[{}] = {}  # SETITEM(S) at offset {}", reference(k), reference(v), p.offset)
                            }
                            PatchOp::Add(x) => format!("{t}.add({})  # ADDITEMS at offset {}", reference(x), p.offset),
                        }
                    }
                    PostKind::Discard { node, offset, why } => {
                        let what = if *why == RootWhy::Import { "imported" } else { "called" };
                        format!("{}  # {what} at offset {offset}, not used", r.expr(self.nodes[*node as usize].id))
                    }
                };
                sink.line(&text)?;
                *pi += 1;
            }
            Ok(())
        };
        write_posts(-1, &mut pi, sink)?;
        for (p, &v) in defs.iter().enumerate() {
            let id = self.nodes[v as usize].id;
            let text = if self.nodes[v as usize].split {
                let empty = match a.value(id) {
                    Value::List(_) => "[]",
                    Value::Dict(_) => "{}",
                    _ => "set()",
                };
                format!("{} = {empty}", name_of(id))
            } else {
                format!("{} = {}", name_of(id), r.expr(id))
            };
            sink.line(&text)?;
            write_posts(p as i64, &mut pi, sink)?;
        }
        write_posts(i64::MAX, &mut pi, sink)?;
        match root {
            Some(l) => sink.line(&format!("result = {}", reference(self.nodes[l as usize].id)))?,
            None => sink.line("# no result: the pickle did not reach STOP")?,
        }
        write_anomalies(a, events, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Analyzer;

    fn show_str(p: &[u8]) -> String {
        let a = Analyzer::new().run(p);
        let mut out = Vec::new();
        show(&a, &mut out).expect("write to a Vec");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn simple_call() {
        let s = show_str(b"cos\nsystem\n(S'echo hi'\ntR.");
        assert_eq!(s, "# pickle 0 at offset 0, protocol 0\nresult = os.system('echo hi')\n");
    }

    #[test]
    fn self_referencing_list() {
        // [] MEMOIZE, BINGET 0, APPEND, K 2, APPEND, STOP.
        let s = show_str(b"\x80\x04]\x94h\x00aK\x02a.");
        assert!(s.ends_with("_v0 = []\n_v0.extend([_v0, 2])\nresult = _v0\n"), "{s}");
    }

    #[test]
    fn cycle_through_a_tuple() {
        // L = []; T = (L,); L.append(T); result T
        let s = show_str(b"\x80\x04]\x94h\x00\x85\x94h\x00h\x01a0.");
        assert!(s.ends_with("_v0 = []\n_v1 = (_v0,)\n_v0.extend([_v1])\nresult = _v1\n"), "{s}");
    }

    #[test]
    fn shared_nodes_are_named_once() {
        let mut p = b"\x80\x02]".to_vec();
        for _ in 0..100 {
            p.extend_from_slice(b"2\x86");
        }
        p.push(b'.');
        let s = show_str(&p);
        assert!(s.len() < 20_000, "{}", s.len());
        assert!(s.contains("_v1 = (_v0, _v0)\n"), "{s}");
        assert!(s.ends_with("result = (_v99, _v99)\n"), "{s}");
    }

    #[test]
    fn build_is_a_patch_statement() {
        let s = show_str(b"\x80\x04\x8c\x03foo\x8c\x03Bar\x93)\x81}\x8c\x01a\x4b\x01sb.");
        assert!(
            s.ends_with(
                "_v4 = foo.Bar.__new__(foo.Bar)\n_v4.__setstate__({'a': 1})  # BUILD at offset 22\nresult = _v4\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn discarded_call_is_shown() {
        let s = show_str(b"cos\nsystem\n(S'echo hi'\ntR0N.");
        assert!(s.contains("os.system('echo hi')  # called at offset 24, not used\n"), "{s}");
        assert!(s.contains("result = None"), "{s}");
    }

    #[test]
    fn deep_nesting_is_split() {
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b"(".as_slice(), 2000).flatten());
        p.extend(std::iter::repeat_n(b"t".as_slice(), 2000).flatten());
        p.push(b'.');
        let s = show_str(&p);
        assert!(s.lines().count() > 2000 / MAX_INLINE_HEIGHT as usize, "{}", s.lines().count());
        assert!(!s.contains('…'), "nothing cut");
    }

    #[test]
    fn truncates_at_limit() {
        let mut p = b"\x80\x02]".to_vec();
        for _ in 0..100 {
            p.extend_from_slice(b"2\x86");
        }
        p.push(b'.');
        let a = Analyzer::new().run(&p);
        let mut out = Vec::new();
        show_limited(&a, &mut out, 300).expect("write");
        let s = String::from_utf8(out).expect("utf-8");
        assert!(s.len() <= 300 + 60, "{}", s.len());
        assert!(s.ends_with("# … output truncated at 300 bytes\n"), "{s}");
    }

    #[test]
    fn atom_len_matches_render_atoms() {
        let a = Analyzer::new()
            .run(b"\x80\x04(NK\x01G?\xf0\x00\x00\x00\x00\x00\x00\x8c\x01aC\x01b\x8c\x01m\x8c\x01n\x93]}l.");
        for v in &a.values {
            assert_eq!(atom_len(&a, v).is_some(), crate::view::render::atom(&a, v).is_some(), "{v:?}");
        }
    }
}
