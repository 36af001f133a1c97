//! The backup file: the last good payload, written atomically and read at
//! start when the server cannot be reached.
//!
//! Several processes (forked workers) may share one backup path. Each writes
//! to a temporary file unique to the process and thread, then renames it over
//! the backup: readers see the old file or the new one, never a mix.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::CoreError;

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Writes `payload` to `path` atomically.
pub fn write(path: &Path, payload: &[u8]) -> Result<(), CoreError> {
    let io = |action: &'static str, source: std::io::Error| CoreError::Io {
        action,
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "forkflag-backup".into());
    let tmp_name = format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    );
    let tmp = match dir {
        Some(d) => d.join(tmp_name),
        None => Path::new(&tmp_name).to_path_buf(),
    };
    let result = (|| {
        let mut file = fs::File::create(&tmp).map_err(|e| io("cannot write backup", e))?;
        file.write_all(payload)
            .map_err(|e| io("cannot write backup", e))?;
        file.sync_data().map_err(|e| io("cannot write backup", e))?;
        fs::rename(&tmp, path).map_err(|e| io("cannot replace backup", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads the backup, if there is one.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, CoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CoreError::Io {
            action: "cannot read backup",
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("forkflag-backup-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flags.json");
        assert_eq!(read(&path).unwrap(), None);
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some(&b"two"[..]));
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
