//! What a PyTorch checkpoint can have that `torch.save` never writes, as
//! typed values with their messages (see [`super::super::diag`]). The
//! judging stage gives them their rules: bytes after the last storage are
//! trailing data, a pickle there is another pickle, everything else is a
//! torch anomaly.

use super::tar::TarSection;
use super::zip::ZipKind;
use super::LEGACY_PROTOCOL_VERSION;
use crate::container::diag::problems;
use crate::limits::{MAX_TORCH_NOTES, MAX_TORCH_TENSOR_DIMS};

problems! {
    /// Something in a PyTorch checkpoint that does not fit what `torch.save`
    /// writes or what `torch.load` reads.
    #[derive(Debug, Clone, PartialEq)]
    pub enum TorchFault {
        /// A zip record outside the folder of the first entry.
        OutsideFolder {
            /// The checkpoint's folder, `<arch>/`.
            prefix: String,
            /// What wrote the archive.
            kind: ZipKind,
        } => "record outside the checkpoint's folder {prefix:?}: {} reads only records under the folder \
              of the first entry and never reads this one; it is scanned like any member",
            kind.loader();
        /// `torch.storage.TypedStorage` as a storage class.
        NoClassDtype {
            /// The class, dotted.
            class: String,
        } => "storage class {class} has no class-level dtype: torch.load reads the storage class's .dtype and fails";
        /// A `torch` global named `*Storage` that pkinspect does not know.
        UnknownStorageClass {
            /// The class, dotted.
            class: String,
        } => "storage class {class} is not one pkinspect knows: its element size is unknown";
        /// A storage class that is not a torch `*Storage` global.
        NotStorageClass {
            /// The value, rendered.
            shown: String,
        } => "storage class {shown} is not a torch *Storage global: torch.load would use it as one (its .dtype)";
        /// `UntypedStorage` in a legacy checkpoint, which the legacy loader cannot read.
        UntypedInLegacy {
            /// The class, dotted.
            class: String,
        } => "storage class {class} in a legacy checkpoint: the legacy loader reads the storage class's .dtype, \
              which UntypedStorage has not, and torch.load fails (torch.save names UntypedStorage for dtypes \
              without a typed storage class, such as float8 and uint16/32/64, which the legacy format cannot \
              read back)";
        /// A storage persistent id whose record is missing.
        NoRecord {
            /// The storage key.
            key: String,
            /// The record it names.
            record: String,
            /// What wrote the archive.
            kind: ZipKind,
        } => "persistent id names storage {key:?}, but the archive has no record {record:?}: {} fails on it",
            kind.loader();
        /// A storage record shorter than its persistent id says.
        ShortRecord {
            /// The storage key.
            key: String,
            /// Elements the persistent id declares.
            numel: u64,
            /// Bytes per element.
            elem: u64,
            /// Bytes needed.
            need: u64,
            /// The record.
            record: String,
            /// Bytes it holds.
            size: u64,
            /// What wrote the archive.
            kind: ZipKind,
        } => "storage {key:?} needs {numel} elements × {elem} bytes = {need} bytes, but {record:?} holds {size}: \
              {} fails on it",
            kind.loader();
        /// A zip storage whose byte size overflows.
        ZipStorageOverflow {
            /// The storage key.
            key: String,
            /// Elements declared.
            numel: u64,
            /// Bytes per element.
            elem: u64,
        } => "storage {key:?} declares {numel} elements of {elem} bytes, more bytes than any file holds";
        /// A legacy module persistent id in a zip checkpoint.
        ModuleInZip {
            /// The class, rendered.
            class: String,
            /// What wrote the archive.
            kind: ZipKind,
        } => "module persistent id for {class} in a zip checkpoint: {} accepts only storages and fails on it",
            kind.loader();
        /// A persistent id that is not a tuple.
        PidNotTuple {
            /// The id, rendered.
            shown: String,
        } => "persistent id {shown} is not a tuple: torch.load's persistent_load fails";
        /// A storage persistent id of the wrong length.
        PidStorageItems {
            /// The id, rendered.
            shown: String,
            /// Its length.
            items: usize,
            /// The length the loader expects.
            want: usize,
        } => "storage persistent id {shown} has {items} items where torch.load expects {want}";
        /// A storage persistent id whose key is not a string.
        PidKeyNotStr {
            /// The id, rendered.
            shown: String,
        } => "storage persistent id {shown} has a key that is not a string";
        /// A storage persistent id whose count is not a non-negative integer.
        PidBadCount {
            /// The id, rendered.
            shown: String,
        } => "storage persistent id {shown} has an element count that is not a non-negative integer";
        /// A legacy storage persistent id with unusable view metadata.
        PidBadView {
            /// The id, rendered.
            shown: String,
        } => "storage persistent id {shown} has view metadata that is neither None nor (key, offset, size)";
        /// A module persistent id of the wrong length.
        PidModuleItems {
            /// The id, rendered.
            shown: String,
            /// Its length.
            items: usize,
        } => "module persistent id {shown} has {items} items where torch.load expects 4";
        /// A persistent id of a type the zip loader refuses.
        PidZipTag {
            /// The id, rendered.
            shown: String,
            /// Its type tag.
            tag: String,
        } => "persistent id {shown} is of type {tag:?}: torch.load's zip loader accepts only 'storage'";
        /// A persistent id of a type no loader knows.
        PidUnknownType {
            /// The id, rendered.
            shown: String,
        } => "persistent id {shown} is of a type torch.load does not know";
        /// More faults in one checkpoint than are listed.
        TooMany {
            /// How many there were.
            given: usize,
        } => "{given} PyTorch anomalies in this checkpoint; the first MAX_TORCH_NOTES ({MAX_TORCH_NOTES}) are listed";
        /// The input ends before a pickle the layout needs.
        InputEnds {
            /// The pickle.
            what: PickleSlot,
        } => "the input ends before {what}";
        /// A pickle member the loader never unpickles.
        UnreadPickle {
            /// What wrote the archive.
            kind: ZipKind,
            /// The checkpoint's folder, `<arch>/`.
            prefix: String,
        } => "a pickle in a PyTorch checkpoint that {} never unpickles (it reads {}): scanned anyway, as \
              another tool may load it",
            kind.loader(),
            match kind {
                ZipKind::Checkpoint => format!("{prefix}data.pkl"),
                ZipKind::TorchScript => format!("{p}data.pkl, {p}constants.pkl and {p}code/**.debug_pkl", p = prefix),
            };
        /// A legacy checkpoint's protocol version is not 1001.
        ProtocolVersion {
            /// The value, rendered.
            shown: String,
        } => "protocol version {shown} where torch.load requires {LEGACY_PROTOCOL_VERSION}: it refuses the file";
        /// A legacy module persistent id with Python source.
        ModuleSource {
            /// The class, rendered.
            class: String,
            /// The source file name, rendered.
            file: String,
            /// Length of the source in bytes.
            len: u64,
            /// Its first non-empty line (cut).
            first: String,
        } => "module persistent id carries {len} bytes of Python source for {class} (file {file}, \
              first line {first:?}): torch.load compares it with the installed class and imports the \
              class; it does not run the source";
        /// A legacy module persistent id without source.
        ModuleNoSource {
            /// The class, rendered.
            class: String,
            /// The source file name, rendered.
            file: String,
        } => "module persistent id for {class} (file {file}) without source";
        /// The storage key list holds something other than strings.
        KeysNotStrings {} => "the storage key list holds something other than strings: the storage section \
                              cannot be followed";
        /// The fifth pickle is not a list.
        NoKeyList {} => "the fifth pickle is not the list of storage keys: the storage section cannot be followed";
        /// A storage key no persistent id names.
        KeyUnnamed {
            /// The key.
            key: String,
        } => "storage {key:?} is listed but no persistent id names it: torch.load fails (KeyError); \
              the rest of the storage section cannot be followed";
        /// A storage a persistent id names without data.
        StorageWithoutData {
            /// The key.
            key: String,
        } => "storage {key:?} is named by a persistent id but has no data in the storage section: torch.load \
              leaves it uninitialised";
        /// The input ends before a storage's element count.
        CountMissing {
            /// The key.
            key: String,
        } => "the input ends before the element count of storage {key:?}";
        /// A read error before a storage.
        ReadBefore {
            /// The key.
            key: String,
            /// The I/O error.
            error: String,
        } => "read error before storage {key:?}: {error}";
        /// A negative element count.
        NegativeCount {
            /// The key.
            key: String,
            /// The count.
            numel: i64,
        } => "storage {key:?} declares a negative element count ({numel})";
        /// A storage whose count is not its persistent id's.
        CountDiffers {
            /// The key.
            key: String,
            /// The count in the storage section.
            numel: u64,
            /// The count the persistent id says.
            expect: u64,
        } => "storage {key:?} holds {numel} elements where its persistent id says {expect}: torch.load refuses \
              it (wrong byte size)";
        /// A legacy storage whose byte size overflows.
        StorageOverflow {
            /// The key.
            key: String,
            /// Elements declared.
            numel: u64,
            /// Bytes per element.
            elem: u64,
        } => "storage {key:?} declares {numel} elements of {elem} bytes, more than any file holds";
        /// A storage larger than what remains.
        StoragePastEnd {
            /// The key.
            key: String,
            /// Its bytes.
            nbytes: u64,
            /// Bytes left.
            left: u64,
        } => "storage {key:?} declares {nbytes} bytes of data, but only {left} remain";
        /// The input ends inside a storage.
        EndsInside {
            /// The key.
            key: String,
            /// Bytes there were.
            got: u64,
            /// Bytes declared.
            nbytes: u64,
        } => "the input ends inside storage {key:?} ({got} of {nbytes} bytes)";
        /// A read error inside a storage.
        ReadInside {
            /// The key.
            key: String,
            /// The I/O error.
            error: String,
        } => "read error inside storage {key:?}: {error}";
        /// A pickle after the last storage, which was scanned.
        PickleAfter {
            /// What it follows.
            after: After,
            /// Where it starts.
            at: u64,
        } => "a pickle follows {after} at offset {at}: torch.load stops before it, a loader that reads on runs \
              it; it was scanned";
        /// Bytes after the last storage.
        BytesAfter {
            /// How many.
            count: u64,
            /// What they follow.
            after: After,
        } => "{count} bytes after {after} that torch.load never reads";
        /// A legacy tar section without its record count.
        NoRecordCount {
            /// The section.
            section: TarSection,
        } => "`{section}` does not start with a record count: the legacy loader fails on it";
        /// A legacy tar record header that is not a 3-tuple.
        NotATriple {
            /// The record's index.
            index: u64,
            /// The section.
            section: TarSection,
            /// The header, rendered (`missing` when there is none).
            shown: String,
        } => "record {index} of `{section}` is {shown} where the legacy loader unpacks a 3-tuple";
        /// A legacy tar record that cannot be followed, and why.
        Unfollowable {
            /// Why.
            fault: Box<TorchFault>,
            /// The section.
            section: TarSection,
        } => "{fault}; the rest of `{section}` cannot be followed";
        /// The input ends before a tensor's dimension count.
        DimsMissing {} => "the input ends before a tensor's dimension count";
        /// A read error in a tensor's metadata.
        TensorRead {
            /// The I/O error.
            error: String,
        } => "read error: {error}";
        /// A tensor's dimension count out of range.
        Dims {
            /// The count.
            ndim: i32,
        } => "a tensor declares {ndim} dimensions (0 to MAX_TORCH_TENSOR_DIMS, {MAX_TORCH_TENSOR_DIMS}, accepted)";
        /// A tensor's metadata runs past what remains.
        MetadataPastEnd {
            /// Bytes needed.
            need: u64,
            /// Bytes left.
            left: u64,
        } => "a tensor's metadata needs {need} bytes, but only {left} remain";
        /// The input ends inside a tensor's metadata.
        EndsInMetadata {} => "the input ends inside a tensor's metadata";
        /// The last pickle of `storages` is not the list of views.
        NoViewList {} => "the last pickle of `storages` is not the list of storage views";
    }

    /// A pickle a streamed checkpoint layout needs, for messages.
    #[derive(Debug, Clone, PartialEq)]
    pub enum PickleSlot {
        /// One of the five pickles of a legacy checkpoint.
        Legacy {
            /// Which, in words.
            what: &'static str,
        } => "{what} (a legacy PyTorch checkpoint has 5 pickles)";
        /// The record count of a tar section.
        TarCount {
            /// The section.
            section: TarSection,
        } => "the record count of `{section}`";
        /// A record of a tar section.
        TarRecord {
            /// Its index.
            index: u64,
            /// Records declared.
            count: u64,
            /// The section.
            section: TarSection,
        } => "record {index} of {count} in `{section}`";
        /// The list of views that ends `storages`.
        TarViews {} => "the list of storage views in `storages`";
    }

    /// What bytes after a checkpoint's storages follow, for messages.
    #[derive(Debug, Clone, PartialEq)]
    pub enum After {
        /// The last storage of a legacy checkpoint.
        LastStorage {} => "the last storage";
        /// The list of views that ends a tar checkpoint's `storages`.
        ViewList {} => "the list of storage views";
        /// The last tensor of a tar checkpoint's `tensors`.
        LastTensor {} => "the last tensor";
    }
}
