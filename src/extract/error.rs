//! Why a value could not be extracted: one variant per kind of failure,
//! each with its message next to it (the text the document's `errors` list
//! and `pkinspect extract` print; docs/extract.md).
//!
//! A failure past the reader stops one value, never the file: the value
//! becomes an `error` node, a [`ValueError`] (where, and which
//! [`ExtractError`]) is listed, and the rest is still extracted. The kinds
//! are grouped by the part that finds them, as cargo-deny groups its
//! diagnostics per check: [`ShapeError`] and [`DtypeError`] (reading a
//! pickled shape or dtype, [`super::dtype`]), [`PayloadError`] (a joblib
//! payload, [`super::store`]), [`ArrayError`] (numpy arrays and scalars),
//! [`TensorError`] and [`StorageError`] (PyTorch tensors and the bytes of
//! their storages), and [`ExtractError`], which holds them all.
//!
//! The messages are part of the output format: a change here changes
//! documents.

use std::fmt;
use std::io;
use std::sync::Arc;

use serde_json::{json, Value as J};

use super::dtype::Dtype;
use crate::limits::{
    MAX_DTYPE_DEPTH, MAX_DTYPE_FIELDS, MAX_EXTRACT_DEPTH, MAX_EXTRACT_NODES, MAX_GATHER_BYTES, MAX_VIEW_REPEAT,
};

/// A value that could not be extracted: where it is and why.
#[derive(Debug)]
pub struct ValueError {
    /// Byte offset of the opcode that made the value (0 when unknown).
    pub offset: u64,
    /// The archive member it is in (`None`: the file itself).
    pub member: Option<String>,
    /// What went wrong.
    pub error: ExtractError,
}

impl ValueError {
    /// The entry of the document's `errors` list:
    /// `{"offset", "member", "message"}`.
    pub fn to_json(&self) -> J {
        json!({"offset": self.offset, "member": self.member, "message": self.error.to_string()})
    }

    /// The `error` node that stands in the graph for the value: the entry
    /// plus `"type": "error"`.
    pub fn to_node(&self) -> J {
        let mut node = self.to_json();
        node["type"] = J::String("error".into());
        node
    }
}

/// Why a value could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExtractError {
    /// More values than [`MAX_EXTRACT_NODES`] in one file.
    TooManyNodes,
    /// Objects, calls or arrays nested deeper than [`MAX_EXTRACT_DEPTH`].
    TooDeep,
    /// A long `str`/`bytes`/`bytearray` value's file could not be written.
    BlobWrite {
        /// The value's type name in the document.
        ty: &'static str,
        /// The failure.
        error: io::Error,
    },
    /// A long value's bytes were not kept during the scan.
    BlobNotKept {
        /// The value's type name in the document.
        ty: &'static str,
        /// Its length in bytes.
        len: u64,
    },
    /// A numpy array, scalar or dtype.
    Array(ArrayError),
    /// A PyTorch tensor.
    Tensor(TensorError),
    /// The machine stopped reading the stream (the values before are kept).
    Stream(crate::ErrorKind),
    /// A plain member of an `.npz` archive could not be copied.
    NpzMember(io::Error),
    /// A plain `.npy` file could not be copied.
    NpyFile(io::Error),
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyNodes => write!(f, "more than MAX_EXTRACT_NODES ({MAX_EXTRACT_NODES}) values"),
            Self::TooDeep => write!(f, "objects nested deeper than MAX_EXTRACT_DEPTH ({MAX_EXTRACT_DEPTH})"),
            Self::BlobWrite { ty, error } => write!(f, "cannot write {ty} value: {error}"),
            Self::BlobNotKept { ty, len } => write!(f, "{ty} value of {len} bytes was not kept"),
            Self::Array(e) => e.fmt(f),
            Self::Tensor(e) => e.fmt(f),
            Self::Stream(e) => e.fmt(f),
            Self::NpzMember(e) => write!(f, "cannot copy .npy member: {e}"),
            Self::NpyFile(e) => write!(f, "cannot copy .npy file: {e}"),
        }
    }
}

impl std::error::Error for ExtractError {}

impl From<ArrayError> for ExtractError {
    fn from(e: ArrayError) -> Self {
        Self::Array(e)
    }
}

impl From<TensorError> for ExtractError {
    fn from(e: TensorError) -> Self {
        Self::Tensor(e)
    }
}

/// Why a pickled shape (a tuple of dimensions) could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeError {
    /// Neither an integer nor a tuple or list.
    NotATuple,
    /// More dimensions than numpy's 64.
    TooManyDims(usize),
    /// A dimension is not an integer.
    NotAnInteger,
    /// A dimension is below zero.
    Negative(i64),
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotATuple => write!(f, "shape is not a tuple"),
            Self::TooManyDims(n) => write!(f, "{n} dimensions (numpy allows 64)"),
            Self::NotAnInteger => write!(f, "shape holds a non-integer"),
            Self::Negative(n) => write!(f, "negative dimension {n}"),
        }
    }
}

impl std::error::Error for ShapeError {}

/// Why a pickled `numpy.dtype` could not be read (shared/FORMATS.md §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtypeError {
    /// Structured dtypes nested deeper than [`MAX_DTYPE_DEPTH`].
    TooDeep,
    /// Not a constructed value.
    NotConstructed,
    /// Constructed by something other than `numpy.dtype`.
    NotNumpyDtype,
    /// The constructor's arguments are not a tuple.
    ArgsNotTuple,
    /// The constructor has no arguments.
    NoArgs,
    /// The type code is neither a string nor `numpy.record`/`numpy.void`.
    CodeNotStr,
    /// The state's subarray is not a `(base, shape)` pair.
    SubarrayNotPair,
    /// A subarray's shape.
    Shape(ShapeError),
    /// A structured dtype's state has no fields.
    NoFields,
    /// A structured dtype's state has no item size.
    NoSize,
    /// A type code without a size, and no size in the state.
    CodeHasNoSize(String),
    /// More fields than [`MAX_DTYPE_FIELDS`].
    TooManyFields,
    /// The field names are not a tuple.
    NamesNotTuple,
    /// The fields are not a dict.
    FieldsNotDict,
    /// A field name is not a string.
    FieldNameNotStr,
    /// A named field has no description.
    FieldNotDescribed(String),
    /// A field's description is not a tuple.
    FieldDescrNotTuple,
    /// A field's description is neither `(dtype, offset)` nor `(dtype, offset, title)`.
    FieldDescrLength,
    /// A field's title is not a string.
    FieldTitleNotStr,
    /// A field's offset is not an integer.
    FieldOffsetNotInt,
    /// A field's offset is negative.
    FieldOffsetNegative,
    /// A field starts inside the one before it.
    FieldOverlaps(String),
    /// A field's size overflows.
    FieldSizeOverflows,
    /// The fields end past the item size.
    FieldsPastItemsize {
        /// Where the last field ends.
        end: u64,
        /// The declared item size.
        itemsize: u64,
    },
    /// A kind and size numpy has no type for (`f3`, `i16`, `U6`).
    Impossible(String),
    /// A byte order numpy does not write.
    ByteOrder(String),
}

impl fmt::Display for DtypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooDeep => write!(f, "dtype nested deeper than MAX_DTYPE_DEPTH ({MAX_DTYPE_DEPTH})"),
            Self::NotConstructed => write!(f, "dtype is not constructed"),
            Self::NotNumpyDtype => write!(f, "dtype is not made by numpy.dtype"),
            Self::ArgsNotTuple => write!(f, "dtype arguments are not a tuple"),
            Self::NoArgs => write!(f, "dtype has no arguments"),
            Self::CodeNotStr => write!(f, "dtype code is not a string"),
            Self::SubarrayNotPair => write!(f, "dtype subarray is not a pair"),
            Self::Shape(e) => e.fmt(f),
            Self::NoFields => write!(f, "structured dtype has no fields"),
            Self::NoSize => write!(f, "structured dtype has no size"),
            Self::CodeHasNoSize(code) => write!(f, "dtype code {code:?} has no size"),
            Self::TooManyFields => write!(f, "more than MAX_DTYPE_FIELDS ({MAX_DTYPE_FIELDS}) fields"),
            Self::NamesNotTuple => write!(f, "dtype names are not a tuple"),
            Self::FieldsNotDict => write!(f, "dtype fields are not a dict"),
            Self::FieldNameNotStr => write!(f, "a field name is not a string"),
            Self::FieldNotDescribed(name) => write!(f, "field {name:?} is not described"),
            Self::FieldDescrNotTuple => write!(f, "a field description is not a tuple"),
            Self::FieldDescrLength => write!(f, "a field description has the wrong length"),
            Self::FieldTitleNotStr => write!(f, "a field title is not a string"),
            Self::FieldOffsetNotInt => write!(f, "a field offset is not an integer"),
            Self::FieldOffsetNegative => write!(f, "a field offset is negative"),
            Self::FieldOverlaps(name) => write!(f, "field {name:?} overlaps the one before it"),
            Self::FieldSizeOverflows => write!(f, "field size overflows"),
            Self::FieldsPastItemsize { end, itemsize } => {
                write!(f, "fields end at byte {end}, past the item size {itemsize}")
            }
            Self::Impossible(code) => write!(f, "dtype {code:?} cannot exist"),
            Self::ByteOrder(o) => write!(f, "dtype byte order {o:?} is not one numpy writes"),
        }
    }
}

impl std::error::Error for DtypeError {}

impl From<ShapeError> for DtypeError {
    fn from(e: ShapeError) -> Self {
        Self::Shape(e)
    }
}

/// Why a joblib `NumpyArrayWrapper`'s payload was not written (it is
/// skipped, and reading goes on after it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadError {
    /// The wrapper had no BUILD state.
    NoState,
    /// The wrapper's state is not a dict.
    StateNotDict,
    /// The state has no `dtype`.
    NoDtype,
    /// The state has no `shape`.
    NoShape,
    /// The state's `dtype`.
    Dtype(DtypeError),
    /// The state's `shape`.
    Shape(ShapeError),
    /// The state's `order` is neither `C` nor `F`.
    Order(String),
    /// Shape × item size is not the payload's length.
    SizeMismatch {
        /// The shape.
        shape: Vec<u64>,
        /// The payload's length in bytes.
        len: u64,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoState => write!(f, "wrapper has no state"),
            Self::StateNotDict => write!(f, "wrapper state is not a dict"),
            Self::NoDtype => write!(f, "wrapper state has no dtype"),
            Self::NoShape => write!(f, "wrapper state has no shape"),
            Self::Dtype(e) => e.fmt(f),
            Self::Shape(e) => e.fmt(f),
            Self::Order(o) => write!(f, "wrapper order {o:?} is neither C nor F"),
            Self::SizeMismatch { shape, len } => write!(f, "shape {shape:?} does not match the {len} bytes of data"),
        }
    }
}

impl std::error::Error for PayloadError {}

impl From<DtypeError> for PayloadError {
    fn from(e: DtypeError) -> Self {
        Self::Dtype(e)
    }
}

impl From<ShapeError> for PayloadError {
    fn from(e: ShapeError) -> Self {
        Self::Shape(e)
    }
}

/// Why a numpy array, scalar or dtype value could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum ArrayError {
    /// Shape × item size overflows.
    SizeOverflows,
    /// Shape × item size is not the length of the data.
    SizeMismatch {
        /// The shape.
        shape: Vec<u64>,
        /// The dtype.
        dtype: Dtype,
        /// Bytes the shape needs.
        nbytes: u64,
        /// Bytes the data has.
        have: u64,
    },
    /// The data could not be read back (a spilled value's file).
    ReadData(io::Error),
    /// The `.npy` file could not be written.
    Write(io::Error),
    /// An object array's data is not a list.
    ObjectNotList,
    /// An object array holds a different number of items than its shape.
    ObjectCount {
        /// The shape.
        shape: Vec<u64>,
        /// Items in the list.
        items: usize,
    },
    /// An object array would need more than [`MAX_EXTRACT_NODES`] values.
    ObjectTooMany {
        /// The shape.
        shape: Vec<u64>,
    },
    /// `_reconstruct` without a BUILD state.
    NoState,
    /// The BUILD state is not `([version,] shape, dtype, is_fortran, data)`.
    StateNotTuple,
    /// A masked array's BUILD state is not `(version, shape, dtype,
    /// is_fortran, data, mask, fill_value)`.
    MaskedStateNotTuple,
    /// The shape.
    Shape(ShapeError),
    /// The dtype.
    Dtype(DtypeError),
    /// `_frombuffer`'s `axis_order` is not a shape.
    AxisOrder(ShapeError),
    /// `_frombuffer`'s `axis_order` is not a permutation of the axes.
    AxisNotPermutation,
    /// The data is a `str` with characters above U+00FF.
    TextBeyondLatin1,
    /// The data is a `str` too long to keep, not bytes.
    LongStr,
    /// `_codecs.encode`'s text is not latin-1 text.
    CodecsNotLatin1,
    /// `_codecs.encode` does not have two arguments.
    CodecsArity,
    /// The data is an out-of-band buffer (`NEXT_BUFFER`), not in the file.
    OutOfBand,
    /// The data is not bytes.
    NotBytes,
    /// The data was too long to keep and was not written during the scan.
    NotKept(u64),
    /// Byte-swapping more than [`MAX_GATHER_BYTES`] in memory.
    SwapTooBig,
    /// Reordering more than [`MAX_GATHER_BYTES`] in memory.
    ReorderTooBig,
    /// `_frombuffer` takes 4 or 5 arguments.
    FrombufferArity,
    /// `_frombuffer`'s order is not `C`, `F` or `K`.
    FrombufferOrder(String),
    /// `scalar` takes 1 or 2 arguments.
    ScalarArity,
    /// A scalar's bytes are too long to keep.
    ScalarTooLong,
    /// A scalar's bytes are not one item of its dtype.
    ScalarSize {
        /// The dtype.
        dtype: Dtype,
        /// Bytes given.
        len: usize,
    },
    /// A joblib payload.
    Payload(PayloadError),
    /// A joblib wrapper whose payload the scan did not reach.
    PayloadNotRead,
    /// A joblib < 0.10 wrapper names a companion outside the pickle's folder.
    CompanionUnsafe {
        /// The name.
        filename: String,
        /// Why it leads out.
        why: &'static str,
    },
    /// A joblib < 0.10 wrapper of a pickle that is not the file itself (an
    /// archive member, a companion): its companion is not looked up.
    CompanionNotBeside(String),
    /// A joblib < 0.10 wrapper's state is not a dict.
    CompanionStateNotDict,
    /// A joblib < 0.10 wrapper's state has no `filename` string.
    CompanionNoFilename,
    /// The companion could not be opened (missing, a link out, not a file).
    Companion(String),
    /// The companion is not an `.npy` file.
    CompanionNpy(io::Error),
    /// The object companion's stream holds no pickle.
    CompanionNoPickle,
    /// A `ZNDArrayWrapper` of an object dtype (raw bytes cannot hold objects).
    CompanionObjectRaw,
    /// A `ZNDArrayWrapper` companion shorter than its `ZF` header.
    CompanionZf,
}

impl fmt::Display for ArrayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SizeOverflows => write!(f, "array size overflows"),
            Self::SizeMismatch { shape, dtype, nbytes, have } => {
                write!(f, "shape {shape:?} of {} needs {nbytes} bytes; the data has {have}", dtype.json_descr())
            }
            Self::ReadData(e) => write!(f, "cannot read array data: {e}"),
            Self::Write(e) => write!(f, "cannot write array: {e}"),
            Self::ObjectNotList => write!(f, "object array data is not a list"),
            Self::ObjectCount { shape, items } => write!(f, "object array of shape {shape:?} holds {items} items"),
            Self::ObjectTooMany { shape } => {
                write!(f, "object array of shape {shape:?}: more than MAX_EXTRACT_NODES ({MAX_EXTRACT_NODES}) values")
            }
            Self::NoState => write!(f, "array has no BUILD state"),
            Self::StateNotTuple => write!(f, "array state is not a 4- or 5-tuple"),
            Self::MaskedStateNotTuple => write!(f, "masked array state is not a 7-tuple"),
            Self::Shape(e) => e.fmt(f),
            Self::Dtype(e) => write!(f, "dtype: {e}"),
            Self::AxisOrder(e) => write!(f, "axis_order: {e}"),
            Self::AxisNotPermutation => write!(f, "axis_order is not a permutation of the axes"),
            Self::TextBeyondLatin1 => write!(f, "array data is text beyond latin-1"),
            Self::LongStr => write!(f, "array data is a long str, not bytes"),
            Self::CodecsNotLatin1 => write!(f, "_codecs.encode data is not latin-1 text"),
            Self::CodecsArity => write!(f, "_codecs.encode takes two arguments"),
            Self::OutOfBand => write!(f, "array data is an out-of-band buffer (not in the file)"),
            Self::NotBytes => write!(f, "array data is not bytes"),
            Self::NotKept(len) => write!(f, "array data of {len} bytes was not kept"),
            Self::SwapTooBig => write!(f, "byte-swapping more than MAX_GATHER_BYTES ({MAX_GATHER_BYTES})"),
            Self::ReorderTooBig => write!(f, "reordering more than MAX_GATHER_BYTES ({MAX_GATHER_BYTES})"),
            Self::FrombufferArity => write!(f, "_frombuffer takes 4 or 5 arguments"),
            Self::FrombufferOrder(o) => write!(f, "_frombuffer order {o:?} is not C, F or K"),
            Self::ScalarArity => write!(f, "scalar takes 1 or 2 arguments"),
            Self::ScalarTooLong => write!(f, "scalar data too long"),
            Self::ScalarSize { dtype, len } => {
                write!(f, "scalar of {} takes {} bytes, not {len}", dtype.json_descr(), dtype.itemsize())
            }
            Self::Payload(e) => e.fmt(f),
            Self::PayloadNotRead => write!(f, "joblib array payload was not read"),
            Self::CompanionUnsafe { filename, why } => write!(f, "companion {filename:?} not opened: {why}"),
            Self::CompanionNotBeside(name) => {
                write!(f, "companion {name:?} of a pickle inside another file is not looked up")
            }
            Self::CompanionStateNotDict => write!(f, "legacy joblib wrapper state is not a dict"),
            Self::CompanionNoFilename => write!(f, "legacy joblib wrapper state has no filename"),
            Self::Companion(e) => e.fmt(f),
            Self::CompanionNpy(e) => write!(f, "companion is not an .npy file: {e}"),
            Self::CompanionNoPickle => write!(f, "object companion holds no pickle"),
            Self::CompanionObjectRaw => write!(f, "compressed companion of an object dtype"),
            Self::CompanionZf => write!(f, "companion ZF header cut short"),
        }
    }
}

impl std::error::Error for ArrayError {}

impl From<ShapeError> for ArrayError {
    fn from(e: ShapeError) -> Self {
        Self::Shape(e)
    }
}

impl From<DtypeError> for ArrayError {
    fn from(e: DtypeError) -> Self {
        Self::Dtype(e)
    }
}

/// Why a PyTorch tensor (`torch._utils._rebuild_tensor_v2` and its
/// relatives) could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum TensorError {
    /// `_rebuild_parameter` without arguments.
    ParameterNoData,
    /// Fewer than 4 arguments (storage, offset, size, stride).
    Arity,
    /// The size or stride is not a tuple of integers.
    SizeOrStride,
    /// The storage offset is not a non-negative integer.
    Offset,
    /// The storage is not a persistent id.
    NotPersistent,
    /// The persistent id is not one `torch.load`'s `persistent_load`
    /// takes for a storage: why.
    BadPid(String),
    /// A storage class that is not one of the table's (module and name).
    UnknownClass(String),
    /// A dtype argument that is not a `torch.<dtype>` of the table.
    UnknownDtype(String),
    /// A quantized tensor's parameters are not a known scheme.
    Quantizer(String),
    /// A sparse tensor's layout or parts are not what torch writes.
    Sparse(String),
    /// A nested tensor's parts are not what torch writes.
    Nested(String),
    /// `_rebuild_from_type_v2` whose parts are not what torch writes.
    Subclass(String),
    /// A legacy tar checkpoint has no readable tensor or storage record of this key.
    TarRecord(String),
    /// Size and stride differ in length.
    RankMismatch,
    /// The size overflows.
    SizeOverflows,
    /// The view reads past the end of its storage.
    PastStorage {
        /// Elements in the storage.
        numel: u64,
        /// The view's storage offset.
        offset: u64,
    },
    /// A non-contiguous view larger than [`MAX_GATHER_BYTES`].
    ReorderTooBig,
    /// A view repeating its storage more than [`MAX_VIEW_REPEAT`] times.
    ViewRepeats {
        /// Bytes of the view.
        nbytes: u64,
        /// Bytes of its storage.
        storage_bytes: u64,
    },
    /// The storage's bytes.
    Storage(StorageError),
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ParameterNoData => write!(f, "_rebuild_parameter without data"),
            Self::Arity => write!(f, "tensor rebuild takes at least 4 arguments"),
            Self::SizeOrStride => write!(f, "tensor size or stride is not a tuple of integers"),
            Self::Offset => write!(f, "tensor storage offset is not a non-negative integer"),
            Self::NotPersistent => write!(f, "tensor storage is not a persistent id"),
            Self::BadPid(why) => write!(f, "storage persistent id: {why}"),
            Self::UnknownClass(name) => write!(f, "unknown storage class {name}"),
            Self::UnknownDtype(name) => write!(f, "unknown tensor dtype {name}"),
            Self::Quantizer(why) => write!(f, "quantized tensor: {why}"),
            Self::Sparse(why) => write!(f, "sparse tensor: {why}"),
            Self::Nested(why) => write!(f, "nested tensor: {why}"),
            Self::Subclass(why) => write!(f, "tensor subclass: {why}"),
            Self::TarRecord(key) => write!(f, "no readable tar checkpoint record {key:?}"),
            Self::RankMismatch => write!(f, "tensor size and stride differ in length"),
            Self::SizeOverflows => write!(f, "tensor size overflows"),
            Self::PastStorage { numel, offset } => {
                write!(f, "tensor reads past its storage of {numel} elements (offset {offset})")
            }
            Self::ReorderTooBig => write!(f, "reordering more than MAX_GATHER_BYTES ({MAX_GATHER_BYTES})"),
            Self::ViewRepeats { nbytes, storage_bytes } => write!(
                f,
                "tensor view of {nbytes} bytes repeats its {storage_bytes}-byte storage more than MAX_VIEW_REPEAT ({MAX_VIEW_REPEAT}) times"
            ),
            Self::Storage(e) => write!(f, "tensor: {e}"),
        }
    }
}

impl std::error::Error for TensorError {}

impl From<StorageError> for TensorError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// Why a tensor's storage bytes could not be read: the `data/<key>` record
/// of a zip checkpoint, or the storage section of a legacy one
/// (shared/FORMATS.md §4). I/O errors are shared (`Arc`): a legacy
/// checkpoint's storage section is read once, and its error reported for
/// every tensor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StorageError {
    /// Element count × element size overflows.
    SizeOverflows,
    /// Reading the file failed (or writing the array).
    Io(Arc<io::Error>),
    /// A legacy checkpoint's storage section has no slot for the key.
    NotInSection(String),
    /// A legacy checkpoint's slot is shorter than the storage.
    ShortSlot {
        /// The storage key.
        key: String,
        /// Bytes in the slot.
        len: u64,
        /// Bytes the storage declares.
        need: u64,
    },
    /// The pickle is nested (in an archive or a compressed stream), where
    /// storages are not looked up.
    Nested,
    /// The checkpoint file could not be opened again.
    OpenCheckpoint(Arc<io::Error>),
    /// The checkpoint is not a readable zip archive.
    OpenZip(Arc<zip::result::ZipError>),
    /// The `data/<key>` record could not be read.
    Member {
        /// The record's name.
        member: String,
        /// The failure.
        error: Arc<zip::result::ZipError>,
    },
    /// The `data/<key>` record is shorter than the storage.
    ShortMember {
        /// The record's name.
        member: String,
        /// Its size in bytes.
        size: u64,
        /// Bytes the storage declares.
        need: u64,
    },
    /// The storage holds fewer bytes than it declared.
    CutShort,
    /// A non-contiguous view's storage larger than [`MAX_GATHER_BYTES`].
    GatherTooBig,
    /// A legacy checkpoint's fifth pickle returned nothing.
    NoKeyList,
    /// A legacy checkpoint's fifth pickle is not a list of keys.
    KeysNotList,
    /// A storage key is not a string.
    KeyNotStr,
    /// More storages than [`crate::limits::MAX_TORCH_STORAGES`].
    TooManyStorages,
    /// A key of the storage section that no persistent id names.
    NoPersistentId(String),
    /// The storage section ends before a storage's element count.
    SectionEnds(u64),
    /// A storage's element count is negative.
    NegativeSize,
    /// A storage runs past the end of the file.
    PastEnd(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SizeOverflows => write!(f, "storage size overflows"),
            Self::Io(e) => e.fmt(f),
            Self::NotInSection(key) => write!(f, "storage {key:?} is not in the storage section"),
            Self::ShortSlot { key, len, need } => {
                write!(f, "storage {key:?} holds {len} bytes, fewer than the {need} it declares")
            }
            Self::Nested => write!(f, "tensor data is read from zip and legacy checkpoints only, not nested ones"),
            Self::OpenCheckpoint(e) => write!(f, "cannot open checkpoint: {e}"),
            Self::OpenZip(e) => write!(f, "cannot open checkpoint: {e}"),
            Self::Member { member, error } => write!(f, "{member}: {error}"),
            Self::ShortMember { member, size, need } => {
                write!(f, "{member} holds {size} bytes, fewer than the {need} its storage declares")
            }
            Self::CutShort => write!(f, "storage cut short"),
            Self::GatherTooBig => write!(f, "reordering more than MAX_GATHER_BYTES ({MAX_GATHER_BYTES})"),
            Self::NoKeyList => write!(f, "no storage key list"),
            Self::KeysNotList => write!(f, "the fifth pickle is not the storage key list"),
            Self::KeyNotStr => write!(f, "a storage key is not a string"),
            Self::TooManyStorages => write!(f, "more than MAX_TORCH_STORAGES storages"),
            Self::NoPersistentId(key) => write!(f, "storage {key:?} has no persistent id"),
            Self::SectionEnds(pos) => write!(f, "storage section ends at offset {pos}"),
            Self::NegativeSize => write!(f, "negative storage size"),
            Self::PastEnd(key) => write!(f, "storage {key:?} runs past the end of the file"),
        }
    }
}

impl std::error::Error for StorageError {}

impl From<io::Error> for StorageError {
    fn from(e: io::Error) -> Self {
        Self::Io(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_kinds_keep_their_prefixes() {
        // The prefixes are the document's: "dtype: " before a dtype read for
        // an array, "tensor: " before a storage failure, none before a shape.
        let e = ExtractError::from(ArrayError::Dtype(DtypeError::Impossible("f3".into())));
        assert_eq!(e.to_string(), "dtype: dtype \"f3\" cannot exist");
        let e = ExtractError::from(ArrayError::Shape(ShapeError::Negative(-2)));
        assert_eq!(e.to_string(), "negative dimension -2");
        let e = ExtractError::from(TensorError::Storage(StorageError::NotInSection("7".into())));
        assert_eq!(e.to_string(), "tensor: storage \"7\" is not in the storage section");
        let e = ExtractError::from(ArrayError::Payload(PayloadError::Dtype(DtypeError::CodeNotStr)));
        assert_eq!(e.to_string(), "dtype code is not a string");
    }

    #[test]
    fn a_value_error_is_an_entry_and_a_node() {
        let v = ValueError { offset: 42, member: Some("a/data.pkl".into()), error: ExtractError::TooDeep };
        // Key order is the document's (serde_json keeps insertion order).
        assert_eq!(
            v.to_json().to_string(),
            r#"{"offset":42,"member":"a/data.pkl","message":"objects nested deeper than MAX_EXTRACT_DEPTH (10000)"}"#
        );
        assert_eq!(
            v.to_node().to_string(),
            r#"{"offset":42,"member":"a/data.pkl","message":"objects nested deeper than MAX_EXTRACT_DEPTH (10000)","type":"error"}"#
        );
    }
}
