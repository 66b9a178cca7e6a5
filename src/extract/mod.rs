//! `pkinspect extract`: the object graph a pickle builds, rebuilt without
//! running it, written as JSON plus one `.npy` file per array
//! (docs/extract.md is the format).
//!
//! The scan and the extraction are one pass over the file: the
//! [`crate::container::Walker`] runs the symbolic machine on every pickle
//! stream with a [`store::Store`] as its sink, which writes joblib array
//! payloads straight from the file (or decompressor) into `.npy` files and
//! keeps values too long to hold in memory in temporary files. Then
//! `Emitter` walks each stream's value graph from its root and turns it into
//! JSON, writing the arrays that live inside the pickle (`_reconstruct` +
//! `BUILD`, `_frombuffer`) and the tensors of PyTorch checkpoints.
//!
//! Nothing is evaluated: an object is a class path with its arguments and
//! state; a call to anything the scan policy does not know as a safe
//! constructor is a `call` node.
//!
//! One idea per file: this one holds the entry point ([`extract_file`]),
//! the driver and the state the parts share; `json` walks the value graph
//! into the document, `numpy` rebuilds ndarrays, scalars and dtypes,
//! `torch` maps storages to tensors, `layout` reorders strided data into C
//! order, `emit` writes the outputs (document, copied `.npy` files, names)
//! and `summary` reads the attribute table back from the document;
//! [`dtype`] decodes pickled dtypes, [`store`] owns the output folder and
//! [`error`] every way a value can fail.

pub mod arena;
mod containers;
pub mod dtype;
mod emit;
pub mod error;
mod json;
pub(crate) mod layout;
mod legacy;
mod masked;
mod numpy;
pub mod store;
mod summary;
mod torch;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{self, Seek};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::{json, Value as J};

use crate::container::{Walked, Walker};
use crate::policy::Policy;
use crate::rules::Levels;
use crate::vm::{Analysis, CallKind, EventKind, Graph, Value, ValueId};
use dtype::Reader;
pub(crate) use emit::path_name;
pub use emit::write_doc;
use error::StorageError;
pub use error::{ExtractError, ValueError};
use store::Store;
pub use summary::{kind_of, summary_rows, summary_table, SUMMARY_COLUMNS};

/// The `schema_version` of the document.
pub const SCHEMA_VERSION: u32 = 1;

/// One array written, for the document and the summary.
#[derive(Debug, Clone)]
pub struct ArrayRecord {
    /// Relative path of the `.npy` file.
    pub file: String,
    /// The attribute path (its first [`MAX_PATH_STEPS`](crate::limits::MAX_PATH_STEPS) steps).
    pub path: Vec<J>,
    /// The path was longer and is cut.
    pub path_cut: bool,
    /// The descriptor.
    pub dtype: J,
    /// The shape.
    pub shape: Vec<u64>,
    /// Fortran order.
    pub fortran: bool,
    /// Bytes of data.
    pub nbytes: u64,
    /// The archive member the array comes from (`None`: the file itself).
    pub member: Option<String>,
    /// Index of the pickle (in [`Extracted::doc`]'s `pickles`) whose graph holds it.
    pub pickle: Option<usize>,
}

/// What extracting one file produced.
pub struct Extracted {
    /// The JSON document.
    pub doc: Document,
    /// Arrays written.
    pub arrays: Vec<ArrayRecord>,
    /// Errors for single values (also in the document).
    pub errors: Vec<ValueError>,
    /// How many scan findings the document lists.
    pub findings: usize,
    /// Severity of the scan's worst finding, if any.
    pub max_severity: Option<crate::rules::Severity>,
    /// The library versions the file records, over all its pickles, sorted
    /// (the scan report's [`FileReport::versions`](crate::scan::FileReport::versions)).
    pub versions: Vec<crate::scan::LibraryVersion>,
}

/// The JSON document, which nests as deep as the pickle's values: read
/// as a [`serde_json::Value`] (it derefs to one), dropped without
/// recursion.
#[derive(Debug, Default)]
pub struct Document(pub J);

impl std::ops::Deref for Document {
    type Target = J;
    fn deref(&self) -> &J {
        &self.0
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        emit::drop_deep(std::mem::take(&mut self.0));
    }
}

impl Extracted {
    /// The summary table's rows (see [`summary_rows`]).
    pub fn summary_rows(&self) -> Vec<[String; 6]> {
        summary_rows(&self.doc)
    }

    /// The summary table, cut to `width` columns, and the versions line
    /// (see [`summary_table`]).
    pub fn summary_table(&self, width: usize) -> String {
        summary_table(self, width)
    }
}

/// Extracts `path` into `out_dir` (`None`: a dry run writing nothing),
/// judging it with `policy` and every rule at its default severity.
pub fn extract_file(path: &Path, out_dir: Option<&Path>, policy: &Policy) -> io::Result<Extracted> {
    extract_file_with(path, out_dir, policy, &Levels::default())
}

/// [`extract_file`] with the rule severities of a policy file (`[rules]`
/// and the `[[ignore]]` entries for `path`,
/// [`Config::levels_for`](crate::policy::config::Config::levels_for)): the
/// document's findings and the exit status are those `scan` gives the file.
pub fn extract_file_with(
    path: &Path,
    out_dir: Option<&Path>,
    policy: &Policy,
    levels: &Levels,
) -> io::Result<Extracted> {
    let store = Store::new(out_dir.map(Path::to_path_buf))?;
    extract_with_store(path, store, policy, levels).map(|(ex, _)| ex)
}

/// [`extract_file_with`] into a given [`Store`] (`convert` passes one
/// with an [`arena::Arena`]); returns the arena back.
pub(crate) fn extract_with_store(
    path: &Path,
    store: Store,
    policy: &Policy,
    levels: &Levels,
) -> io::Result<(Extracted, Option<arena::Arena>)> {
    on_deep_stack(move || extract_on_this_thread(path, store, policy, levels))
}

/// Runs `f` on a thread with [`EXTRACT_STACK_BYTES`](crate::limits::EXTRACT_STACK_BYTES)
/// of stack, whatever thread the caller runs on: objects nested
/// `MAX_EXTRACT_DEPTH` deep recurse that deep, in extraction and in what
/// walks its document (`convert`). The stack is reserved, not used,
/// unless a file nests that deep.
pub(crate) fn on_deep_stack<T: Send>(f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("pkinspect-extract".into())
            .stack_size(crate::limits::EXTRACT_STACK_BYTES)
            .spawn_scoped(s, f)?
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn extract_on_this_thread(
    path: &Path,
    store: Store,
    policy: &Policy,
    levels: &Levels,
) -> io::Result<(Extracted, Option<arena::Arena>)> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let store = Rc::new(RefCell::new(store));
    let mut walker = Walker::with_sink(store.clone());
    walker.seekable(file.try_clone()?, Some(size), None);
    // joblib < 0.10 companion files, as `scan` reads them (Walker::file).
    walker.companions(path.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d }));
    let walked = walker.finish();
    let tar = torch::TarIndex::read(&walked, path);
    let mut ex = Extraction {
        store: store.clone(),
        file: path.to_path_buf(),
        arrays: Vec::new(),
        errors: Vec::new(),
        nodes: 0,
        zip: None,
        tar,
        next_id: 0,
    };
    let pickles = ex.pickles(&walked, policy);
    ex.npz_members(&walked, &mut file);
    store.borrow_mut().cleanup();
    let outer = walked.format.map(|f| f.name()).unwrap_or("unknown");
    let report = crate::scan::FileReport::from_walked(path.display().to_string(), size, walked, policy, levels);
    let doc = emit::document(path, &report, outer, pickles, &ex.arrays, &ex.errors);
    let arena = store.borrow_mut().arena.take();
    let ex = Extracted {
        doc: Document(doc),
        arrays: ex.arrays,
        errors: ex.errors,
        findings: report.findings.len(),
        max_severity: report.max_severity(),
        versions: report.versions,
    };
    Ok((ex, arena))
}

/// State shared by the emitters of one file.
struct Extraction {
    store: Rc<RefCell<Store>>,
    file: PathBuf,
    arrays: Vec<ArrayRecord>,
    errors: Vec<ValueError>,
    nodes: usize,
    zip: Option<zip::ZipArchive<std::fs::File>>,
    /// The tensors and storages of a legacy tar PyTorch checkpoint.
    tar: Option<torch::TarIndex>,
    /// The last id given to a shared value (ids are unique in the document).
    next_id: u64,
}

impl Extraction {
    /// Records a value that could not be extracted; returns the `error`
    /// node that stands for it.
    fn error(&mut self, member: Option<String>, offset: u64, error: ExtractError) -> J {
        let e = ValueError { offset, member, error };
        let node = e.to_node();
        self.errors.push(e);
        node
    }

    /// The root value of every pickle of every stream, in file order, as
    /// the document's `pickles` entries.
    fn pickles(&mut self, walked: &Walked, policy: &Policy) -> Vec<J> {
        let mut pickles = Vec::new();
        // joblib < 0.10 object companions are written in place of the
        // wrappers of the file's own pickles that name them.
        let companions: HashSet<String> = walked
            .parts
            .iter()
            .filter(|p| p.member.is_none())
            .flat_map(|p| crate::container::legacy::companions(&p.analysis))
            .filter_map(|c| c.filename.filter(|_| !c.compressed))
            .collect();
        for (i, part) in walked.parts.iter().enumerate() {
            if part.member.as_ref().is_some_and(|m| companions.contains(m)) {
                if let Some(e) = &part.analysis.error {
                    self.error(part.member.clone(), e.offset(), ExtractError::Stream(e.kind().clone()));
                }
                continue;
            }
            // One emitter per stream: its event index is built once, however many
            // pickles the stream holds.
            let mut em = Emitter::new(self, &part.analysis, i, part.member.clone(), policy);
            em.parts = &walked.parts;
            // A zip member is read from the file by name; anything else under a
            // layer (a decompressor) has offsets in a stream, not the file.
            em.layered = part.layers.iter().any(|l| *l != "zip");
            for (k, p) in part.analysis.pickles.iter().enumerate() {
                let Some(root) = p.root else { continue };
                em.pickle = pickles.len();
                let value = em.root(root);
                pickles.push(json::node([("member", json!(part.member)), ("index", json!(k)), ("root", value)]));
            }
            drop(em);
            if let Some(e) = &part.analysis.error {
                self.error(part.member.clone(), e.offset(), ExtractError::Stream(e.kind().clone()));
            }
        }
        pickles
    }

    /// Plain (non-object) members of an `.npz`: already `.npy` files,
    /// copied as they are (object members are pickles, extracted above).
    fn npz_members(&mut self, walked: &Walked, file: &mut std::fs::File) {
        if walked.format == Some(crate::container::Format::Npy) && walked.parts.is_empty() {
            self.plain_npy(file);
            return;
        }
        if walked.format != Some(crate::container::Format::Zip) || walked.skipped_members.is_empty() {
            return;
        }
        if file.seek(io::SeekFrom::Start(0)).is_err() {
            return;
        }
        let Ok(mut clone) = file.try_clone() else { return };
        let config = crate::container::zip::config_for(&mut clone);
        let Ok(mut archive) = zip::ZipArchive::with_config(config, clone) else { return };
        for name in &walked.skipped_members {
            // Members of nested archives are not copied (not an .npz).
            let Some(key) = name.strip_suffix(".npy").filter(|k| !k.contains('!')) else { continue };
            let r = archive.by_name(name).map_err(io::Error::other).and_then(|mut m| {
                let size = m.size();
                self.copy_npy(&mut m, size, key, vec![J::String(key.to_string())], Some(name.clone()))
            });
            match r {
                Ok(rec) => self.arrays.push(rec),
                Err(e) => {
                    self.error(Some(name.clone()), 0, ExtractError::NpzMember(e));
                }
            }
        }
    }

    /// A plain (numeric) `.npy` file: already the output format, copied as
    /// `arrays/root.npy` after its header is checked.
    fn plain_npy(&mut self, file: &mut std::fs::File) {
        let r = file
            .seek(io::SeekFrom::Start(0))
            .and_then(|_| file.metadata())
            .and_then(|m| self.copy_npy(file, m.len(), "root", Vec::new(), None));
        match r {
            Ok(rec) => self.arrays.push(rec),
            Err(e) => {
                self.error(None, 0, ExtractError::NpyFile(e));
            }
        }
    }
}

/// A step of an attribute path.
type Seg = J;

/// Turns one stream's value graph into JSON.
///
/// Its methods are spread over the files by what they rebuild: the graph
/// walk in `json`, arrays in `numpy`, tensors in `torch`.
struct Emitter<'x, 'a> {
    ex: &'x mut Extraction,
    a: &'a Analysis,
    part: usize,
    member: Option<String>,
    policy: &'a Policy,
    /// BUILD states per object, in order.
    states: HashMap<ValueId, Vec<ValueId>>,
    /// Method calls (`APPEND`/`SETITEMS`/`ADDITEMS` on objects) per object.
    methods: HashMap<ValueId, Vec<(CallKind, ValueId)>>,
    /// Offsets of the calls that made each value.
    offsets: HashMap<ValueId, u64>,
    /// joblib payloads by wrapper: nested pickle root for object arrays.
    nested: HashMap<ValueId, Option<ValueId>>,
    /// Incoming references of every reachable value (saturating).
    refs: HashMap<ValueId, u8>,
    /// Ids given to shared values.
    ids: HashMap<ValueId, u64>,
    depth: usize,
    /// Index of the pickle in the document.
    pickle: usize,
    /// The stream is inside a decompressed layer (not the file's own bytes).
    layered: bool,
    /// Storage slots of a legacy PyTorch checkpoint, once read.
    legacy: Option<Result<torch::Slots, StorageError>>,
    /// Every stream of the file (joblib < 0.10 object companions are
    /// written from theirs).
    parts: &'a [crate::container::Part],
}

/// The machine's analysis as a [`Graph`] with the emitter's BUILD states.
struct AGraph<'a> {
    a: &'a Analysis,
    states: &'a HashMap<ValueId, Vec<ValueId>>,
}

impl Graph for AGraph<'_> {
    fn analysis(&self) -> &Analysis {
        self.a
    }
    fn state(&self, id: ValueId) -> Option<ValueId> {
        self.states.get(&id).and_then(|s| s.last().copied())
    }
}

impl<'x, 'a> Emitter<'x, 'a> {
    fn new(ex: &'x mut Extraction, a: &'a Analysis, part: usize, member: Option<String>, policy: &'a Policy) -> Self {
        let mut states: HashMap<ValueId, Vec<ValueId>> = HashMap::new();
        let mut methods: HashMap<ValueId, Vec<(CallKind, ValueId)>> = HashMap::new();
        let mut offsets = HashMap::new();
        let mut nested = HashMap::new();
        for e in &a.events {
            match &e.kind {
                EventKind::Build { target, state } => states.entry(*target).or_default().push(*state),
                EventKind::Call { kind, func, args, result, .. } => {
                    offsets.insert(*result, e.offset);
                    if matches!(kind, CallKind::Append | CallKind::SetItem | CallKind::Add) {
                        methods.entry(*func).or_default().push((*kind, *args));
                    }
                }
                EventKind::ArrayPayload { wrapper, nested: n, .. } => {
                    nested.insert(*wrapper, *n);
                }
                _ => {}
            }
        }
        Emitter {
            ex,
            a,
            part,
            member,
            policy,
            states,
            methods,
            offsets,
            nested,
            refs: HashMap::new(),
            ids: HashMap::new(),
            depth: 0,
            pickle: 0,
            layered: false,
            legacy: None,
            parts: &[],
        }
    }

    fn graph(&self) -> AGraph<'_> {
        AGraph { a: self.a, states: &self.states }
    }

    fn v(&self, id: ValueId) -> &'a Value {
        self.a.value(id)
    }

    /// Records a value of this stream that could not be extracted; returns
    /// its `error` node.
    fn error(&mut self, offset: u64, error: impl Into<ExtractError>) -> J {
        self.ex.error(self.member.clone(), offset, error.into())
    }

    fn offset_of(&self, id: ValueId) -> u64 {
        self.offsets.get(&id).copied().unwrap_or(0)
    }

    fn global_name(&self, id: ValueId) -> Option<String> {
        Reader { g: &self.graph() }.global_of(id)
    }

    fn tuple_items(&self, id: ValueId) -> &'a [ValueId] {
        self.a.tuple(id).unwrap_or(&[])
    }

    /// Records an array written for this stream's current pickle.
    fn record_array(&mut self, file: String, path: &[Seg], dtype: J, shape: Vec<u64>, fortran: bool, nbytes: u64) {
        self.ex.arrays.push(ArrayRecord {
            file,
            path: recorded_path(path).to_vec(),
            path_cut: path.len() > crate::limits::MAX_PATH_STEPS,
            dtype,
            shape,
            fortran,
            nbytes,
            member: self.member.clone(),
            pickle: Some(self.pickle),
        });
    }
}

/// The steps of `path` an `arrays` entry records (see
/// [`MAX_PATH_STEPS`](crate::limits::MAX_PATH_STEPS)).
fn recorded_path(path: &[Seg]) -> &[Seg] {
    &path[..path.len().min(crate::limits::MAX_PATH_STEPS)]
}

/// Small pickles run through [`extract_file`], for the unit tests of the
/// parts.
#[cfg(test)]
mod testkit {
    use std::path::{Path, PathBuf};

    use super::{extract_file, Extracted};
    use crate::policy::Policy;

    /// A scratch folder removed when dropped.
    pub struct Scratch(pub PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A fixture of the repository.
    pub fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
    }

    /// Extracts `file` into a new scratch folder named after `tag`.
    pub fn extract(file: &Path, tag: &str) -> (Extracted, Scratch) {
        let dir = std::env::temp_dir().join(format!("pkinspect-unit-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let scratch = Scratch(dir);
        let ex = extract_file(file, Some(&scratch.0), &Policy::builtin()).expect("extract");
        (ex, scratch)
    }

    /// Extracts a pickle given as bytes.
    pub fn extract_bytes(pickle: &[u8], tag: &str) -> (Extracted, Scratch) {
        let dir = std::env::temp_dir().join(format!("pkinspect-unit-{}-{tag}-in", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        let input = Scratch(dir);
        let file = input.0.join("input.pkl");
        std::fs::write(&file, pickle).expect("write input");
        extract(&file, tag)
    }

    /// The data bytes of a written `.npy` file (after its header), and the header.
    pub fn npy(scratch: &Scratch, file: &str) -> (String, Vec<u8>) {
        let bytes = std::fs::read(scratch.0.join(file)).expect("array written");
        let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        let header = String::from_utf8_lossy(&bytes[10..10 + len]).into_owned();
        (header, bytes[10 + len..].to_vec())
    }
}
