//! The path globs of `[[ignore]]` entries and of `scan --exclude`.
//!
//! Matching is globset's: a glob is compiled to a regex once and matched in
//! time linear in the path. The hand-written backtracking matcher it
//! replaces took seconds (and exponential time) on globs such as
//! `*a*a*a*a*a*a*a*a*a*ab`, and a policy file in a scanned repository is
//! picked up by itself. What this module adds is pkinspect's own checks and
//! messages, and the rule that a glob matching a directory matches
//! everything under it.

use globset::{ErrorKind, GlobBuilder, GlobMatcher};

/// A path glob of an `[[ignore]]` entry or a `--exclude` flag.
///
/// Matched against a `/`-separated relative path: `*` and `?` never cross
/// a `/`, `**` as a whole part is any number of directories (none
/// included), `[abc]`, `[a-z]`, `[!a]` (or `[^a]`) are character classes
/// that never match `/`, and `{a,b}` is either `a` or `b`. A `]` outside a
/// class is itself. A glob that matches a directory also matches
/// everything under it, so `a/**` and `a` match the same paths.
#[derive(Debug, Clone)]
pub struct Glob {
    written: String,
    matcher: GlobMatcher,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.written == other.written
    }
}

impl Eq for Glob {}

impl Glob {
    /// Parses a glob. A leading `./` or `/` and a trailing `/` are dropped.
    ///
    /// # Errors
    /// Why the glob is invalid: empty, a `\\`, a `.` or `..` part, `**` mixed
    /// with other characters, an unclosed or empty `[...]` class, a range
    /// out of order, or unbalanced `{...}`.
    pub fn parse(s: &str) -> Result<Glob, &'static str> {
        if s.contains('\\') {
            return Err("use `/` between directories; `\\` is not supported");
        }
        let trimmed = s.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("empty glob");
        }
        for part in trimmed.split('/') {
            match part {
                "" => return Err("empty path part (`//`)"),
                "." | ".." => return Err("`.` and `..` parts are not allowed: globs are relative to the policy file"),
                "**" => {}
                _ if part.contains("**") => return Err("`**` must be a whole path part, as in `a/**/b`"),
                _ => {}
            }
        }
        // `a/**` matches `a` too (`**` may be no directory at all), and so
        // everything under it: it is the glob `a`. globset's `a/**` would
        // not match `a` itself, so a folder would be entered.
        let mut pattern = trimmed;
        while let Some(p) = pattern.strip_suffix("/**") {
            pattern = p;
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(false)
            .build()
            .map_err(|e| why(e.kind()))?;
        Ok(Glob { written: s.to_string(), matcher: glob.compile_matcher() })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// True when the relative path `parts` (or a directory containing it) matches.
    pub fn matches(&self, path: &[&str]) -> bool {
        let mut prefix = String::new();
        path.iter().any(|part| {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.matcher.is_match(&prefix)
        })
    }

    /// True when the `/`-separated relative path `path` itself matches; its
    /// directories are not tried.
    pub fn matches_exactly(&self, path: &str) -> bool {
        self.matcher.is_match(path)
    }
}

/// pkinspect's message for a globset error.
fn why(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::UnclosedClass => "unclosed `[`",
        ErrorKind::InvalidRange(..) => "character range out of order, as in `[z-a]`",
        ErrorKind::InvalidRecursive => "`**` must be a whole path part, as in `a/**/b`",
        ErrorKind::UnopenedAlternates => "`}` without `{` (write `[}]` for the character)",
        ErrorKind::UnclosedAlternates => "unclosed `{` (write `[{]` for the character)",
        ErrorKind::NestedAlternates | ErrorKind::TooManyNestedAlternates => "`{...}` nested too deeply",
        _ => "not a valid glob",
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(g: &str, p: &str) -> bool {
        Glob::parse(g).expect("glob").matches(&p.split('/').collect::<Vec<_>>())
    }

    /// The glob that took the backtracking matcher 14 s on a 40-character
    /// name; globset answers at once (the time is measured, not asserted).
    #[test]
    fn a_pathological_glob_is_matched() {
        let g = "*a*a*a*a*a*a*a*a*a*ab";
        let no = "a".repeat(40);
        let yes = format!("{}b", "a".repeat(39));
        assert_eq!(no.len(), 40);
        assert_eq!(yes.len(), 40);
        assert!(!m(g, &no));
        assert!(m(g, &yes));
        assert!(m(&format!("**/{g}"), &format!("x/{no}/y/{yes}")));
        assert!(!m(&format!("**/{g}"), &format!("x/{no}/y/{no}")));
    }

    /// Where globset's syntax goes beyond the old matcher's, as docs/policy.md says.
    #[test]
    fn globset_edge_cases() {
        assert!(m("*.{pkl,pt}", "a.pt"));
        assert!(!m("*.{pkl,pt}", "a.bin"));
        assert!(m("{tests,docs}/*.pkl", "docs/a.pkl"));
        assert!(m("x]", "x]"));
        assert!(m("[{]a[}]", "{a}"));
        assert!(m("[]a]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[^a]b", "cb"));
        assert!(!m("a[!x]b", "a/b"));
        assert!(!m("a?b", "a/b"));
        assert!(m("a/**", "a"));
        assert!(m("a/**/**", "a/b"));
        assert!(m("**", "anything/at/all"));
        assert!(m(".*", ".hidden"));
        for (bad, why) in [
            ("{a,b", "unclosed `{` (write `[{]` for the character)"),
            ("a}", "`}` without `{` (write `[}]` for the character)"),
            ("[z-a]", "character range out of order, as in `[z-a]`"),
            ("[]", "unclosed `[`"),
            ("a/**b", "`**` must be a whole path part, as in `a/**/b`"),
        ] {
            assert_eq!(Glob::parse(bad), Err(why), "{bad:?}");
        }
    }
}
