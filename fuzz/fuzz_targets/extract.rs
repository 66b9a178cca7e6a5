//! `pkinspect extract`: any input through the container walker, the machine
//! and the extraction (JSON graph, `.npy` writer) into a scratch folder that
//! is emptied after every input. Checks only that nothing panics and that no
//! file is written outside the folder it was given.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pkinspect::policy::Policy;

static POLICY: OnceLock<Policy> = OnceLock::new();
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let policy = POLICY.get_or_init(Policy::builtin);
    // One scratch folder per process (several fuzz jobs may run at once).
    let root = SCRATCH.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("pkinspect-fuzz-extract-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch folder");
        d
    });
    let input = root.join("input.bin");
    let out = root.join("out");
    std::fs::write(&input, data).expect("write input");
    if let Ok(ex) = pkinspect::extract::extract_file(&input, Some(&out), policy) {
        let _ = pkinspect::extract::summary_rows(&ex.doc);
    }
    // Only `input.bin` and `out/` may exist in the scratch folder.
    for e in std::fs::read_dir(root).expect("read scratch") {
        let name = e.expect("entry").file_name();
        assert!(name == "input.bin" || name == "out", "written outside the output folder: {name:?}");
    }
    let _ = std::fs::remove_dir_all(&out);
});
