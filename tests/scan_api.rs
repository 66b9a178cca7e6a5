//! The library's scan entry points: [`Scanner`] for one file or one byte
//! slice, and [`scan_paths`] for what a command line names, with its
//! [`Progress`] callbacks and the git hook's selection.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use pkinspect::policy::config::{ConfigSource, Flags, Policies};
use pkinspect::policy::Policy;
use pkinspect::rules::Rule;
use pkinspect::scan::{scan_paths, NoProgress, Options, Progress, Scanner};

/// A fresh scratch folder under the target dir.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scan_api").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// A ustar archive of one regular file.
fn tar(name: &str, body: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", body.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[test]
fn reader_errors_name_their_member() {
    let dir = scratch("member");
    let path = dir.join("bundle.tar");
    std::fs::write(&path, tar("model.pkl", b"\x80\x04cos\nsystem\n\xff")).expect("write");
    let policy = Policy::builtin();
    let r = Scanner::new(&policy).scan_file(&path);
    let f = r.findings.iter().find(|f| f.rule == Rule::MalformedStream).expect("a malformed-stream finding");
    assert_eq!(f.member.as_deref(), Some("model.pkl"));
    assert_eq!(f.message, "unknown opcode byte 0xff (at offset 13 in member model.pkl)");
    // The file itself has no member: its errors say only where.
    let r = Scanner::new(&policy).scan_bytes("x.pkl", b"\x80\x04cos\nsystem\n\xff");
    let f = r.findings.iter().find(|f| f.rule == Rule::MalformedStream).expect("a malformed-stream finding");
    assert_eq!((f.member.as_deref(), f.message.as_str()), (None, "unknown opcode byte 0xff (at offset 13)"));
}

#[test]
fn options_change_nothing_but_what_they_say() {
    let policy = Policy::builtin();
    let path = fixture("hostile/os_system_global_p0.pkl");
    let plain = Scanner::new(&policy).scan_file(&path);
    let read = AtomicU64::new(0);
    let counted = Scanner::new(&policy).progress(&read).free_analyses(false).scan_file(&path);
    assert_eq!(plain, counted);
    assert!(read.load(Ordering::Relaxed) >= plain.size, "every byte counted");
    assert!(plain.findings.iter().any(|f| f.rule == Rule::DangerousCall));
    let data = std::fs::read(&path).expect("read");
    let in_memory = Scanner::new(&policy).scan_bytes(&path.display().to_string(), &data);
    assert_eq!(in_memory, plain);
}

/// A [`Progress`] that records what it is told.
#[derive(Default)]
struct Recorder {
    started: Vec<PathBuf>,
    workers: usize,
    counters: Vec<AtomicU64>,
    done: AtomicUsize,
    seen: Mutex<Vec<PathBuf>>,
    finished: bool,
}

impl Progress for Recorder {
    fn start(&mut self, files: &[&Path], workers: usize) {
        self.started = files.iter().map(|f| f.to_path_buf()).collect();
        self.workers = workers;
        self.counters = (0..workers).map(|_| AtomicU64::new(0)).collect();
    }
    fn file_started(&self, worker: usize, path: &Path) -> Option<&AtomicU64> {
        self.seen.lock().expect("lock").push(path.to_path_buf());
        self.counters.get(worker)
    }
    fn file_done(&self, _worker: usize, _path: &Path) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
    fn finish(&mut self) {
        self.finished = true;
    }
}

#[test]
fn paths_are_walked_in_sorted_order_and_progress_is_told() {
    let dir = scratch("walk");
    let copy = |from: &str, to: &str| {
        let to = dir.join(to);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(fixture(from), to).expect("copy");
    };
    copy("hostile/os_system_global_p0.pkl", "b/evil.bin");
    copy("benign/sklearn_logreg_iris_p4.pkl", "a/model.pkl");
    std::fs::write(dir.join("a/notes.txt"), "not a model\n").expect("write");
    let mut policies = Policies::new(&ConfigSource::None, &Flags::default()).expect("policies");
    let mut progress = Recorder::default();
    let out = scan_paths(std::slice::from_ref(&dir), &Options::default(), &mut policies, &mut progress).expect("scan");
    let shown = |p: &str| dir.join(p).display().to_string();
    let files: Vec<&str> = out.report.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(files, [shown("a/model.pkl"), shown("b/evil.bin")]);
    assert_eq!(out.report.skipped.len(), 1);
    assert_eq!(out.report.skipped[0].path, shown("a/notes.txt"));
    assert!(out.hook.is_none());
    assert_eq!(progress.started, [dir.join("a/model.pkl"), dir.join("b/evil.bin")]);
    assert!(progress.workers >= 1 && progress.finished);
    assert_eq!(progress.done.load(Ordering::Relaxed), 2);
    let mut seen = progress.seen.into_inner().expect("lock");
    seen.sort();
    assert_eq!(seen, progress.started);
}

#[test]
fn the_hook_skips_what_is_not_a_pickle_and_says_so() {
    let dir = scratch("hook");
    let text = dir.join("README.md");
    std::fs::write(&text, "# Models\n").expect("write");
    let empty = dir.join("empty.pkl");
    std::fs::write(&empty, "").expect("write");
    let evil = fixture("hostile/os_system_global_p0.pkl");
    let opts = Options { hook: true, ..Options::default() };
    let mut policies = Policies::new(&ConfigSource::None, &Flags::default()).expect("policies");
    let paths = [text, empty.clone(), evil.clone()];
    let out = scan_paths(&paths, &opts, &mut policies, &mut NoProgress).expect("scan");
    assert_eq!(out.report.files.len(), 1);
    assert_eq!(out.report.files[0].path, evil.display().to_string());
    let hook = out.hook.expect("a selection with Options::hook");
    assert_eq!(
        hook.messages(out.report.files.len()),
        [format!("skipped {}: an empty file", empty.display()), "skipped 1 files that are not pickles".to_string()]
    );
}
