//! The `safetensors` target: every numeric array `extract` wrote becomes a
//! tensor named by its dotted attribute path; a structured array becomes
//! one tensor per numeric field (`estimators_.3.tree_.nodes.threshold`);
//! what safetensors cannot hold (strings, objects, datetimes, complex128)
//! is left out and listed; the rest of the object graph goes, as the
//! `extract` document's JSON, into `__metadata__` (docs/convert.md).
//!
//! The format is written here, not by the `safetensors` crate: its
//! serializer wants every tensor's bytes in memory at once, while the
//! arrays are streamed from the arena the extraction wrote (`write`).

pub mod dtype;
mod meta;
mod write;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use serde_json::Value as J;

use super::atomic::{write_atomic, TmpOut};
use super::{ConvertError, LeftOut, Source, Written};
use crate::extract::ArrayRecord;
use dtype::St;

/// One tensor to write: where its bytes are and how to read them.
#[derive(Debug, Clone)]
pub struct Tensor {
    /// The name in the header.
    pub name: String,
    /// The dtype.
    pub st: St,
    /// The shape (the array's, then the field's subarray shape).
    pub shape: Vec<u64>,
    /// The arena holding the data.
    pub src: PathBuf,
    /// The region of the arena holding the data (`[start, end)`).
    pub region: (u64, u64),
    /// The array's shape in its file.
    pub array_shape: Vec<u64>,
    /// The array's data is in Fortran order.
    pub fortran: bool,
    /// Bytes per item (record) in the file.
    pub record: u64,
    /// Offset of this tensor's bytes in each record.
    pub field_offset: u64,
    /// Bytes of this tensor in each record.
    pub field_size: u64,
    /// Bytes reversed per unit (0: none).
    pub swap: usize,
}

impl Tensor {
    /// Bytes this tensor takes in the output.
    pub fn nbytes(&self) -> Option<u64> {
        self.array_shape.iter().try_fold(self.field_size, |a, &d| a.checked_mul(d))
    }
}

/// Writes `src` as a safetensors file into `out`.
///
/// # Errors
/// [`ConvertError::Output`] when writing fails, [`ConvertError::Unsupported`]
/// when an array cannot be written (a staged file that does not match its
/// record, a Fortran-order array over [`crate::limits::MAX_GATHER_BYTES`],
/// a header over [`crate::limits::MAX_SAFETENSORS_HEADER`]).
pub fn write(mut src: Source<'_>, out: &mut File) -> Result<Written, ConvertError> {
    let (mut plan, metadata) = plan(&mut src);
    let bytes = write::write(out, &mut plan.tensors, &metadata)?;
    Ok(Written { items: plan.tensors.len(), bytes, left_out: plan.left_out })
}

/// Writes `src`, whose array data is in `tmp` after the room reserved for
/// the header, as `out`: the header is written into that room when every
/// array is a tensor as it stands (little-endian, C order) and the header
/// fits, so the data is written once; otherwise the tensors are copied
/// into a new file as [`write()`] does.
///
/// # Errors
/// As [`write()`].
pub fn write_in_place(mut src: Source<'_>, mut tmp: TmpOut, out: &Path) -> Result<Written, ConvertError> {
    let (mut plan, metadata) = plan(&mut src);
    let reserved = src.arena.reserved;
    if let Some(bytes) = write::header_in_place(&mut tmp.file, reserved, &mut plan.tensors, &metadata)? {
        tmp.persist(out).map_err(ConvertError::Output)?;
        return Ok(Written { items: plan.tensors.len(), bytes, left_out: plan.left_out });
    }
    let bytes = write_atomic(out, |f: &mut File| write::write(f, &mut plan.tensors, &metadata))?;
    drop(tmp);
    Ok(Written { items: plan.tensors.len(), bytes, left_out: plan.left_out })
}

/// Room for the header before the data of a file of `size` bytes written
/// in place (8 bytes of length included): 1/1024 of it, between 64 KiB and
/// 16 MiB, so the padding costs at most 0.1% of a large output.
pub fn reserve_for(size: u64) -> u64 {
    (size / 1024).clamp(64 << 10, 16 << 20).next_multiple_of(8)
}

/// The tensors and the metadata of `src` (whose document it takes).
fn plan(src: &mut Source<'_>) -> (Plan, Vec<(String, String)>) {
    let torch = torch_dtypes(&src.ex.doc);
    let mut plan = Plan::default();
    for rec in &src.ex.arrays {
        plan.add(src, rec, torch.get(rec.file.as_str()).map(String::as_str));
    }
    let doc = std::mem::take(&mut src.ex.doc);
    let metadata = meta::metadata(doc, &plan.by_file, &mut plan.left_out);
    (plan, metadata)
}

/// What a staged array file became, for the graph in `__metadata__`.
#[derive(Debug, Clone)]
pub enum Became {
    /// One tensor of this name.
    Tensor(String),
    /// One tensor per field: (field, tensor name); fields left out are absent.
    Fields(Vec<(String, String)>),
    /// Nothing: left out, with why.
    LeftOut(String),
}

/// The tensors, names and left-out arrays of one file.
#[derive(Default)]
struct Plan {
    tensors: Vec<Tensor>,
    names: HashSet<String>,
    /// The next `~N` to try for a name already given (so many repeats of
    /// one name stay linear).
    next: HashMap<String, u64>,
    left_out: Vec<LeftOut>,
    by_file: HashMap<String, Became>,
}

impl Plan {
    /// A name for `base` not given yet: `base`, else `base~2`, `base~3`, ...
    /// (`__metadata__` is the header's own key).
    fn claim(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let n = self.next.entry(base.to_string()).or_insert(1);
        while name == "__metadata__" || self.names.contains(&name) {
            *n += 1;
            name = format!("{base}~{n}");
        }
        self.names.insert(name.clone());
        name
    }

    fn leave_out(&mut self, rec: &ArrayRecord, name: String, what: String, why: String) {
        self.by_file.insert(rec.file.clone(), Became::LeftOut(why.clone()));
        self.left_out.push(LeftOut { name, what, why });
    }

    fn add(&mut self, src: &Source<'_>, rec: &ArrayRecord, torch_dtype: Option<&str>) {
        let mut base = crate::extract::path_name(&rec.path);
        if base.is_empty() {
            base = "root".into();
        }
        let base = cut(&base);
        let file = src.arena.path.clone();
        let Some(&region) = src.arena.regions.get(&rec.file) else {
            // Every array file the extraction names is written to the arena.
            let why = "the extraction wrote no data for it".to_string();
            return self.leave_out(rec, base, rec.dtype.to_string(), why);
        };
        let tensor = |st: St, shape: Vec<u64>, record: u64, field_offset: u64, field_size: u64, swap: usize| Tensor {
            name: String::new(),
            st,
            shape,
            src: file.clone(),
            region,
            array_shape: rec.shape.clone(),
            fortran: rec.fortran,
            record,
            field_offset,
            field_size,
            swap,
        };
        match &rec.dtype {
            J::String(d) => match dtype::plain(d, torch_dtype) {
                Ok(p) => {
                    let size = p.st.size();
                    let mut t = tensor(p.st, rec.shape.clone(), size, 0, size, p.swap);
                    t.name = self.claim(&base);
                    self.by_file.insert(rec.file.clone(), Became::Tensor(t.name.clone()));
                    self.tensors.push(t);
                }
                Err(why) => self.leave_out(rec, base, d.clone(), why),
            },
            J::Array(entries) => {
                let Some((fields, record)) = dtype::fields(entries) else {
                    return self.leave_out(rec, base, rec.dtype.to_string(), "unreadable structured dtype".into());
                };
                let mut made = Vec::new();
                for f in fields {
                    let fname = format!("{base}.{}", f.name);
                    let Some(d) = f.descr.as_deref() else {
                        self.left_out.push(LeftOut {
                            name: fname,
                            what: "structured".into(),
                            why: "a nested structured field: safetensors holds flat numbers only".into(),
                        });
                        continue;
                    };
                    match dtype::plain(d, None) {
                        Ok(p) => {
                            let shape = rec.shape.iter().chain(&f.shape).copied().collect();
                            let mut t = tensor(p.st, shape, record, f.offset, f.size, p.swap);
                            t.name = self.claim(&cut(&fname));
                            made.push((f.name.clone(), t.name.clone()));
                            self.tensors.push(t);
                        }
                        Err(why) => self.left_out.push(LeftOut { name: fname, what: d.to_string(), why }),
                    }
                }
                self.by_file.insert(rec.file.clone(), Became::Fields(made));
            }
            other => self.leave_out(rec, base, other.to_string(), "unknown dtype".into()),
        }
    }
}

/// A name cut to [`crate::limits::MAX_TENSOR_NAME`] bytes (at a character
/// boundary); `~N` keeps cut names apart.
fn cut(name: &str) -> String {
    let max = crate::limits::MAX_TENSOR_NAME;
    if name.len() <= max {
        return name.to_string();
    }
    let mut end = max;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// The `torch_dtype` of every tensor node of the document, by its file.
fn torch_dtypes(doc: &J) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut stack: Vec<&J> = doc.get("pickles").into_iter().collect();
    while let Some(v) = stack.pop() {
        match v {
            J::Object(m) => {
                if m.get("type").and_then(J::as_str) == Some("tensor") {
                    if let (Some(f), Some(t)) =
                        (m.get("file").and_then(J::as_str), m.get("torch_dtype").and_then(J::as_str))
                    {
                        out.insert(f.to_string(), t.to_string());
                    }
                }
                stack.extend(m.values());
            }
            J::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_given_twice_gets_a_suffix_and_metadata_is_kept_for_the_header() {
        let mut p = Plan::default();
        assert_eq!(p.claim("a.b"), "a.b");
        assert_eq!(p.claim("a.b"), "a.b~2");
        assert_eq!(p.claim("a.b"), "a.b~3");
        assert_eq!(p.claim("a.b~2"), "a.b~2~2");
        assert_eq!(p.claim("__metadata__"), "__metadata__~2");
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let long = "é".repeat(crate::limits::MAX_TENSOR_NAME);
        let c = cut(&long);
        assert!(c.len() <= crate::limits::MAX_TENSOR_NAME && c.chars().all(|ch| ch == 'é'));
        assert_eq!(cut("coef_"), "coef_");
    }
}
