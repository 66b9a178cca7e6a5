//! The rule registry and the judging stage: machine events in, findings out.
//!
//! Every finding carries a stable [`Rule`] code. Codes are never reused or
//! renumbered (a test snapshots the table); severities come from
//! [`Rule::default_severity`], or from the [`Levels`] a policy file sets
//! (which may also drop a rule). This is the only place that decides what is
//! dangerous: the machine reports, the [`Policy`] classifies names, and
//! [`check`] turns both into [`Finding`]s.

use std::collections::BTreeMap;

use crate::policy::{Policy, Verdict};
use crate::vm::Analysis;

mod container;
mod judge;
mod registry;
#[cfg(test)]
mod tests;
mod uses;
pub use container::{container_finding, container_rule};
use judge::Judge;
pub use registry::{Levels, Rule, Severity};

/// One finding.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// The rule.
    #[serde(serialize_with = "ser_rule")]
    pub rule: Rule,
    /// Its severity.
    pub severity: Severity,
    /// Absolute byte offset of the opcode (or error).
    pub offset: u64,
    /// Index of the pickle in the file.
    pub pickle: usize,
    /// Archive member, for containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The global concerned, as `module.name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    /// What was found.
    pub message: String,
    /// The call as a Python-like expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

fn ser_rule<S: serde::Serializer>(r: &Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.code())
}

/// One imported global and what the policy says of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GlobalUse {
    /// Module as imported.
    pub module: String,
    /// Name, possibly dotted.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
    /// How many times it is imported.
    pub imports: usize,
    /// How many times it is called (directly or via getattr/partial resolution).
    pub calls: usize,
    /// Offset of the first import.
    pub first_offset: u64,
}

/// What judging one analysis produced.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    /// Findings, in offset order.
    pub findings: Vec<Finding>,
    /// Every distinct global, in first-import order.
    pub globals: Vec<GlobalUse>,
    /// Findings dropped past `MAX_FINDINGS_PER_RULE`, per rule code.
    pub suppressed: BTreeMap<&'static str, usize>,
}

/// Judges an analysis against a policy.
pub fn check(analysis: &Analysis, policy: &Policy) -> Judged {
    check_with(analysis, policy, &Levels::default())
}

/// Judges an analysis against a policy, with severities from `levels`.
pub fn check_with(analysis: &Analysis, policy: &Policy, levels: &Levels) -> Judged {
    Judge::new(analysis, policy, levels).run()
}
