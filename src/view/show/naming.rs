//! Which nodes get a statement of their own: those referenced more than
//! once, patched or on a cycle, and those whose inline text would make their
//! parent's expression too long or too deeply nested.

use crate::vm::Value;

use super::graph::{edge_at, Graph};
use super::name_len;

/// An inline expression longer than this (estimated) gets its larger or
/// call-bearing children named, so that the statement fits [`EXPR_BUDGET`](super::EXPR_BUDGET)
/// and no call is hidden past a truncation.
const SOFT_LEN: usize = 4_000;

/// A child at least this long (estimated) is named when its parent is too long.
const BIG_CHILD: usize = 200;

/// Most nesting levels written inline before a child is named; well under
/// [`crate::limits::MAX_RENDER_DEPTH`], where the renderer would cut.
pub(super) const MAX_INLINE_HEIGHT: u32 = 24;

/// A literal referenced more than once is named when its text is longer.
const LONG_ATOM: usize = 64;

/// The same for a global's name, which reads better inline.
const LONG_GLOBAL: usize = 256;

impl Graph<'_, '_> {
    /// Decides which nodes get a statement of their own.
    pub(super) fn choose_names(&mut self, order: &[u32]) {
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
}
