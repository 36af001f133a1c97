//! The backup file: the last good payload from the server, written when a
//! new one arrives and read at a cold start when the server cannot be
//! reached.
//!
//! A host may have other users, so every check that makes the backup safe
//! lives here and in [`directory`]:
//!
//! * **Where.** A `backup_path` ending in `/` names a base directory (the
//!   default, chosen by the Ruby side, is `$XDG_CACHE_HOME/` or the
//!   temporary directory). The backup then lives in forkflag's own folder
//!   there, `forkflag-<euid>`, created 0700 and used only while it is a real
//!   directory of this user that nobody else can enter, under a name made of
//!   the application name and a digest of the URL, token, project and name
//!   prefix (the token itself never appears). Any other path is the file
//!   itself; its directory must belong to this user (or root) and be
//!   writable by nobody else.
//! * **Writing.** A random temporary name in that directory, created
//!   exclusively without following a link, mode 0600 whatever the umask,
//!   written, synced and renamed over the backup. Forked workers that share
//!   one path each rename a complete file: a reader sees the old backup or a
//!   new one, never a mix.
//! * **Reading.** Opened without following a link, then checked on the open
//!   file (no check-then-open race): a regular file of this user that
//!   nobody else can write, no larger than the payload limit.
//!
//! Anything else is refused with an error that names the path, the problem
//! and what to do; the caller reports it once and goes on without a backup.

mod directory;
#[cfg(test)]
mod tests;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fchmod, fstat, Mode};
use nix::unistd::{fsync, unlinkat, UnlinkatFlags};

use self::directory::{Directory, Facts, OpenDirectory};
use super::{Settings, Source};
use crate::CoreError;

/// Longest part of the backup's name that goes into a temporary name (the
/// whole must stay under the file system's 255-byte limit).
const TEMP_NAME_PREFIX: usize = 96;

/// Fresh temporary names tried before a write gives up.
const TEMP_ATTEMPTS: usize = 16;

/// Where one client's backup lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    dir: Directory,
    name: OsString,
}

impl Location {
    /// The backup of a client with these settings, if it keeps one.
    pub fn of(settings: &Settings) -> Option<Location> {
        let path = settings.backup_path.as_deref()?;
        Some(Location::new(path, || default_file_name(settings)))
    }

    /// The backup at `path`: a path ending in `/` (or naming no file) is a
    /// base directory, where the backup is `default_name` in forkflag's own
    /// folder; any other path is the file itself.
    pub fn new(path: &Path, default_name: impl FnOnce() -> OsString) -> Location {
        match path.file_name() {
            Some(name) if !path.as_os_str().as_bytes().ends_with(b"/") => Location {
                dir: Directory::Chosen(
                    path.parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."))
                        .to_path_buf(),
                ),
                name: name.to_os_string(),
            },
            _ => Location {
                dir: Directory::Own {
                    base: path.to_path_buf(),
                },
                name: default_name(),
            },
        }
    }

    /// The backup file's path, for messages and for people.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(&self.name)
    }
}

/// The file name of a client's backup in forkflag's own folder:
/// `<app_name>-<digest>.json`, the digest over the application name, the
/// server URL, the token, the project and the name prefix, so that clients
/// that differ in any of them (another environment's token) never share a
/// backup. The token cannot be read back from the name.
pub fn default_file_name(settings: &Settings) -> OsString {
    let (url, token) = match &settings.source {
        Source::Server { endpoint, token } => (endpoint.display_url(""), token.0.as_str()),
        Source::File(path) => (path.display().to_string(), ""),
        Source::Static => (String::new(), ""),
    };
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for field in [
        Some(settings.app_name.as_str()),
        Some(url.as_str()),
        Some(token),
        settings.project.as_deref(),
        settings.name_prefix.as_deref(),
    ] {
        match field {
            None => digest.update(&[0]),
            Some(text) => {
                digest.update(&[1]);
                digest.update(&(text.len() as u64).to_le_bytes());
                digest.update(text.as_bytes());
            }
        }
    }
    let app: String = settings
        .app_name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .take(64)
        .collect();
    format!("{app}-{}.json", hex(&digest.finish().as_ref()[..8])).into()
}

/// Reads the backup, if there is one; refuses one that another user could
/// have written (see the module's documentation) or that is larger than
/// `limit` bytes.
pub fn read(location: &Location, limit: usize) -> Result<Option<Vec<u8>>, CoreError> {
    let Some(dir) = directory::open(&location.dir, false)? else {
        return Ok(None);
    };
    let path = dir.path().join(&location.name);
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        // A FIFO or a device must not block the open: it is refused below.
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd =
        match openat(dir.fd(), location.name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(refused(
                &path,
                "it is a symbolic link, which forkflag never follows; point backup_path: at the \
                 file itself"
                    .into(),
            )),
            Err(e) => return Err(io_error("cannot read", &path, e.into())),
        };
    let stat = fstat(&fd).map_err(|e| io_error("cannot read", &path, e.into()))?;
    if let Some(problem) = Facts::of(&stat).file_problem(directory::euid()) {
        return Err(refused(&path, problem));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    let too_large = || {
        io_error(
            "cannot read",
            &path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("it is larger than max_payload_bytes ({limit} bytes)"),
            ),
        )
    };
    if size > limit as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    File::from(fd)
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("cannot read", &path, e))?;
    if bytes.len() > limit {
        return Err(too_large());
    }
    Ok(Some(bytes))
}

/// Writes `payload` as the backup, atomically (see the module's
/// documentation); refuses a directory that another user could write.
pub fn write(location: &Location, payload: &[u8]) -> Result<(), CoreError> {
    write_with(location, payload, &mut random_temp_name)
}

/// [`write`], with the temporary names drawn from `next_temp` (given the
/// backup's name).
fn write_with(
    location: &Location,
    payload: &[u8],
    next_temp: &mut dyn FnMut(&OsStr) -> OsString,
) -> Result<(), CoreError> {
    let Some(dir) = directory::open(&location.dir, true)? else {
        unreachable!("directory::open creates the directory it is asked to create");
    };
    let path = dir.path().join(&location.name);
    let (temp, file) = create_temp(&dir, &location.name, next_temp, &path)?;
    let result = fill_and_rename(&dir, file, &temp, &location.name, payload, &path);
    if result.is_err() {
        let _ = unlinkat(dir.fd(), temp.as_os_str(), UnlinkatFlags::NoRemoveDir);
    }
    result
}

/// Creates a new temporary file in `dir`: a fresh name each attempt, never
/// an existing file nor a link.
fn create_temp(
    dir: &OpenDirectory,
    name: &OsStr,
    next_temp: &mut dyn FnMut(&OsStr) -> OsString,
    path: &Path,
) -> Result<(OsString, File), CoreError> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    for _ in 0..TEMP_ATTEMPTS {
        let temp = next_temp(name);
        match openat(
            dir.fd(),
            temp.as_os_str(),
            flags,
            Mode::S_IRUSR | Mode::S_IWUSR,
        ) {
            Ok(fd) => return Ok((temp, File::from(fd))),
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(io_error("cannot write", path, e.into())),
        }
    }
    Err(io_error(
        "cannot write",
        path,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{TEMP_ATTEMPTS} fresh temporary names in a row were taken"),
        ),
    ))
}

fn fill_and_rename(
    dir: &OpenDirectory,
    mut file: File,
    temp: &OsStr,
    name: &OsStr,
    payload: &[u8],
    path: &Path,
) -> Result<(), CoreError> {
    let fail = |e: io::Error| io_error("cannot write", path, e);
    // The mode given to open is narrowed by the umask; set it exactly.
    fchmod(&file, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| fail(e.into()))?;
    file.write_all(payload).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    renameat(dir.fd(), temp, dir.fd(), name)
        .map_err(|e| io_error("cannot replace", path, e.into()))?;
    // Makes the rename itself durable; the backup is in place either way.
    let _ = fsync(dir.fd());
    Ok(())
}

/// `.<name>.<32 random hex digits>.tmp`, from the system's random source.
fn random_temp_name(name: &OsStr) -> OsString {
    let mut random = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).is_err() {
        for chunk in random.chunks_mut(4) {
            chunk.copy_from_slice(&crate::process::random::random_u32().to_le_bytes());
        }
    }
    let prefix = &name.as_bytes()[..name.len().min(TEMP_NAME_PREFIX)];
    let mut temp = Vec::with_capacity(prefix.len() + 38);
    temp.push(b'.');
    temp.extend_from_slice(prefix);
    temp.push(b'.');
    temp.extend_from_slice(hex(&random).as_bytes());
    temp.extend_from_slice(b".tmp");
    OsString::from_vec(temp)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A backup (or its directory) refused because another user could have
/// written it.
fn refused(path: &Path, problem: String) -> CoreError {
    io_error(
        "unsafe",
        path,
        io::Error::new(io::ErrorKind::PermissionDenied, problem),
    )
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> CoreError {
    CoreError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}
