//! Unit tests of `pkinspect dis`.

use super::args::TOO_LARGE;
use super::emulate::{code_repr, INDENT_CHUNK};
use super::*;
use crate::limits::MAX_INDENT_LEVELS;
use crate::py::codec::{raw_unicode_escape_codepoints, utf8_surrogatepass_codepoints};

fn dis(data: &[u8]) -> String {
    let mut v = Vec::new();
    dis_one(data, 0, &mut v).expect("writing to a Vec");
    String::from_utf8(v).expect("utf-8 output")
}

fn dis_all_str(data: &[u8]) -> String {
    let mut v = Vec::new();
    dis_all(data, &mut v).expect("writing to a Vec");
    String::from_utf8(v).expect("utf-8 output")
}

#[test]
fn dis_protocol_0_list() {
    // pickle.dumps([1, 2, (3, 4), {b'abc': "def"}], 0), from pickletools' doctest.
    let p =
        b"(lp0\nI1\naI2\na(I3\nI4\ntp1\na(dp2\nc_codecs\nencode\np3\n(Vabc\np4\nVlatin1\np5\ntp6\nRp7\nVdef\np8\nsa.";
    let got = dis(p);
    let want = "    0: (    MARK
    1: l        LIST       (MARK at 0)
    2: p    PUT        0
    5: I    INT        1
    8: a    APPEND
    9: I    INT        2
   12: a    APPEND
   13: (    MARK
   14: I        INT        3
   17: I        INT        4
   20: t        TUPLE      (MARK at 13)
   21: p    PUT        1
   24: a    APPEND
   25: (    MARK
   26: d        DICT       (MARK at 25)
   27: p    PUT        2
   30: c    GLOBAL     '_codecs encode'
   46: p    PUT        3
   49: (    MARK
   50: V        UNICODE    'abc'
   55: p        PUT        4
   58: V        UNICODE    'latin1'
   66: p        PUT        5
   69: t        TUPLE      (MARK at 49)
   70: p    PUT        6
   73: R    REDUCE
   74: p    PUT        7
   77: V    UNICODE    'def'
   82: p    PUT        8
   85: s    SETITEM
   86: a    APPEND
   87: .    STOP
highest protocol among opcodes = 0
";
    assert_eq!(got, want);
}

#[test]
fn dis_text_args_as_pickletools_reads_them() {
    let got = dis(b"(I00\nI01\ng00\nS'a\\x41'\nL12L\nT\x01\x00\x00\x00\xe9F1.5\nV\\ud800\nl.");
    let want = "    0: (    MARK
    1: I        INT        False
    5: I        INT        True
    9: g        GET        False
!! memo key False has never been stored into
   13: S        STRING     'aA'
   22: L        LONG       12
   27: T        BINSTRING  '\u{e9}'
   33: F        FLOAT      1.5
   38: V        UNICODE    '\\ud800'
   46: l        LIST       (MARK at 0)
   47: .    STOP
highest protocol among opcodes = 1
";
    assert_eq!(got, want);
}

#[test]
fn dis_errors_are_reported_and_skipped() {
    let got = dis(b"N\x94\x94t00.");
    let want = "    0: N    NONE
    1: \\x94 MEMOIZE    (as 0)
    2: \\x94 MEMOIZE    (as 1)
    3: t    TUPLE      no MARK exists on stack
!! no MARK exists on stack
    4: 0    POP
    5: 0    POP
    6: .    STOP
!! tries to pop 1 items from stack with only 0 items
highest protocol among opcodes = 4
";
    assert_eq!(got, want);
    let got = dis(b"NN.");
    assert!(got.ends_with("= 0\n!! stack not empty after STOP: [None]\n"), "{got}");
    let got = dis(b"N\x94q\x00.");
    assert!(got.contains("BINPUT     0\n!! memo key 0 already defined\n"), "{got}");
}

#[test]
fn dis_reader_errors_stop() {
    let got = dis(b"N\xff.");
    assert!(got.ends_with("!! error: unknown opcode byte 0xff (at offset 1)\n"), "{got}");
    let mut v = Vec::new();
    assert!(matches!(dis_one(b"N", 0, &mut v), Ok(DisEnd::Eof { offset: 1 })));
    assert!(matches!(dis_one(b"NX\x05\x00", 0, &mut v), Ok(DisEnd::Error(_))));
    assert!(matches!(dis_one(b"N.N.", 2, &mut v), Ok(DisEnd::Stop { end: 4 })));
}

#[test]
fn dis_huge_ints_are_not_printed() {
    let mut p = vec![0x8b];
    p.extend_from_slice(&3000u32.to_le_bytes());
    p.extend(std::iter::repeat_n(0x11, 3000));
    p.push(b'.');
    let got = dis(&p);
    assert!(got.contains(TOO_LARGE), "{got}");
    assert!(got.contains("!! pickletools would fail here: ValueError: Exceeds the limit"), "{got}");
}

#[test]
fn dis_indent_is_capped() {
    let mut p = vec![b'('; 100];
    p.push(b'N');
    let got = dis(&p);
    let last = got.lines().nth(100).unwrap_or_default();
    assert_eq!(last, format!("  100: N    {}(…100 levels) NONE", INDENT_CHUNK.repeat(MAX_INDENT_LEVELS)));
}

#[test]
fn dis_all_separates_pickles() {
    let got = dis_all_str(b"N.\x80\x02K\x01.\x00\x00");
    let want = "    0: N    NONE
    1: .    STOP
highest protocol among opcodes = 0
--- pickle 2 at offset 2 ---
    2: \\x80 PROTO      2
    4: K    BININT1    1
    6: .    STOP
highest protocol among opcodes = 2
--- trailing data: 2 bytes at offset 7 ---
";
    assert_eq!(got, want);
}

#[test]
fn dis_code_repr() {
    assert_eq!(code_repr(b'('), "(");
    assert_eq!(code_repr(0x80), "\\x80");
}

#[test]
fn dis_surrogatepass() {
    assert_eq!(utf8_surrogatepass_codepoints(b"a\xed\xb2\x80b"), Some(vec![0x61, 0xdc80, 0x62]));
    assert_eq!(utf8_surrogatepass_codepoints(b"a\xffb"), None);
    assert_eq!(raw_unicode_escape_codepoints(br"\\\ud800"), Some(vec![0x5c, 0x5c, 0xd800]));
}
