//! The backup's guarantees, on real files. The tests run as root in CI (so
//! that files can be given to another user, uid 65534); run as another
//! user, each still checks the refusal it cannot stage on the rule itself
//! and on a file root owns.

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::directory::{euid, Facts};
use super::*;
use crate::http::{Endpoint, Tls};
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
        client_id: 1,
        source: Source::Server {
            endpoint: Arc::new(Endpoint::parse("https://unleash.example.com/api").unwrap()),
            token: Secret(token.into()),
        },
        app_name: "shop".into(),
        instance_id: "shop-1".into(),
        environment: None,
        project: None,
        name_prefix: None,
        refresh_interval: Duration::from_secs(15),
        metrics_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
        custom_headers: Vec::new(),
        backup_path: Some("/var/cache/".into()),
        metrics_enabled: true,
        tls: Tls::plain(),
        max_payload_bytes: Settings::DEFAULT_MAX_PAYLOAD_BYTES,
        sdk: "forkflag:test".into(),
        user_agent: "forkflag/test".into(),
        platform_name: "ruby".into(),
        platform_version: "3.1.2".into(),
    }
}

#[test]
fn writes_atomically_and_reads_back() {
    let scratch = Scratch::new();
    for location in [
        at_file(&scratch.join("flags.json")),
        in_own_folder(&scratch),
    ] {
        assert_eq!(read(&location, 1024).unwrap(), None);
        write(&location, b"one").unwrap();
        write(&location, b"two").unwrap();
        assert_eq!(read(&location, 1024).unwrap().as_deref(), Some(&b"two"[..]));
        assert!(temp_leftovers(location.dir.path().as_path()).is_empty());
    }
}

#[test]
fn a_path_ending_in_a_slash_is_a_base_for_the_own_folder() {
    let folder = format!("forkflag-{}", euid());
    let own = Location::new(Path::new("/var/cache/app/"), || "shop-00.json".into());
    assert_eq!(
        own.path(),
        Path::new("/var/cache/app")
            .join(&folder)
            .join("shop-00.json")
    );
    let file = at_file(Path::new("/var/cache/app/flags.json"));
    assert_eq!(file.path(), Path::new("/var/cache/app/flags.json"));
    assert_eq!(file.dir, Directory::Chosen("/var/cache/app".into()));
    assert_eq!(
        at_file(Path::new("flags.json")).dir,
        Directory::Chosen(".".into())
    );

    let mut with_slash = settings("t");
    with_slash.backup_path = Some("/var/cache/".into());
    let location = Location::of(&with_slash).unwrap();
    assert_eq!(
        location.path(),
        Path::new("/var/cache")
            .join(&folder)
            .join(default_file_name(&with_slash))
    );
    with_slash.backup_path = None;
    assert_eq!(Location::of(&with_slash), None);
}

#[test]
fn the_default_name_differs_with_the_token_and_never_shows_it() {
    let token = "*:production.4a1b6c0d9e8f7a6b5c4d3e2f1a0b9c8d";
    let name = default_file_name(&settings(token));
    let text = name.to_str().unwrap();
    assert!(
        text.starts_with("shop-") && text.ends_with(".json"),
        "{text}"
    );
    assert_eq!(text.len(), "shop-".len() + 16 + ".json".len(), "{text}");
    assert!(!text.contains("4a1b6c0d9e8f"), "{text}");
    assert!(!text.contains("production"), "{text}");
    assert_eq!(name, default_file_name(&settings(token)), "stable");
    let other_env = "*:development.4a1b6c0d9e8f7a6b5c4d3e2f1a0b9c8d";
    assert_ne!(name, default_file_name(&settings(other_env)));

    let mut project = settings(token);
    project.project = Some("billing".into());
    let mut prefix = settings(token);
    prefix.name_prefix = Some("billing".into());
    let mut url = settings(token);
    url.source = Source::Server {
        endpoint: Arc::new(Endpoint::parse("https://unleash.example.com/other/api").unwrap()),
        token: Secret(token.into()),
    };
    let mut app = settings(token);
    app.app_name = "my shop/../x".into();
    let names: HashSet<OsString> = [&project, &prefix, &url, &app]
        .iter()
        .map(|s| default_file_name(s))
        .chain([name])
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(default_file_name(&app)
        .to_str()
        .unwrap()
        .starts_with("my_shop_.._x-"));
}

#[test]
fn a_written_backup_is_0600_and_the_own_folder_0700_whatever_the_umask() {
    for mask in [0o000, 0o022, 0o277] {
        let scratch = Scratch::new();
        let [folder, own_file, file] = modes_written_under_umask(mask, &scratch);
        assert_eq!(folder, 0o700, "own folder, umask {mask:03o}");
        assert_eq!(own_file, 0o600, "file in the own folder, umask {mask:03o}");
        assert_eq!(file, 0o600, "chosen file, umask {mask:03o}");
        assert_eq!(read(&in_own_folder(&scratch), 16).unwrap().unwrap(), b"{}");
    }
}

/// Writes a backup in the scratch directory's own folder and one at
/// `<scratch>/flags.json` in a forked child whose umask is `mask` (the
/// umask belongs to the whole process: other tests create files
/// meanwhile); returns the modes of the folder and the two files, 0 for a
/// write that failed. The child reports over a pipe and leaves with `_exit`.
fn modes_written_under_umask(mask: libc::mode_t, scratch: &Scratch) -> [u32; 3] {
    let mut pipe = [-1; 2];
    // SAFETY: `pipe` has room for the two fds pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    let own = in_own_folder(scratch);
    let file = at_file(&scratch.join("flags.json"));
    // SAFETY: the child takes no lock another thread could have held at the
    // fork (glibc's fork makes malloc usable in the child; the file calls
    // take none) and never panics: it reports over the pipe and leaves with
    // _exit, running no destructor or atexit handler.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
        let mode = |path: PathBuf| {
            fs::symlink_metadata(path)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0)
        };
        let written = write(&own, b"{}").is_ok() && write(&file, b"{}").is_ok();
        let modes = if written {
            [
                mode(own_folder(scratch)),
                mode(own.path()),
                mode(file.path()),
            ]
        } else {
            [0; 3]
        };
        let mut report = [0u8; 12];
        for (chunk, mode) in report.chunks_mut(4).zip(modes) {
            chunk.copy_from_slice(&mode.to_le_bytes());
        }
        // SAFETY: writes the report from a live array, then ends the child.
        unsafe {
            libc::write(pipe[1], report.as_ptr().cast(), report.len());
            libc::_exit(0);
        }
    }
    assert!(pid > 0, "fork failed");
    // SAFETY: closes our copy of the write end; the child has its own.
    unsafe { libc::close(pipe[1]) };
    let mut poll = libc::pollfd {
        fd: pipe[0],
        events: libc::POLLIN,
        revents: 0,
    };
    let mut report = [0u8; 12];
    // SAFETY: `poll` and `report` are live and sized as passed.
    let got = unsafe {
        if libc::poll(&mut poll, 1, 10_000) == 1 {
            libc::read(pipe[0], report.as_mut_ptr().cast(), report.len())
        } else {
            libc::kill(pid, libc::SIGKILL);
            -1
        }
    };
    let mut status = 0;
    // SAFETY: reaps our own child (it has exited or been killed) and closes
    // our read end.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::close(pipe[0]);
    }
    assert_eq!(got, 12, "the child reported within 10 s");
    let mode = |i: usize| u32::from_le_bytes(report[i * 4..i * 4 + 4].try_into().unwrap());
    [mode(0), mode(1), mode(2)]
}

#[test]
fn temporary_names_are_random() {
    let name = OsStr::new("shop-0123456789abcdef.json");
    let names: HashSet<OsString> = (0..2000).map(|_| random_temp_name(name)).collect();
    assert_eq!(names.len(), 2000);
    for temp in &names {
        let text = temp.to_str().unwrap();
        let random = text
            .strip_prefix(".shop-0123456789abcdef.json.")
            .and_then(|t| t.strip_suffix(".tmp"))
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(random.len(), 32, "{text}");
        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
    }
    let long = OsString::from("x".repeat(255));
    assert!(random_temp_name(&long).len() <= 255);
}

#[test]
fn a_write_never_follows_nor_overwrites_what_is_at_a_temporary_name() {
    let scratch = Scratch::new();
    let victim = scratch.join("victim");
    fs::write(&victim, "victim").unwrap();
    fs::write(scratch.join(".taken"), "planted").unwrap();
    symlink(&victim, scratch.join(".link")).unwrap();
    let nowhere = scratch.join("created-through-a-link");
    symlink(&nowhere, scratch.join(".dangling")).unwrap();
    let mut names: VecDeque<OsString> = [".taken", ".link", ".dangling", ".fresh"]
        .into_iter()
        .map(OsString::from)
        .collect();
    let location = at_file(&scratch.join("flags.json"));
    write_with(&location, b"payload", &mut |_| names.pop_front().unwrap()).unwrap();

    assert_eq!(fs::read(location.path()).unwrap(), b"payload");
    assert_eq!(fs::read(scratch.join(".taken")).unwrap(), b"planted");
    assert_eq!(fs::read(&victim).unwrap(), b"victim");
    assert_eq!(fs::read_link(scratch.join(".link")).unwrap(), victim);
    assert!(!nowhere.exists(), "a dangling link's target was created");
    assert!(!scratch.join(".fresh").exists(), "renamed into place");
    assert!(names.is_empty());

    // Every name taken: the write gives up and touches none of them.
    let taken = || OsString::from(".taken");
    let error = write_with(&location, b"other", &mut |_| taken()).unwrap_err();
    assert!(error.to_string().contains("temporary names"), "{error}");
    assert_eq!(fs::read(location.path()).unwrap(), b"payload");
    assert_eq!(fs::read(scratch.join(".taken")).unwrap(), b"planted");
}

#[test]
fn leftovers_are_removed_when_a_write_fails() {
    let scratch = Scratch::new();
    // The backup's name is taken by a directory: the rename fails.
    let path = scratch.join("flags.json");
    fs::create_dir(&path).unwrap();
    fs::write(path.join("keep"), "x").unwrap();
    let error = write(&at_file(&path), b"payload").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot replace {}", path.display())),
        "{error}"
    );
    assert!(temp_leftovers(&scratch.0).is_empty());
}

#[test]
fn workers_writing_at_once_leave_a_whole_backup_every_time() {
    let scratch = Scratch::new();
    let location = Arc::new(at_file(&scratch.join("flags.json")));
    write(&location, &[b'a'; 200_000]).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (b'b'..=b'e')
        .map(|byte| {
            let (location, done) = (Arc::clone(&location), Arc::clone(&done));
            std::thread::spawn(move || {
                for round in 0..40 {
                    let payload = vec![byte; 100_000 + round * 2_000];
                    write(&location, &payload).unwrap();
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let mut reads = 0;
    while done.load(Ordering::Relaxed) < writers.len() || reads == 0 {
        let bytes = read(&location, 1 << 20).unwrap().unwrap();
        let first = bytes[0];
        assert!(
            bytes.iter().all(|&b| b == first),
            "a mixed backup after {reads} reads"
        );
        let whole = bytes.len() == 200_000
            || (bytes.len() >= 100_000 && (bytes.len() - 100_000) % 2_000 == 0);
        assert!(whole, "a backup of {} bytes", bytes.len());
        reads += 1;
    }
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(temp_leftovers(&scratch.0).is_empty());
}

#[test]
fn reading_refuses_a_file_writable_by_group_or_others() {
    let scratch = Scratch::new();
    let path = scratch.join("flags.json");
    let location = at_file(&path);
    write(&location, b"{}").unwrap();
    for mode in [0o620, 0o602, 0o622, 0o666] {
        chmod(&path, mode);
        refusal(
            read(&location, 1024),
            &path,
            &format!("writable by group or others (mode {mode:04o})"),
        );
    }
    for mode in [0o600, 0o640, 0o644, 0o400] {
        chmod(&path, mode);
        assert!(read(&location, 1024).unwrap().is_some(), "mode {mode:04o}");
    }
}

#[test]
fn reading_refuses_a_file_of_another_user() {
    let facts = |uid| Facts {
        mode: libc::S_IFREG | 0o600,
        uid,
    };
    assert_eq!(facts(1000).file_problem(1000), None);
    let problem = facts(1001).file_problem(1000).unwrap();
    assert!(problem.contains("belongs to uid 1001, not to this process's user (uid 1000)"));

    let scratch = Scratch::new();
    let path = if is_root() {
        let path = scratch.join("flags.json");
        write(&at_file(&path), b"{}").unwrap();
        give_to_other_user(&path);
        path
    } else {
        // A file root owns, in a directory only root can write.
        PathBuf::from("/etc/passwd")
    };
    let owner = if is_root() { OTHER_UID } else { 0 };
    refusal(
        read(&at_file(&path), 1 << 20),
        &path,
        &format!("belongs to uid {owner}, not to this process's user"),
    );
}

#[test]
fn reading_refuses_a_symbolic_link_even_to_a_good_backup() {
    let scratch = Scratch::new();
    let real = scratch.join("real.json");
    write(&at_file(&real), b"{}").unwrap();
    let link = scratch.join("flags.json");
    symlink(&real, &link).unwrap();
    refusal(read(&at_file(&link), 1024), &link, "symbolic link");
    let dangling = scratch.join("dangling.json");
    symlink(scratch.join("nothing"), &dangling).unwrap();
    refusal(read(&at_file(&dangling), 1024), &dangling, "symbolic link");
    assert!(read(&at_file(&real), 1024).unwrap().is_some());

    // Writing replaces the link with the backup; its target is untouched.
    write(&at_file(&link), b"new").unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_file());
    assert_eq!(fs::read(&real).unwrap(), b"{}");
}

#[test]
fn reading_refuses_what_is_not_a_regular_file() {
    let scratch = Scratch::new();
    let fifo = scratch.join("fifo.json");
    nix::unistd::mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    // Would block forever if the FIFO were opened for a plain read.
    refusal(read(&at_file(&fifo), 1024), &fifo, "not a regular file");
    let dir = scratch.join("dir.json");
    fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    refusal(read(&at_file(&dir), 1024), &dir, "not a regular file");
}

#[test]
fn reading_refuses_a_file_larger_than_the_limit() {
    let scratch = Scratch::new();
    let location = at_file(&scratch.join("flags.json"));
    write(&location, &[b' '; 101]).unwrap();
    assert_eq!(read(&location, 101).unwrap().unwrap().len(), 101);
    let error = read(&location, 100).unwrap_err().to_string();
    assert!(
        error.contains("larger than max_payload_bytes (100 bytes)"),
        "{error}"
    );
}

#[test]
fn the_own_folder_is_refused_when_others_can_enter_it() {
    let scratch = Scratch::new();
    let location = in_own_folder(&scratch);
    write(&location, b"{}").unwrap();
    let folder = own_folder(&scratch);
    for mode in [0o750, 0o705, 0o710, 0o701, 0o770, 0o755] {
        chmod(&folder, mode);
        let why = format!("open to group or others (mode {mode:04o})");
        refusal(read(&location, 1024), &folder, &why);
        refusal(write(&location, b"[]"), &folder, &why);
    }
    chmod(&folder, 0o700);
    assert_eq!(read(&location, 1024).unwrap().as_deref(), Some(&b"{}"[..]));
}

#[test]
fn the_own_folder_is_refused_when_another_user_owns_it() {
    let facts = |uid| Facts {
        mode: libc::S_IFDIR | 0o700,
        uid,
    };
    assert_eq!(facts(1000).own_folder_problem(1000), None);
    let problem = facts(0).own_folder_problem(1000).unwrap();
    assert!(problem.contains("belongs to uid 0, not to this process's user (uid 1000)"));
    if !is_root() {
        return; // Only root can give the folder to another user.
    }
    let scratch = Scratch::new();
    let location = in_own_folder(&scratch);
    write(&location, b"{}").unwrap();
    let folder = own_folder(&scratch);
    give_to_other_user(&folder);
    let why = format!("belongs to uid {OTHER_UID}, not to this process's user (uid 0)");
    refusal(read(&location, 1024), &folder, &why);
    refusal(write(&location, b"[]"), &folder, &why);
}

#[test]
fn the_own_folder_is_refused_when_it_is_a_link_or_a_file() {
    let scratch = Scratch::new();
    let elsewhere = scratch.join("elsewhere");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&elsewhere)
        .unwrap();
    let folder = own_folder(&scratch);
    symlink(&elsewhere, &folder).unwrap();
    let location = in_own_folder(&scratch);
    refusal(write(&location, b"{}"), &folder, "symbolic link");
    refusal(read(&location, 1024), &folder, "symbolic link");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

    fs::remove_file(&folder).unwrap();
    fs::write(&folder, "").unwrap();
    refusal(write(&location, b"{}"), &folder, "not a directory");
    refusal(read(&location, 1024), &folder, "not a directory");
}

#[test]
fn the_own_folder_and_its_base_are_made_when_first_written() {
    let scratch = Scratch::new();
    let base = scratch.join("cache/deeper/");
    let location = Location::new(&base, || "shop-00.json".into());
    assert_eq!(read(&location, 1024).unwrap(), None);
    assert!(!scratch.join("cache").exists(), "reading creates nothing");
    write(&location, b"{}").unwrap();
    assert_eq!(mode_of(&scratch.join("cache/deeper")), 0o700);
    let folder = scratch.join(&format!("cache/deeper/forkflag-{}", euid()));
    assert_eq!(mode_of(&folder), 0o700);
    assert_eq!(read(&location, 1024).unwrap().as_deref(), Some(&b"{}"[..]));
}

#[test]
fn a_chosen_directory_others_can_write_is_refused() {
    let scratch = Scratch::new();
    let path = scratch.join("flags.json");
    let location = at_file(&path);
    write(&location, b"{}").unwrap();
    for mode in [0o770, 0o730, 0o703, 0o777, 0o1770] {
        chmod(&scratch.0, mode);
        let why = format!("writable by group or others (mode {mode:04o})");
        refusal(read(&location, 1024), &scratch.0, &why);
        refusal(write(&location, b"[]"), &scratch.0, &why);
    }
    // A shared temporary directory: no chmod advice, another place instead.
    chmod(&scratch.0, 0o1777);
    let why = "shared with other users (mode 1777): any of them can take the backup's name first; \
               set backup_path: to a directory ending in \"/\"";
    refusal(read(&location, 1024), &scratch.0, why);
    refusal(write(&location, b"[]"), &scratch.0, why);
    // Readable by others is fine: the file itself is 0600.
    chmod(&scratch.0, 0o755);
    assert_eq!(read(&location, 1024).unwrap().as_deref(), Some(&b"{}"[..]));
}

#[test]
fn a_chosen_directory_of_another_user_is_refused() {
    let facts = |uid| Facts {
        mode: libc::S_IFDIR | 0o755,
        uid,
    };
    assert_eq!(facts(1000).chosen_directory_problem(1000), None);
    assert_eq!(facts(0).chosen_directory_problem(1000), None, "root's");
    let problem = facts(1001).chosen_directory_problem(1000).unwrap();
    assert!(
        problem.contains("belongs to uid 1001, neither this process's user (uid 1000) nor root")
    );
    if !is_root() {
        return; // Only root can give the directory to another user.
    }
    let scratch = Scratch::new();
    let dir = scratch.join("theirs");
    fs::DirBuilder::new().mode(0o755).create(&dir).unwrap();
    let location = at_file(&dir.join("flags.json"));
    write(&location, b"{}").unwrap();
    give_to_other_user(&dir);
    let why = format!("belongs to uid {OTHER_UID}, neither");
    refusal(read(&location, 1024), &dir, &why);
    refusal(write(&location, b"[]"), &dir, &why);
}
