//! Snapshots of what `pkinspect scan` prints, in each format, for files that
//! exercise each part of the report: a clean model (nothing but the summary
//! by default; its block, with the scikit-learn version it records, under
//! `--verbose`), a dangerous call (also under `--quiet`), a use of an
//! allowlisted gadget (with the launderer named), an archive anomaly, a
//! TorchScript archive (info findings counted, not listed). A change to any of them shows up in review as a diff
//! of `tests/snapshots/*.snap` (`cargo insta review`, or `INSTA_UPDATE=always`).

use std::process::Command;

/// What `pkinspect scan --no-config ARGS` prints, with the version replaced.
fn scan(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(["scan", "--no-config"])
        .args(args)
        .output()
        .expect("run pkinspect");
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    let code = out.status.code().unwrap_or(-1);
    format!("exit {code}\n{}", text.replace(env!("CARGO_PKG_VERSION"), "[VERSION]"))
}

macro_rules! snapshot {
    ($name:ident, $($arg:expr),+) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(scan(&[$($arg),+]));
        }
    };
}

snapshot!(human_clean_model, "fixtures/benign/sklearn_logreg_iris_p4.pkl");
snapshot!(human_clean_model_verbose, "--verbose", "fixtures/benign/sklearn_logreg_iris_p4.pkl");
snapshot!(human_clean_model_show_safe, "--show-safe", "fixtures/benign/sklearn_pipeline_iris_p4.pkl");
snapshot!(human_dangerous_call, "fixtures/hostile/os_system_global_p0.pkl");
snapshot!(human_dangerous_call_quiet, "-q", "fixtures/hostile/os_system_global_p0.pkl");
snapshot!(json_dangerous_call, "--format", "json", "fixtures/hostile/os_system_global_p0.pkl");
snapshot!(sarif_dangerous_call, "--format", "sarif", "fixtures/hostile/os_system_global_p0.pkl");
snapshot!(human_gadget_through_launderer, "fixtures/gadgets/generator_ctor_memmap_p2.pkl");
snapshot!(json_gadget_through_launderer, "--format", "json", "fixtures/gadgets/generator_ctor_memmap_p2.pkl");
snapshot!(human_unlisted_use, "fixtures/gadgets/build_class_logreg_p2.pkl");
snapshot!(human_archive_anomaly, "fixtures/containers/zip_crc_mismatch.zip");
snapshot!(json_archive_anomaly, "--format", "json", "fixtures/containers/zip_crc_mismatch.zip");
snapshot!(human_torchscript, "fixtures/torch-real/torchscript.pt");
snapshot!(human_torchscript_verbose, "-v", "fixtures/torch-real/torchscript.pt");
snapshot!(json_clean_model, "--format", "json", "fixtures/benign/sklearn_logreg_iris_p4.pkl");
snapshot!(human_pickled_module, "fixtures/torch-real/full_module_sequential.pt");
