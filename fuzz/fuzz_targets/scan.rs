//! The whole scan: machine, policy, rules, then the human, JSON and SARIF reports.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pkinspect::policy::Policy;
use pkinspect::report::{human, json, sarif, Report};
use pkinspect::scan::Scanner;

static POLICY: OnceLock<Policy> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let policy = POLICY.get_or_init(Policy::builtin);
    let r = Scanner::new(policy).scan_bytes("fuzz.pkl", data);
    let report = Report { files: vec![r], ..Default::default() };
    let _ = human::render(&report, human::HumanOptions::default());
    let _ = json::to_json(&report);
    let _ = sarif::to_sarif(&report);
});
