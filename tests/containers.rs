//! Containers, judged against fixtures/containers/manifest.json.
//!
//! Every entry goes through the CLI (`scan --format json`): a benign file
//! (real joblib/numpy/compressor/archive output, real legacy joblib files)
//! must have no warning or error and exit 0; a hostile one (zip anomalies,
//! bombs, polyglots, legacy companion tricks, truncated streams) must exit 1
//! and report every rule its manifest names, with the rest of the file still
//! scanned. joblib payload offsets, in files and in decompressed streams,
//! must be exactly where `joblib.load(mmap_mode='r')` maps them.
//! The fixtures and their recipes: scripts/fixtures_containers.py.

use std::path::{Path, PathBuf};
use std::process::Command;

use pkinspect::container::Walker;
use pkinspect::vm::EventKind;

const DIR: &str = "fixtures/containers";

fn manifest() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(Path::new(DIR).join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest is JSON")
}

/// `pkinspect scan --format json [--allow G]... PATH`: exit code and the file's JSON.
fn scan(entry: &serde_json::Value) -> (i32, serde_json::Value) {
    let file = entry["file"].as_str().expect("file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pkinspect"));
    cmd.args(["scan", "--format", "json"]);
    for g in entry["allow"].as_array().into_iter().flatten() {
        cmd.args(["--allow", g.as_str().expect("global")]);
    }
    let out = cmd.arg(Path::new(DIR).join(file)).output().expect("run pkinspect");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{file}: output is not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v["files"][0].clone())
}

fn rules(f: &serde_json::Value) -> Vec<&str> {
    f["findings"].as_array().into_iter().flatten().filter_map(|x| x["rule"].as_str()).collect()
}

/// Findings with this rule, as (member, message).
fn with_rule<'a>(f: &'a serde_json::Value, rule: &str) -> Vec<(Option<&'a str>, &'a str)> {
    f["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["rule"] == rule)
        .map(|x| (x["member"].as_str(), x["message"].as_str().unwrap_or("")))
        .collect()
}

fn check(entry: &serde_json::Value) -> Vec<String> {
    let file = entry["file"].as_str().expect("file");
    let (code, f) = scan(entry);
    let mut fails = Vec::new();
    let want: Vec<&str> =
        entry["expect_rules"].as_array().expect("expect_rules").iter().filter_map(|r| r.as_str()).collect();
    let got = rules(&f);
    if !f["error"].is_null() {
        fails.push(format!("{file}: unreadable: {}", f["error"]));
    }
    if want.is_empty() {
        let loud: Vec<String> = f["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["severity"] != "info")
            .map(|x| format!("{} {:?} @{} {}", x["rule"], x["member"], x["offset"], x["message"]))
            .collect();
        if code != 0 || !loud.is_empty() {
            fails.push(format!("{file}: benign but exit {code}: {loud:?}"));
        }
    } else {
        if code != 1 {
            fails.push(format!("{file}: exit {code}, expected 1"));
        }
        for w in want {
            if !got.contains(&w) {
                fails.push(format!("{file}: missing {w}, got {got:?}"));
            }
        }
    }
    if let Some(expected) = entry["skipped_members"].as_array() {
        let mut expected: Vec<&str> = expected.iter().filter_map(|m| m.as_str()).collect();
        let mut listed: Vec<&str> = f["skipped_members"]
            .as_array()
            .expect("skipped_members is always listed")
            .iter()
            .filter_map(|m| m.as_str())
            .collect();
        expected.sort_unstable();
        listed.sort_unstable();
        if expected != listed {
            fails.push(format!("{file}: skipped_members {listed:?}, expected {expected:?}"));
        }
    }
    fails
}

#[test]
fn every_manifest_entry_through_the_cli() {
    let entries = manifest();
    assert!(entries.len() >= 90, "expected the full container set");
    // Two workers: the bombs take a second or two each in a debug build.
    let (left, right) = entries.split_at(entries.len() / 2);
    let fails: Vec<String> = std::thread::scope(|s| {
        let a = s.spawn(|| left.iter().flat_map(check).collect::<Vec<_>>());
        let b = s.spawn(|| right.iter().flat_map(check).collect::<Vec<_>>());
        let mut v = a.join().expect("worker");
        v.extend(b.join().expect("worker"));
        v
    });
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// (offset, len) of every raw joblib payload found in a file, in every
/// decompressed layer (offsets are in the decompressed stream).
fn payloads(path: &Path) -> Vec<(u64, u64)> {
    let file = std::fs::File::open(path).expect("open");
    let size = file.metadata().expect("metadata").len();
    let mut w = Walker::new();
    w.seekable(file, Some(size), None);
    let walked = w.finish();
    let mut out: Vec<(u64, u64)> = walked
        .parts
        .iter()
        .flat_map(|p| p.analysis.events.iter())
        .filter_map(|ev| match ev.kind {
            EventKind::ArrayPayload { offset, len, nested: None, .. } => Some((offset, len)),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn joblib_payloads_are_where_joblib_maps_them() {
    let mut checked = 0;
    let mut fails = Vec::new();
    for e in manifest() {
        let file = e["file"].as_str().expect("file");
        // memmap_payloads: the file itself; stream_payloads: its decompressed stream, byte-identical
        // to the uncompressed dump joblib mapped (checked by the generator).
        let Some(want) = e["memmap_payloads"].as_array().or_else(|| e["stream_payloads"].as_array()) else { continue };
        let mut want: Vec<(u64, u64)> =
            want.iter().map(|p| (p[0].as_u64().expect("offset"), p[1].as_u64().expect("nbytes"))).collect();
        want.sort_unstable();
        let got = payloads(&PathBuf::from(DIR).join(file));
        if got != want {
            fails.push(format!("{file}: payloads {got:?}, joblib maps {want:?}"));
        }
        checked += 1;
    }
    assert!(checked >= 33, "every uncompressed and compressed joblib dump is checked ({checked})");
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

fn entry(file: &str) -> serde_json::Value {
    manifest().into_iter().find(|e| e["file"] == file).unwrap_or_else(|| panic!("{file} not in the manifest"))
}

#[test]
fn legacy_companions_are_scanned_beside_the_pickle() {
    let (code, f) = scan(&entry("legacy/joblib_0.9.2_pickle_py35_np19.pkl"));
    assert_eq!(code, 0);
    // The object array's companion holds a pickle: it is analysed, as joblib's numpy.load(allow_pickle=True) runs it.
    let members: Vec<&str> =
        f["pickles"].as_array().expect("pickles").iter().filter_map(|p| p["member"].as_str()).collect();
    assert_eq!(members, ["joblib_0.9.2_pickle_py35_np19.pkl_03.npy"]);
    let skipped = f["skipped_members"].as_array().expect("skipped_members");
    assert_eq!(skipped.len(), 3, "the numeric companions are read and skipped: {skipped:?}");
    // ZNDArrayWrapper companions are ZF-framed raw bytes: decoded, never read as pickles.
    let (code, f) = scan(&entry("legacy/joblib_0.9.4.dev0_compressed_cache_size_pickle_py35_np19.gz"));
    assert_eq!(code, 0);
    assert_eq!(f["skipped_members"].as_array().map(|a| a.len()), Some(3));
    assert_eq!(f["pickles"].as_array().map(|a| a.len()), Some(1));
    // The hostile companion's call is reported against the companion file.
    let (code, f) = scan(&entry("legacy_hostile/evil_npy.pkl"));
    assert_eq!(code, 1);
    assert_eq!(with_rule(&f, "PK102")[0].0, Some("evil_npy.pkl_01.npy"));
    // A path out of the folder is reported, and nothing was read from it.
    let (_, f) = scan(&entry("legacy_hostile/traversal.pkl"));
    assert!(with_rule(&f, "PK305")[0].1.contains("'../../etc/x.npy'"));
    assert_eq!(f["pickles"].as_array().map(|a| a.len()), Some(1));
}

#[test]
fn zip_anomalies_name_the_member_and_keep_its_findings() {
    let (_, f) = scan(&entry("zip_crc_mismatch.zip"));
    let crc = with_rule(&f, "PK302");
    assert!(crc.iter().any(|(m, msg)| *m == Some("model.pkl") && msg.starts_with("CRC mismatch")), "{crc:?}");
    assert_eq!(with_rule(&f, "PK102")[0].0, Some("model.pkl"), "the member's call is still reported");
    // Both same-named members are scanned: the hostile first one too.
    let (_, f) = scan(&entry("zip_duplicate_names.zip"));
    assert_eq!(f["pickles"].as_array().map(|a| a.len()), Some(2));
    // The local header's reading is scanned as a member of its own.
    let (_, f) = scan(&entry("zip_local_size_differs.zip"));
    assert_eq!(with_rule(&f, "PK102")[0].0, Some("model.pkl (local header)"));
    // A bomb stops with a limit; the member after it is scanned.
    let (_, f) = scan(&entry("zip_bomb_lying.zip"));
    assert_eq!(with_rule(&f, "PK303")[0].0, Some("bomb.pkl"));
    assert_eq!(with_rule(&f, "PK102")[0].0, Some("evil.pkl"));
    assert!(with_rule(&f, "PK201").is_empty(), "the limit is reported once, as PK303");
}

#[test]
fn nested_zips_are_bounded_by_max_container_depth() {
    let depth = pkinspect::limits::MAX_CONTAINER_DEPTH;
    let (_, f) = scan(&entry(&format!("zip_nested_{depth}.zip")));
    assert!(with_rule(&f, "PK209").is_empty());
    let (member, _) = with_rule(&f, "PK102")[0];
    assert_eq!(member.map(|m| m.matches('!').count()), Some(depth - 1), "{member:?}");
    let (_, f) = scan(&entry(&format!("zip_nested_{}.zip", depth + 1)));
    assert_eq!(with_rule(&f, "PK209").len(), 1);
    assert!(with_rule(&f, "PK102").is_empty(), "nothing past the limit is read");
}

#[test]
fn polyglots_are_scanned_in_every_reading() {
    // The zip behind the pickle.
    let (_, f) = scan(&entry("polyglot_pickle_zip.pkl"));
    assert_eq!(with_rule(&f, "PK102")[0].0, Some("archive/data.pkl"));
    // The pickle behind the bz2 magic, and behind a tar header.
    for file in ["polyglot_bz2_magic.pkl", "polyglot_tar_name.tar"] {
        let (_, f) = scan(&entry(file));
        assert_eq!(with_rule(&f, "PK102")[0].0, None, "{file}");
        assert_eq!(with_rule(&f, "PK307").len(), 1, "{file}");
    }
    // Benign containers whose first byte is an opcode have no second reading.
    for file in ["bundle.tar", "numpy_object.npy", "bundle.zip"] {
        let (_, f) = scan(&entry(file));
        assert!(with_rule(&f, "PK307").is_empty(), "{file}");
    }
}

#[test]
fn json_always_lists_skipped_members() {
    let (_, f) = scan(&entry("joblib_mixed_p4.joblib"));
    assert_eq!(f["skipped_members"], serde_json::json!([]));
    let (_, f) = scan(&entry("numpy_float64.npy"));
    assert_eq!(f["skipped_members"], serde_json::json!(["(file)"]));
}

/// Bytes flipped and files cut short, in every container fixture: the walk
/// ends (no panic, no hang) whatever the damage. A deterministic generator
/// picks the damage, so a failure reproduces.
#[test]
fn damaged_containers_never_panic() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("damaged-containers");
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut walked = 0;
    for e in manifest() {
        let file = e["file"].as_str().expect("file");
        let data = std::fs::read(Path::new(DIR).join(file)).expect("read");
        if data.is_empty() {
            continue;
        }
        for round in 0..12 {
            let mut d = data.clone();
            if round % 3 == 2 {
                d.truncate((next() % d.len() as u64) as usize);
            } else {
                for _ in 0..=round % 4 {
                    let i = (next() % d.len() as u64) as usize;
                    d[i] ^= 1 << (next() % 8);
                }
            }
            let path = tmp.join("damaged.bin");
            std::fs::write(&path, &d).expect("write");
            let f = std::fs::File::open(&path).expect("open");
            let mut w = Walker::new();
            w.seekable(f, Some(d.len() as u64), None);
            w.companions(Some(&tmp));
            let _ = w.finish();
            walked += 1;
        }
    }
    assert!(walked > 1000);
}
