use super::*;
use crate::policy::PatternError;
use crate::policy::Verdict;
use std::path::Path;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Ok(Config::parse(text, Path::new("pkinspect.toml"), false, &Policy::builtin())?.expect("a policy"))
}

fn err(text: &str) -> (String, ConfigErrorKind) {
    let e = parse(text).expect_err("a config error");
    (e.location().to_string(), e.kind().clone())
}

fn judge(c: &Config, m: &str, n: &str) -> Verdict {
    Policy::builtin().with_config(c.additions()).judge(m, n).verdict
}

#[test]
fn patterns_parse() {
    let p = |s: &str| s.parse::<GlobalPattern>();
    assert_eq!(p("a.b:C.d"), Ok(GlobalPattern::Split { module: "a.b".into(), name: "C.d".into() }));
    assert_eq!(p("a.b.C"), Ok(GlobalPattern::Joined("a.b.C".into())));
    assert_eq!(p("a.b.*"), Ok(GlobalPattern::Module("a.b".into())));
    assert_eq!(p("numpy"), Err(PatternError::NoModule));
    assert_eq!(p("*"), Err(PatternError::MisplacedStar));
    assert_eq!(p("a.*.b"), Err(PatternError::MisplacedStar));
    assert_eq!(p("a*"), Err(PatternError::MisplacedStar));
    assert_eq!(p("a..b"), Err(PatternError::EmptyPart));
    assert_eq!(p(":b"), Err(PatternError::EmptyPart));
    assert_eq!(p("a:b:c"), Err(PatternError::TwoColons));
    assert_eq!(p("a b.c"), Err(PatternError::BadChar(' ')));
    assert_eq!(p("a.1b"), Err(PatternError::LeadingDigit("1b".into())));
    assert_eq!(p(""), Err(PatternError::Empty));
    // Splits of a joined name: one per dot.
    assert_eq!(
        GlobalPattern::Joined("a.b.C".into()).splits(),
        vec![("a".into(), "b.C".into()), ("a.b".into(), "C".into())]
    );
}

#[test]
fn allow_exact_and_patterns() {
    let c =
        parse("allow = [\"mycompany.models.Thing\", \"mycompany.layers:Dense\", \"mycompany.nn.*\"]\n").expect("valid");
    assert_eq!(judge(&c, "mycompany.models", "Thing"), Verdict::Safe);
    // Joined: any split of the same dotted string.
    assert_eq!(judge(&c, "mycompany", "models.Thing"), Verdict::Safe);
    assert_eq!(judge(&c, "mycompany.layers", "Dense"), Verdict::Safe);
    // Split: exactly that split.
    assert_eq!(judge(&c, "mycompany", "layers.Dense"), Verdict::Unknown);
    assert_eq!(judge(&c, "mycompany.nn", "Linear"), Verdict::Safe);
    assert_eq!(judge(&c, "mycompany.nn.deep", "Block"), Verdict::Safe);
    assert_eq!(judge(&c, "mycompany.nnx", "Block"), Verdict::Unknown);
    // A pattern does not cover names that run things; dotted ones stay dangerous.
    assert_eq!(judge(&c, "mycompany.nn", "load"), Verdict::Unknown);
    assert_eq!(judge(&c, "mycompany.nn", "Block.system"), Verdict::Dangerous);
    assert_eq!(judge(&c, "mycompany.nn", "Block.__class__"), Verdict::Dangerous);
    // Reasons name the file and line.
    let j = Policy::builtin().with_config(c.additions()).judge("mycompany.nn", "Linear");
    assert_eq!(j.reason, "allowed by pkinspect.toml:1 (mycompany.nn.*)");
}

#[test]
fn allow_never_reaches_the_denylist() {
    let (at, kind) = err("# comment\nallow = [\n  \"mycompany.*\",\n  \"os.*\",\n]\n");
    assert_eq!(at, "pkinspect.toml:4:3");
    match kind {
        ConfigErrorKind::PatternCoversDenied { pattern, denied } => {
            assert_eq!(pattern, "os.*");
            assert_eq!(denied, vec!["os".to_string()]);
        }
        k => panic!("{k:?}"),
    }
    // A pattern inside a denied module, and one holding denied names.
    assert!(matches!(err("allow = [\"os.path.*\"]").1, ConfigErrorKind::PatternCoversDenied { .. }));
    match err("allow = [\"builtins.*\"]").1 {
        ConfigErrorKind::PatternCoversDenied { denied, .. } => {
            assert!(denied.contains(&"builtins.eval".to_string()), "{denied:?}")
        }
        k => panic!("{k:?}"),
    }
    let (at, kind) = err("allow = [\"torch.*\"]");
    assert_eq!(at, "pkinspect.toml:1:10");
    let msg = kind.to_string();
    assert!(msg.contains("torch.load") && msg.contains("torch.hub"), "{msg}");
    // Exact denied names need allow-denied.
    assert!(matches!(err("allow = [\"os.system\"]").1, ConfigErrorKind::AllowsDenied { .. }));
    assert!(matches!(err("allow = [\"builtins:setattr\"]").1, ConfigErrorKind::AllowsDenied { .. }));
    assert!(matches!(err("allow = [\"os.path.join\"]").1, ConfigErrorKind::AllowsDenied { .. }));
    // A joined name with one denied reading: the other readings are allowed, the denied one is not.
    let c = parse("allow = [\"mypkg.profile.Model\", \"random._os.system\"]").expect("valid");
    assert_eq!(judge(&c, "mypkg.profile", "Model"), Verdict::Safe);
    assert_eq!(judge(&c, "mypkg", "profile.Model"), Verdict::Dangerous);
    assert_eq!(judge(&c, "random", "_os.system"), Verdict::Dangerous);
    assert!(matches!(err("allow = [\"builtins.getattr\"]").1, ConfigErrorKind::AllowsConditional { .. }));
    let c = parse("allow-denied = [\"builtins:setattr\"]").expect("explicit");
    assert_eq!(judge(&c, "builtins", "setattr"), Verdict::Safe);
    assert_eq!(judge(&c, "builtins", "eval"), Verdict::Dangerous);
    let reason = Policy::builtin().with_config(c.additions()).judge("builtins", "setattr").reason;
    assert_eq!(reason, "denylisted global, allowed by pkinspect.toml:1 (allow-denied)");
    assert!(matches!(err("allow-denied = [\"os.*\"]").1, ConfigErrorKind::AllowDeniedPattern { .. }));
    assert!(matches!(err("allow-denied = [\"mypkg.Thing\"]").1, ConfigErrorKind::NotDenied { .. }));
    // A pattern that matches nothing is fine.
    let c = parse("allow = [\"no_such_package.*\"]").expect("valid");
    assert_eq!(judge(&c, "os", "system"), Verdict::Dangerous);
}

#[test]
fn deny_wins_and_covers_broadly() {
    let c = parse("allow = [\"mypkg.*\"]\ndeny = [\"mypkg.evil:run\", \"numpy.dtype\", \"pandas.*\"]").expect("ok");
    assert_eq!(judge(&c, "mypkg", "Thing"), Verdict::Safe);
    assert_eq!(judge(&c, "mypkg.evil", "run"), Verdict::Dangerous);
    assert_eq!(judge(&c, "mypkg.evil", "run.attr"), Verdict::Dangerous);
    assert_eq!(judge(&c, "numpy", "dtype"), Verdict::Dangerous);
    assert_eq!(judge(&c, "numpy", "ndarray"), Verdict::Safe);
    assert_eq!(judge(&c, "pandas.core.frame", "DataFrame"), Verdict::Dangerous);
    assert_eq!(judge(&c, "pandas", "core.frame.DataFrame"), Verdict::Dangerous);
    let j = Policy::builtin().with_config(c.additions()).judge("numpy", "dtype");
    assert_eq!(j.reason, "denied by pkinspect.toml:2 (numpy.dtype)");
    // An allow entry a deny entry overrides is an error, at the allow entry.
    let (at, kind) = err("deny = [\"mypkg.*\"]\nallow = [\"mypkg.models.Thing\"]\n");
    assert_eq!(at, "pkinspect.toml:2:10");
    assert_eq!(
        kind,
        ConfigErrorKind::Shadowed {
            entry: "mypkg.models.Thing".into(),
            by: "mypkg.*".into(),
            by_at: "pkinspect.toml:1:9".into()
        }
    );
    assert!(matches!(err("deny = [\"a.b\"]\nallow = [\"a.b.*\"]").1, ConfigErrorKind::Shadowed { .. }));
    assert!(matches!(err("deny = [\"a.b.C\"]\nallow = [\"a:b.C\"]").1, ConfigErrorKind::Shadowed { .. }));
    assert!(matches!(err("deny = [\"os.*\"]\nallow-denied = [\"os.system\"]").1, ConfigErrorKind::Shadowed { .. }));
    // Bad syntax in deny is an error too.
    assert!(matches!(err("deny = [\"a.*.b\"]").1, ConfigErrorKind::BadName { .. }));
}

#[test]
fn syntax_errors_name_line_and_column() {
    let (at, kind) = err("allow = []\n\nbogus = 1\n");
    assert_eq!(at, "pkinspect.toml:3:1");
    assert!(matches!(&kind, ConfigErrorKind::Syntax(m) if m.contains("unknown field `bogus`")), "{kind:?}");
    let (at, _) = err("allow = [\"a.b\"\n");
    assert!(at.starts_with("pkinspect.toml:1:"), "{at}");
    let (at, kind) = err("allow = \"a.b\"\n");
    assert_eq!(at, "pkinspect.toml:1:9");
    assert!(matches!(kind, ConfigErrorKind::Syntax(_)));
    let (at, kind) = err("[[ignore]]\npaths = [\"a\"]\nrule = [\"PK103\"]\n");
    assert_eq!(at, "pkinspect.toml:3:1");
    assert!(matches!(&kind, ConfigErrorKind::Syntax(m) if m.contains("unknown field `rule`")), "{kind:?}");
}

#[test]
fn rule_levels() {
    let c = parse("[rules]\nPK103 = \"error\"\nunknown-call = \"ignore\"\npk110 = \"warning\"\n").expect("ok");
    let l = c.levels_for(Path::new("x.pkl"));
    assert_eq!(l.severity(Rule::UnknownImport), Some(Severity::Error));
    assert_eq!(l.severity(Rule::UnknownCall), None);
    assert_eq!(l.severity(Rule::PersistentId), Some(Severity::Warning));
    assert_eq!(l.severity(Rule::DangerousCall), Some(Severity::Error));
    let (at, kind) = err("[rules]\nPK999 = \"error\"\n");
    assert_eq!((at.as_str(), kind), ("pkinspect.toml:2:1", ConfigErrorKind::UnknownRule("PK999".into())));
    let (at, kind) = err("[rules]\nPK103 = \"fatal\"\n");
    assert_eq!((at.as_str(), kind), ("pkinspect.toml:2:9", ConfigErrorKind::BadLevel("fatal".into())));
    let (at, kind) = err("[rules]\nunknown-import = \"error\"\nPK103 = \"info\"\n");
    assert_eq!(at, "pkinspect.toml:3:1");
    assert!(matches!(kind, ConfigErrorKind::DuplicateRule { rule: "PK103", .. }));
}

#[test]
fn ignore_entries_are_checked() {
    let (at, kind) = err("[[ignore]]\npaths = []\nrules = [\"PK103\"]\n");
    assert_eq!((at.as_str(), kind), ("pkinspect.toml:1:1", ConfigErrorKind::EmptyList("paths")));
    let (at, kind) = err("[[ignore]]\npaths = [\"a/**\"]\nrules = [\"PK1\"]\n");
    assert_eq!((at.as_str(), kind), ("pkinspect.toml:3:10", ConfigErrorKind::UnknownRule("PK1".into())));
    let (at, kind) = err("[[ignore]]\npaths = [\"ok/**\", \"a/[b\"]\nrules = [\"*\"]\n");
    assert_eq!(at, "pkinspect.toml:2:19");
    assert!(matches!(kind, ConfigErrorKind::BadGlob { why: "unclosed `[`", .. }));
    for bad in ["", "a/../b", "a/b**", "a\\b", "a//b", "a/[z-a]", "{a,b"] {
        assert!(Glob::parse(bad).is_err(), "{bad:?}");
    }
    // A `]` outside a class is the character itself (globset, fnmatch).
    assert!(Glob::parse("x]").is_ok());
}

#[test]
fn globs_match_relative_paths() {
    let m = |g: &str, p: &str| Glob::parse(g).expect("glob").matches(&p.split('/').collect::<Vec<_>>());
    assert!(m("tests/data/**", "tests/data/a.pkl"));
    assert!(m("tests/data/**", "tests/data/x/y/a.pkl"));
    assert!(m("tests/data", "tests/data/x/a.pkl"));
    assert!(!m("tests/data/**", "tests/database/a.pkl"));
    assert!(m("*.pkl", "a.pkl"));
    assert!(!m("*.pkl", "sub/a.pkl"));
    assert!(m("**/*.pkl", "sub/deeper/a.pkl"));
    assert!(m("**/*.pkl", "a.pkl"));
    assert!(m("models/v?/*.p[kK]l", "models/v1/m.pKl"));
    assert!(!m("models/v[!0-9]/*", "models/v1/m.pkl"));
    assert!(m("./fixtures/hostile/", "fixtures/hostile/x.pkl"));
    assert!(m("a/**/b/*.pkl", "a/b/x.pkl"));
    assert!(m("a/**/b/*.pkl", "a/1/2/b/x.pkl"));
    assert!(!m("a/**/b/*.pkl", "a/1/2/c/x.pkl"));
}

#[test]
fn ignores_apply_by_path_under_the_base() {
    let dir = std::env::temp_dir().join(format!("pkinspect-config-unit-{}", std::process::id()));
    let data = dir.join("tests/data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let file = dir.join(CONFIG_FILE);
    std::fs::write(
        &file,
        "[rules]\nPK110 = \"error\"\n[[ignore]]\npaths = [\"tests/data/**\"]\nrules = [\"PK103\", \"*\"]\n",
    )
    .expect("write");
    let c = Config::load(&file, &Policy::builtin()).expect("ok").expect("some");
    let inside = c.levels_for(&data.join("a.pkl"));
    assert_eq!(inside.severity(Rule::UnknownImport), None);
    assert_eq!(inside.severity(Rule::PersistentId), None);
    let outside = c.levels_for(&dir.join("a.pkl"));
    assert_eq!(outside.severity(Rule::UnknownImport), Some(Severity::Warning));
    assert_eq!(outside.severity(Rule::PersistentId), Some(Severity::Error));
    // Walking up finds it from a nested directory.
    let mut finder = Finder::new();
    let found = finder.find(&data.join("a.pkl"), &Policy::builtin()).expect("ok").expect("found");
    assert!(found.source().is_some_and(|p| p.ends_with(CONFIG_FILE)));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn pyproject_table() {
    let text =
        "[project]\nname = \"x\"\n\n[tool.black]\nline-length = 88\n\n[tool.pkinspect]\nallow = [\"a.B\"]\nbogus = 1\n";
    let e = Config::parse(text, Path::new("pyproject.toml"), true, &Policy::builtin()).expect_err("bogus");
    assert_eq!(e.location().to_string(), "pyproject.toml:9:1");
    let none = Config::parse("[tool.black]\nx = 1\n", Path::new("pyproject.toml"), true, &Policy::builtin());
    assert!(matches!(none, Ok(None)));
    let text = "[tool.pkinspect]\nallow = [\"a.B\"]\n[tool.pkinspect.rules]\nPK103 = \"error\"\n";
    let c = Config::parse(text, Path::new("pyproject.toml"), true, &Policy::builtin()).expect("ok").expect("some");
    assert_eq!(c.additions().allow[0].origin, "pyproject.toml:2");
}

#[test]
fn flags_are_checked_like_entries() {
    let b = Policy::builtin();
    let flags = |allow: &[&str], deny: &[&str]| Flags {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        allow_denied: Vec::new(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
    };
    let e = Config::from_flags(&flags(&["os.*"], &[]), &b).expect_err("denied");
    assert!(e.to_string().starts_with("--allow: pattern `os.*` would allow"), "{e}");
    let e = Config::from_flags(&flags(&["a.b.*c"], &[]), &b).expect_err("syntax");
    assert_eq!(e.location(), &Location::Flag("--allow"));
    let f = Config::from_flags(&flags(&["mypkg.Thing"], &["numpy.dtype"]), &b).expect("ok");
    assert_eq!(f.additions().allow[0].origin, "--allow");
    // Flags on top of a file: a file denial shadows a flag allow.
    let file = parse("deny = [\"mypkg.*\"]").expect("ok");
    let e = file.merged_with(&f).expect_err("shadowed");
    assert!(matches!(e.kind(), ConfigErrorKind::Shadowed { .. }));
    let file = parse("allow = [\"other.Thing\"]").expect("ok");
    let merged = file.merged_with(&f).expect("ok");
    assert_eq!(merged.additions().allow.len(), 2);
    assert_eq!(merged.additions().deny.len(), 1);
}
