//! The order of the statements: every named node is defined after the
//! named nodes its expression mentions (depth first, children before
//! parents), and every other statement (a fill, a patch, a discarded call)
//! is written right after the last definition it needs, the stream-ordered
//! ones keeping their order.

use std::collections::{HashSet, VecDeque};

use super::effects::{RootWhy, StreamEffects};
use super::graph::{Color, Graph};
use super::NONE;
use crate::vm::ValueId;

/// A statement placed after the definitions its expression needs.
pub(super) struct Post {
    /// Largest definition position among its dependencies (-1: none).
    pub(super) key: i64,
    /// 0 for fills, 1 for stream-ordered statements.
    pub(super) class: u8,
    pub(super) seq: usize,
    pub(super) kind: PostKind,
}

pub(super) enum PostKind {
    Fill(u32),
    Patch(usize),
    Discard { node: u32, offset: u64, why: RootWhy },
}

/// A stream-ordered statement (a patch, or a discarded call or import)
/// with the named nodes its text needs.
struct Timed {
    /// Index of its event.
    seq: usize,
    kind: PostKind,
    deps: Vec<u32>,
}

/// Where each statement goes.
pub(super) struct Plan {
    /// Named nodes in definition order.
    pub(super) defs: Vec<u32>,
    /// The other statements, in writing order: each goes after the
    /// definition at position `key`.
    pub(super) posts: Vec<Post>,
}

impl Graph<'_, '_> {
    /// Definition order, and the statements placed after definitions: what
    /// the result needs first, then what each stream-ordered statement
    /// needs, in stream order, then anything left.
    pub(super) fn plan(&mut self, root: Option<u32>, fx: &StreamEffects) -> Plan {
        let mut defs: Vec<u32> = Vec::new();
        let mut fills: VecDeque<u32> = VecDeque::new();
        let mut posts: Vec<(Post, Vec<u32>)> = Vec::new();
        let mut result_deps = Vec::new();
        if let Some(r) = root {
            self.closure(self.nodes[r as usize].id, false, &mut result_deps);
        }
        self.place_and_fill(&result_deps, &mut defs, &mut fills, &mut posts);
        let timed = self.timed_statements(fx);
        for t in &timed {
            self.place_and_fill(&t.deps, &mut defs, &mut fills, &mut posts);
        }
        self.place_rest(&mut defs, &mut fills, &mut posts);
        let posts = self.order_posts(posts, timed);
        Plan { defs, posts }
    }

    /// The stream-ordered statements, in stream order: every patch of a node
    /// in the graph, and every call or import whose value nothing uses.
    fn timed_statements(&self, fx: &StreamEffects) -> Vec<Timed> {
        let mut timed: Vec<Timed> = Vec::new();
        for (i, p) in fx.patches.iter().enumerate() {
            let Some(t) = self.node_of(p.target) else {
                continue;
            };
            let mut deps = vec![t];
            let (args, k) = p.op.args();
            for &c in &args[..k] {
                self.closure(c, false, &mut deps);
            }
            timed.push(Timed { seq: p.seq, kind: PostKind::Patch(i), deps });
        }
        let mut seen_roots: HashSet<ValueId> = HashSet::new();
        for x in &fx.extra {
            let Some(l) = self.node_of(x.id) else {
                continue;
            };
            let n = &self.nodes[l as usize];
            if !n.extra_root || n.refs > 0 || x.why == RootWhy::Patched || !seen_roots.insert(x.id) {
                continue;
            }
            let mut deps = Vec::new();
            self.closure(x.id, false, &mut deps);
            timed.push(Timed { seq: x.seq, kind: PostKind::Discard { node: l, offset: x.offset, why: x.why }, deps });
        }
        timed.sort_by_key(|t| t.seq);
        timed
    }

    /// Anything still unplaced (not expected): in arena order.
    fn place_rest(&mut self, defs: &mut Vec<u32>, fills: &mut VecDeque<u32>, posts: &mut Vec<(Post, Vec<u32>)>) {
        let mut rest: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&l| self.nodes[l as usize].named && self.nodes[l as usize].color == Color::White)
            .collect();
        rest.sort_by_key(|&l| self.nodes[l as usize].id);
        self.place_and_fill(&rest, defs, fills, posts);
    }

    /// The fills and the stream-ordered statements, each keyed by the last
    /// definition it needs, sorted into writing order.
    fn order_posts(&self, posts: Vec<(Post, Vec<u32>)>, timed: Vec<Timed>) -> Vec<Post> {
        let mut all: Vec<Post> = posts
            .into_iter()
            .map(|(mut post, deps)| {
                post.key = self.last_def(&deps);
                post
            })
            .collect();
        let mut prev = -1i64;
        for Timed { seq, kind, deps } in timed {
            // Stream-ordered statements keep their order.
            let key = self.last_def(&deps).max(prev);
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
        all
    }

    /// Largest definition position among `deps` (-1: none).
    fn last_def(&self, deps: &[u32]) -> i64 {
        deps.iter().map(|&d| self.nodes[d as usize].pos).filter(|&p| p != NONE).map(i64::from).max().unwrap_or(-1)
    }

    /// Places `roots` and what they need, then the contents of every split
    /// container met on the way.
    fn place_and_fill(
        &mut self,
        roots: &[u32],
        defs: &mut Vec<u32>,
        fills: &mut VecDeque<u32>,
        posts: &mut Vec<(Post, Vec<u32>)>,
    ) {
        self.place(roots, defs, fills);
        self.drain_fills(defs, fills, posts);
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
}
