//! Every named limit of the machine, hit on purpose: the result is a
//! PK209 finding (analysis stopped, what came before kept) and never a
//! crash. The limits are lowered through `Limits` so each input stays tiny;
//! the default values are the constants in `src/limits.rs`.

use pkinspect::limits::{Limits, MAX_CONTAINER_DEPTH, MAX_LINE_ARG, MAX_LONG_BYTES};
use pkinspect::policy::Policy;
use pkinspect::rules::{check, Rule};
use pkinspect::scan::Scanner;
use pkinspect::vm::Analyzer;

/// A dangerous call first, so we can see it survives the limit.
const CALL: &[u8] = b"cos\nsystem\n(S'echo'\ntR0";

fn rules_with(data: &[u8], limits: Limits) -> Vec<Rule> {
    let a = Analyzer::new().limits(limits).run(data);
    check(&a, &Policy::builtin()).findings.iter().map(|f| f.rule).collect()
}

fn hits(name: &str, data: Vec<u8>, limits: Limits) {
    let rules = rules_with(&data, limits);
    assert!(rules.contains(&Rule::LimitExceeded), "{name}: no PK209 in {rules:?}");
    assert!(rules.contains(&Rule::DangerousCall), "{name}: the call before the limit was lost: {rules:?}");
}

fn with_call(body: &[u8]) -> Vec<u8> {
    let mut d = CALL.to_vec();
    d.extend_from_slice(body);
    d
}

#[test]
fn max_ops() {
    hits("MAX_OPS", with_call(&b"N0".repeat(100)), Limits { max_ops: 50, ..Limits::default() });
}

#[test]
fn max_stack_depth() {
    hits("MAX_STACK_DEPTH", with_call(&b"N".repeat(100)), Limits { max_stack_depth: 50, ..Limits::default() });
}

#[test]
fn max_mark_depth() {
    hits("MAX_MARK_DEPTH", with_call(&b"(".repeat(100)), Limits { max_mark_depth: 50, ..Limits::default() });
}

#[test]
fn max_memo_entries() {
    hits("MAX_MEMO_ENTRIES", with_call(&b"N\x94".repeat(100)), Limits { max_memo_entries: 50, ..Limits::default() });
}

#[test]
fn max_values() {
    hits("MAX_VALUES", with_call(&b"N0".repeat(100)), Limits { max_values: 50, ..Limits::default() });
}

#[test]
fn max_pickles_per_file() {
    let mut d = CALL.to_vec();
    d.extend_from_slice(b"N.");
    d.extend_from_slice(&b"N.".repeat(100));
    hits("MAX_PICKLES_PER_FILE", d, Limits { max_pickles_per_file: 20, ..Limits::default() });
}

#[test]
fn max_events() {
    // Every GLOBAL records an import event.
    hits("MAX_EVENTS", with_call(&b"cfoo\nbar\n0".repeat(100)), Limits { max_events: 50, ..Limits::default() });
}

#[test]
fn max_nested_pickles() {
    // joblib object arrays nest whole pickles; build a chain deeper than the limit.
    fn wrapper_obj() -> Vec<u8> {
        let mut e = b"\x80\x04cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(".to_vec();
        e.extend_from_slice(b"X\x05\x00\x00\x00shapeK\x01\x85");
        e.extend_from_slice(b"X\x05\x00\x00\x00dtypecnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R");
        e.extend_from_slice(b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb");
        e.extend_from_slice(b"ub");
        e
    }
    let mut d = CALL.to_vec();
    for _ in 0..10 {
        d.extend_from_slice(&wrapper_obj());
    }
    hits("MAX_NESTED_PICKLES", d, Limits { max_nested_pickles: 4, ..Limits::default() });
}

#[test]
fn reader_limits_are_errors_with_offsets() {
    // A GLOBAL line longer than MAX_LINE_ARG, and a LONG4 longer than MAX_LONG_BYTES.
    let mut d = with_call(b"c");
    d.extend(std::iter::repeat_n(b'a', MAX_LINE_ARG + 10));
    let rules = rules_with(&d, Limits::default());
    assert!(rules.contains(&Rule::MalformedStream) && rules.contains(&Rule::DangerousCall), "{rules:?}");
    let mut d = with_call(b"\x8b");
    d.extend_from_slice(&((MAX_LONG_BYTES + 1) as u32).to_le_bytes());
    d.extend(std::iter::repeat_n(0u8, MAX_LONG_BYTES + 1));
    let rules = rules_with(&d, Limits::default());
    assert!(rules.contains(&Rule::MalformedStream) && rules.contains(&Rule::DangerousCall), "{rules:?}");
}

#[test]
fn max_container_depth() {
    // A pickle inside gzip inside gzip ... deeper than MAX_CONTAINER_DEPTH.
    use std::io::Write;
    let mut data = CALL.to_vec();
    data.push(b'.');
    for _ in 0..MAX_CONTAINER_DEPTH + 2 {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).expect("in-memory gzip");
        data = enc.finish().expect("in-memory gzip");
    }
    let dir = std::env::temp_dir().join(format!("pkinspect-depth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("deep.gz");
    std::fs::write(&path, &data).expect("write");
    let r = Scanner::new(&Policy::builtin()).scan_file(&path);
    let _ = std::fs::remove_dir_all(&dir);
    let rules: Vec<Rule> = r.findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&Rule::LimitExceeded), "{rules:?}");
}

#[test]
fn max_archive_members() {
    // A zip with one member more than MAX_ARCHIVE_MEMBERS: a PK209 finding
    // and a clean exit (the archive's members are then not walked).
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("evil.pkl", stored).expect("zip writer");
    w.write_all(b"cos\nsystem\n(S'echo'\ntR.").expect("zip writer");
    for i in 0..pkinspect::limits::MAX_ARCHIVE_MEMBERS {
        w.start_file(format!("{i}"), stored).expect("zip writer");
    }
    let data = w.finish().expect("zip writer").into_inner();
    let dir = std::env::temp_dir().join(format!("pkinspect-members-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("many.zip");
    std::fs::write(&path, &data).expect("write");
    let r = Scanner::new(&Policy::builtin()).scan_file(&path);
    let _ = std::fs::remove_dir_all(&dir);
    let rules: Vec<Rule> = r.findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&Rule::LimitExceeded), "{rules:?}");
}
