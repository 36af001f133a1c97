//! The backup's directory, opened once per read or write and checked on the
//! open descriptor; the file is then opened, created and renamed relative to
//! that descriptor, so a directory swapped after the check is never used.
//!
//! Also the rules for what may be trusted ([`Facts`]), kept as plain
//! functions of an fstat so that every refusal can be tested whoever runs
//! the tests.

use std::fs::DirBuilder;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode};

use super::{io_error, refused};
use crate::CoreError;

/// The directory that holds a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Directory {
    /// forkflag's own folder, `forkflag-<euid>`, in this base directory:
    /// created 0700 when missing, used only while private to this user.
    Own {
        /// `$XDG_CACHE_HOME`, the temporary directory, or one the user named.
        base: PathBuf,
    },
    /// A directory the user named (with the file): it must belong to this
    /// user or root, and be writable by nobody else.
    Chosen(PathBuf),
}

impl Directory {
    /// Its path.
    pub(super) fn path(&self) -> PathBuf {
        match self {
            Directory::Own { base } => base.join(own_folder_name()),
            Directory::Chosen(dir) => dir.clone(),
        }
    }
}

/// A directory opened and found fit to hold the backup.
pub(super) struct OpenDirectory {
    fd: OwnedFd,
    path: PathBuf,
}

impl OpenDirectory {
    /// The open directory, for `*at` calls.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Its path, for messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

/// The process's effective user id.
pub(super) fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// forkflag's own folder: one per user, so that users who share a base
/// directory (the temporary directory, or an `XDG_CACHE_HOME` that a service
/// manager sets for several users) never share a folder.
fn own_folder_name() -> String {
    format!("forkflag-{}", euid())
}

/// Opening a directory to check it and to work relative to it.
const DIRECTORY_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);

/// Opens and checks the directory. Missing: `None` unless `create`, which
/// makes forkflag's own folder (and its base), never a directory the user
/// named.
pub(super) fn open(dir: &Directory, create: bool) -> Result<Option<OpenDirectory>, CoreError> {
    match dir {
        Directory::Own { base } => open_own(base, create),
        Directory::Chosen(path) => {
            let fd = match fcntl::open(path.as_path(), DIRECTORY_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if !create => return Ok(None),
                Err(e) => return Err(io_error("cannot open directory", path, e.into())),
            };
            let stat = fstat(&fd).map_err(|e| io_error("cannot open directory", path, e.into()))?;
            if let Some(problem) = Facts::of(&stat).chosen_directory_problem(euid()) {
                return Err(refused(path, problem));
            }
            Ok(Some(OpenDirectory {
                fd,
                path: path.clone(),
            }))
        }
    }
}

fn open_own(base: &Path, create: bool) -> Result<Option<OpenDirectory>, CoreError> {
    let folder = own_folder_name();
    let path = base.join(&folder);
    let base_fd = match fcntl::open(base, DIRECTORY_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) if !create => return Ok(None),
        Err(Errno::ENOENT) => {
            // The XDG rule: a missing cache directory is made, 0700.
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(base)
                .map_err(|e| io_error("cannot create directory", base, e))?;
            fcntl::open(base, DIRECTORY_FLAGS, Mode::empty())
                .map_err(|e| io_error("cannot open directory", base, e.into()))?
        }
        Err(e) => return Err(io_error("cannot open directory", base, e.into())),
    };
    let created = create
        && match mkdirat(&base_fd, folder.as_str(), Mode::S_IRWXU) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(io_error("cannot create directory", &path, e.into())),
        };
    let flags = DIRECTORY_FLAGS | OFlag::O_NOFOLLOW;
    let fd = match openat(&base_fd, folder.as_str(), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) if !create => return Ok(None),
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            // Not a directory we can enter without following a link: say what.
            let facts = fstatat(&base_fd, folder.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map(|stat| Facts::of(&stat))
                .map_err(|e| io_error("cannot open directory", &path, e.into()))?;
            let problem = facts
                .own_folder_problem(euid())
                .unwrap_or_else(|| "it is not a directory".into());
            return Err(refused(&path, problem));
        }
        Err(e) => return Err(io_error("cannot open directory", &path, e.into())),
    };
    let stat = fstat(&fd).map_err(|e| io_error("cannot open directory", &path, e.into()))?;
    let mut facts = Facts::of(&stat);
    if created && facts.uid == euid() {
        // mkdir's mode is narrowed by the umask; set it exactly.
        fchmod(&fd, Mode::S_IRWXU)
            .map_err(|e| io_error("cannot create directory", &path, e.into()))?;
        facts.mode = (facts.mode & !0o7777) | 0o700;
    }
    if let Some(problem) = facts.own_folder_problem(euid()) {
        return Err(refused(&path, problem));
    }
    Ok(Some(OpenDirectory { fd, path }))
}

/// What the checks look at in an fstat.
#[derive(Debug, Clone, Copy)]
pub(super) struct Facts {
    /// `st_mode`: the file type and the permission bits.
    pub(super) mode: libc::mode_t,
    /// `st_uid`.
    pub(super) uid: u32,
}

const HOW_TO_CHOOSE: &str = "or set backup_path: to a file in a directory only this user can write";

impl Facts {
    /// The facts of an fstat.
    pub(super) fn of(stat: &FileStat) -> Facts {
        Facts {
            mode: stat.st_mode,
            uid: stat.st_uid,
        }
    }

    fn file_type(self) -> libc::mode_t {
        self.mode & libc::S_IFMT
    }

    fn permissions(self) -> libc::mode_t {
        self.mode & 0o7777
    }

    /// Why forkflag's own folder cannot be used, if it cannot.
    pub(super) fn own_folder_problem(self, euid: u32) -> Option<String> {
        if self.file_type() == libc::S_IFLNK {
            Some(format!(
                "it is a symbolic link, which forkflag never follows; remove it (forkflag makes \
                 the folder itself), {HOW_TO_CHOOSE}"
            ))
        } else if self.file_type() != libc::S_IFDIR {
            Some(format!("it is not a directory; remove it, {HOW_TO_CHOOSE}"))
        } else if self.uid != euid {
            Some(format!(
                "it belongs to uid {}, not to this process's user (uid {euid}): another user may \
                 have made it; remove it (forkflag makes it again, private), {HOW_TO_CHOOSE}",
                self.uid
            ))
        } else if self.permissions() & 0o077 != 0 {
            Some(format!(
                "it is open to group or others (mode {:04o}); run chmod 700 on it, {HOW_TO_CHOOSE}",
                self.permissions()
            ))
        } else {
            None
        }
    }

    /// Why a directory the user named cannot hold the backup, if it cannot.
    pub(super) fn chosen_directory_problem(self, euid: u32) -> Option<String> {
        if self.uid != euid && self.uid != 0 {
            Some(format!(
                "it belongs to uid {}, neither this process's user (uid {euid}) nor \
                 root: its owner could replace the backup; choose a directory of this user's \
                 that only it can write",
                self.uid
            ))
        } else if self.permissions() & 0o1002 == 0o1002 {
            Some(format!(
                "it is shared with other users (mode {:04o}): any of them can take the \
                 backup's name first; set backup_path: to a directory ending in \"/\" (forkflag \
                 keeps a private folder there), or to a file in a directory only this user can \
                 write",
                self.permissions()
            ))
        } else if self.permissions() & 0o022 != 0 {
            Some(format!(
                "it is writable by group or others (mode {:04o}): they could replace \
                 the backup; run chmod go-w on it, or choose a directory only this user can write",
                self.permissions()
            ))
        } else {
            None
        }
    }

    /// Why an opened backup file cannot be trusted, if it cannot.
    pub(super) fn file_problem(self, euid: u32) -> Option<String> {
        if self.file_type() != libc::S_IFREG {
            Some("it is not a regular file; remove it, or point backup_path: at a file".into())
        } else if self.uid != euid {
            Some(format!(
                "it belongs to uid {}, not to this process's user (uid {euid}): another user may \
                 have planted it; remove it (forkflag writes a new one when the server answers)",
                self.uid
            ))
        } else if self.permissions() & 0o022 != 0 {
            Some(format!(
                "it is writable by group or others (mode {:04o}); run chmod 600 on it, or remove \
                 it",
                self.permissions()
            ))
        } else {
            None
        }
    }
}
