//! The machine's unit tests.

use super::*;
use crate::error::ErrorKind;
use crate::limits::{MAX_INLINE_ARG, MAX_KEPT_VALUE_BYTES, MAX_MARK_DEPTH};
use crate::pickle::source::ByteSource;
use std::sync::Arc;

fn imports(a: &Analysis) -> Vec<String> {
    a.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Import { module, name, .. } => Some(format!("{module}.{name}")),
            _ => None,
        })
        .collect()
}

fn calls(a: &Analysis) -> Vec<(CallKind, ValueId)> {
    a.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Call { kind, func, .. } => Some((*kind, *func)),
            _ => None,
        })
        .collect()
}

fn anomalies(a: &Analysis) -> Vec<Anomaly> {
    a.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Anomaly(x) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn protocol0_reduce() {
    let a = Analyzer::new().run(b"cos\nsystem\n(S'echo hi'\ntR.");
    assert_eq!(imports(&a), vec!["os.system"]);
    let c = calls(&a);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, CallKind::Reduce);
    assert!(a.error.is_none());
    assert_eq!(a.events[0].offset, 0);
    assert_eq!(a.events[1].offset, 24);
}

#[test]
fn py2_names_are_mapped() {
    let a = Analyzer::new().run(b"ccommands\ngetoutput\n(S'x'\ntR.");
    assert_eq!(imports(&a), vec!["subprocess.getoutput"]);
}

#[test]
fn memo_pop_trick_still_resolves() {
    // GLOBAL, BINPUT 0, POP, BINGET 0, args, REDUCE
    let a = Analyzer::new().run(b"\x80\x02cos\nsystem\nq\x000h\x00X\x02\x00\x00\x00hi\x85R.");
    let c = calls(&a);
    assert_eq!(c.len(), 1);
    assert!(matches!(a.value(c[0].1), Value::Global(g) if &*g.module == "os"));
}

#[test]
fn setstate_hijack_becomes_a_call() {
    // OrderedDict() ; BUILD (None, {'__setstate__': os.system}) ; BUILD 'x'
    let p = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93)\x81N}\x8c\x0c__setstate__\x8c\x02os\x8c\x06system\x93s\x86b\x8c\x01xb.";
    let a = Analyzer::new().run(p);
    let c = calls(&a);
    assert_eq!(c.last().map(|c| c.0), Some(CallKind::SetState));
    assert!(matches!(a.value(c.last().unwrap().1), Value::Global(g) if &*g.name == "system"));
    assert!(anomalies(&a).contains(&Anomaly::DunderState { attr: "__setstate__".into() }));
}

/// A state dict applied again after it grew: the new keys count (the
/// machine reads only the pairs added since the last BUILD that applied it).
#[test]
fn state_dict_applied_again_after_it_grew() {
    // d = {'a': 1}; o1 = OrderedDict(); BUILD o1 with d; d['__setstate__'] = os.system;
    // o2 = OrderedDict(); BUILD o2 with d; BUILD o2 with 'x' -> os.system('x')
    let p = b"\x80\x04}\x94\x8c\x01aK\x01s\x8c\x0bcollections\x8c\x0bOrderedDict\x93\x94)\x81h\x00b0\
              h\x00\x8c\x0c__setstate__\x8c\x02os\x8c\x06system\x93s0\
              h\x01)\x81h\x00b\x8c\x01xb.";
    let a = Analyzer::new().run(p);
    assert!(a.error.is_none(), "{:?}", a.error);
    let c = calls(&a);
    assert_eq!(c.last().map(|c| c.0), Some(CallKind::SetState), "{c:?}");
    assert!(matches!(a.value(c.last().unwrap().1), Value::Global(g) if &*g.name == "system"));
    let dunders = anomalies(&a).into_iter().filter(|x| matches!(x, Anomaly::DunderState { .. })).count();
    assert_eq!(dunders, 1, "the first BUILD saw no dunder, the second one");
}

/// An attribute planted on a class reaches instances made from another
/// import of the same name, and no other class.
#[test]
fn class_plants_reach_every_import_of_the_class() {
    // BUILD OrderedDict (the class) with (None, {'__setstate__': os.system});
    // then a new import of OrderedDict, an instance, BUILD 'x'; and a
    // collections.Counter instance, BUILD 'y' (not planted).
    let p =
        b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93N}\x8c\x0c__setstate__\x8c\x02os\x8c\x06system\x93s\x86b0\
              \x8c\x0bcollections\x8c\x07Counter\x93)\x81\x8c\x01yb0\
              \x8c\x0bcollections\x8c\x0bOrderedDict\x93)\x81\x8c\x01xb.";
    let a = Analyzer::new().run(p);
    assert!(a.error.is_none(), "{:?}", a.error);
    let hooks: Vec<_> = calls(&a).into_iter().filter(|c| c.0 == CallKind::SetState).collect();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert!(matches!(a.value(hooks[0].1), Value::Global(g) if &*g.name == "system"));
}

/// A STACK_GLOBAL repeated on the same memoised names is one value whose
/// names every import event shares; what events say about a long name
/// is cut.
#[test]
fn repeated_imports_share_one_value_and_long_names_are_cut() {
    let name = format!("A.{}", "b".repeat(5000));
    let mut p = b"\x80\x04\x8c\x05mypkg\x94X".to_vec();
    p.extend_from_slice(&(name.len() as u32).to_le_bytes());
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(b"\x94");
    for _ in 0..3 {
        p.extend_from_slice(b"h\x00h\x01\x930");
    }
    p.extend_from_slice(b"N.");
    let a = Analyzer::new().run(&p);
    let imports: Vec<(&Arc<str>, ValueId)> = a
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Import { name, value, .. } => Some((name, *value)),
            _ => None,
        })
        .collect();
    assert_eq!(imports.len(), 3);
    assert!(imports.iter().all(|(n, v)| Arc::ptr_eq(n, imports[0].0) && *v == imports[0].1));
    assert_eq!(&**imports[0].0, name.as_str(), "the import has the whole name");
    let dotted: Vec<String> = anomalies(&a)
        .into_iter()
        .filter_map(|x| match x {
            Anomaly::DottedName { name } => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(dotted.len(), 3);
    assert!(dotted[0].starts_with("mypkg.A.bbb") && dotted[0].ends_with('…'), "{}", &dotted[0][..20]);
    assert!(dotted[0].len() <= SHOWN_NAME_BYTES + '…'.len_utf8());
}

#[test]
fn extension_registered_in_stream() {
    let p = b"\x80\x02ccopyreg\nadd_extension\nX\x02\x00\x00\x00osX\x06\x00\x00\x00systemK\xf0\x87R0\x82\xf0X\x01\x00\x00\x00x\x85R.";
    let a = Analyzer::new().run(p);
    assert_eq!(imports(&a), vec!["copyreg.add_extension", "os.system"]);
    assert_eq!(calls(&a).len(), 2);
}

#[test]
fn computed_stack_global() {
    let p = b"\x80\x04c_codecs\ndecode\n\x8c\x02bf\x8c\x05rot13\x86R\x8c\x06system\x93)R.";
    let a = Analyzer::new().run(p);
    assert!(anomalies(&a).contains(&Anomaly::ComputedGlobal));
    assert!(a.events.iter().any(|e| matches!(e.kind, EventKind::ComputedImport { .. })));
}

#[test]
fn underflow_and_missing_memo_keep_going() {
    let a = Analyzer::new().run(b"\x80\x02Rh\x05cos\nsystem\n)R.");
    let an = anomalies(&a);
    assert!(an.contains(&Anomaly::StackUnderflow { opcode: "REDUCE" }));
    assert!(an.contains(&Anomaly::MemoMissing { key: 5 }));
    assert_eq!(imports(&a), vec!["os.system"]);
}

#[test]
fn second_pickle_and_trailing_data() {
    let a = Analyzer::new().run(b"N.cos\nsystem\n)R.");
    assert_eq!(a.pickles.len(), 2);
    assert!(anomalies(&a).contains(&Anomaly::AnotherPickle { index: 1 }));
    assert_eq!(imports(&a), vec!["os.system"]);
    let a = Analyzer::new().run(b"N.\x00\x01\x02");
    assert_eq!(a.pickles.len(), 1);
    assert!(matches!(anomalies(&a)[..], [Anomaly::TrailingData { .. }]));
    assert!(a.error.is_none());
}

#[test]
fn truncation_keeps_earlier_events() {
    let a = Analyzer::new().run(b"cos\nsystem\n(S'x'\ntR\x8c\x10ab");
    assert_eq!(calls(&a).len(), 1);
    assert!(matches!(
        a.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::BadLength { declared: 16, remaining: Some(2), .. })
    ));
    let a = Analyzer::new().run(b"cos\nsystem\n(S'x'\ntR");
    assert!(anomalies(&a).contains(&Anomaly::MissingStop));
}

#[test]
fn memo_dag_stays_small() {
    // x = []; repeat 100 times: x = (x, x)
    let mut p = b"\x80\x02]".to_vec();
    for _ in 0..100 {
        p.extend_from_slice(b"2\x86");
    }
    p.push(b'.');
    let a = Analyzer::new().run(&p);
    assert!(a.values.len() < 300);
    assert!(a.pickles[0].root.is_some());
}

#[test]
fn values_stay_small() {
    // Millions of values per file: keep each to two words.
    assert!(std::mem::size_of::<Value>() <= 16, "{}", std::mem::size_of::<Value>());
}

/// Strings share one text buffer; one past MAX_KEPT_VALUE_BYTES keeps
/// its place and a prefix, one past MAX_INLINE_ARG is never read.
#[test]
fn strings_kept_whole_in_part_or_skipped() {
    let long = "é".repeat(MAX_KEPT_VALUE_BYTES / 2 + 10); // 2 bytes each
    let huge = "x".repeat(MAX_INLINE_ARG + 1);
    let mut p = b"\x80\x04(\x8c\x03abcX".to_vec();
    p.extend_from_slice(&(long.len() as u32).to_le_bytes());
    let long_at = p.len() as u64;
    p.extend_from_slice(long.as_bytes());
    p.push(b'X');
    p.extend_from_slice(&(huge.len() as u32).to_le_bytes());
    let huge_at = p.len() as u64;
    p.extend_from_slice(huge.as_bytes());
    p.extend_from_slice(b"\x8c\x03d\xc3\xa9t.");
    let a = Analyzer::new().run(&p);
    assert!(a.error.is_none() && a.pickles.len() == 1, "{:?}", a.error);
    let items = a.tuple(a.pickles[0].root.expect("root")).expect("tuple").to_vec();
    let strs: Vec<BlobView<'_, str>> = items
        .iter()
        .map(|&id| match a.value(id) {
            Value::Str(r) => a.str(*r),
            v => panic!("{v:?}"),
        })
        .collect();
    assert_eq!(strs[0], BlobView::Full("abc"));
    assert_eq!(strs[3], BlobView::Full("dé"));
    assert_eq!(a.text, "abcdé", "only the strings kept whole are in the buffer");
    let BlobView::Part(p1) = &strs[1] else { panic!("{:?}", strs[1]) };
    assert_eq!((p1.offset, p1.len), (long_at, long.len() as u64));
    assert!(p1.prefix.as_deref().is_some_and(|s| long.starts_with(s) && !s.is_empty()));
    let BlobView::Part(p2) = &strs[2] else { panic!("{:?}", strs[2]) };
    assert_eq!((p2.offset, p2.len, p2.prefix.as_deref()), (huge_at, huge.len() as u64, None));
    assert_eq!(a.full_str(items[0]), Some("abc"));
    assert_eq!(a.full_str(items[1]), None);
}

/// A source that never offers its window, so every opcode takes the
/// general path (`OpReader::next_op`).
struct NoWindow<'a>(crate::pickle::source::SliceSource<'a>);

impl ByteSource for NoWindow<'_> {
    fn position(&self) -> u64 {
        self.0.position()
    }
    fn remaining(&self) -> Option<u64> {
        self.0.remaining()
    }
    fn take(&mut self, n: usize) -> std::io::Result<Option<&[u8]>> {
        self.0.take(n)
    }
    fn take_line(&mut self, max: usize) -> std::io::Result<crate::pickle::source::Line<'_>> {
        self.0.take_line(max)
    }
    fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        self.0.skip(n)
    }
    fn at_eof(&mut self) -> std::io::Result<bool> {
        self.0.at_eof()
    }
}

fn summary(a: &Analysis) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{} {}",
        a.events, a.values, a.items, a.text, a.long_strs, a.pickles, a.error, a.ops, a.bytes
    )
}

/// The fast path for fixed-width opcodes must change nothing: every
/// fixture (and every prefix of the small ones, to cut opcodes and
/// frames short) analyses the same through a slice, through a stream
/// window, and through the general path alone.
#[test]
fn fast_path_agrees_with_general_path() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut dirs = vec![root];
    let mut files = 0;
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if !matches!(p.extension().and_then(|x| x.to_str()), Some("pkl" | "joblib" | "bin")) {
                continue;
            }
            let data = std::fs::read(&p).unwrap();
            files += 1;
            let cuts: Vec<usize> = if data.len() <= 300 { (0..=data.len()).collect() } else { vec![data.len()] };
            for n in cuts {
                let d = &data[..n];
                let general = summary(&Analyzer::new().run(NoWindow(crate::pickle::source::SliceSource::new(d, 0))));
                let fast = summary(&Analyzer::new().run(d));
                assert_eq!(fast, general, "{} cut at {n}", p.display());
                let stream = crate::pickle::source::ReadSource::new(d, Some(n as u64));
                assert_eq!(summary(&Analyzer::new().run(stream)), general, "{} (stream) cut at {n}", p.display());
            }
        }
    }
    assert!(files > 100, "{files}");
}

#[test]
fn deep_marks_hit_a_limit_not_the_stack() {
    let p = vec![b'('; MAX_MARK_DEPTH + 10];
    let a = Analyzer::new().run(&p);
    assert!(anomalies(&a).contains(&Anomaly::LimitExceeded { limit: "MAX_MARK_DEPTH" }));
}
