//! Starting the background thread: a named standard thread with the
//! standard library's default stack (2 MiB), so a forked child reuses a
//! stack of its parent's threads from the C library's cache (see
//! `bind_thread_start` in the fork module). Its handle joins it; dropping the
//! handle detaches it. A panic in the thread ends the thread, not the
//! process.

use std::io;
use std::thread::{Builder, JoinHandle};
use std::time::Duration;

use super::worker::Worker;

/// The thread's name (Linux keeps 15 bytes; `ForkSafe.native_threads` and
/// the specs look for it).
const NAME: &str = "forkflag-worker";

/// Starts the thread that runs `worker`.
pub(crate) fn spawn(worker: Worker) -> io::Result<JoinHandle<()>> {
    Builder::new().name(NAME.into()).spawn(move || worker.run())
}

/// Starts a thread that sleeps `hold` and ends, the way [`spawn`] starts a
/// client's (same stack, a name as long): the reference `bench/fork.rb`
/// measures a client's start against. Answers whether it started; the
/// thread is detached.
pub fn spawn_sleeper(hold: Duration) -> bool {
    Builder::new()
        .name("forkflag-bench".into())
        .spawn(move || std::thread::sleep(hold))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeper_starts_and_its_handle_detaches() {
        assert!(spawn_sleeper(Duration::ZERO));
        assert!(spawn_sleeper(Duration::from_millis(5)));
    }
}
