//! Where extracted bytes go: the output folder, file names made safe, and
//! the [`Sink`] that receives joblib payloads and long values during the
//! scan, so a file (or a decompressing stream) is read once.
//!
//! Payloads and spilled values are written under temporary names as they
//! stream by (their attribute path is only known once the whole graph is
//! built), then renamed to their final names, or removed if nothing
//! reaches them.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::dtype::{npy_header, Reader};
use super::error::PayloadError;
use crate::limits::MAX_FILE_NAME;
use crate::pickle::source::ByteSource;
use crate::vm::{Sink, ValueId, View};

/// Prefix of temporary names; never produced by [`Names::claim`].
const TMP_PREFIX: &str = ".pkinspect-tmp-";

/// The write buffer of one array or blob file. Small enough to come from
/// the system allocator's heap: the binary's allocator (src/hugealloc.rs)
/// maps a block of 1 MiB or more afresh, huge-page aligned, and a model of
/// 1,200 small arrays paid about 10 ms for 1 MiB buffers. A write larger
/// than the buffer goes straight to the file.
const WRITE_BUFFER: usize = 64 << 10;

/// A joblib payload written during the scan.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Temporary path.
    pub tmp: PathBuf,
    /// Descriptor and layout as written in its header.
    pub dtype: super::dtype::Dtype,
    /// Shape.
    pub shape: Vec<u64>,
    /// Fortran order.
    pub fortran: bool,
    /// Bytes of data.
    pub nbytes: u64,
}

/// A long value's bytes written during the scan.
#[derive(Debug, Clone)]
pub struct Spill {
    /// Temporary path (`None` in a dry run).
    pub tmp: Option<PathBuf>,
    /// Length.
    pub len: u64,
}

/// The output folder and what has been written to it.
pub struct Store {
    /// The folder (`None`: a dry run that writes nothing, for `show --summary`).
    dir: Option<PathBuf>,
    part: usize,
    seq: usize,
    /// Payloads by (stream, wrapper value), or why one could not be written.
    pub payloads: HashMap<(usize, ValueId), Result<Payload, PayloadError>>,
    /// Spilled values by (stream, offset of their bytes).
    pub spills: HashMap<(usize, u64), Spill>,
    /// Temporary files not yet claimed.
    tmp_files: HashSet<PathBuf>,
    /// Final names handed out.
    pub names: Names,
    /// Where array data goes instead of `.npy` files, for `convert`
    /// ([`super::arena`]).
    pub arena: Option<super::arena::Arena>,
}

impl Store {
    /// A store writing under `dir` (created), or a dry run.
    pub fn new(dir: Option<PathBuf>) -> io::Result<Store> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
        }
        Ok(Store {
            dir,
            part: 0,
            seq: 0,
            payloads: HashMap::new(),
            spills: HashMap::new(),
            tmp_files: HashSet::new(),
            names: Names::default(),
            arena: None,
        })
    }

    /// A store writing arrays into `arena` (data alone or whole `.npy`
    /// files, as the arena was made) and anything else under `dir`.
    pub fn with_arena(dir: PathBuf, arena: super::arena::Arena) -> io::Result<Store> {
        let mut s = Store::new(Some(dir))?;
        s.arena = Some(arena);
        Ok(s)
    }

    fn tmp_path(&mut self, sub: &str) -> io::Result<Option<PathBuf>> {
        let Some(dir) = &self.dir else { return Ok(None) };
        let folder = dir.join(sub);
        std::fs::create_dir_all(&folder)?;
        self.seq += 1;
        let p = folder.join(format!("{TMP_PREFIX}{}", self.seq));
        self.tmp_files.insert(p.clone());
        Ok(Some(p))
    }

    /// Creates a new file for an array (`arrays/`) or blob (`blobs/`) under
    /// a temporary name: returns it and its writer (`None` in a dry run).
    pub fn create_tmp(&mut self, sub: &str) -> io::Result<Option<(PathBuf, BufWriter<File>)>> {
        if let (Some(arena), Some(dir), "arrays") = (self.arena.as_mut(), &self.dir, sub) {
            // A key for the region, never created as a file.
            self.seq += 1;
            let key = dir.join(sub).join(format!("{TMP_PREFIX}arena-{}", self.seq));
            let f = arena.start(key.clone())?;
            return Ok(Some((key, BufWriter::with_capacity(WRITE_BUFFER, f))));
        }
        match self.tmp_path(sub)? {
            Some(p) => {
                let f = File::create(&p)?;
                Ok(Some((p, BufWriter::with_capacity(WRITE_BUFFER, f))))
            }
            None => Ok(None),
        }
    }

    /// Gives a temporary file its final name `sub/<name>.<ext>`; returns the
    /// path relative to the folder.
    pub fn claim(&mut self, tmp: &Path, sub: &str, path_name: &str, ext: &str) -> io::Result<String> {
        let name = self.names.claim(path_name, ext);
        let rel = format!("{sub}/{name}");
        if let (Some(arena), "arrays") = (self.arena.as_mut(), sub) {
            arena.claim(tmp, &rel)?;
            return Ok(rel);
        }
        if let Some(dir) = &self.dir {
            std::fs::rename(tmp, dir.join(&rel))?;
            self.tmp_files.remove(tmp);
        }
        Ok(rel)
    }

    /// Writes a new file `sub/<name>.<ext>` from `fill`; returns its relative path.
    pub fn write_new(
        &mut self,
        sub: &str,
        path_name: &str,
        ext: &str,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<String> {
        match self.create_tmp(sub)? {
            Some((tmp, mut w)) => {
                let r = if self.arena.as_ref().is_some_and(|a| !a.keeps_headers()) && sub == "arrays" {
                    fill(&mut super::arena::NpySkip::new(&mut w))
                } else {
                    fill(&mut w)
                };
                let r = r.and_then(|_| w.flush());
                drop(w);
                if let Err(e) = r {
                    let _ = std::fs::remove_file(&tmp);
                    self.tmp_files.remove(&tmp);
                    return Err(e);
                }
                self.claim(&tmp, sub, path_name, ext)
            }
            None => {
                fill(&mut io::sink())?;
                let name = self.names.claim(path_name, ext);
                Ok(format!("{sub}/{name}"))
            }
        }
    }

    /// Opens a spilled value's bytes for reading.
    pub fn open_spill(&self, spill: &Spill) -> io::Result<Box<dyn Read>> {
        match &spill.tmp {
            Some(p) => Ok(Box::new(io::BufReader::with_capacity(1 << 20, File::open(p)?))),
            None => Ok(Box::new(io::repeat(0).take(spill.len))),
        }
    }

    /// Removes temporary files nothing claimed.
    pub fn cleanup(&mut self) {
        for p in self.tmp_files.drain() {
            let _ = std::fs::remove_file(p);
        }
    }

    fn write_payload(
        &mut self,
        graph: &View<'_>,
        wrapper: ValueId,
        len: u64,
        src: &mut dyn ByteSource,
    ) -> io::Result<(u64, Result<Payload, PayloadError>)> {
        let spec = match wrapper_layout(graph, wrapper) {
            Ok(s) => s,
            Err(e) => return Ok((src.skip(len)?, Err(e))),
        };
        let (dtype, shape, fortran) = spec;
        let expect = shape.iter().try_fold(dtype.itemsize(), |a, &d| a.checked_mul(d));
        if expect != Some(len) {
            return Ok((src.skip(len)?, Err(PayloadError::SizeMismatch { shape, len })));
        }
        match self.create_tmp("arrays")? {
            Some((tmp, w)) => {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                if self.arena.as_ref().is_none_or(super::arena::Arena::keeps_headers) {
                    f.write_all(&npy_header(&dtype, fortran, &shape))?;
                }
                let n = src.copy_to_file(len, &mut f)?;
                Ok((n, Ok(Payload { tmp, dtype, shape, fortran, nbytes: len })))
            }
            None => {
                let n = src.skip(len)?;
                Ok((n, Ok(Payload { tmp: PathBuf::new(), dtype, shape, fortran, nbytes: len })))
            }
        }
    }
}

/// dtype, shape and order from a `NumpyArrayWrapper`'s BUILD state.
pub fn wrapper_layout<G: crate::vm::Graph + ?Sized>(
    g: &G,
    wrapper: ValueId,
) -> Result<(super::dtype::Dtype, Vec<u64>, bool), PayloadError> {
    let r = Reader { g };
    let state = g.state(wrapper).ok_or(PayloadError::NoState)?;
    let crate::vm::Value::Dict(d) = g.value(state) else { return Err(PayloadError::StateNotDict) };
    let a = g.analysis();
    let pairs = a.dict(*d);
    let get = |key: &str| pairs.iter().find(|(k, _)| a.str_or_latin1(*k).as_deref() == Some(key)).map(|(_, v)| *v);
    let dtype = r.dtype(get("dtype").ok_or(PayloadError::NoDtype)?)?;
    let shape = r.shape(get("shape").ok_or(PayloadError::NoShape)?)?;
    let fortran = match get("order").and_then(|o| a.str_or_latin1(o)).as_deref() {
        Some("F") => true,
        Some("C") | None => false,
        Some(o) => return Err(PayloadError::Order(o.to_string())),
    };
    Ok((dtype, shape, fortran))
}

impl Sink for Store {
    fn begin(&mut self, part: usize) {
        self.part = part;
    }

    fn payload(
        &mut self,
        graph: &View<'_>,
        wrapper: ValueId,
        _offset: u64,
        len: u64,
        src: &mut dyn ByteSource,
    ) -> io::Result<u64> {
        let (n, result) = self.write_payload(graph, wrapper, len, src)?;
        self.payloads.insert((self.part, wrapper), result);
        Ok(n)
    }

    fn spill_bytes(&mut self, offset: u64, bytes: &[u8]) {
        let tmp = match self.create_tmp("blobs") {
            Ok(Some((p, mut w))) => match w.write_all(bytes).and_then(|_| w.flush()) {
                Ok(()) => Some(p),
                Err(_) => return,
            },
            _ => None,
        };
        self.spills.insert((self.part, offset), Spill { tmp, len: bytes.len() as u64 });
    }

    fn spill_stream(&mut self, offset: u64, len: u64, src: &mut dyn ByteSource) -> io::Result<u64> {
        match self.create_tmp("blobs")? {
            Some((p, mut w)) => {
                let n = src.copy_to(len, &mut w)?;
                w.flush()?;
                self.spills.insert((self.part, offset), Spill { tmp: Some(p), len: n });
                Ok(n)
            }
            None => {
                let n = src.skip(len)?;
                self.spills.insert((self.part, offset), Spill { tmp: None, len: n });
                Ok(n)
            }
        }
    }
}

/// Final file names: one per array or blob, made from an attribute path,
/// safe on every file system, unique case-insensitively.
#[derive(Default)]
pub struct Names {
    used: HashSet<String>,
}

impl Names {
    /// A new unique file name for `path_name` with extension `ext`.
    pub fn claim(&mut self, path_name: &str, ext: &str) -> String {
        let base = safe_name(path_name);
        let mut n = 1;
        loop {
            let name = if n == 1 { format!("{base}.{ext}") } else { format!("{base}~{n}.{ext}") };
            if self.used.insert(name.to_lowercase()) {
                return name;
            }
            n += 1;
        }
    }
}

/// A path name made safe: every character outside `[A-Za-z0-9._-]` becomes
/// `_`, no leading dot (so no `.`/`..` and no hidden or temporary names),
/// Windows device names prefixed, long names cut with a hash.
pub fn safe_name(path_name: &str) -> String {
    let mut s: String = path_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    if s.is_empty() {
        s = "root".into();
    }
    if s.starts_with('.') {
        s.insert(0, '_');
    }
    // Windows: no trailing dot or space; reserved device names.
    while s.ends_with('.') {
        s.pop();
        s.push('_');
    }
    let stem = s.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        s.insert(0, '_');
    }
    if s.len() > MAX_FILE_NAME - 20 {
        let hash = fnv1a(path_name.as_bytes());
        s.truncate(MAX_FILE_NAME - 40);
        s.push_str(&format!("-{hash:016x}"));
    }
    s
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &c| (h ^ c as u64).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_leave_the_folder() {
        assert_eq!(safe_name("../../etc/passwd"), "_.._.._etc_passwd");
        assert_eq!(safe_name(".."), "_._");
        assert_eq!(safe_name("estimators_.3.tree_.nodes"), "estimators_.3.tree_.nodes");
        assert_eq!(safe_name("con"), "_con");
        assert_eq!(safe_name(""), "root");
        assert!(safe_name(&"x".repeat(1000)).len() <= MAX_FILE_NAME);
        let mut n = Names::default();
        assert_eq!(n.claim("a", "npy"), "a.npy");
        assert_eq!(n.claim("A", "npy"), "A~2.npy");
    }
}
