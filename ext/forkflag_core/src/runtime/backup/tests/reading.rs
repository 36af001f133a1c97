//! Reading a backup, and the folders it may live in: what is refused and
//! why.

use super::*;

/// A backup file written in the scratch directory: its path and location.
fn a_written_backup(scratch: &Scratch) -> (PathBuf, Location) {
    let path = scratch.join("flags.json");
    let location = at_file(&path);
    write(&location, b"{}").unwrap();
    (path, location)
}

/// Asserts that `problem`, a check of a path of `mode` (type and
/// permissions) for the user of uid 1000, finds none when that user owns
/// the path, and finds one that says `why` when `other` owns it.
#[track_caller]
fn assert_owner_checked(
    problem: fn(Facts, u32) -> Option<String>,
    mode: libc::mode_t,
    other: u32,
    why: &str,
) {
    assert_eq!(problem(Facts { mode, uid: 1000 }, 1000), None);
    let found = problem(Facts { mode, uid: other }, 1000).unwrap();
    assert!(found.contains(why), "{found}");
}

/// Asserts that reading and writing `location` are both refused because
/// of `path`, saying `why`.
#[track_caller]
fn both_refused(location: &Location, path: &Path, why: &str) {
    refusal(read(location, 1024), path, why);
    refusal(write(location, b"[]"), path, why);
}

#[test]
fn reading_refuses_a_file_writable_by_group_or_others() {
    let scratch = Scratch::new();
    let (path, location) = a_written_backup(&scratch);
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
    assert_owner_checked(
        Facts::file_problem,
        libc::S_IFREG | 0o600,
        1001,
        "belongs to uid 1001, not to this process's user (uid 1000)",
    );

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
        both_refused(&location, &folder, &why);
    }
    chmod(&folder, 0o700);
    assert_eq!(read(&location, 1024).unwrap().as_deref(), Some(&b"{}"[..]));
}

#[test]
fn the_own_folder_is_refused_when_another_user_owns_it() {
    assert_owner_checked(
        Facts::own_folder_problem,
        libc::S_IFDIR | 0o700,
        0,
        "belongs to uid 0, not to this process's user (uid 1000)",
    );
    if !is_root() {
        return; // Only root can give the folder to another user.
    }
    let scratch = Scratch::new();
    let location = in_own_folder(&scratch);
    write(&location, b"{}").unwrap();
    let folder = own_folder(&scratch);
    give_to_other_user(&folder);
    let why = format!("belongs to uid {OTHER_UID}, not to this process's user (uid 0)");
    both_refused(&location, &folder, &why);
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
    both_refused(&location, &folder, "symbolic link");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

    fs::remove_file(&folder).unwrap();
    fs::write(&folder, "").unwrap();
    both_refused(&location, &folder, "not a directory");
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
    let (_, location) = a_written_backup(&scratch);
    for mode in [0o770, 0o730, 0o703, 0o777, 0o1770] {
        chmod(&scratch.0, mode);
        let why = format!("writable by group or others (mode {mode:04o})");
        both_refused(&location, &scratch.0, &why);
    }
    // A shared temporary directory: no chmod advice, another place instead.
    chmod(&scratch.0, 0o1777);
    let why = "shared with other users (mode 1777): any of them can take the backup's name first; \
               set backup_path: to a directory ending in \"/\"";
    both_refused(&location, &scratch.0, why);
    // Readable by others is fine: the file itself is 0600.
    chmod(&scratch.0, 0o755);
    assert_eq!(read(&location, 1024).unwrap().as_deref(), Some(&b"{}"[..]));
}

#[test]
fn a_chosen_directory_of_another_user_is_refused() {
    let mode = libc::S_IFDIR | 0o755;
    assert_owner_checked(
        Facts::chosen_directory_problem,
        mode,
        1001,
        "belongs to uid 1001, neither this process's user (uid 1000) nor root",
    );
    let roots = Facts { mode, uid: 0 };
    assert_eq!(roots.chosen_directory_problem(1000), None, "root's");
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
    both_refused(&location, &dir, &why);
}
