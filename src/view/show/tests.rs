//! Unit tests of `pkinspect show`.

use super::graph::atom_len;
use super::naming::MAX_INLINE_HEIGHT;
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
        s.ends_with("_v4 = foo.Bar.__new__(foo.Bar)\n_v4.__setstate__({'a': 1})  # BUILD at offset 22\nresult = _v4\n"),
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
    let a =
        Analyzer::new().run(b"\x80\x04(NK\x01G?\xf0\x00\x00\x00\x00\x00\x00\x8c\x01aC\x01b\x8c\x01m\x8c\x01n\x93]}l.");
    for v in &a.values {
        assert_eq!(atom_len(&a, v).is_some(), crate::view::render::atom(&a, v).is_some(), "{v:?}");
    }
}
