//! The store's file access: reads bounded, writes atomic, deletions that tolerate what is
//! already gone.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{io_error, LicenseDirError};

/// The file's bytes, `None` if it does not exist, an error if it holds more than `max`.
pub(super) fn read_bounded(path: &Path, max: usize) -> Result<Option<Vec<u8>>, LicenseDirError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(path, source)),
    };
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|source| io_error(path, source))?;
    if bytes.len() > max {
        return Err(LicenseDirError::TooLarge {
            path: path.to_owned(),
            max,
        });
    }
    Ok(Some(bytes))
}

/// Replaces `path` with `bytes` atomically: a synced temporary file in the same directory,
/// renamed over it. The temporary name starts with a dot, which no store file does.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LicenseDirError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = File::create(&temp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| fs::rename(&temp, path));
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error(path, source));
    }
    Ok(())
}

/// Removes `path` with `how`; already gone is fine.
pub(super) fn remove(
    path: &Path,
    how: fn(&Path) -> io::Result<()>,
) -> Result<(), (PathBuf, io::Error)> {
    match how(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err((path.to_owned(), error)),
        _ => Ok(()),
    }
}
