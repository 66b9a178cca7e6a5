//! The path globs of `[[ignore]]` entries.

/// One token of a glob path component.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A character matched as itself.
    Lit(char),
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    One,
    /// `[a-z_]` or `[!0-9]`.
    Class { negated: bool, ranges: Vec<(char, char)> },
}

/// One `/`-separated part of a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// `**`: any number of directories, including none.
    AnyDirs,
    /// Anything else.
    Name(Vec<Tok>),
}

/// A path glob of an `[[ignore]]` entry.
///
/// Matched against a path relative to the policy file's directory, one
/// `/`-separated part at a time: `*` and `?` never cross a `/`, `**` is any
/// number of directories, `[abc]`, `[a-z]`, `[!a]` are character classes. A
/// glob that matches a directory also matches everything under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    parts: Vec<Part>,
}

impl Glob {
    /// Parses a glob.
    ///
    /// # Errors
    /// Why the glob is invalid: empty, a `\\`, a `.` or `..` part, `**` mixed
    /// with other characters, or an unclosed or empty `[...]` class.
    pub fn parse(s: &str) -> Result<Glob, &'static str> {
        if s.contains('\\') {
            return Err("use `/` between directories; `\\` is not supported");
        }
        let trimmed = s.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("empty glob");
        }
        let mut parts = Vec::new();
        for part in trimmed.split('/') {
            match part {
                "" => return Err("empty path part (`//`)"),
                "." | ".." => return Err("`.` and `..` parts are not allowed: globs are relative to the policy file"),
                "**" => parts.push(Part::AnyDirs),
                _ if part.contains("**") => return Err("`**` must be a whole path part, as in `a/**/b`"),
                _ => parts.push(Part::Name(parse_part(part)?)),
            }
        }
        Ok(Glob { parts })
    }

    /// True when the relative path `parts` (or a directory containing it) matches.
    pub fn matches(&self, path: &[&str]) -> bool {
        (1..=path.len()).any(|k| match_parts(&self.parts, &path[..k]))
    }
}

fn parse_part(part: &str) -> Result<Vec<Tok>, &'static str> {
    let mut toks = Vec::new();
    let mut chars = part.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::One),
            '[' => {
                let negated = matches!(chars.peek(), Some('!' | '^'));
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == ']' && !ranges.is_empty() {
                        closed = true;
                        break;
                    }
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        match chars.next() {
                            Some(']') | None => {
                                // `[a-]`: a literal dash at the end.
                                ranges.push((c, c));
                                ranges.push(('-', '-'));
                                closed = true;
                                break;
                            }
                            Some(hi) if hi >= c => ranges.push((c, hi)),
                            Some(_) => return Err("character range out of order, as in `[z-a]`"),
                        }
                    } else {
                        ranges.push((c, c));
                    }
                }
                if !closed {
                    return Err("unclosed `[`");
                }
                toks.push(Tok::Class { negated, ranges });
            }
            ']' => return Err("`]` without `[`"),
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

fn match_parts(pat: &[Part], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((Part::AnyDirs, rest)) => (0..=path.len()).any(|i| match_parts(rest, &path[i..])),
        Some((Part::Name(toks), rest)) => match path.split_first() {
            Some((first, more)) => {
                let chars: Vec<char> = first.chars().collect();
                match_toks(toks, &chars) && match_parts(rest, more)
            }
            None => false,
        },
    }
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    match toks.split_first() {
        None => s.is_empty(),
        Some((Tok::Star, rest)) => (0..=s.len()).any(|i| match_toks(rest, &s[i..])),
        Some((tok, rest)) => match s.split_first() {
            Some((c, more)) => {
                let ok = match tok {
                    Tok::Lit(l) => l == c,
                    Tok::One => true,
                    Tok::Class { negated, ranges } => ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated,
                    Tok::Star => false,
                };
                ok && match_toks(rest, more)
            }
            None => false,
        },
    }
}
