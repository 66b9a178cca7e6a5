//! The library versions a file records about itself.
//!
//! scikit-learn writes `_sklearn_version` into the state of every estimator
//! it pickles (`BaseEstimator.__getstate__`), and warns or fails when the
//! file is loaded under another version: the most common reason a model
//! "does not load". The version is read from the BUILD states the machine
//! saw, as data; nothing is imported.

use std::collections::BTreeSet;

use crate::vm::{Analysis, EventKind};

/// The state keys that record a library's version, and the library's name.
const VERSION_KEYS: &[(&str, &str)] = &[("_sklearn_version", "scikit-learn")];

/// Every distinct `(library, version)` the BUILD states of `a` record,
/// sorted. A version that is not a short plain string is left out.
pub fn library_versions(a: &Analysis) -> BTreeSet<(&'static str, String)> {
    let mut out = BTreeSet::new();
    let mut seen_states = std::collections::HashSet::new();
    for e in &a.events {
        let EventKind::Build { state, .. } = &e.kind else { continue };
        // One state dict may be applied by many BUILDs.
        if !seen_states.insert(*state) {
            continue;
        }
        for &(k, v) in a.pairs(*state) {
            let Some(key) = a.full_str(k) else { continue };
            let Some((_, library)) = VERSION_KEYS.iter().find(|(name, _)| *name == key) else { continue };
            if let Some(version) = a.full_str(v).filter(|s| is_version(s)) {
                out.insert((*library, version.to_string()));
            }
        }
    }
    out
}

/// A version string as libraries write them: short, digits, letters, dots,
/// `+`, `-` (so a file cannot put terminal escapes or a page of text in the
/// report through it).
fn is_version(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.chars().all(|c| c.is_ascii_alphanumeric() || ".+-_".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Analyzer;

    #[test]
    fn sklearn_versions_from_real_files() {
        let data = std::fs::read("fixtures/benign/sklearn_logreg_iris_p4.pkl").expect("fixture");
        let a = Analyzer::new().run(&data);
        assert_eq!(library_versions(&a).into_iter().collect::<Vec<_>>(), [("scikit-learn", "1.9.1".to_string())]);
        // A file without estimators records none.
        let a = Analyzer::new().run(b"\x80\x04K\x01.");
        assert!(library_versions(&a).is_empty());
    }

    #[test]
    fn only_plain_version_strings() {
        assert!(is_version("1.9.1") && is_version("1.6.dev0+abc") && !is_version("") && !is_version("1.0\x1b[31m"));
        assert!(!is_version(&"9".repeat(41)));
    }
}
