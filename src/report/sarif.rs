//! `--format sarif`: one SARIF 2.1.0 log (OASIS Standard, Errata 01) for the
//! whole run, for code-scanning services such as GitHub's.
//!
//! Like [`super::json`], this module reads a finished [`Report`] and nothing
//! else. The mapping is:
//!
//! - `runs[0].tool.driver.rules[]`: one `reportingDescriptor` per entry of
//!   [`Rule::ALL`], in code order. `id` is the code (`PK101`), `name` the slug,
//!   `shortDescription` the summary, `fullDescription` and `help` the
//!   explanation. `defaultConfiguration.level` comes from the default
//!   severity.
//! - `runs[0].results[]`: one `result` per finding, in file order then offset
//!   order. `ruleIndex` points into `rules[]`. `level` comes from the
//!   finding's severity. The message is the finding's message, followed by
//!   the call when there is one. The location is a byte region
//!   (`byteOffset`, `byteLength` 1: the opcode) in the file, because a pickle
//!   has no lines.
//! - `runs[0].invocations[0]`: `executionSuccessful` is false when a file
//!   could not be read. Each unreadable file becomes an error-level
//!   `toolExecutionNotification`. Findings left out past the per-rule cap
//!   become note-level ones.
//!
//! Severity maps to SARIF level as error → `error`, warning → `warning`,
//! info → `note` (SARIF §3.27.10). `tests/sarif.rs` checks the output against
//! the official schema (`tests/data/sarif-schema-2.1.0.json`).

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::Report;
use crate::rules::{Finding, Rule, Severity};

/// The `$schema` written into every log: the OASIS Errata 01 schema.
pub const SARIF_SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The SARIF version written into every log.
pub const SARIF_VERSION: &str = "2.1.0";

/// Key of the one entry pkinspect puts in `result.partialFingerprints`.
/// The `/v1` suffix changes if the way the value is computed changes.
pub const FINGERPRINT_KEY: &str = "pkinspect/v1";

/// The SARIF `level` for a severity (SARIF §3.27.10).
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// GitHub code scanning's `security-severity` property for a rule. GitHub
/// turns it into an alert's Critical/High/Medium/Low label: 7.0 and above
/// is High, 4.0 to 6.9 Medium, below 4.0 Low. The number follows the
/// rule's default severity only.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "8.0",
        Severity::Warning => "5.0",
        Severity::Info => "2.0",
    }
}

/// The `reportingDescriptor` of one rule.
fn rule_descriptor(r: Rule) -> Value {
    json!({
        "id": r.code(),
        "name": r.slug(),
        "shortDescription": { "text": r.summary() },
        "fullDescription": { "text": r.explanation() },
        "help": { "text": format!("{}\n\n{}\n\n`pkinspect explain {}` prints this text.", r.summary(), r.explanation(), r.code()) },
        "defaultConfiguration": { "level": level(r.default_severity()) },
        "properties": {
            "tags": ["security"],
            "security-severity": security_severity(r.default_severity()),
        },
    })
}

/// Percent-encodes `path` as a URI reference (RFC 3986 §2.1, §3.3).
///
/// A relative path stays relative, so `uri` is the path exactly as it was
/// given on the command line. An absolute path becomes a `file://` URI. Every
/// byte except the unreserved characters and the `/` separator is escaped,
/// so spaces, `%`, `#`, `?`, `:` and non-ASCII names round-trip.
/// On Windows the `\` separator is written as `/` first.
pub fn path_to_uri(path: &str) -> String {
    let normalised;
    let path = if cfg!(windows) {
        normalised = path.replace('\\', "/");
        normalised.as_str()
    } else {
        path
    };
    let absolute = Path::new(path).is_absolute() || (cfg!(windows) && path.starts_with('/'));
    let mut out = String::with_capacity(path.len() + 8);
    if absolute {
        out.push_str("file://");
        if !path.starts_with('/') {
            // A Windows drive path (C:/x) is written as file:///C:/x.
            out.push('/');
        }
    }
    for (i, &b) in path.as_bytes().iter().enumerate() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/')
            // The drive colon of an absolute Windows path stays readable.
            || (absolute && b == b':' && i == 1 && cfg!(windows));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A 64-bit FNV-1a hash: small, and stable across Rust versions (unlike
/// `std`'s `DefaultHasher`), so fingerprints stay equal from run to run.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The text of a result: the finding's message, then the call when there is one.
fn result_message(f: &Finding) -> String {
    match &f.call {
        Some(call) => format!("{} — call: {call}", f.message),
        None => f.message.clone(),
    }
}

/// A `location` pointing at the file only, or at one byte of it.
fn location(uri: &str, offset: Option<u64>) -> Value {
    let mut physical = Map::new();
    physical.insert("artifactLocation".into(), json!({ "uri": uri }));
    if let Some(o) = offset {
        physical.insert("region".into(), json!({ "byteOffset": o, "byteLength": 1 }));
    }
    json!({ "physicalLocation": Value::Object(physical) })
}

/// The report as a SARIF 2.1.0 log.
pub fn to_sarif(report: &Report) -> Value {
    let rules: Vec<Value> = Rule::ALL.iter().map(|&r| rule_descriptor(r)).collect();
    let rule_index: HashMap<Rule, usize> = Rule::ALL.iter().enumerate().map(|(i, &r)| (r, i)).collect();

    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for file in &report.files {
        let uri = path_to_uri(&file.path);
        if let Some(e) = &file.error {
            notifications.push(json!({
                "level": "error",
                "message": { "text": format!("{}: could not be read: {e}", file.path) },
                "locations": [location(&uri, None)],
            }));
            continue;
        }
        for (code, n) in &file.suppressed {
            notifications.push(json!({
                "level": "note",
                "message": { "text": format!("{}: {n} more {code} findings were left out (per-rule cap)", file.path) },
                "locations": [location(&uri, None)],
            }));
        }
        // The fingerprint leaves out the offset, which moves whenever
        // anything before it changes, and counts repeats of the same
        // finding in the file instead.
        let mut seen: HashMap<u64, u32> = HashMap::new();
        for f in &file.findings {
            let global = f.global.as_deref().unwrap_or("");
            let call = f.call.as_deref().unwrap_or("");
            let member = f.member.as_deref().unwrap_or("");
            let key = fnv1a(&[f.rule.code(), member, global, &f.message, call]);
            let nth = seen.entry(key).or_insert(0);
            *nth += 1;
            let mut loc = location(&uri, Some(f.offset));
            if let Some(m) = &f.member {
                loc["logicalLocations"] = json!([{ "fullyQualifiedName": m, "kind": "member" }]);
            }
            let mut props = Map::new();
            props.insert("pickle".into(), json!(f.pickle));
            if let Some(g) = &f.global {
                props.insert("global".into(), json!(g));
            }
            if let Some(c) = &f.call {
                props.insert("call".into(), json!(c));
            }
            results.push(json!({
                "ruleId": f.rule.code(),
                "ruleIndex": rule_index.get(&f.rule).copied().unwrap_or(0),
                "level": level(f.severity),
                "message": { "text": result_message(f) },
                "locations": [loc],
                "partialFingerprints": { FINGERPRINT_KEY: format!("{key:016x}:{nth}") },
                "properties": Value::Object(props),
            }));
        }
    }

    json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {
                "driver": {
                    "name": "pkinspect",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                },
            },
            "invocations": [{
                "executionSuccessful": report.unreadable() == 0,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_relative_and_are_escaped() {
        assert_eq!(path_to_uri("fixtures/hostile/a_b-c.pkl"), "fixtures/hostile/a_b-c.pkl");
        assert_eq!(path_to_uri("dir with space/x#1?.pkl"), "dir%20with%20space/x%231%3F.pkl");
        assert_eq!(path_to_uri("50%.pkl"), "50%25.pkl");
        assert_eq!(path_to_uri("ü.pkl"), "%C3%BC.pkl");
        // A colon in the first segment would read as a URI scheme.
        assert_eq!(path_to_uri("c:x.pkl"), "c%3Ax.pkl");
        assert_eq!(path_to_uri("\x1b[31m.pkl"), "%1B%5B31m.pkl");
    }

    #[cfg(unix)]
    #[test]
    fn absolute_paths_become_file_uris() {
        assert_eq!(path_to_uri("/tmp/a b.pkl"), "file:///tmp/a%20b.pkl");
    }

    #[test]
    fn levels_follow_severity() {
        assert_eq!(level(Severity::Error), "error");
        assert_eq!(level(Severity::Warning), "warning");
        assert_eq!(level(Severity::Info), "note");
    }

    #[test]
    fn fingerprint_hash_is_fixed() {
        // FNV-1a (64-bit) of the bytes "a\0": a fixed value, so fingerprints never drift.
        assert_eq!(fnv1a(&["a"]), 0x089b_e207_b544_f1e4);
        assert_ne!(fnv1a(&["ab", ""]), fnv1a(&["a", "b"]));
    }
}
