//! `pkinspect show` on the committed fixtures.

use std::time::Instant;

use pkinspect::limits::MAX_SHOW_OUTPUT;
use pkinspect::view::show::show;
use pkinspect::vm::Analyzer;

fn show_bytes(data: &[u8]) -> String {
    let a = Analyzer::new().run(data);
    let mut out = Vec::new();
    show(&a, &mut out).expect("writing to a Vec");
    String::from_utf8(out).expect("show writes UTF-8")
}

fn show_file(path: &str) -> String {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    show_bytes(&data)
}

#[test]
fn logistic_regression_reads_like_python() {
    for p in [2, 4, 5] {
        let s = show_file(&format!("fixtures/benign/sklearn_logreg_iris_p{p}.pkl"));
        if std::env::var_os("PKINSPECT_PRINT").is_some() {
            println!("{s}");
        }
        assert!(s.starts_with(&format!("# pickle 0 at offset 0, protocol {p}\n")), "{s}");
        assert!(s.contains("sklearn.linear_model._logistic.LogisticRegression.__new__("), "{s}");
        let build = s
            .lines()
            .find(|l| l.contains(".__setstate__({") && l.contains("'coef_'"))
            .unwrap_or_else(|| panic!("no BUILD with coef_: {s}"));
        assert!(build.starts_with("_v"), "{build}");
        assert!(build.contains("# BUILD at offset "), "{build}");
        // The estimator is what the pickle returns.
        let name = build.split('.').next().unwrap_or("");
        assert!(s.ends_with(&format!("result = {name}\n")), "{s}");
        // Every name is defined before it is used.
        check_defined_before_use(&s);
    }
}

/// Every `_vN` mentioned in a statement was assigned earlier.
fn check_defined_before_use(s: &str) {
    let mut defined = std::collections::HashSet::new();
    for line in s.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (lhs, rhs) = match line.split_once(" = ") {
            Some((l, r)) if l.starts_with("_v") && !l.contains(['.', '[']) => (Some(l), r),
            _ => (None, line),
        };
        // Code part only (comments hold offsets, not names).
        let code = rhs.split("  # ").next().unwrap_or(rhs);
        let mut rest = code;
        while let Some(i) = rest.find("_v") {
            let digits: String = rest[i + 2..].chars().take_while(|c| c.is_ascii_digit()).collect();
            let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_';
            if !digits.is_empty() && before_ok && !in_string(code, code.len() - rest.len() + i) {
                let name = format!("_v{digits}");
                assert!(
                    defined.contains(&name) || lhs == Some(name.as_str()),
                    "{name} used before definition in {line}"
                );
            }
            rest = &rest[i + 2..];
        }
        if let Some(l) = lhs {
            defined.insert(l.to_string());
        }
    }
}

/// Whether byte `at` of `code` is inside a quoted literal (rough, enough for
/// the fixtures: counts unescaped single quotes before it).
fn in_string(code: &str, at: usize) -> bool {
    let b = code.as_bytes();
    let mut inside = false;
    let mut i = 0;
    while i < at {
        match b[i] {
            b'\\' if inside => i += 1,
            b'\'' => inside = !inside,
            _ => {}
        }
        i += 1;
    }
    inside
}

#[test]
fn self_referencing_list_is_named() {
    let mut found = false;
    for p in 0..=5 {
        let s = show_file(&format!("fixtures/benign/py_data_p{p}.pkl"));
        // A list created empty, then filled with itself among its items.
        let fill = s.lines().find(|l| {
            l.split_once(".extend([").is_some_and(|(name, rest)| {
                name.starts_with("_v") && (rest.contains(&format!("{name},")) || rest.contains(&format!("{name}]")))
            })
        });
        if let Some(fill) = fill {
            let name = fill.split('.').next().unwrap_or("");
            assert!(s.contains(&format!("\n{name} = []\n")), "{s}");
            found = true;
        }
        check_defined_before_use(&s);
    }
    assert!(found, "no self-referencing list in py_data fixtures");
}

#[test]
fn doubling_dag_stays_small() {
    let mut p = b"\x80\x02]".to_vec();
    for _ in 0..100 {
        p.extend_from_slice(b"2\x86");
    }
    p.push(b'.');
    let s = show_bytes(&p);
    assert!(s.len() < 20_000, "{} bytes", s.len());
    check_defined_before_use(&s);
}

#[test]
fn os_system_global_is_shown() {
    let s = show_file("fixtures/hostile/os_system_global_p0.pkl");
    assert!(s.contains("os.system('echo pkinspect-fixture')"), "{s}");
}

#[test]
fn planted_setstate_is_named() {
    let s = show_file("fixtures/hostile/setstate_hijack_ordereddict_p2.pkl");
    assert!(s.contains("{'__setstate__': os.system}"), "{s}");
    assert!(s.contains("# BUILD at offset 89, with __setstate__ = os.system\n"), "{s}");
    assert!(s.contains("# anomaly at offset 61: BUILD state sets __setstate__"), "{s}");
}

#[test]
fn call_before_an_error_is_shown() {
    let s = show_file("fixtures/hostile/truncated_after_reduce_p0.pkl");
    assert!(s.contains("os.system('echo pkinspect-fixture')  # called at offset 39, not used\n"), "{s}");
    assert!(s.contains("# no result"), "{s}");
    assert!(s.contains("# error: "), "{s}");
}

#[test]
fn discarded_call_is_shown() {
    // The long stream ends with an os.system call.
    let s = show_file("fixtures/hostile/long_stream_1m_ops_p2.pkl");
    assert!(s.contains("os.system("), "{}", &s[..s.len().min(2000)]);
}

#[test]
fn every_fixture_is_bounded() {
    let mut files = Vec::new();
    for dir in ["fixtures/benign", "fixtures/hostile"] {
        for e in std::fs::read_dir(dir).expect("fixture dir") {
            let path = e.expect("dir entry").path();
            if path.extension().is_some_and(|x| x == "pkl") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 100, "expected the full fixture set");
    for path in files {
        let data = std::fs::read(&path).expect("read fixture");
        let start = Instant::now();
        let s = show_bytes(&data);
        let took = start.elapsed();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        assert!(s.len() <= MAX_SHOW_OUTPUT + 256, "{name}: {} bytes", s.len());
        assert!(s.starts_with("# "), "{name}: {}", &s[..s.len().min(200)]);
        assert!(took.as_secs() < 60, "{name}: took {took:?}");
        // Every pickle that reached STOP ends with its result.
        if name.starts_with("sklearn") || name.starts_with("numpy") || name.starts_with("py_") {
            assert!(s.contains("\nresult = ") || s.starts_with("result = "), "{name}: {s}");
            check_defined_before_use(&s);
        }
    }
}
