//! What a pickle's stream did besides building its result, read from its
//! events: patches (`BUILD`, and `APPEND`/`SETITEM`/`ADDITEMS` on objects),
//! calls and imports, and the `__setstate__` hooks BUILDs call.

use std::collections::HashMap;

use crate::vm::{Analysis, CallKind, EventKind, ValueId};

/// Something done to an object after it was created.
#[derive(Clone, Copy)]
pub(super) enum PatchOp {
    Build(ValueId),
    Append(ValueId),
    SetItem(ValueId, ValueId),
    Add(ValueId),
}

impl PatchOp {
    pub(super) fn args(self) -> ([ValueId; 2], usize) {
        match self {
            PatchOp::Build(x) | PatchOp::Append(x) | PatchOp::Add(x) => ([x, x], 1),
            PatchOp::SetItem(k, v) => ([k, v], 2),
        }
    }
}

pub(super) struct Patch {
    pub(super) target: ValueId,
    pub(super) offset: u64,
    pub(super) op: PatchOp,
    /// Index of the event, for stream order.
    pub(super) seq: usize,
}

/// What made a value a root of its own (besides the pickle's result).
#[derive(Clone, Copy, PartialEq)]
pub(super) enum RootWhy {
    Call,
    Import,
    Patched,
}

pub(super) struct ExtraRoot {
    pub(super) id: ValueId,
    pub(super) offset: u64,
    pub(super) why: RootWhy,
    pub(super) seq: usize,
}

/// The effects of one pickle's events.
pub(super) struct StreamEffects {
    /// Patches, in stream order.
    pub(super) patches: Vec<Patch>,
    /// Values the stream patched, called or imported, in stream order.
    pub(super) extra: Vec<ExtraRoot>,
    /// BUILDs that call a `__setstate__` an earlier BUILD planted: the
    /// BUILD's offset and the hook.
    pub(super) hooks: HashMap<u64, ValueId>,
    /// Indices in `patches` by target.
    pub(super) by_target: HashMap<ValueId, Vec<usize>>,
}

impl StreamEffects {
    /// The effects of `events` (indices into `a.events`, in stream order).
    pub(super) fn collect(a: &Analysis, events: &[usize]) -> StreamEffects {
        let (patches, extra) = patches_and_roots(a, events);
        let hooks = setstate_hooks(a, events);
        let mut by_target: HashMap<ValueId, Vec<usize>> = HashMap::new();
        for (i, p) in patches.iter().enumerate() {
            by_target.entry(p.target).or_default().push(i);
        }
        StreamEffects { patches, extra, hooks, by_target }
    }
}

/// Patches and roots from the events, in stream order.
fn patches_and_roots(a: &Analysis, events: &[usize]) -> (Vec<Patch>, Vec<ExtraRoot>) {
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
                kind: kind @ (CallKind::Append | CallKind::SetItem | CallKind::Add), func, args, ..
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
            EventKind::Call { result, .. } => extra.push(ExtraRoot { id: *result, offset, why: RootWhy::Call, seq }),
            EventKind::Import { value, .. } | EventKind::ComputedImport { value } => {
                extra.push(ExtraRoot { id: *value, offset, why: RootWhy::Import, seq })
            }
            _ => {}
        }
    }
    (patches, extra)
}

/// BUILDs that call a `__setstate__` an earlier BUILD planted.
fn setstate_hooks(a: &Analysis, events: &[usize]) -> HashMap<u64, ValueId> {
    let mut hooks: HashMap<u64, ValueId> = HashMap::new();
    for &seq in events {
        let e = &a.events[seq];
        if let EventKind::Call { kind: CallKind::SetState, func, .. } = &e.kind {
            hooks.insert(e.offset, *func);
        }
    }
    hooks
}
