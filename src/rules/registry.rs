//! The rule registry: every [`Rule`] with its stable code, slug, default
//! [`Severity`], one-line summary and explanation (the variant's doc
//! comment), and the per-rule [`Levels`] a policy file sets.
//!
//! Codes are never reused or renumbered (a test snapshots the table); the
//! docs/rules.md's rule table, `pkinspect rules`, `pkinspect explain` and the SARIF
//! rules are all generated from here.

// The explanations are written for `pkinspect explain`, not for HTML:
// `<name>_NN.npy` there is text.
#![allow(rustdoc::invalid_html_tags)]
use std::collections::BTreeMap;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; not a problem by itself.
    Info,
    /// Unknown or suspicious: review before loading.
    Warning,
    /// Loading would run dangerous code, or the file is built to mislead scanners.
    Error,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Per-rule severities that replace [`Rule::default_severity`], as a policy
/// file's `[rules]` table and `[[ignore]]` entries set them. A rule set to
/// `None` is ignored: its findings are dropped where they are made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Levels {
    map: BTreeMap<Rule, Option<Severity>>,
}

impl Levels {
    /// Sets `rule`'s severity; `None` ignores the rule.
    pub fn set(&mut self, rule: Rule, level: Option<Severity>) {
        self.map.insert(rule, level);
    }

    /// The severity findings of `rule` get, or `None` when they are dropped.
    pub fn severity(&self, rule: Rule) -> Option<Severity> {
        self.map.get(&rule).copied().unwrap_or(Some(rule.default_severity()))
    }

    /// True when every rule keeps its default severity.
    pub fn is_default(&self) -> bool {
        self.map.iter().all(|(r, l)| *l == Some(r.default_severity()))
    }
}

macro_rules! rules {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $code:literal, $slug:literal, $sev:ident, $summary:literal; )*) => {
        /// A stable rule. The code (`PK101`) and slug never change meaning.
        /// Each variant's documentation is its explanation
        /// ([`Rule::explanation`], `pkinspect explain`), written as a doc
        /// comment so that rustfmt and rustdoc read it like any other.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule { $( $(#[doc = $doc])+ $variant, )* }

        impl Rule {
            /// Every rule, in code order.
            pub const ALL: &'static [Rule] = &[ $( Rule::$variant, )* ];
            /// The stable code, e.g. `PK101`.
            pub fn code(self) -> &'static str { match self { $( Rule::$variant => $code, )* } }
            /// The stable kebab-case name.
            pub fn slug(self) -> &'static str { match self { $( Rule::$variant => $slug, )* } }
            /// The severity a finding of this rule has.
            pub fn default_severity(self) -> Severity { match self { $( Rule::$variant => Severity::$sev, )* } }
            /// One line: what the rule detects.
            pub fn summary(self) -> &'static str { match self { $( Rule::$variant => $summary, )* } }
            /// The variant's doc comment, its lines as written.
            fn doc_lines(self) -> &'static [&'static str] { match self { $( Rule::$variant => &[$($doc),+], )* } }
            /// The rule with this code or slug.
            pub fn from_code(s: &str) -> Option<Rule> {
                Rule::ALL.iter().copied().find(|r| r.code().eq_ignore_ascii_case(s) || r.slug() == s)
            }
        }
    };
}

impl Rule {
    /// Why it matters and what to do: the variant's doc comment as one
    /// paragraph.
    pub fn explanation(self) -> &'static str {
        static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let texts = TEXTS.get_or_init(|| {
            Rule::ALL.iter().map(|r| r.doc_lines().iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")).collect()
        });
        // ALL lists every rule, in declaration order.
        let i = Rule::ALL.iter().position(|r| *r == self).unwrap_or(0);
        &texts[i]
    }
}

rules! {
    /// Unpickling imports the module and fetches the name before anything else happens. Denylisted globals run
    /// commands, evaluate code, touch files or the network, or deserialise again. A legitimate model never
    /// needs them. Do not load the file; if you wrote it yourself, find which object pickled a reference to
    /// this callable.
    DangerousImport = "PK101", "dangerous-import", Error,
        "The pickle imports a global on the denylist.";
    /// REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ, or a BUILD that triggers a planted __setstate__, invokes the
    /// callable with the arguments shown while the file is loaded. This is how malicious pickles run code. Do
    /// not load the file.
    DangerousCall = "PK102", "dangerous-call", Error,
        "The pickle calls a denylisted callable; the finding shows the call.";
    /// Importing a module runs its top-level code, and an unknown class or function may do anything when
    /// called. Review the name: if it is your own trusted class, allow it in a policy file (allow = [...] in
    /// pkinspect.toml, or in [tool.pkinspect] of pyproject.toml) or for one run with --allow.
    UnknownImport = "PK103", "unknown-import", Warning,
        "The pickle imports a global that is neither allowlisted nor denylisted.";
    /// An unknown callable runs with the arguments shown when the file is loaded. Check that the callable is
    /// trusted code before loading.
    UnknownCall = "PK104", "unknown-call", Warning,
        "The pickle calls a global that is not on the allowlist.";
    /// Calling the result of a call (for example getattr(x, name)(...)) hides the real callable from simple
    /// scanners. pkinspect resolves getattr and functools.partial on allowlisted names; anything else it cannot
    /// name is reported here.
    IndirectCall = "PK105", "indirect-call", Warning,
        "The pickle calls something that is not a plain global: the result of another call, a persistent object, or an unknown value.";
    /// BUILD with a (state, slotstate) pair runs setattr for each slot; setting __setstate__ to a callable
    /// makes the next BUILD on that object call it. No legitimate pickle sets dunder attributes this way.
    SetstateHijack = "PK106", "setstate-hijack", Error,
        "A BUILD state sets a dunder attribute such as __setstate__ on an object.";
    /// Extension codes name globals through copyreg's registry, which standard Python leaves empty. A pickle
    /// that registers codes itself (copyreg.add_extension) uses them to hide imports. pkinspect resolves
    /// in-stream registrations and judges the resolved name.
    ExtensionCode = "PK107", "extension-code", Warning,
        "The pickle uses EXT1/EXT2/EXT4 extension-registry codes.";
    /// The imported name is produced at load time (for example by decoding rot13), so no static reader can say
    /// what is imported. This only happens in files built to evade scanners.
    ComputedGlobal = "PK108", "computed-global", Error,
        "STACK_GLOBAL takes a module or name that was computed, not written as a string.";
    /// find_class walks a dotted name with getattr, so random._os.system reaches os.system. pkinspect judges
    /// the whole path: safe only when allowlisted exactly.
    DottedGlobal = "PK109", "dotted-global", Warning,
        "A global name is an attribute path (protocol 4 resolves dots one attribute at a time).";
    /// PyTorch checkpoints use persistent ids for tensor storages. What an id does depends on the loader; plain
    /// pickle.load refuses them.
    PersistentId = "PK110", "persistent-id", Info,
        "The pickle hands persistent ids to the loader's persistent_load.";
    /// Protocol 5 out-of-band buffers must be supplied by the caller; the file alone cannot be loaded and its
    /// array data cannot be audited.
    ExternalBuffer = "PK111", "external-buffer", Warning,
        "The pickle refers to out-of-band buffers (NEXT_BUFFER), data that is not in the file.";
    /// An allowlisted name is safe only in the uses real files make of it (docs/uses.md): numpy.memmap is a
    /// harmless subtype handed to _reconstruct, and a file overwrite when called with a path and mode 'w+'.
    /// pkinspect's gadget hunt (scripts/gadget_hunt.py) exercises every allowlist entry in every way a pickle
    /// can reach it, in a sandbox, and records the uses that had an effect (docs/gadgets.md); this file makes
    /// one of them, directly or through a function that calls its argument (copyreg._reconstructor,
    /// copyreg.__newobj__, numpy's __generator_ctor, functools.partial, ...). Do not load the file.
    GadgetUse = "PK112", "gadget-use", Error,
        "An allowlisted global is used in a way the gadget hunt showed to have effects: it writes files, imports or compiles what the file names, calls what the file gives, or reaches the network.";
    /// Each allowlist entry carries the uses the real libraries' own pickles make of it: a class that is only
    /// ever instantiated and given state, a function only ever called with certain arguments. This file uses
    /// the name beyond them; the gadget hunt found no effect for this use, but no real file needs it either.
    /// Review the call shown; if the file comes from a library pkinspect does not know, report the case.
    UnlistedUse = "PK113", "unlisted-use", Warning,
        "An allowlisted global is used in a way real files never use it (called with arguments, given a BUILD state, instantiated, ...).";
    /// torch.jit.save archives pickle their objects as __torch__.* classes that torch.jit.load rebuilds from
    /// the TorchScript code stored in the archive (code/), compiled and run by the TorchScript interpreter, not
    /// by Python. torch.load(weights_only=True) refuses TorchScript archives. Python's pickle cannot import
    /// these names; the code in the archive is not judged by pkinspect. Load the file with torch.jit.load only
    /// if you trust its source, or ask for a state_dict saved with torch.save.
    TorchScriptClass = "PK114", "torchscript-class", Warning,
        "A TorchScript class reference (__torch__.*): the file is, or holds, a TorchScript archive.";
    /// torch.load(weights_only=True) refuses such files: rebuilding a module imports its class and every class
    /// it holds, which may be any Python class, including one the file names itself. The tensors are safe to
    /// load only once the classes are trusted. Save model.state_dict() with torch.save and load it into a model
    /// built from trusted code.
    PickledModule = "PK115", "pickled-module", Warning,
        "The file pickles a whole torch.nn.Module (a torch.nn.modules class), not a state_dict.";
    /// Findings before the offset are still reported. A loader may stop at the same point after having already
    /// run what came before; a model written by a real library is never malformed.
    MalformedStream = "PK201", "malformed-stream", Error,
        "The stream cannot be parsed past a point: unknown opcode, bad argument, or bad length.";
    /// Everything before the end is still executed by a loader, which then fails. Files that break right after
    /// a payload use this to run code and leave an unloadable file behind.
    TruncatedStream = "PK202", "truncated-stream", Error,
        "The stream ends before STOP.";
    /// CPython would raise at this point; real pickles never do this. It often marks a hand-written stream.
    StackAnomaly = "PK203", "stack-anomaly", Warning,
        "An opcode finds too few items, no MARK, or the wrong container type on the stack.";
    /// Memo tricks make naive scanners lose track of which object is called. pkinspect follows the memo exactly
    /// as CPython does; the trick itself is reported.
    MemoAnomaly = "PK204", "memo-anomaly", Warning,
        "The memo is read before it is written, overwritten, or written from an empty stack.";
    /// CPython accepts any opcode whatever PROTO says, but real picklers never mix them; scanners keyed on the
    /// declared protocol can be misled.
    ProtocolViolation = "PK205", "protocol-violation", Warning,
        "An opcode is newer than the protocol the stream declares, or PROTO is invalid.";
    /// CPython's C unpickler ignores frame boundaries while pickle.py rejects such streams: the same bytes mean
    /// different things to different readers. Only evasive files do this.
    FrameViolation = "PK206", "frame-violation", Error,
        "An opcode or argument runs past the end of its FRAME, or frames overlap or exceed the input.";
    /// pickle.load ignores them, but they can carry a payload for another reader (a polyglot file).
    TrailingData = "PK207", "trailing-data", Warning,
        "Bytes after the final STOP that do not form a pickle.";
    /// pickle.load reads only the first, but a loader that reads in a loop (or a second pickle.load on the same
    /// handle) runs the next one. Every pickle in the file is analysed.
    MultiplePickles = "PK208", "multiple-pickles", Warning,
        "Another pickle follows the first one in the same file.";
    /// The rest of the file was not analysed. Legitimate models stay far below the limits; files built to
    /// exhaust a scanner do not.
    LimitExceeded = "PK209", "limit-exceeded", Error,
        "A safety limit was reached (ops, stack depth, memo size, values); analysis stopped there.";
    /// joblib writes 1 to 16 bytes of 0xFF before each array; other padding is ignored by joblib.load but can
    /// carry hidden data for another reader. Regenerate the file with joblib.dump.
    PayloadAnomaly = "PK210", "payload-anomaly", Warning,
        "A joblib array payload is framed in a way joblib never writes (unusual alignment padding).";
    /// pickle.loads and the pure-Python unpickler then build different objects from the same bytes; no pickler
    /// writes such arguments. pkinspect follows the C unpickler's reading, the one pickle.loads uses.
    ParserDifferential = "PK211", "parser-differential", Error,
        "An argument means different things to CPython's C unpickler and to pickle.py (e.g. INT 010 is 8 to one and an error to the other).";
    /// The content inside could not be scanned past the offset given. Loaders may still read part of it.
    /// Re-create the file with the library that wrote it, or do not load it.
    ContainerError = "PK301", "container-error", Error,
        "A container layer cannot be read: a corrupt compressed stream, a bad archive, a bad .npy header.";
    /// Tools disagree on such archives (which of two same-named members is read, whether the local or the
    /// central header is believed, whether a bad CRC stops the read), which is how payloads slip past scanners.
    /// pkinspect scans every copy and every reading it can tell apart, and the member's content even when its
    /// CRC or size is wrong. Encrypted members cannot be scanned at all.
    ArchiveAnomaly = "PK302", "archive-anomaly", Error,
        "An archive is inconsistent or hides members: CRC mismatch, duplicate names, local and central headers that disagree, overlapping entries, sizes that lie, encrypted members, unreadable entries.";
    /// pkinspect stops decompressing at MAX_DECOMPRESSED_BYTES or MAX_COMPRESSION_RATIO; the rest is not
    /// scanned. Legitimate models do not compress a thousand to one.
    DecompressionLimit = "PK303", "decompression-limit", Error,
        "A compressed stream or member exceeds the decompression limits (size or ratio): a decompression bomb.";
    /// torch.load trusts the pickles of a checkpoint: a storage persistent id names a storage class, a record
    /// (zip) or a place in the storage section (legacy) and an element count, and the loader allocates and
    /// reads what they say. A missing or short record, a count that disagrees with the data, or a class that is
    /// not a torch *Storage makes the load fail, or makes it allocate or read what the file claims. A pickle
    /// member other than data.pkl, or a pickle after the last legacy storage, is never unpickled by torch.load
    /// but is by a tool that reads on (pkinspect scans it; see its own findings). Legacy ('module', cls, file,
    /// source) persistent ids carry the Python source of nn.Module classes: torch.load compares it with the
    /// installed class and may write a .patch file, it does not run it, but the class is imported. Checkpoints
    /// written by torch.save have none of these; re-save the model with torch.save from trusted code.
    TorchAnomaly = "PK304", "torch-anomaly", Warning,
        "A PyTorch checkpoint does not match what torch.save writes: a storage reference without its data, an unknown storage class, module source code, or a pickle torch.load never reads.";
    /// joblib's NDArrayWrapper and ZNDArrayWrapper (files written by joblib 0.9 and earlier, still read by
    /// joblib.load) keep arrays in companion files. joblib joins the BUILD state's filename to the pickle's
    /// folder without checking it and loads the result with numpy.load(allow_pickle=True), so a filename such
    /// as ../../x.npy or /tmp/x.npy unpickles any file the attacker can place or predict. pkinspect never opens
    /// such a path. Do not load the file.
    UnsafeCompanionPath = "PK305", "unsafe-companion-path", Error,
        "A joblib < 0.10 array wrapper names a companion file outside the pickle's folder (absolute, or through ..).";
    /// joblib.load opens the companion (<name>_NN.npy or .npy.z) next to the pickle and unpickles object arrays
    /// from it. pkinspect scans companions it finds beside the scanned file; a missing one could be supplied
    /// later. Scan the whole folder the model came in.
    MissingCompanion = "PK306", "missing-companion", Warning,
        "A joblib < 0.10 array wrapper names a companion file that is not in the pickle's folder, so its content was not scanned.";
    /// Loaders choose a reading by different rules: joblib by magic bytes, pickle.load by running the bytes as
    /// opcodes, Python's zipfile by the end record it finds at the end. A file that is valid in two readings
    /// shows a scanner one and a loader another. No library writes such files.
    Polyglot = "PK307", "polyglot-file", Error,
        "The file reads as more than one format (a pickle and a zip, or a compressed stream and a pickle); every reading is scanned.";
}
