//! The fork gate: no fork while a background thread is inside the C
//! library's resolver.
//!
//! glibc's `getaddrinfo` takes process-wide locks, and a child forked while
//! another thread holds one can never resolve a name again. Background
//! threads resolve inside [`gated`]; the fork handlers' prepare step
//! ([`close`]) closes the gate and waits (bounded) for resolutions in
//! progress.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Forks in progress in this process. A count, not a flag: two threads may
/// fork at once (Ruby's own fork and a C extension's, say), and the first
/// to finish must not reopen the gate while the other is still forking.
static FORKING: AtomicUsize = AtomicUsize::new(0);
static RESOLVING: AtomicUsize = AtomicUsize::new(0);
/// Forks that went ahead while a resolution was still running (the wait
/// timed out). Exposed for diagnostics.
static GATE_TIMEOUTS: AtomicU64 = AtomicU64::new(0);

/// Longest time a fork waits for a resolution in progress.
pub const GATE_WAIT: Duration = Duration::from_secs(2);

/// How many forks did not wait for a resolution to finish (the bounded wait
/// ran out).
pub fn gate_timeouts() -> u64 {
    GATE_TIMEOUTS.load(Ordering::Relaxed)
}

/// Runs `f` (a name resolution) so that no fork happens while it runs.
pub fn gated<R>(f: impl FnOnce() -> R) -> R {
    loop {
        while FORKING.load(Ordering::SeqCst) != 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        RESOLVING.fetch_add(1, Ordering::SeqCst);
        if FORKING.load(Ordering::SeqCst) == 0 {
            break;
        }
        // A fork started between the check and the increment: step back.
        RESOLVING.fetch_sub(1, Ordering::SeqCst);
    }
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            RESOLVING.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _leave = Leave;
    f()
}

/// Before a fork (the prepare handler): closes the gate and waits, at most
/// [`GATE_WAIT`], for the resolutions in progress. Takes no lock and
/// allocates nothing.
pub(super) fn close() {
    FORKING.fetch_add(1, Ordering::SeqCst);
    if RESOLVING.load(Ordering::SeqCst) == 0 {
        return;
    }
    let start = Instant::now();
    while RESOLVING.load(Ordering::SeqCst) != 0 {
        if start.elapsed() >= GATE_WAIT {
            GATE_TIMEOUTS.fetch_add(1, Ordering::Relaxed);
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// After a fork, in the parent: this fork no longer holds the gate closed.
pub(super) fn reopen() {
    FORKING.fetch_sub(1, Ordering::SeqCst);
}

/// After a fork, in the child (async-signal-safe: atomics only): the child
/// has one thread, so no resolution or fork is in progress in it.
pub(super) fn reset_in_child() {
    RESOLVING.store(0, Ordering::SeqCst);
    FORKING.store(0, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn the_gate_stays_closed_until_every_fork_in_progress_is_done() {
        // Two forks at once; the first one finishes.
        close();
        close();
        reopen();
        let resolved = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&resolved);
        let resolver = std::thread::spawn(move || gated(|| flag.store(true, Ordering::SeqCst)));
        std::thread::sleep(Duration::from_millis(50));
        let during_fork = resolved.load(Ordering::SeqCst);
        reopen();
        resolver.join().unwrap();
        assert!(
            !during_fork,
            "a resolution ran while a fork was in progress"
        );
        assert!(resolved.load(Ordering::SeqCst));
    }
}
