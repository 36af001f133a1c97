//! The backup's guarantees, on real files. The tests run as root in CI (so
//! that files can be given to another user, uid 65534); run as another
//! user, each still checks the refusal it cannot stage on the rule itself
//! and on a file root owns.
//!
//! `writing` checks how a backup is written (modes, names, atomicity),
//! `reading` what a read and a folder refuse; the shared scaffolding is
//! here.

mod reading;
mod writing;

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::directory::{euid, Facts};
use super::*;
use crate::http::Endpoint;
use crate::runtime::{Secret, Settings, Source};

/// A user that is not the one running the tests (nobody).
const OTHER_UID: u32 = 65534;

/// A private directory of its own for one test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "forkflag-backup-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::DirBuilder::new().mode(0o700).create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        Scratch(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The scratch directory as a base: `<scratch>/`.
    fn as_base(&self) -> PathBuf {
        let mut text = self.0.clone().into_os_string();
        text.push("/");
        PathBuf::from(text)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700));
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    euid() == 0
}

/// The backup at exactly this file.
fn at_file(path: &Path) -> Location {
    Location::new(path, || unreachable!("a file path needs no default name"))
}

/// The backup in forkflag's own folder in the scratch directory.
fn in_own_folder(scratch: &Scratch) -> Location {
    Location::new(&scratch.as_base(), || "shop-0123456789abcdef.json".into())
}

fn own_folder(scratch: &Scratch) -> PathBuf {
    scratch.join(&format!("forkflag-{}", euid()))
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn give_to_other_user(path: &Path) {
    std::os::unix::fs::lchown(path, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
}

/// The error's message, checked to name `path` as unsafe and to say `why`.
fn refusal(result: Result<impl std::fmt::Debug, CoreError>, path: &Path, why: &str) -> String {
    let message = result.expect_err("refused").to_string();
    let expected = format!("unsafe {}: ", path.display());
    assert!(
        message.starts_with(&expected),
        "{message:?} should start with {expected:?}"
    );
    assert!(message.contains(why), "{message:?} should say {why:?}");
    message
}

fn temp_leftovers(dir: &Path) -> Vec<OsString> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.as_bytes().ends_with(b".tmp"))
        .collect()
}

fn settings(token: &str) -> Settings {
    Settings {
        backup_path: Some("/var/cache/".into()),
        ..Settings::for_test(Source::Server {
            endpoint: Arc::new(Endpoint::parse("https://unleash.example.com/api").unwrap()),
            token: Secret(token.into()),
        })
    }
}
