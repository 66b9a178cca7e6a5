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
//!
//! [`Renderer`]: crate::view::render::Renderer

use std::io::{self, Write};

use crate::limits::{MAX_ANOMALY_LINES, MAX_SHOW_OUTPUT};
use crate::py::repr::escape_for_terminal;
use crate::vm::{Analysis, Anomaly, EventKind, PickleInfo, ValueId};

mod effects;
mod graph;
mod naming;
mod order;
#[cfg(test)]
mod tests;
mod write;

use effects::StreamEffects;
use graph::Graph;

/// Most characters of one expression in a statement (the [`Renderer`] budget).
///
/// [`Renderer`]: crate::view::render::Renderer
pub const EXPR_BUDGET: usize = 10_000;

/// No node: an arena id not in this pickle's graph, or a position not given.
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

/// The name of the node of arena id `id` in statements.
fn name_of(id: ValueId) -> String {
    format!("_v{id}")
}

/// The length of [`name_of`]`(id)`, without building it.
fn name_len(id: ValueId) -> usize {
    2 + id.checked_ilog10().unwrap_or(0) as usize + 1
}

impl Graph<'_, '_> {
    /// Writes pickle number `index`: its header, its statements and the
    /// result, then its anomalies. `events` are its events' indices.
    fn show_pickle<W: Write>(
        &mut self,
        index: usize,
        info: &PickleInfo,
        events: &[usize],
        sink: &mut Sink<W>,
    ) -> Result<(), Stop> {
        sink.line(&format!("# pickle {index} at offset {}, protocol {}", info.start, info.proto))?;
        let effects = StreamEffects::collect(self.a, events);
        let root = self.discover_all(info.root, &effects);
        let order = self.find_cycles();
        self.choose_names(&order);
        drop(order);
        let plan = self.plan(root, &effects);
        self.write_plan(&plan, root, &effects, sink)?;
        write_anomalies(self.a, events, sink)
    }
}
