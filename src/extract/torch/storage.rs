//! Where a tensor's storage bytes are: the `data/<key>` record of a zip
//! checkpoint (TorchScript archives included), or the key's slot in a legacy
//! checkpoint's storage section (FORMATS.md §4.2: after the five pickles,
//! per key an `int64` count in the storage class's elements and the raw
//! bytes).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Read, Seek};
use std::sync::Arc;

use super::super::error::StorageError;
use super::super::Emitter;
use super::SHOWN_CHARS;
use crate::container::{parse_pid, Pid, PidLayout};
use crate::view::render::Renderer;
use crate::vm::EventKind;

/// Storage key → (offset, length) in a legacy PyTorch checkpoint.
pub(in crate::extract) type Slots = HashMap<String, (u64, u64)>;

impl Emitter<'_, '_> {
    /// True when this stream is a legacy (non-zip) checkpoint read from the
    /// file itself: its storages follow its five pickles.
    pub(super) fn in_legacy(&self) -> bool {
        self.member.is_none() && !self.layered && self.a.pickles.len() >= 5
    }

    /// Runs `f` on a reader of storage `key`'s bytes, after checking that
    /// the record or slot holds the `need` bytes its persistent id declares.
    pub(super) fn with_storage<T>(
        &mut self,
        key: &str,
        need: u64,
        f: impl FnOnce(&mut dyn Read) -> io::Result<T>,
    ) -> Result<T, StorageError> {
        if let Some(s) = self.ex.tar.as_ref().filter(|_| self.member.as_deref() == Some("pickle")) {
            let s = s.storages.get(key).ok_or_else(|| StorageError::NotInSection(key.to_string()))?;
            if s.len < need {
                return Err(StorageError::ShortSlot { key: key.to_string(), len: s.len, need });
            }
            let mut file = std::fs::File::open(&self.ex.file)?;
            file.seek(io::SeekFrom::Start(s.at))?;
            return Ok(f(&mut io::BufReader::new(file).take(s.len))?);
        }
        if self.in_legacy() {
            let slots = self.legacy_slots()?;
            let &(at, len) = slots.get(key).ok_or_else(|| StorageError::NotInSection(key.to_string()))?;
            if len < need {
                return Err(StorageError::ShortSlot { key: key.to_string(), len, need });
            }
            let mut file = std::fs::File::open(&self.ex.file)?;
            file.seek(io::SeekFrom::Start(at))?;
            let mut r = io::BufReader::new(file).take(len);
            return Ok(f(&mut r)?);
        }
        let member = match self.member.as_deref().and_then(|m| m.rfind('/').map(|i| &m[..=i])) {
            Some(prefix) if !prefix.contains('!') && !self.layered => format!("{prefix}data/{key}"),
            _ => return Err(StorageError::Nested),
        };
        let mut zip = match self.ex.zip.take() {
            Some(z) => z,
            None => {
                let mut file =
                    std::fs::File::open(&self.ex.file).map_err(|e| StorageError::OpenCheckpoint(Arc::new(e)))?;
                let config = crate::container::zip::config_for(&mut file);
                zip::ZipArchive::with_config(config, file).map_err(|e| StorageError::OpenZip(Arc::new(e)))?
            }
        };
        let result = (|| {
            let mut m = zip
                .by_name(&member)
                .map_err(|e| StorageError::Member { member: member.clone(), error: Arc::new(e) })?;
            if m.size() < need {
                return Err(StorageError::ShortMember { member: member.clone(), size: m.size(), need });
            }
            Ok(f(&mut m)?)
        })();
        self.ex.zip = Some(zip);
        result
    }

    /// Where each storage's bytes are in a legacy checkpoint: key →
    /// (offset, length), read once from the file.
    fn legacy_slots(&mut self) -> Result<&Slots, StorageError> {
        if self.legacy.is_none() {
            let slots = self.read_legacy_slots();
            self.legacy = Some(slots);
        }
        match self.legacy.as_ref().expect("just set") {
            Ok(m) => Ok(m),
            Err(e) => Err(e.clone()),
        }
    }

    /// Bytes per counted element of every storage key the object pickle's
    /// persistent ids name (1 for `UntypedStorage`, counted in bytes).
    fn legacy_units(&self) -> HashMap<String, u64> {
        let a = self.a;
        let r = Renderer::new(a, SHOWN_CHARS);
        let mut units = HashMap::new();
        for e in a.events.iter().filter(|e| e.pickle == 3) {
            let EventKind::PersistentId { pid } = e.kind else { continue };
            if let Pid::Storage(s) = parse_pid(a, pid, PidLayout::Legacy, &r) {
                if let Ok(size) = s.class.size() {
                    units.entry(s.key).or_insert(size);
                }
            }
        }
        units
    }

    fn read_legacy_slots(&self) -> Result<Slots, StorageError> {
        let a = self.a;
        let units = self.legacy_units();
        let keys_root = a.pickles[4].root.ok_or(StorageError::NoKeyList)?;
        let keys: Vec<String> = a
            .tuple_or_list(keys_root)
            .ok_or(StorageError::KeysNotList)?
            .iter()
            .map(|k| a.str_or_latin1(*k).map(Cow::into_owned).ok_or(StorageError::KeyNotStr))
            .collect::<Result<_, _>>()?;
        if keys.len() > crate::limits::MAX_TORCH_STORAGES {
            return Err(StorageError::TooManyStorages);
        }
        let mut file = std::fs::File::open(&self.ex.file)?;
        let total = file.metadata()?.len();
        let mut pos = a.pickles[4].end;
        let mut out = HashMap::new();
        for key in keys {
            let size = *units.get(&key).ok_or_else(|| StorageError::NoPersistentId(key.clone()))?;
            let mut n = [0u8; 8];
            file.seek(io::SeekFrom::Start(pos))?;
            file.read_exact(&mut n).map_err(|_| StorageError::SectionEnds(pos))?;
            let numel = u64::try_from(i64::from_le_bytes(n)).map_err(|_| StorageError::NegativeSize)?;
            let len = numel.checked_mul(size).ok_or(StorageError::SizeOverflows)?;
            let at = pos + 8;
            if at.checked_add(len).is_none_or(|end| end > total) {
                return Err(StorageError::PastEnd(key));
            }
            out.entry(key).or_insert((at, len));
            pos = at + len;
        }
        Ok(out)
    }
}
