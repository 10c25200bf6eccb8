// SPDX-License-Identifier: MPL-2.0
//! Files replaced atomically: written under a hidden temporary name in the
//! same directory, optionally fsynced, then renamed into place, so that a
//! reader (a web server, a player) only ever sees a whole old or a whole new
//! file.

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

/// Writes `bytes` to `path` through [`temp_path`] and a rename. With `sync`,
/// the data reaches the disk before the rename (and the directory entry
/// after it), so a crash leaves the old or the new file, never a torn one.
/// Missing parent directories are created. On error the temporary file is
/// removed and `path` is left as it was.
pub fn atomic_write(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = temp_path(path);
    let result = (|| -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)?;
        if sync {
            // Make the rename itself durable; not every filesystem allows
            // opening a directory, which is not worth an error.
            if let Ok(d) = File::open(dir.unwrap_or(Path::new("."))) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_through_a_hidden_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/latest.jpg");
        assert_eq!(temp_path(&path), dir.path().join("sub/.latest.jpg.partial"));
        atomic_write(&path, b"one", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        atomic_write(&path, b"two!", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two!");
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn failure_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename fails.
        let path = dir.path().join("target");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), b"x").unwrap();
        assert!(atomic_write(&path, b"new", true).is_err());
        assert!(path.is_dir());
        assert!(!temp_path(&path).exists());
    }
}
