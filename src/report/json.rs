//! `--format json`: one JSON document, versioned by `schema_version`.
//!
//! The schema is documented in docs/output.md. Text from the file
//! (global names, strings in call expressions) is carried as JSON strings, so
//! control characters arrive escaped.

use serde_json::{json, Value};

use super::{Report, SCHEMA_VERSION};

/// The report as a JSON value.
pub fn to_json(report: &Report) -> Value {
    let files: Vec<Value> = report
        .files
        .iter()
        .map(|f| {
            let findings: Vec<Value> = f
                .findings
                .iter()
                .map(|x| {
                    json!({
                        "rule": x.rule.code(),
                        "slug": x.rule.slug(),
                        "severity": x.severity,
                        "offset": x.offset,
                        "pickle": x.pickle,
                        "member": x.member,
                        "global": x.global,
                        "message": x.message,
                        "call": x.call,
                    })
                })
                .collect();
            json!({
                "path": f.path,
                "size": f.size,
                "format": f.format,
                "error": f.error,
                "max_severity": f.max_severity(),
                "pickles": f.pickles,
                "globals": f.globals,
                "findings": findings,
                "suppressed": f.suppressed,
                "skipped_members": f.skipped_members,
                "versions": f.versions,
            })
        })
        .collect();
    let [info, warning, error] = report.counts();
    let mut summary = json!({
        "files": report.files.len(),
        "unreadable": report.unreadable(),
        "skipped": report.skipped_not_model(),
        "symlinks_not_followed": report.symlinks_not_followed(),
        "findings": { "error": error, "warning": warning, "info": info },
    });
    if report.list_skipped {
        let skipped: Vec<Value> =
            report.skipped.iter().map(|s| json!({ "path": s.path, "reason": s.reason.as_str() })).collect();
        summary["skipped_files"] = Value::Array(skipped);
    }
    json!({
        "schema_version": SCHEMA_VERSION,
        "tool": { "name": "pkinspect", "version": env!("CARGO_PKG_VERSION") },
        "files": files,
        "summary": summary,
    })
}
