//! Tests that really fork: run a closure in a forked child and read back
//! what it reports. Compiled for tests only.

use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, read, write, ForkResult};

/// Runs `child` in a forked child and returns the `N` bytes it reported, or
/// `None` when it did not report them within `limit` (it is killed then),
/// panicked, or did not exit normally.
///
/// The child reports over a pipe and leaves with `_exit`, running no
/// destructor or atexit handler. It runs inside the multi-threaded test
/// harness, so `child` must take no lock another thread may have held at
/// the fork (it may allocate: the C library makes malloc usable in a forked
/// child).
pub(crate) fn in_forked_child<const N: usize>(
    limit: Duration,
    child: impl FnOnce() -> [u8; N],
) -> Option<[u8; N]> {
    let (from_child, to_parent) = pipe().expect("pipe(2) for a forked child's report");
    // SAFETY: the child runs `child` (see above), write(2) and _exit(2).
    match unsafe { fork() }.expect("fork(2) in a test") {
        ForkResult::Child => {
            let code = match catch_unwind(AssertUnwindSafe(child)) {
                Ok(report) if write(to_parent.as_fd(), &report) == Ok(N) => 0,
                _ => 1,
            };
            // SAFETY: ends the forked child at once, without running the
            // parent's destructors or atexit handlers in it.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child: pid } => {
            drop(to_parent);
            let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
            let mut ready = [PollFd::new(from_child.as_fd(), PollFlags::POLLIN)];
            let mut report = [0u8; N];
            let got = match poll(&mut ready, timeout) {
                Ok(1) => read(from_child.as_fd(), &mut report).ok(),
                _ => {
                    let _ = kill(pid, Signal::SIGKILL);
                    None
                }
            };
            let status = waitpid(pid, None);
            (got == Some(N) && matches!(status, Ok(WaitStatus::Exited(_, 0)))).then_some(report)
        }
    }
}
