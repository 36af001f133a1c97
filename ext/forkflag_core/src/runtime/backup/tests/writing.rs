//! Writing a backup: where it goes, its modes, its temporary names, and
//! what concurrent writers leave.

use super::*;

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
