//! Container problems judged: each [`Problem`] the read stage noted gets its
//! rule here, and with the rule its severity (from [`Levels`]), so the read
//! stage states facts and this stage alone picks codes.

use super::{Finding, Levels, Rule};
use crate::container::{CompanionFault, Note, Problem, TorchFault};

/// The rule a container problem falls under.
pub fn container_rule(problem: &Problem) -> Rule {
    match problem {
        Problem::Unreadable(_) => Rule::ContainerError,
        Problem::Archive(_) => Rule::ArchiveAnomaly,
        Problem::Bomb(_) => Rule::DecompressionLimit,
        Problem::Limit(_) => Rule::LimitExceeded,
        Problem::Torch(fault) => torch_rule(fault),
        Problem::Companion(fault) => companion_rule(fault),
        Problem::Polyglot(_) => Rule::Polyglot,
    }
}

/// Bytes after a checkpoint's last storage are trailing data, a pickle
/// there another pickle; every other checkpoint fault is a torch anomaly.
fn torch_rule(fault: &TorchFault) -> Rule {
    match fault {
        TorchFault::BytesAfter { .. } => Rule::TrailingData,
        TorchFault::PickleAfter { .. } => Rule::MultiplePickles,
        TorchFault::OutsideFolder { .. }
        | TorchFault::NoClassDtype { .. }
        | TorchFault::UnknownStorageClass { .. }
        | TorchFault::NotStorageClass { .. }
        | TorchFault::UntypedInLegacy { .. }
        | TorchFault::NoRecord { .. }
        | TorchFault::ShortRecord { .. }
        | TorchFault::ZipStorageOverflow { .. }
        | TorchFault::ModuleInZip { .. }
        | TorchFault::PidNotTuple { .. }
        | TorchFault::PidStorageItems { .. }
        | TorchFault::PidKeyNotStr { .. }
        | TorchFault::PidBadCount { .. }
        | TorchFault::PidBadView { .. }
        | TorchFault::PidModuleItems { .. }
        | TorchFault::PidZipTag { .. }
        | TorchFault::PidUnknownType { .. }
        | TorchFault::TooMany { .. }
        | TorchFault::InputEnds { .. }
        | TorchFault::UnreadPickle { .. }
        | TorchFault::ProtocolVersion { .. }
        | TorchFault::ModuleSource { .. }
        | TorchFault::ModuleNoSource { .. }
        | TorchFault::KeysNotStrings { .. }
        | TorchFault::NoKeyList { .. }
        | TorchFault::KeyUnnamed { .. }
        | TorchFault::StorageWithoutData { .. }
        | TorchFault::CountMissing { .. }
        | TorchFault::ReadBefore { .. }
        | TorchFault::NegativeCount { .. }
        | TorchFault::CountDiffers { .. }
        | TorchFault::StorageOverflow { .. }
        | TorchFault::StoragePastEnd { .. }
        | TorchFault::EndsInside { .. }
        | TorchFault::ReadInside { .. }
        | TorchFault::NoRecordCount { .. }
        | TorchFault::NotATriple { .. }
        | TorchFault::Unfollowable { .. }
        | TorchFault::DimsMissing { .. }
        | TorchFault::TensorRead { .. }
        | TorchFault::Dims { .. }
        | TorchFault::MetadataPastEnd { .. }
        | TorchFault::EndsInMetadata { .. }
        | TorchFault::NoViewList { .. } => Rule::TorchAnomaly,
    }
}

/// A companion name that leads out of the pickle's folder (or cannot be
/// checked) is unsafe; one that is not there, or not a readable file, is
/// missing.
fn companion_rule(fault: &CompanionFault) -> Rule {
    match fault {
        CompanionFault::NameTooLong { .. } | CompanionFault::UnsafeName { .. } | CompanionFault::LinkOutside { .. } => {
            Rule::UnsafeCompanionPath
        }
        CompanionFault::NotInFolder { .. } | CompanionFault::CannotRead { .. } | CompanionFault::NotRegular { .. } => {
            Rule::MissingCompanion
        }
    }
}

/// The finding for a container note, with its rule's severity from
/// `levels`; `None` when `levels` ignores the rule.
pub fn container_finding(note: &Note, levels: &Levels) -> Option<Finding> {
    let rule = container_rule(&note.problem);
    let severity = levels.severity(rule)?;
    Some(Finding {
        rule,
        severity,
        offset: note.offset,
        pickle: 0,
        member: note.member.clone(),
        global: None,
        message: note.problem.to_string(),
        call: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{Bomb, Limit, Unreadable};

    #[test]
    fn a_note_becomes_a_finding_with_its_rule_and_message() {
        let note = Note {
            member: Some("a.pkl".into()),
            offset: 7,
            problem: Bomb::DeclaredSize { declared: 9, csize: 1 }.into(),
        };
        let f = container_finding(&note, &Levels::default()).expect("kept");
        assert_eq!(
            (f.rule, f.severity, f.offset, f.member.as_deref()),
            (Rule::DecompressionLimit, Rule::DecompressionLimit.default_severity(), 7, Some("a.pkl"))
        );
        assert_eq!(f.message, "declared size 9 for 1 compressed bytes exceeds the decompression limits");
        let mut levels = Levels::default();
        levels.set(Rule::DecompressionLimit, None);
        assert_eq!(container_finding(&note, &levels), None);
        assert_eq!(container_rule(&Limit::ZipMembers {}.into()), Rule::LimitExceeded);
        assert_eq!(container_rule(&Unreadable::CannotRewind {}.into()), Rule::ContainerError);
    }
}
