//! The text of the statements: definitions (`_v3 = ...`), fills, patches,
//! discarded calls and imports, and the `result = ...` line, with every named
//! node written as its name.

use std::io::Write;

use crate::view::render::Renderer;
use crate::vm::{Value, ValueId};

use super::effects::{Patch, PatchOp, RootWhy, StreamEffects};
use super::graph::Graph;
use super::order::{Plan, Post, PostKind};
use super::{name_of, Sink, Stop, EXPR_BUDGET};

impl Graph<'_, '_> {
    /// Writes `plan`: the statements due before any definition, then each
    /// definition followed by the statements due after it, then the rest
    /// and the `result` line.
    pub(super) fn write_plan<W: Write>(
        &self,
        plan: &Plan,
        root: Option<u32>,
        fx: &StreamEffects,
        sink: &mut Sink<W>,
    ) -> Result<(), Stop> {
        let names = |id: ValueId| {
            if self.is_named(id) {
                Some(name_of(id))
            } else {
                None
            }
        };
        let r = Renderer::new(self.a, EXPR_BUDGET).with_names(&names);
        let mut next = 0;
        self.write_posts(&plan.posts, -1, &mut next, &r, fx, sink)?;
        for (p, &v) in plan.defs.iter().enumerate() {
            sink.line(&self.definition(v, &r))?;
            self.write_posts(&plan.posts, p as i64, &mut next, &r, fx, sink)?;
        }
        self.write_posts(&plan.posts, i64::MAX, &mut next, &r, fx, sink)?;
        match root {
            Some(l) => sink.line(&format!("result = {}", self.reference(self.nodes[l as usize].id, &r)))?,
            None => sink.line("# no result: the pickle did not reach STOP")?,
        }
        Ok(())
    }

    /// Writes `posts[*next..]` up to the first whose key is past `upto`.
    fn write_posts<W: Write>(
        &self,
        posts: &[Post],
        upto: i64,
        next: &mut usize,
        r: &Renderer<'_>,
        fx: &StreamEffects,
        sink: &mut Sink<W>,
    ) -> Result<(), Stop> {
        while *next < posts.len() && posts[*next].key <= upto {
            sink.line(&self.post_text(&posts[*next].kind, r, fx))?;
            *next += 1;
        }
        Ok(())
    }

    /// `_vN = <expr>`, or for a split container `_vN = []` (`{}`, `set()`).
    fn definition(&self, v: u32, r: &Renderer<'_>) -> String {
        let id = self.nodes[v as usize].id;
        if self.nodes[v as usize].split {
            let empty = match self.a.value(id) {
                Value::List(_) => "[]",
                Value::Dict(_) => "{}",
                _ => "set()",
            };
            format!("{} = {empty}", name_of(id))
        } else {
            format!("{} = {}", name_of(id), r.expr(id))
        }
    }

    /// A fill, a patch or a discarded call or import.
    fn post_text(&self, kind: &PostKind, r: &Renderer<'_>, fx: &StreamEffects) -> String {
        match kind {
            PostKind::Fill(m) => {
                let id = self.nodes[*m as usize].id;
                let method = if matches!(self.a.value(id), Value::List(_)) { "extend" } else { "update" };
                format!("{}.{method}({})", name_of(id), r.expr(id))
            }
            PostKind::Patch(i) => self.patch_text(&fx.patches[*i], r, fx),
            PostKind::Discard { node, offset, why } => {
                let what = if *why == RootWhy::Import { "imported" } else { "called" };
                format!("{}  # {what} at offset {offset}, not used", r.expr(self.nodes[*node as usize].id))
            }
        }
    }

    /// `_vN.__setstate__(...)`, `.append(...)`, `[k] = v` or `.add(...)`,
    /// with the opcode and offset as a comment.
    fn patch_text(&self, p: &Patch, r: &Renderer<'_>, fx: &StreamEffects) -> String {
        let t = name_of(p.target);
        match p.op {
            PatchOp::Build(s) => match fx.hooks.get(&p.offset) {
                Some(&hook) => format!(
                    "{t}.__setstate__({})  # BUILD at offset {}, with __setstate__ = {}",
                    self.reference(s, r),
                    p.offset,
                    self.reference(hook, r)
                ),
                None => format!("{t}.__setstate__({})  # BUILD at offset {}", self.reference(s, r), p.offset),
            },
            PatchOp::Append(x) => format!("{t}.append({})  # APPEND(S) at offset {}", self.reference(x, r), p.offset),
            PatchOp::SetItem(k, v) => {
                format!("{t}[{}] = {}  # SETITEM(S) at offset {}", self.reference(k, r), self.reference(v, r), p.offset)
            }
            PatchOp::Add(x) => format!("{t}.add({})  # ADDITEMS at offset {}", self.reference(x, r), p.offset),
        }
    }

    /// `id` as its name when named, else as its expression.
    fn reference(&self, id: ValueId, r: &Renderer<'_>) -> String {
        if self.is_named(id) {
            name_of(id)
        } else {
            r.expr(id)
        }
    }
}
