//! Writing an output file all at once: into a temporary file in the same
//! folder, renamed over the output only when the writer succeeded, so a
//! failed or interrupted conversion leaves the output as it was (absent,
//! or the previous file) and no partial file behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::ConvertError;

/// The folder `out` is in (`.` for a bare file name).
pub fn parent_of(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temporary file beside the output, removed when dropped unless
/// [`TmpOut::persist`] renamed it over the output.
pub struct TmpOut {
    /// Its path.
    pub path: PathBuf,
    /// The file, open for reading and writing.
    pub file: File,
    keep: bool,
}

impl TmpOut {
    /// A new, empty temporary file in `out`'s folder.
    ///
    /// # Errors
    /// When no file can be created there.
    pub fn create(out: &Path) -> io::Result<TmpOut> {
        let parent = parent_of(out);
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let name = crate::extract::store::safe_name(&name);
        for n in 0..100u32 {
            let path = parent.join(format!(".{name}.pkinspect-tmp-{}-{n}", std::process::id()));
            match OpenOptions::new().write(true).read(true).create_new(true).open(&path) {
                Ok(file) => return Ok(TmpOut { path, file, keep: false }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary file name"))
    }

    /// Renames the file over `out`.
    ///
    /// # Errors
    /// The rename's (the temporary file is then removed).
    pub fn persist(mut self, out: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, out)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TmpOut {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Runs `fill` on a new temporary file beside `out`, then renames it to
/// `out`. On any error (or a panic) the temporary file is removed. The
/// data is not synced to disk (as `extract` does not): the rename makes
/// the whole file visible at once, not durable.
///
/// # Errors
/// `fill`'s error, or [`ConvertError::Output`] when the temporary file
/// cannot be created or renamed.
pub fn write_atomic<T>(out: &Path, fill: impl FnOnce(&mut File) -> Result<T, ConvertError>) -> Result<T, ConvertError> {
    let mut tmp = TmpOut::create(out).map_err(ConvertError::Output)?;
    let value = fill(&mut tmp.file)?;
    tmp.persist(out).map_err(ConvertError::Output)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pkinspect-atomic-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch");
        d
    }

    #[test]
    fn a_failed_writer_leaves_nothing_and_keeps_the_old_file() {
        let d = scratch("fail");
        let out = d.join("m.safetensors");
        std::fs::write(&out, b"old").expect("old");
        let r: Result<(), _> = write_atomic(&out, |f| {
            io::Write::write_all(f, b"half").map_err(ConvertError::Output)?;
            Err(ConvertError::Unsupported("stop".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&out).expect("old kept"), b"old");
        assert_eq!(std::fs::read_dir(&d).expect("dir").count(), 1, "no temporary file left");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_good_writer_replaces_the_output() {
        let d = scratch("ok");
        let out = d.join("m.safetensors");
        write_atomic(&out, |f| io::Write::write_all(f, b"new").map_err(ConvertError::Output)).expect("written");
        assert_eq!(std::fs::read(&out).expect("new"), b"new");
        assert_eq!(std::fs::read_dir(&d).expect("dir").count(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }
}
