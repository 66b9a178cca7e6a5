//! The pickle streams of one file as `show` and `dis` present them: which
//! are shown (all, or those of one archive member), the header line that
//! names each one's member and the layers it was read through, and what is
//! said when a file holds no pickle.

use std::fmt;

use crate::container::{Part, Walked};
use crate::py::repr::escape_for_terminal;

/// Member names listed in a message before the rest are counted.
const LISTED: usize = 20;

/// The streams to show, and whether each gets a header line.
#[derive(Debug)]
pub struct Selected<'w> {
    /// The streams, in file order.
    pub parts: Vec<&'w Part>,
    /// Whether to name each stream in a header line: always, except for a
    /// file that is one pickle stream itself (so that `show` and `dis` of a
    /// plain pickle print exactly what they always did).
    pub headers: bool,
}

/// `--member NAME` names no stream of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSuchMember {
    /// The name asked for.
    pub name: String,
    /// Whether the file has a member of that name that holds no pickle.
    pub not_a_pickle: bool,
    /// The members that hold pickles, in file order.
    pub members: Vec<String>,
}

impl fmt::Display for NoSuchMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = escape_for_terminal(&self.name);
        if self.not_a_pickle {
            write!(f, "member `{name}` holds no pickle (array data, text or another format)")?;
        } else {
            write!(f, "no member `{name}` holds a pickle")?;
        }
        if self.members.is_empty() {
            write!(f, "; no member of this file holds one")
        } else {
            write!(f, "; members with pickles: {}", list(&self.members))
        }
    }
}

impl std::error::Error for NoSuchMember {}

/// Names joined with `, `, escaped, the ones past [`LISTED`] counted.
fn list(names: &[String]) -> String {
    let mut s = names.iter().take(LISTED).map(|n| escape_for_terminal(n)).collect::<Vec<_>>().join(", ");
    if names.len() > LISTED {
        s.push_str(&format!(", and {} more", names.len() - LISTED));
    }
    s
}

/// The members of `walked` that hold pickle streams, each once, in file order.
pub fn pickle_members(walked: &Walked) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in walked.parts.iter().filter_map(|p| p.member.as_ref()) {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    out
}

/// The streams of `walked` to show: every one, or with `member`, those read
/// from that archive member (nested members are named `outer!inner`).
///
/// # Errors
/// No stream was read from `member`; the error lists the members that hold
/// pickles.
pub fn select<'w>(walked: &'w Walked, member: Option<&str>) -> Result<Selected<'w>, NoSuchMember> {
    let Some(name) = member else {
        let plain = matches!(&walked.parts[..], [p] if p.member.is_none() && p.layers.is_empty());
        return Ok(Selected { parts: walked.parts.iter().collect(), headers: !plain });
    };
    let parts: Vec<&Part> = walked.parts.iter().filter(|p| p.member.as_deref() == Some(name)).collect();
    if parts.is_empty() {
        let not_a_pickle = walked.skipped_members.iter().any(|s| s == name);
        return Err(NoSuchMember { name: name.to_string(), not_a_pickle, members: pickle_members(walked) });
    }
    Ok(Selected { parts, headers: true })
}

/// The text of a stream's header line: `member NAME` or `the file`, then
/// the layers it was read through, outermost first (`[zip]`, `[gzip > tar]`,
/// `[zlib]` for a compressed joblib file).
pub fn label(part: &Part) -> String {
    let place = match &part.member {
        Some(m) => format!("member {}", escape_for_terminal(m)),
        None => "the file".to_string(),
    };
    if part.layers.is_empty() {
        place
    } else {
        format!("{place} [{}]", part.layers.join(" > "))
    }
}

/// What to say of a file in which no pickle stream was found: its format
/// and the members that are not pickles.
pub fn no_pickle(walked: &Walked) -> String {
    let format = walked.format.map_or("unknown", |f| f.name());
    let mut s = format!("no pickle stream in this file ({format})");
    if !walked.skipped_members.is_empty() {
        s.push_str(&format!("; not pickles: {}", list(&walked.skipped_members)));
    }
    s
}

/// What the walk found wrong with the file's containers, one line each
/// (`scan` reports them as findings), those of `member` only when one is
/// given.
pub fn container_notes(walked: &Walked, member: Option<&str>) -> Vec<String> {
    walked
        .notes
        .iter()
        .filter(|n| member.is_none() || n.member.as_deref() == member)
        .map(|n| {
            let place = match &n.member {
                Some(m) => format!("member {}", escape_for_terminal(m)),
                None => "the file".to_string(),
            };
            format!("{place}, offset {}: {}", n.offset, escape_for_terminal(&n.problem.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::walk_file;

    #[test]
    fn a_plain_pickle_has_no_header() {
        let w = walk_file("fixtures/benign/sklearn_logreg_iris_p4.pkl".as_ref(), false).expect("walk");
        let s = select(&w, None).expect("all");
        assert!(!s.headers);
        assert_eq!(s.parts.len(), 1);
        assert!(select(&w, Some("x")).unwrap_err().to_string().ends_with("no member of this file holds one"));
    }

    #[test]
    fn members_are_named_and_picked() {
        let w = walk_file("fixtures/containers/bundle.zip".as_ref(), false).expect("walk");
        let s = select(&w, None).expect("all");
        assert!(s.headers);
        assert!(s.parts.iter().all(|p| label(p).starts_with("member ") && label(p).ends_with(" [zip]")));
        let members = pickle_members(&w);
        assert!(!members.is_empty());
        let one = select(&w, Some(&members[0])).expect("one");
        assert!(one.parts.iter().all(|p| p.member.as_deref() == Some(members[0].as_str())));
        let err = select(&w, Some("nope\x1b")).unwrap_err().to_string();
        assert!(err.starts_with("no member `nope\\x1b` holds a pickle; members with pickles: "), "{err}");
        let w = walk_file("fixtures/containers/joblib_mixed_p4.joblib.z".as_ref(), false).expect("walk");
        assert_eq!(label(&w.parts[0]), "the file [zlib]");
    }
}
