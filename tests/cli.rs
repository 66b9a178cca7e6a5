//! The command line outside `scan`'s findings: `rules`, `explain`, shell
//! completions, manual pages, the rule that the progress line never
//! reaches a pipe, and a quiet end when the reader of stdout goes away.

use std::io::BufRead;
use std::process::{Command, Output, Stdio};

use pkinspect::rules::Rule;

fn pkinspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkinspect")).args(args).output().expect("run pkinspect")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every subcommand, as `pkinspect --help` lists them (clap's own `help` left out).
fn subcommands() -> Vec<String> {
    let text = stdout(&pkinspect(&["--help"]));
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&n| n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn explain_accepts_codes_and_slugs() {
    for r in Rule::ALL {
        for key in [r.code().to_string(), r.code().to_ascii_lowercase(), r.slug().to_string()] {
            let o = pkinspect(&["explain", &key]);
            assert_eq!(o.status.code(), Some(0), "explain {key}");
            let text = stdout(&o);
            assert!(text.starts_with(&format!("{} {}", r.code(), r.slug())), "explain {key}: {text}");
            assert!(text.contains(r.explanation()), "explain {key}");
        }
    }
}

#[test]
fn explain_of_an_unknown_rule_exits_2_with_a_clear_message() {
    for key in ["PK999", "no-such-rule", ""] {
        let o = pkinspect(&["explain", key]);
        assert_eq!(o.status.code(), Some(2), "explain {key:?}");
        assert!(o.stdout.is_empty(), "nothing on stdout");
        let err = stderr(&o);
        assert!(err.contains("unknown rule"), "{err}");
        assert!(err.contains("pkinspect rules"), "points at the list: {err}");
    }
    // A missing argument is a usage error: 2 as well.
    assert_eq!(pkinspect(&["explain"]).status.code(), Some(2));
}

#[test]
fn rules_lists_the_registry() {
    let o = pkinspect(&["rules"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for r in Rule::ALL {
        assert!(text.contains(r.code()) && text.contains(r.slug()), "{} missing", r.code());
    }
}

#[test]
fn rules_as_json() {
    let o = pkinspect(&["rules", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let list = v["rules"].as_array().expect("rules");
    assert_eq!(list.len(), Rule::ALL.len());
    for (j, r) in list.iter().zip(Rule::ALL) {
        assert_eq!(j["code"], r.code());
        assert_eq!(j["slug"], r.slug());
        assert_eq!(j["severity"], r.default_severity().as_str());
        assert_eq!(j["summary"], r.summary());
        assert_eq!(j["explanation"], r.explanation());
    }
}

#[test]
fn help_lists_the_subcommands() {
    let subs = subcommands();
    for want in ["scan", "dis", "show", "rules", "explain", "completions", "man"] {
        assert!(subs.iter().any(|s| s == want), "--help does not list {want}: {subs:?}");
    }
}

#[test]
fn man_page_names_every_subcommand() {
    let o = pkinspect(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    let roff = stdout(&o);
    assert!(roff.starts_with(".ie") || roff.contains(".TH"), "roff: {}", &roff[..roff.len().min(200)]);
    assert!(roff.contains(".TH pkinspect 1"), "title line");
    for sub in subcommands() {
        assert!(roff.contains(&format!("pkinspect\\-{sub}(1)")), "man page is missing {sub}");
    }
    // One subcommand's own page carries its options.
    let scan = stdout(&pkinspect(&["man", "scan"]));
    assert!(scan.contains(".TH pkinspect-scan 1"), "{}", &scan[..scan.len().min(300)]);
    assert!(scan.contains(concat!("pkinspect ", env!("CARGO_PKG_VERSION"))), "the page names the version");
    for opt in ["format", "fail\\-on", "show\\-safe"] {
        assert!(scan.contains(&format!("\\-\\-{opt}")), "scan page is missing --{opt}");
    }
    assert_eq!(pkinspect(&["man", "nope"]).status.code(), Some(2));
}

#[test]
fn man_out_dir_writes_every_page() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("man-pages");
    let _ = std::fs::remove_dir_all(&dir);
    let o = pkinspect(&["man", "--out-dir", dir.to_str().expect("UTF-8 tmp path")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(dir.join("pkinspect.1").is_file());
    for sub in subcommands() {
        assert!(dir.join(format!("pkinspect-{sub}.1")).is_file(), "no page for {sub}");
    }
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let o = pkinspect(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let script = stdout(&o);
        assert!(!script.trim().is_empty(), "{shell}: empty script");
        assert!(script.contains("scan"), "{shell}: does not mention scan");
        if matches!(shell, "bash" | "zsh" | "fish") {
            // These three complete option values too.
            assert!(script.contains("sarif"), "{shell}: does not offer --format sarif");
        }
    }
    assert_eq!(pkinspect(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn bash_completion_script_is_valid_bash() {
    let script = stdout(&pkinspect(&["completions", "bash"]));
    let Ok(o) = Command::new("bash").args(["-n", "-c", &script]).output() else {
        eprintln!("bash not found; syntax check skipped");
        return;
    };
    assert!(o.status.success(), "bash -n: {}", String::from_utf8_lossy(&o.stderr));
}

/// Piped output (the test harness pipes both streams) carries no progress
/// line and no ANSI escape, in any format, even for a folder of many files.
#[test]
fn no_progress_or_escapes_when_piped() {
    for format in ["human", "json", "sarif"] {
        let o = pkinspect(&["scan", "--format", format, "fixtures/benign", "fixtures/hostile"]);
        assert_eq!(o.status.code(), Some(1), "{format}");
        for (name, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            assert!(!bytes.contains(&0x1b), "{format}: ESC on {name}");
            assert!(!bytes.contains(&b'\r'), "{format}: carriage return on {name}");
        }
        let err = stderr(&o);
        assert!(!err.contains(" files "), "{format}: progress text on stderr: {err}");
    }
}

/// Under a terminal (a pty from util-linux `script`), a scan that runs long
/// enough draws the progress line on stderr, while the report redirected to
/// a file stays free of it.
#[cfg(unix)]
#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("progress");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    // 4 million harmless opcodes (BININT1 1, POP): long enough to scan in a
    // debug build for the line to appear.
    let big = dir.join("many_ops.pkl");
    let mut data = b"\x80\x02".to_vec();
    data.extend(b"K\x010".repeat(2_000_000));
    data.extend(b"N.");
    std::fs::write(&big, data).expect("write pickle");
    let report = dir.join("report.json");
    let quote = |p: &std::path::Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let cmd = format!(
        "{} scan --format json {} > {}",
        quote(std::path::Path::new(env!("CARGO_BIN_EXE_pkinspect"))),
        quote(&big),
        quote(&report)
    );
    let started = std::time::Instant::now();
    let Ok(o) = Command::new("script").env("TERM", "xterm").args(["-q", "-e", "-c", &cmd, "/dev/null"]).output() else {
        eprintln!("util-linux script not found; pty test skipped");
        return;
    };
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let terminal = String::from_utf8_lossy(&o.stdout);
    if took > std::time::Duration::from_millis(1000) {
        assert!(terminal.contains("1/1 files"), "no progress on the terminal after {took:?}: {terminal:?}");
        assert!(terminal.contains("many_ops.pkl"));
        assert!(terminal.ends_with("\r\x1b[K"), "the line is erased at the end: {terminal:?}");
    }
    let json = std::fs::read(&report).expect("report");
    assert!(!json.contains(&0x1b) && !json.contains(&b'\r'), "the redirected report is clean");
    serde_json::from_slice::<serde_json::Value>(&json).expect("report is JSON");

    // The same long scan with stderr piped: not a byte of progress.
    let piped = pkinspect(&["scan", "--format", "json", big.to_str().expect("UTF-8 tmp path")]);
    assert_eq!(piped.status.code(), Some(0));
    assert!(piped.stderr.is_empty(), "stderr: {:?}", stderr(&piped));
    assert!(!piped.stdout.contains(&0x1b));
}

/// Every `.pkl` file directly in `fixtures/DIR`, sorted.
fn pickles_in(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(std::path::Path::new("fixtures").join(dir))
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pkl"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

/// Runs pkinspect with stdout in a pipe that is closed after `lines` lines
/// were read (0: before it writes anything), and returns its status and stderr.
fn with_reader_gone(args: &[String], lines: usize) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pkinspect");
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    for _ in 0..lines {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read a line");
        assert!(!line.is_empty(), "{args:?}: no output");
    }
    drop(reader);
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), stderr(&out))
}

/// `pkinspect ... | head`: a command whose reader goes away ends with
/// status 0, and nothing on stderr (no panic, no error message), whether the
/// pipe closes before it writes or in the middle of a long output.
#[test]
fn a_closed_pipe_ends_quietly() {
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    // Longer than a pipe's buffer (64 KiB), so the writes after the first line fail.
    let mut trace = argv(&["trace"]);
    trace.extend(pickles_in("benign"));
    let long = [
        argv(&["scan", "-v", "--fail-on", "never", "fixtures/benign", "fixtures/torch-real", "fixtures/gadgets"]),
        argv(&["scan", "--format", "json", "--fail-on", "never", "fixtures/benign", "fixtures/torch-real"]),
        trace,
    ];
    for args in &long {
        assert_eq!(with_reader_gone(args, 1), (Some(0), String::new()), "{args:?}");
    }
    let short = [
        argv(&["rules"]),
        argv(&["rules", "--format", "json"]),
        argv(&["explain", "PK101"]),
        argv(&["completions", "bash"]),
        argv(&["man"]),
        argv(&["man", "scan"]),
        argv(&["--help"]),
        argv(&["scan", "--fail-on", "never", "fixtures/torch-real"]),
        argv(&["scan", "-q", "--fail-on", "never", "fixtures/hostile"]),
        argv(&["trace", "fixtures/benign/sklearn_hgb_makeclf_p4.pkl"]),
    ];
    for args in short.iter().chain(&long) {
        assert_eq!(with_reader_gone(args, 0), (Some(0), String::new()), "{args:?}");
    }
}
