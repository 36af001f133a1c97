//! Fork detection.
//!
//! A process-wide fork generation counts the forks between the process that
//! loaded forkflag and this one. A `pthread_atfork` child handler bumps it in
//! every forked child, whoever called fork (Ruby, a C extension,
//! `Process.daemon`), so the hot path notices a fork with one atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// The current fork generation of this process.
#[inline]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

extern "C" fn in_child() {
    // Async-signal-safe: one atomic add.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Installs the fork handlers (once per process; later calls do nothing).
pub fn install_handlers() {
    INSTALL.call_once(|| {
        // SAFETY: the handler is a plain `extern "C"` function that performs
        // one atomic add, which is async-signal-safe and needs no locks.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        debug_assert_eq!(rc, 0, "pthread_atfork failed");
    });
}
