//! Human output: a table of findings per file, the calls they make, and an
//! inventory of the globals by verdict.
//!
//! How much is shown is [`HumanOptions::detail`]: every file and finding
//! ([`Detail::All`], the library's default and `scan --verbose`), only the
//! files with a finding at or above a level and those findings
//! ([`Detail::AtLeast`], `scan`'s default), or nothing but unreadable files
//! ([`Detail::Summary`], `scan --quiet`). The summary line, which counts
//! every finding, ends the output in each case.
//!
//! Every piece of text that came from the scanned file has been escaped
//! before it reaches this module (see [`crate::view::render`]); the path, which
//! came from the file system, is escaped here.

use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

use super::Report;
use crate::policy::Verdict;
use crate::py::repr::escape_for_terminal;
use crate::rules::{Finding, Severity};
use crate::scan::FileReport;

/// How much of each file the human format shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Detail {
    /// Every file, every finding (`scan --verbose`).
    #[default]
    All,
    /// Files with a finding at or above this severity, and only those
    /// findings (the others are counted in a note); nothing of the other
    /// files (`scan`'s default, at `warning`).
    AtLeast(Severity),
    /// No file but those that could not be read (`scan --quiet`).
    Summary,
}

/// Options for the human format.
#[derive(Debug, Clone, Copy, Default)]
pub struct HumanOptions {
    /// Also list the globals judged safe (of the files shown).
    pub show_safe: bool,
    /// Terminal width for the tables (None: let comfy-table decide).
    pub width: Option<u16>,
    /// Which files and findings are shown.
    pub detail: Detail,
}

impl Detail {
    /// Whether `f`, which was read, gets its block.
    fn shows_file(self, f: &FileReport) -> bool {
        match self {
            Detail::All => true,
            Detail::AtLeast(level) => f.max_severity().is_some_and(|m| m >= level),
            Detail::Summary => false,
        }
    }

    /// Whether a shown file's finding gets its row.
    fn shows_finding(self, x: &Finding) -> bool {
        match self {
            Detail::AtLeast(level) => x.severity >= level,
            Detail::All | Detail::Summary => true,
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The report as text.
pub fn render(report: &Report, opts: HumanOptions) -> String {
    let mut out = String::new();
    for f in &report.files {
        let path = escape_for_terminal(&f.path);
        if let Some(e) = &f.error {
            let _ = writeln!(out, "{path}: error: {}", escape_for_terminal(e));
            continue;
        }
        if !opts.detail.shows_file(f) {
            continue;
        }
        file_header(&mut out, &path, f);
        versions_line(&mut out, f);
        let shown: Vec<&Finding> = f.findings.iter().filter(|x| opts.detail.shows_finding(x)).collect();
        if !shown.is_empty() {
            let _ = writeln!(out, "{}", findings_table(&shown, opts));
        }
        hidden_note(&mut out, f, opts.detail);
        for (code, n) in &f.suppressed {
            let _ = writeln!(out, "  ({n} more {code} findings not shown)");
        }
        globals_inventory(&mut out, f, opts);
    }
    if report.list_skipped {
        for s in &report.skipped {
            let _ = writeln!(out, "{}: skipped ({})", escape_for_terminal(&s.path), s.reason.as_str());
        }
    }
    summary_line(&mut out, report);
    out
}

/// `  saved with scikit-learn 1.9.1`: the library versions the file
/// records; nothing when it records none.
fn versions_line(out: &mut String, f: &FileReport) {
    if f.versions.is_empty() {
        return;
    }
    let list: Vec<String> = f.versions.iter().map(|v| format!("{} {}", v.library, v.version)).collect();
    let _ = writeln!(out, "  saved with {}", list.join(", "));
}

/// `  (2 info findings not shown; --verbose lists them)` when a shown file
/// has findings below the level shown.
fn hidden_note(out: &mut String, f: &FileReport, detail: Detail) {
    let mut sev = [0usize; 3];
    for x in f.findings.iter().filter(|x| !detail.shows_finding(x)) {
        sev[x.severity as usize] += 1;
    }
    let hidden: usize = sev.iter().sum();
    if hidden == 0 {
        return;
    }
    let parts: Vec<String> = [Severity::Error, Severity::Warning, Severity::Info]
        .into_iter()
        .filter(|&s| sev[s as usize] > 0)
        .map(|s| format!("{} {}", sev[s as usize], s.as_str()))
        .collect();
    let word = if hidden == 1 { "finding" } else { "findings" };
    let _ = writeln!(out, "  ({} {word} not shown; --verbose lists them)", parts.join(", "));
}

/// `PATH: FAIL (2 error, 0 warning, 0 info) — pickle, 1 pickle, protocol 0, 41 bytes`.
fn file_header(out: &mut String, path: &str, f: &FileReport) {
    let mut sev = [0usize; 3];
    for x in &f.findings {
        sev[x.severity as usize] += 1;
    }
    let protos: Vec<String> = f.pickles.iter().map(|p| p.protocol.to_string()).collect();
    let verdict = match f.max_severity() {
        Some(Severity::Error) => "FAIL",
        Some(Severity::Warning) => "REVIEW",
        _ => "OK",
    };
    let _ = writeln!(
        out,
        "{path}: {verdict} ({} error, {} warning, {} info) — {}, {}, protocol {}, {} bytes",
        sev[2],
        sev[1],
        sev[0],
        f.format,
        plural(f.pickles.len(), "pickle"),
        if protos.is_empty() { "-".to_string() } else { protos.join("/") },
        f.size
    );
}

/// One row per finding: offset, rule, severity, and the message with the
/// call it is about on a line of its own.
fn findings_table(findings: &[&Finding], opts: HumanOptions) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if let Some(w) = opts.width {
        t.set_width(w);
    }
    t.set_header(vec!["offset", "rule", "severity", "finding"]);
    for x in findings {
        let mut text = x.message.clone();
        if let Some(c) = &x.call {
            text.push_str("\n→ ");
            text.push_str(c);
        }
        t.add_row(vec![
            x.offset.to_string(),
            format!("{} {}", x.rule.code(), x.rule.slug()),
            x.severity.as_str().to_string(),
            text,
        ]);
    }
    t
}

/// The count of globals per verdict, then one line per global (the safe
/// ones only with [`HumanOptions::show_safe`]).
fn globals_inventory(out: &mut String, f: &FileReport, opts: HumanOptions) {
    let mut by = [0usize; 4];
    for g in &f.globals {
        by[g.verdict as usize] += 1;
    }
    let _ = writeln!(
        out,
        "  globals: {} dangerous, {} unknown, {} conditional, {} safe",
        by[Verdict::Dangerous as usize],
        by[Verdict::Unknown as usize],
        by[Verdict::Conditional as usize],
        by[Verdict::Safe as usize]
    );
    for g in &f.globals {
        if g.verdict == Verdict::Safe && !opts.show_safe {
            continue;
        }
        let label = match g.verdict {
            Verdict::Dangerous => "dangerous",
            Verdict::Unknown => "unknown",
            Verdict::Conditional => "conditional",
            Verdict::Safe => "safe",
        };
        let _ = writeln!(
            out,
            "    {label:<11} {} ({}, {}) first at offset {}",
            crate::view::render::global_name(&g.module, &g.name),
            plural(g.imports, "import"),
            plural(g.calls, "call"),
            g.first_offset
        );
    }
}

/// `3 files scanned, 1 skipped (not model files): 2 error, 0 warning, 0 info findings`.
fn summary_line(out: &mut String, report: &Report) {
    let [info, warning, error] = report.counts();
    let _ = writeln!(
        out,
        "{} scanned{}: {error} error, {warning} warning, {info} info findings{}",
        plural(report.files.len(), "file"),
        skipped_counts(report),
        match report.unreadable() {
            0 => String::new(),
            n => format!("; {} could not be read", plural(n, "file")),
        }
    );
}

/// `, 2 skipped (not model files), 1 symlink not followed` for the summary
/// line; empty when no folder held anything that was not scanned.
fn skipped_counts(report: &Report) -> String {
    let mut s = String::new();
    let skipped = report.skipped_not_model();
    if skipped > 0 {
        let _ = write!(s, ", {skipped} skipped (not model files)");
    }
    match report.symlinks_not_followed() {
        0 => {}
        1 => s.push_str(", 1 symlink not followed"),
        n => {
            let _ = write!(s, ", {n} symlinks not followed");
        }
    }
    s
}
