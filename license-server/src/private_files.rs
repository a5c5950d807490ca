//! Data directories and private keys that only their owner can read, written so that two
//! processes starting on one fresh directory end up with one key, never one each.
//!
//! A data directory holds the license server's signing key (whoever holds it can mint CALs the
//! hosts accept), the hosts' licensing and TLS keys, and the SQLite store. Directories are made
//! 0700 and key files 0600, whatever the umask; a key file is written in full under a temporary
//! name, flushed to disk, then linked into place only if no file has the name yet, so a reader
//! never sees half a key and a second writer never replaces the first one's key.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of data directories: the owner only.
pub const DIR_MODE: u32 = 0o700;
/// Mode of private key files: the owner reads and writes.
pub const KEY_MODE: u32 = 0o600;

/// Creates `dir` and any missing parent 0700. An existing directory keeps its mode (it is the
/// operator's), with a warning if others can enter or read it.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    warn_if_open_to_others(dir);
    Ok(())
}

/// Writes `contents` as a new 0600 file at `path`, unless a file is already there. `Ok(true)`
/// when this call's contents are in place, `Ok(false)` when another writer's were first (the
/// caller reads theirs).
pub fn create_private_file(path: &Path, contents: &[u8]) -> io::Result<bool> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(
        ".{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let temporary = dir.join(temporary_name);
    let written = write_new(&temporary, contents).and_then(|()| {
        // link(2) fails with EEXIST instead of replacing: the first complete key wins.
        match fs::hard_link(&temporary, path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(error),
        }
    });
    let removed = fs::remove_file(&temporary);
    let placed = written?;
    removed?;
    if placed {
        // The new name is durable only once the directory entry is.
        File::open(dir)?.sync_all()?;
    }
    Ok(placed)
}

/// The text in `path`, or what `make` gives, written there as [`create_private_file`] does
/// (when another writer was first, theirs is read instead).
pub fn load_or_create(
    path: &Path,
    make: impl FnOnce() -> Result<String, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    if !path.exists() {
        let text = make()?;
        if create_private_file(path, text.as_bytes())? {
            return Ok(text);
        }
    }
    Ok(fs::read_to_string(path)?)
}

fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(KEY_MODE)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Whether anyone but the owner may read, write or enter `path` (false when it cannot be
/// read at all: the caller's own error will say why).
pub fn open_to_others(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o077 != 0)
}

/// Logs a warning when `path` (a key file or a data directory) is open to others.
pub fn warn_if_open_to_others(path: &Path) {
    if let Ok(metadata) = fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:04o}"),
                "others can read this private file or directory (chmod go-rwx it)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_are_made_for_the_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert!(!open_to_others(&dir));
    }

    #[test]
    fn an_existing_directory_keeps_its_mode() {
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(root.path()).unwrap();
        assert_eq!(mode(root.path()), 0o755);
        assert!(open_to_others(root.path()));
    }

    #[test]
    fn a_key_file_is_written_once_for_the_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        assert!(create_private_file(&path, b"first").unwrap());
        assert_eq!(mode(&path), 0o600);
        assert!(!create_private_file(&path, b"second").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        // No temporary file is left behind, placed or not.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["key.pem"]);
    }

    #[test]
    fn a_key_file_in_a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = create_private_file(&dir.path().join("no/key.pem"), b"k").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
