//! Values as deep and strings as long as `pickle.load` takes them
//! (fixtures/deep/, written by scripts/fixtures_deep.py, whose manifest
//! records what `pickle.loads` gave for each file): `pkinspect extract`
//! exits 0 with no error, and the document it writes holds the same
//! nesting, the same innermost value and the same string.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as J;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `f` on a thread with a large stack (serde_json parses recursively).
fn big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new().stack_size(512 << 20).spawn_scoped(s, f).unwrap().join().unwrap()
    })
}

fn parse(text: &str) -> J {
    big_stack(|| {
        let mut de = serde_json::Deserializer::from_str(text);
        de.disable_recursion_limit();
        serde::Deserialize::deserialize(&mut de).expect("valid JSON")
    })
}

/// The one child of a container node of kind `kind` (as scripts/fixtures_deep.py names them).
fn child<'a>(j: &'a J, kind: &str) -> Option<&'a J> {
    let one = |items: &'a J| items.as_array().filter(|a| a.len() == 1).map(|a| &a[0]);
    match kind {
        // A list of one (or, with an array beside it, two): the first item.
        "list" => j.as_array().filter(|a| matches!(a.len(), 1 | 2)).map(|a| &a[0]),
        "tuple" => (j["type"] == "tuple").then(|| one(&j["items"])).flatten(),
        "dict" => (j["type"] == "dict").then(|| j["items"].get("k")).flatten(),
        "OrderedDict" => (j["class"] == "collections.OrderedDict").then(|| j["dictitems"]["items"].get("k")).flatten(),
        _ => None,
    }
}

fn fnv1a64(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn check(entry: &J, doc: &J, out: &Path) {
    let name = entry["file"].as_str().unwrap();
    let root = &doc["pickles"][0]["root"];
    if let Some(len) = entry["length"].as_u64() {
        let text = match root {
            J::String(s) => s.clone(),
            // Over 1 MiB of UTF-8: a blob file.
            _ => std::fs::read_to_string(out.join(root["file"].as_str().expect("a str blob"))).unwrap(),
        };
        assert_eq!(text.chars().count() as u64, len, "{name}");
        assert_eq!(fnv1a64(text.as_bytes()), entry["utf8_fnv1a64"].as_str().unwrap(), "{name}");
        return;
    }
    if let Some(n) = entry["arrays"].as_u64() {
        // Every array written, its recorded path cut to MAX_PATH_STEPS (256) steps.
        let arrays = doc["arrays"].as_array().unwrap();
        assert_eq!(arrays.len() as u64, n, "{name}");
        for a in arrays {
            let steps = a["path"].as_array().unwrap().len();
            assert!(steps <= 256, "{name}: {steps} steps");
            assert_eq!(a.get("path_cut").is_some(), steps == 256 && a["path"][255] == 0, "{name}");
        }
        let top = arrays.iter().find(|a| a["path"] == serde_json::json!([1])).expect("the outermost array");
        assert_eq!(top["dtype"], entry["array_dtype"], "{name}");
        let npy = std::fs::read(out.join(top["file"].as_str().unwrap())).unwrap();
        let data: String = npy[npy.len() - 12..].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(data, entry["array_bytes"].as_str().unwrap(), "{name}");
    }
    let kinds: Vec<&str> = match entry.get("kind") {
        Some(k) => vec![k.as_str().unwrap()],
        None => entry["kinds_cycle"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect(),
    };
    let mut j = root;
    let mut depth = 0;
    while let Some(c) = child(j, kinds[depth % kinds.len()]) {
        j = c;
        depth += 1;
    }
    assert_eq!(depth, entry["depth"].as_u64().unwrap() as usize, "{name}: nesting");
    let innermost = match j {
        J::Null => "None".to_string(),
        other => other.to_string(),
    };
    assert_eq!(innermost, entry["innermost"].as_str().unwrap(), "{name}: innermost value");
}

#[test]
fn what_pickle_load_takes_extracts_whole() {
    let dir = root().join("fixtures/deep");
    let manifest: J = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    for entry in manifest.as_array().unwrap() {
        let name = entry["file"].as_str().unwrap();
        let out = std::env::temp_dir().join(format!("pkinspect-deep-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let run = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
            .args(["extract", "-q", "-o"])
            .arg(&out)
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&run.stderr));
        let stem = name.trim_end_matches(".pkl");
        let text = std::fs::read_to_string(out.join(format!("{stem}.json"))).unwrap();
        // Linear output: indents stop growing (a 10,000-deep list is not 100 MB of spaces).
        assert!(text.len() < 200 * std::fs::metadata(dir.join(name)).unwrap().len() as usize, "{name}: {}", text.len());
        let doc = parse(&text);
        assert_eq!(doc["errors"], serde_json::json!([]), "{name}");
        check(entry, &doc, &out);
        big_stack(move || drop(doc));
        let _ = std::fs::remove_dir_all(&out);
    }
}
