// SPDX-License-Identifier: MPL-2.0
//! Replacing files atomically: readers see the old content or the new one,
//! never a part of it, and a crash leaves one of the two.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temporary name a file is written under before it is renamed:
/// hidden, in the same directory (so the rename is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

/// Writes `data` to `path` through a temporary file: write, fsync (with
/// `sync`), rename, fsync the directory; missing parent directories are
/// made. On error the temporary file is removed and `path` keeps its old
/// content.
pub fn write_atomic(path: &Path, data: &[u8], sync: bool) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic_with(path, sync, |w| w.write_all(data))
}

/// Like [`write_atomic`], with the content produced by `fill` (and the
/// directory must exist); `sync` chooses whether data and directory are
/// flushed to disk.
pub fn write_atomic_with(
    path: &Path,
    sync: bool,
    fill: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut w = io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)?;
        if sync {
            sync_dir(path);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Flushes a directory entry change (a rename, a new file) to disk; best
/// effort, as not every file system supports it.
pub fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.m3u8");
        write_atomic(&p, b"one", true).unwrap();
        write_atomic(&p, b"two", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = write_atomic_with(&p, false, |_| Err(io::Error::other("disk full")));
        assert!(e.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"two", "old content kept");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A parent that is a file: no directory can be made there.
        assert!(write_atomic(&p.join("a"), b"x", true).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }

    #[test]
    fn write_atomic_creates_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/latest.jpg");
        assert_eq!(temp_path(&path), dir.path().join("sub/.latest.jpg.partial"));
        write_atomic(&path, b"one", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"two!", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two!");
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn failed_rename_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename fails.
        let path = dir.path().join("target");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), b"x").unwrap();
        assert!(write_atomic(&path, b"new", true).is_err());
        assert!(path.is_dir());
        assert!(!temp_path(&path).exists());
    }
}
