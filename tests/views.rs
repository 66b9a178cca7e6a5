//! `pkinspect show` and `pkinspect dis` through the binary: through every
//! container `scan` reads, each pickle stream after a header line naming
//! its member and layers; `--member`; a plain pickle exactly as before; and
//! a reader that goes away early (`| head`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pkinspect::view::dis::dis_all;
use pkinspect::view::show::show;
use pkinspect::vm::Analyzer;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

fn pkinspect(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkinspect")).args(args).arg(file).output().expect("run pkinspect")
}

/// Runs `pkinspect ARGS FILE`, which must succeed; its stdout.
fn stdout(args: &[&str], file: &Path) -> String {
    let o = pkinspect(args, file);
    assert_eq!(o.status.code(), Some(0), "{args:?} {}: {}", file.display(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).expect("UTF-8")
}

#[test]
fn show_and_dis_of_a_pytorch_checkpoint() {
    let f = fixture("torch-real/views.pt");
    let s = stdout(&["show"], &f);
    assert!(s.starts_with("# === member views/data.pkl [zip] ===\n# pickle 0 at offset 0, protocol 2\n"), "{s}");
    assert!(s.contains("torch._utils._rebuild_tensor_v2(persistent_load(('storage', torch.FloatStorage, '0'"), "{s}");
    assert!(s.contains("\nresult = {'base': _v"), "{s}");
    let d = stdout(&["dis"], &f);
    assert!(d.starts_with("=== member views/data.pkl [zip] ===\n    0: \\x80 PROTO      2\n"), "{d}");
    assert!(d.contains(" BINPERSID\n") && d.ends_with("highest protocol among opcodes = 2\n"), "{d}");
    assert!(!d.contains("!!") && !d.contains("PERSID (at"), "{d}");
}

#[test]
fn compressed_joblib_lists_as_the_uncompressed_file() {
    // Every compressor gives the listing of the uncompressed file, after a
    // header naming the layer; array payloads are passed over, as joblib reads them.
    let plain_dis = stdout(&["dis"], &fixture("containers/joblib_mixed_p4.joblib"));
    let plain_show = stdout(&["show"], &fixture("containers/joblib_mixed_p4.joblib"));
    assert!(plain_dis.contains("\n--- 48 bytes of array data at offset 256 ---\n"), "{plain_dis}");
    assert!(plain_dis.contains("--- object array data at offset 1040: a nested pickle ---\n"), "{plain_dis}");
    assert!(plain_dis.contains("--- end of the nested pickle; the pickle goes on at offset 1198 ---\n"));
    assert!(plain_dis.ends_with("highest protocol among opcodes = 4\n") && !plain_dis.contains("!!"), "{plain_dis}");
    for (ext, layer) in [("z", "zlib"), ("gz", "gzip"), ("bz2", "bz2"), ("xz", "xz"), ("lzma", "lzma"), ("lz4", "lz4")]
    {
        let f = fixture(&format!("containers/joblib_mixed_p4.joblib.{ext}"));
        let header = format!("=== the file [{layer}] ===\n");
        let d = stdout(&["dis"], &f);
        assert_eq!(d.strip_prefix(&header), Some(plain_dis.as_str()), "dis {ext}");
        let s = stdout(&["show"], &f);
        assert_eq!(s.strip_prefix(&format!("# {header}")), Some(plain_show.as_str()), "show {ext}");
    }
}

#[test]
fn archives_show_every_pickle_member_and_pick_one() {
    let f = fixture("containers/bundle.tar");
    let s = stdout(&["show"], &f);
    let headers: Vec<&str> = s.lines().filter(|l| l.starts_with("# === ")).collect();
    assert_eq!(headers, ["# === member bundle/model.pkl [tar] ===", "# === member bundle/arrays.joblib [tar] ==="]);
    let d = stdout(&["dis"], &f);
    assert_eq!(d.matches("highest protocol among opcodes").count(), 2, "{d}");
    assert!(d.contains("bytes of array data at offset"), "{d}");
    // One member.
    let one = stdout(&["dis", "--member", "bundle/arrays.joblib"], &f);
    assert!(one.starts_with("=== member bundle/arrays.joblib [tar] ===\n"), "{one}");
    assert!(d.ends_with(&one), "the member's listing is the same alone");
    let one = stdout(&["show", "--member", "bundle/model.pkl"], &f);
    assert_eq!(one.matches("# === ").count(), 1, "{one}");
    // A name that holds no pickle is an error that lists those that do.
    for cmd in ["show", "dis"] {
        let o = pkinspect(&[cmd, "--member", "model.pkl"], &f);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(o.stdout.is_empty());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(
                "no member `model.pkl` holds a pickle; members with pickles: bundle/model.pkl, bundle/arrays.joblib"
            ),
            "{cmd}: {err}"
        );
    }
    // A gzip-compressed tar names both layers.
    let s = stdout(&["show"], &fixture("containers/bundle.tar.gz"));
    assert!(s.starts_with("# === member bundle/model.pkl [gzip > tar] ===\n"), "{s}");
}

#[test]
fn files_without_pickles_say_so() {
    let f = fixture("containers/numpy_savez.npz");
    assert_eq!(stdout(&["show"], &f), "# no pickle stream in this file (zip); not pickles: a.npy, b.npy\n");
    assert_eq!(stdout(&["dis"], &f), "--- no pickle stream in this file (zip); not pickles: a.npy, b.npy ---\n");
    let o = pkinspect(&["dis", "--member", "a.npy"], &f);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("member `a.npy` holds no pickle") && err.contains("no member of this file holds one"),
        "{err}"
    );
}

#[test]
fn object_npy_and_container_problems() {
    let s = stdout(&["show"], &fixture("containers/numpy_object.npy"));
    assert!(s.starts_with("# === the file [npy] ===\n# pickle 0 at offset "), "{s}");
    // What the walk finds wrong is said after the listing.
    let d = stdout(&["dis"], &fixture("containers/truncated_os_system.pkl.gz"));
    assert!(d.starts_with("=== the file [gzip] ===\n"), "{d}");
    assert!(d.contains("\n!! container: the file, offset "), "{d}");
}

#[test]
fn a_plain_pickle_is_shown_as_before() {
    for rel in [
        "benign/sklearn_logreg_iris_p4.pkl",
        "hostile/benign_then_malicious.pkl",
        "hostile/truncated_after_reduce_p0.pkl",
        "hostile/unknown_opcode_after_reduce_p2.pkl",
    ] {
        let f = fixture(rel);
        let data = std::fs::read(&f).expect("fixture");
        let mut want = Vec::new();
        dis_all(&data, &mut want).expect("write");
        assert_eq!(stdout(&["dis"], &f), String::from_utf8(want).expect("UTF-8"), "dis {rel}");
        let mut want = Vec::new();
        show(&Analyzer::new().run(&data), &mut want).expect("write");
        assert_eq!(stdout(&["show"], &f), String::from_utf8(want).expect("UTF-8"), "show {rel}");
    }
}

/// Runs `pkinspect ARGS` with stdout a real pipe, reads one line and closes
/// the pipe: the command must end with status 0 and no panic message.
fn first_line_then_close(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pkinspect");
    let mut line = String::new();
    {
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        reader.read_line(&mut line).expect("read one line");
    }
    let o = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
    line
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let summary = fixture("benign/sklearn_logreg_iris_p4.pkl");
    let line = first_line_then_close(&["show", "--summary", summary.to_str().expect("UTF-8 path")]);
    assert!(line.starts_with('┌'), "{line}");
    // A million opcodes: tens of megabytes of listing, far more than a pipe holds.
    let big = fixture("hostile/long_stream_1m_ops_p2.pkl");
    let line = first_line_then_close(&["dis", big.to_str().expect("UTF-8 path")]);
    assert!(line.starts_with("    0: \\x80 PROTO"), "{line}");
    let line = first_line_then_close(&["show", big.to_str().expect("UTF-8 path")]);
    assert!(line.starts_with("# pickle 0"), "{line}");
}
