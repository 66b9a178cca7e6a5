//! Every bound pkinspect puts on what a file can make it do.
//!
//! A pickle is attacker-controlled, so no length, count or depth it declares is
//! trusted. Each limit is a named constant here; code checks a declared size
//! against the bytes that remain *and* against one of these before it
//! allocates. Reaching a limit of the machine ends the analysis of that
//! stream with a `limit-exceeded` finding (rule PK209); what was found before
//! stays reported. A container limit is reported as that container's
//! problem, an output limit cuts what is printed (saying so), and an
//! extraction limit makes the value it was reached on an error node.
//!
//! What is *not* here: bounds that only shape a display and protect nothing,
//! because what they bound is already bounded by a limit here or does not
//! come from the file. They stay beside their one use:
//! `policy::config::file::MAX_LISTED` (how many denied names a policy file
//! error lists; the policy file is the user's, not the scanned file's) and
//! `view::show::MAX_INLINE_HEIGHT` (how deep `show` nests a value inline
//! before naming it; depth is bounded by [`MAX_RENDER_DEPTH`] and the output
//! by [`MAX_SHOW_OUTPUT`]), as are the other layout thresholds beside
//! them.

/// Largest argument (string, bytes, big integer) whose bytes are held in memory.
/// Longer `bytes`/`str` arguments are skipped over and recorded by offset and
/// length only, so array payloads are never copied.
pub const MAX_INLINE_ARG: usize = 1 << 20;

/// Longest newline-terminated name or number argument (GLOBAL, INST, INT,
/// LONG, FLOAT, PUT/GET keys).
pub const MAX_LINE_ARG: usize = 64 * 1024;

/// Longest newline-terminated text argument (protocol 0 `STRING`,
/// `UNICODE`, `PERSID`), which pickle reads at any length. The line is held
/// in memory once; 16 MiB holds a 1 Mi-character `str` in any escaping
/// (`\\U0001f600` takes 10 bytes a character, `'\\xff'` 4).
pub const MAX_TEXT_LINE_ARG: usize = 16 << 20;

/// Largest `LONG1`/`LONG4` integer, in bytes, that is decoded.
pub const MAX_LONG_BYTES: usize = 64 * 1024;

/// Most opcodes executed in one file (all pickles in it together).
pub const MAX_OPS: u64 = 50_000_000;

/// Deepest the value stack may grow (including marks).
pub const MAX_STACK_DEPTH: usize = 1_000_000;

/// Most nested marks open at once.
pub const MAX_MARK_DEPTH: usize = 100_000;

/// Most memo entries one pickle may define.
pub const MAX_MEMO_ENTRIES: usize = 4_000_000;

/// Most symbolic values one file may create.
pub const MAX_VALUES: usize = 20_000_000;

/// Largest string or bytes value whose contents the machine keeps; longer ones
/// are kept as offset and length (plus a short prefix for display).
pub const MAX_KEPT_VALUE_BYTES: usize = 64 * 1024;

/// Most bytes of string and bytes contents the machine keeps for one file.
pub const MAX_KEPT_TOTAL: usize = 256 << 20;

/// Most pickles analysed in one file (a file may hold pickles back to back).
pub const MAX_PICKLES_PER_FILE: usize = 1_000;

/// Deepest nesting of pickles inside pickles (joblib object arrays).
pub const MAX_NESTED_PICKLES: usize = 16;

/// Most events (imports, calls, builds, anomalies) recorded for one file.
pub const MAX_EVENTS: usize = 1_000_000;

/// Deepest nesting the renderers follow when printing a value.
pub const MAX_RENDER_DEPTH: usize = 64;

/// Longest call expression kept in a finding, in characters.
pub const MAX_EXPR_CHARS: usize = 400;

/// Most findings of one rule reported per file before they are summarised.
pub const MAX_FINDINGS_PER_RULE: usize = 1_000;

/// Largest output `pkinspect show` writes before it stops, in bytes.
pub const MAX_SHOW_OUTPUT: usize = 64 << 20;

/// Anomaly comments `pkinspect show` writes per pickle before the rest are
/// counted.
pub const MAX_ANOMALY_LINES: usize = 100;

/// Longest `module.name` shown, in bytes before escaping; a longer one is
/// cut and ends in `…`. Names run to 1 MiB, and one is repeated in every
/// finding about it: up to 1,000 per rule.
pub const MAX_SHOWN_GLOBAL: usize = 512;

/// Open MARKs beyond which `pkinspect dis`'s indentation stops growing (so
/// a line's length does not grow with [`MAX_MARK_DEPTH`]), and levels of
/// nesting beyond which the indentation of `extract`'s JSON document stops
/// growing (values nest as deep as `pickle.load` builds them: indenting
/// every level would make the document quadratic in the depth).
pub const MAX_INDENT_LEVELS: usize = 64;

/// Stack items shown in `pkinspect dis`'s `stack not empty after STOP`
/// message.
pub const MAX_STACK_REPR_ITEMS: usize = 1000;

/// Most bytes of one pickle stream `pkinspect dis` keeps to list it (a
/// stream inside a container is read once, through its decompressor, and
/// listed from the copy; array payloads and skipped arguments are not
/// kept). The listing stops where the copy does, saying so.
pub const MAX_RECORDED_BYTES: usize = 1 << 30;

/// Most members of one zip or tar archive that are looked at.
pub const MAX_ARCHIVE_MEMBERS: usize = 100_000;

/// Longest GNU long name (a tar `L` entry) accepted, in bytes.
pub const MAX_TAR_LONG_NAME: u64 = 4096;

/// Deepest nesting of containers (a pickle in a zip in a tar in a gzip...).
pub const MAX_CONTAINER_DEPTH: usize = 8;

/// Most bytes one decompressed stream may produce.
pub const MAX_DECOMPRESSED_BYTES: u64 = 16 << 30;

/// Most decompressed bytes per compressed byte, once past 64 MiB of output
/// (zlib's own maximum is about 1032; more means a crafted bomb).
pub const MAX_COMPRESSION_RATIO: u64 = 1100;

/// Memory an LZMA/xz decoder may use, in KiB.
pub const MAX_LZMA_MEMORY_KIB: u32 = 256 * 1024;

/// Largest archive held in memory to be read when it is not a file itself
/// (a zip inside a zip, or inside a compressed stream).
pub const MAX_NESTED_ARCHIVE_BYTES: usize = 256 << 20;

/// Longest `.npy` header read.
pub const MAX_NPY_HEADER: usize = 1 << 20;

/// Most findings of one kind (duplicate names, overlaps, header
/// disagreements...) reported for one archive; the rest are counted.
pub const MAX_ARCHIVE_NOTES_PER_KIND: usize = 20;

/// Most joblib < 0.10 companion files (`<name>_NN.npy`) one pickle may name
/// that are looked up and scanned.
pub const MAX_COMPANION_FILES: usize = 100_000;

/// The machine's limits as one value: [`Limits::default`] is the constants
/// above; tests lower them to reach each one cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// [`MAX_OPS`].
    pub max_ops: u64,
    /// [`MAX_STACK_DEPTH`].
    pub max_stack_depth: usize,
    /// [`MAX_MARK_DEPTH`].
    pub max_mark_depth: usize,
    /// [`MAX_MEMO_ENTRIES`].
    pub max_memo_entries: usize,
    /// [`MAX_VALUES`].
    pub max_values: usize,
    /// [`MAX_PICKLES_PER_FILE`].
    pub max_pickles_per_file: usize,
    /// [`MAX_EVENTS`].
    pub max_events: usize,
    /// [`MAX_NESTED_PICKLES`].
    pub max_nested_pickles: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ops: MAX_OPS,
            max_stack_depth: MAX_STACK_DEPTH,
            max_mark_depth: MAX_MARK_DEPTH,
            max_memo_entries: MAX_MEMO_ENTRIES,
            max_values: MAX_VALUES,
            max_pickles_per_file: MAX_PICKLES_PER_FILE,
            max_events: MAX_EVENTS,
            max_nested_pickles: MAX_NESTED_PICKLES,
        }
    }
}

/// Most bytes of pickles held in memory for one PyTorch checkpoint section
/// that mixes pickles with raw storage bytes (the five pickles of a legacy
/// checkpoint, the header pickles of a legacy tar's `storages`/`tensors`),
/// and the largest zip `data.pkl` read to check storage references. Real
/// checkpoints hold a few MB of pickle at most; the storages are skipped.
pub const MAX_TORCH_PICKLE_BYTES: usize = 64 << 20;

/// Most storages (legacy key list entries, tar `storages`/`tensors` records)
/// followed in one PyTorch checkpoint section.
pub const MAX_TORCH_STORAGES: usize = 1_000_000;

/// Most dimensions a legacy tar checkpoint's tensor may declare.
pub const MAX_TORCH_TENSOR_DIMS: u64 = 1024;

/// Most PyTorch structure findings (PK304, PK207/PK208) reported for one
/// checkpoint; the rest are counted in one more finding.
pub const MAX_TORCH_NOTES: usize = 100;

/// Deepest nesting of objects, calls and arrays `pkinspect extract`
/// follows (each recurses once); deeper values become an error node.
/// Containers (lists, tuples, sets, dicts) are walked without recursion and
/// do not count: they nest as deep as the machine builds them. CPython's
/// pickler writes no object deeper than its recursion limit (1,000).
pub const MAX_EXTRACT_DEPTH: usize = 10_000;

/// Stack of the thread `pkinspect extract` rebuilds a file's values on:
/// room for [`MAX_EXTRACT_DEPTH`] levels of objects (about 14 KiB each in
/// an unoptimised build). Reserved, not used, until a file nests that deep.
pub const EXTRACT_STACK_BYTES: usize = 256 << 20;

/// Steps of an attribute path `pkinspect extract` records per array (in
/// its `arrays` entry, and in its file name); a longer path is cut to its
/// first steps and the entry says `"path_cut": true`. Containers nest to any
/// depth: without the cut, arrays deep inside them would make the document
/// grow as arrays × depth.
pub const MAX_PATH_STEPS: usize = 256;

/// Most value nodes `pkinspect extract` writes for one file (the document
/// stays proportional to the pickle's graph, which the machine's limits
/// already bound).
pub const MAX_EXTRACT_NODES: usize = 20_000_000;

/// Largest array whose data extraction must reorder in memory (a protocol 5
/// `axis_order` array, a big-endian `_reconstruct` array, a non-contiguous
/// tensor view).
pub const MAX_GATHER_BYTES: u64 = 1 << 30;

/// How many times a non-contiguous tensor view may repeat its storage (with
/// stride 0) in the contiguous copy extracted for it (storages under 1 MiB
/// count as 1 MiB).
pub const MAX_VIEW_REPEAT: u64 = 16;

/// Deepest nesting of structured numpy dtypes inside structured dtypes.
pub const MAX_DTYPE_DEPTH: usize = 16;

/// Most fields of one structured numpy dtype.
pub const MAX_DTYPE_FIELDS: usize = 10_000;

/// Longest file name `pkinspect extract` writes, in bytes (most file
/// systems allow 255).
pub const MAX_FILE_NAME: usize = 200;

/// Largest safetensors header `pkinspect convert` writes, in bytes: the
/// most the `safetensors` loaders accept (`MAX_HEADER_SIZE`).
pub const MAX_SAFETENSORS_HEADER: usize = 100_000_000;

/// Largest object graph (JSON) `pkinspect convert` keeps in a
/// safetensors file's `__metadata__`; a larger one is left out, and said so.
pub const MAX_CONVERT_GRAPH_BYTES: usize = 64 << 20;

/// Longest tensor name `pkinspect convert` writes, in bytes (a longer
/// dotted path is cut, and `~N` keeps cut names apart).
pub const MAX_TENSOR_NAME: usize = 1024;

/// Smallest input whose safetensors conversion writes array data straight
/// into the output (after room reserved for the header) rather than copying
/// it there from `.npy` files; smaller files are written compactly.
pub const CONVERT_IN_PLACE_MIN_INPUT: u64 = 64 << 20;
