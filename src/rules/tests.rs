use super::*;
use crate::vm::Analyzer;

#[test]
fn codes_are_unique_and_stable() {
    let mut seen = std::collections::HashSet::new();
    for r in Rule::ALL {
        assert!(seen.insert(r.code()), "repeated code {}", r.code());
        assert!(seen.insert(r.slug()), "repeated slug {}", r.slug());
    }
    // A rename or renumbering must show up here, in review.
    let table: Vec<String> =
        Rule::ALL.iter().map(|r| format!("{} {} {}", r.code(), r.slug(), r.default_severity().as_str())).collect();
    assert_eq!(
        table.join("\n"),
        "PK101 dangerous-import error\nPK102 dangerous-call error\nPK103 unknown-import warning\n\
         PK104 unknown-call warning\nPK105 indirect-call warning\nPK106 setstate-hijack error\n\
         PK107 extension-code warning\nPK108 computed-global error\nPK109 dotted-global warning\n\
         PK110 persistent-id info\nPK111 external-buffer warning\nPK112 gadget-use error\nPK113 unlisted-use warning\nPK114 torchscript-class warning\nPK115 pickled-module warning\nPK201 malformed-stream error\n\
         PK202 truncated-stream error\nPK203 stack-anomaly warning\nPK204 memo-anomaly warning\n\
         PK205 protocol-violation warning\nPK206 frame-violation error\nPK207 trailing-data warning\n\
         PK208 multiple-pickles warning\nPK209 limit-exceeded error\nPK210 payload-anomaly warning\nPK211 parser-differential error\n\
         PK301 container-error error\nPK302 archive-anomaly error\nPK303 decompression-limit error\n\
         PK304 torch-anomaly warning\n\
         PK305 unsafe-companion-path error\nPK306 missing-companion warning\nPK307 polyglot-file error"
    );
}

fn codes(p: &[u8]) -> Vec<&'static str> {
    let j = check(&Analyzer::new().run(p), &Policy::builtin());
    j.findings.iter().map(|f| f.rule.code()).collect()
}

#[test]
fn dangerous_call_shows_expression() {
    let j = check(&Analyzer::new().run(b"cos\nsystem\n(S'echo hi'\ntR."), &Policy::builtin());
    assert_eq!(j.findings.len(), 2);
    assert_eq!(j.findings[1].rule, Rule::DangerousCall);
    assert_eq!(j.findings[1].call.as_deref(), Some("os.system('echo hi')"));
    assert_eq!(j.findings[1].offset, 24);
}

#[test]
fn getattr_on_allowlisted_class_is_safe() {
    // getattr(zoneinfo.ZoneInfo, '_unpickle')('Europe/Berlin', 1)
    let p = b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x08zoneinfo\x8c\x08ZoneInfo\x93\x8c\x09_unpickle\x86R\x8c\x0dEurope/Berlin\x4b\x01\x86R.";
    assert_eq!(codes(p), Vec::<&str>::new());
    // getattr reaching something else is dangerous.
    let p = b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x06random\x8c\x06Random\x93\x8c\x04seed\x86R)R.";
    assert!(codes(p).contains(&"PK102"));
}

#[test]
fn levels_change_severity_or_drop_findings() {
    let a = Analyzer::new().run(b"cmypkg\nThing\n)R.");
    let mut levels = Levels::default();
    assert!(levels.is_default());
    levels.set(Rule::UnknownImport, Some(Severity::Error));
    levels.set(Rule::UnknownCall, None);
    assert!(!levels.is_default());
    let j = check_with(&a, &Policy::builtin(), &levels);
    let got: Vec<(&str, Severity)> = j.findings.iter().map(|f| (f.rule.code(), f.severity)).collect();
    assert_eq!(got, vec![("PK103", Severity::Error)]);
    // The global is still listed with its verdict.
    assert_eq!(j.globals[0].verdict, Verdict::Unknown);
    assert_eq!(j.globals[0].calls, 1);
    // Defaults without levels.
    let j = check(&a, &Policy::builtin());
    let got: Vec<(&str, Severity)> = j.findings.iter().map(|f| (f.rule.code(), f.severity)).collect();
    assert_eq!(got, vec![("PK103", Severity::Warning), ("PK104", Severity::Warning)]);
}

/// The findings of `p`, as (code, message).
fn findings(p: &[u8]) -> Vec<(&'static str, String)> {
    let j = check(&Analyzer::new().run(p), &Policy::builtin());
    j.findings.iter().map(|f| (f.rule.code(), f.message.clone())).collect()
}

#[test]
fn an_allowed_name_is_judged_by_its_use() {
    // numpy.memmap('/tmp/x', 'uint8', 'w+', 0, (16,)): a file overwrite.
    let p = b"cnumpy\nmemmap\n(S'/tmp/pkinspect-fixture'\nS'uint8'\nS'w+'\nI0\n(I16\nttR.";
    let f = findings(p);
    assert_eq!(f.iter().map(|f| f.0).collect::<Vec<_>>(), ["PK112"], "{f:?}");
    assert!(f[0].1.starts_with("calls numpy.memmap: a known gadget (file-"), "{f:?}");
    // The same name as the subtype numpy's _reconstruct is handed, then BUILD: clean.
    let p = b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nmemmap\n(I0\ntS'b'\ntR(I1\n(I0\ntNI00\nS''\ntb.";
    assert_eq!(findings(p), vec![]);
    // Instantiated by copyreg._reconstructor with the base `object`:
    // memmap's own constructor never runs.
    let p = b"ccopyreg\n_reconstructor\n(cnumpy\nmemmap\ncbuiltins\nobject\nNtR.";
    assert_eq!(findings(p).iter().map(|f| f.0).collect::<Vec<_>>(), ["PK113"]);
    // With memmap as the base, _reconstructor calls it with the path.
    let p = b"ccopyreg\n_reconstructor\n(cnumpy\nmemmap\ncnumpy\nmemmap\nS'/tmp/pkinspect-fixture'\ntR.";
    let f = findings(p);
    assert!(f.iter().any(|f| f.0 == "PK112" && f.1.contains("through copyreg._reconstructor")), "{f:?}");
}

#[test]
fn launderers_pass_on_the_call_they_make() {
    // __generator_ctor('echo', os.system) calls os.system('echo').
    let p = b"cnumpy.random._pickle\n__generator_ctor\n(S'echo pkinspect-fixture'\ncos\nsystem\ntR.";
    let j = check(&Analyzer::new().run(p), &Policy::builtin());
    let codes: Vec<_> = j.findings.iter().map(|f| f.rule.code()).collect();
    assert_eq!(codes, ["PK101", "PK102"]);
    assert!(j.findings[1].message.contains("through numpy.random._pickle.__generator_ctor"));
    // The laundered call is counted as a call of the name.
    assert_eq!(j.globals.iter().find(|g| &*g.name == "system").map(|g| g.calls), Some(1));
    // partial(int) whose BUILD makes it call numpy.memmap, then called.
    let p = b"cfunctools\npartial\n(cbuiltins\nint\ntR(cnumpy\nmemmap\n(S'/tmp/pkinspect-fixture'\ntNNtb)R.";
    let f = findings(p);
    assert!(f.iter().any(|f| f.0 == "PK112" && f.1.contains("functools.partial whose BUILD")), "{f:?}");
    assert!(f.iter().any(|f| f.0 == "PK112" && f.1.starts_with("calls numpy.memmap")), "{f:?}");
}

#[test]
fn build_and_instances_are_uses_too() {
    // BUILD with a slot state on pandas' DictWrapper: setattr reaches set_option.
    let p = b"\x80\x02cpandas._config.config\nDictWrapper\n)\x81N}U\x07backendU\x03mods\x86b.";
    let f = findings(p);
    assert!(
        f.iter().any(|f| f.0 == "PK112" && f.1.starts_with("BUILD on a pandas._config.config.DictWrapper")),
        "{f:?}"
    );
    // BUILD on a class object itself.
    let p = b"csklearn.linear_model._logistic\nLogisticRegression\n(N}S'predict'\nI1\nstb.";
    assert!(findings(p).iter().any(|f| f.0 == "PK113" && f.1.contains("attributes of the class")));
    // Calling an instance of sklearn's Parallel runs the tasks it is given.
    let p = b"\x80\x02csklearn.utils.parallel\nParallel\n)\x81]\x85R.";
    assert!(findings(p).iter().any(|f| f.0 == "PK112" && f.1.starts_with("calls a sklearn.utils.parallel.Parallel")));
}

#[test]
fn partial_is_judged_by_its_target() {
    let p = b"cfunctools\npartial\n(cos\nsystem\nS'echo'\ntR)R.";
    let c = codes(p);
    assert!(c.contains(&"PK101") && c.contains(&"PK102"), "{c:?}");
}
