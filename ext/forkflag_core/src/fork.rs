//! Fork detection and the fork gate.
//!
//! A process-wide fork generation counts the forks between the process that
//! loaded forkflag and this one. A `pthread_atfork` child handler bumps it in
//! every forked child, whoever called fork (Ruby, a C extension,
//! `Process.daemon`), so the hot path notices a fork with one atomic load.
//! The same handler closes the sockets the child inherited from the
//! parent's threads (close(2) only), so no Ruby code runs for the clients at
//! a fork: the rest of what the parent's threads owned is forgotten on each
//! client's first use in the child.
//!
//! The fork gate keeps a fork from happening while a background thread is
//! inside the C library's resolver: glibc's `getaddrinfo` takes process-wide
//! locks, and a child forked while another thread holds one can never resolve
//! a name again. Background threads resolve inside [`gated`]; the prepare
//! handler closes the gate and waits (bounded) for resolutions in progress.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The fork generation shifted left by one, with [`ATTENTION`] in the low
/// bit: what an evaluation compares with the value it saw last, so that one
/// atomic load notices both a fork and log messages waiting for a Ruby
/// thread to take them.
static EPOCH: AtomicU64 = AtomicU64::new(0);
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

/// The current fork generation of this process.
#[inline]
pub fn generation() -> u64 {
    generation_of(epoch())
}

/// The bit of [`epoch`] set while log messages wait and no Ruby thread is
/// waiting to take them.
pub const ATTENTION: u64 = 1;

/// The fork generation and the attention bit in one word (see [`EPOCH`]):
/// an evaluation whose last seen value differs has something to do beyond
/// answering (start threads in a new process, or a log thread).
#[inline]
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// The generation part of an [`epoch`] value.
#[inline]
pub fn generation_of(epoch: u64) -> u64 {
    epoch >> 1
}

/// Asks the next evaluation to look at the log queue.
pub fn request_attention() {
    EPOCH.fetch_or(ATTENTION, Ordering::Relaxed);
}

/// Clears the attention bit (its request is being served).
pub fn clear_attention() {
    EPOCH.fetch_and(!ATTENTION, Ordering::Relaxed);
}

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

// SAFETY (the three handlers): called by the C library around fork(2) on
// the forking thread; they take no lock, allocate nothing and cannot
// unwind, and `in_child` runs only async-signal-safe operations (atomics
// and close(2)), as a forked child of a threaded process requires.
extern "C" fn prepare() {
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

extern "C" fn in_parent() {
    FORKING.fetch_sub(1, Ordering::SeqCst);
}

extern "C" fn in_child() {
    // Async-signal-safe: atomics and close(2) only. The child has one
    // thread; no resolution is in progress in it.
    RESOLVING.store(0, Ordering::SeqCst);
    FORKING.store(0, Ordering::SeqCst);
    // The only thread of the child: a load and a store are enough. The
    // child's log queue starts empty: no attention inherited.
    let generation = generation_of(EPOCH.load(Ordering::SeqCst)) + 1;
    EPOCH.store(generation << 1, Ordering::SeqCst);
    // The parent's connections, copied by the fork: closed at once, so a
    // child that never evaluates holds none of them open. The parent's
    // threads do not exist here; the rest of what they owned is forgotten
    // on the child's first use of each client.
    // SAFETY: this is the forked child, right after the fork.
    unsafe { crate::http::close_every_inherited() };
}

/// Runs the one-time initialisers that background threads would otherwise
/// run lazily, so a fork can never interrupt one half-way (the child would
/// wait forever for it): the host name for applicationHostname, and the
/// TLS library's CPU feature detection.
pub fn warm_up() {
    static WARM: Once = Once::new();
    WARM.call_once(|| {
        let _ = crate::snapshot::host_name();
        let _ = ring::digest::digest(&ring::digest::SHA256, b"forkflag");
        bind_thread_start();
    });
}

/// Makes a forked child's first thread start as cheap as the parent's.
///
/// glibc keeps the stacks of ended threads for reuse, and a forked child
/// inherits as ended every thread its parent had. So a child's first thread
/// start reuses a stack, and glibc's reuse path calls into the dynamic
/// loader through a lazily bound symbol that a process which has only ever
/// started threads on new stacks has not bound. Binding it in the child
/// walks the symbol tables of every library the process loaded: about ten
/// page faults, each a copy-on-write or a mapping in a fresh child (some
/// 20-30 us on a virtual machine), on the child's first evaluation. Two
/// short threads here, the second on the first one's stack, bind it in the
/// parent once, for every child it will fork.
fn bind_thread_start() {
    for _ in 0..2 {
        let started = std::thread::Builder::new()
            .name("forkflag-warm-up".into())
            .spawn(|| ());
        let Ok(thread) = started else { return };
        let _ = thread.join();
    }
}

/// Installs the fork handlers (once per process; later calls answer as the
/// first did). Without them forkflag cannot tell a forked child from its
/// parent: an error here must stop the library from loading.
pub fn install_handlers() -> std::io::Result<()> {
    static INSTALLED: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    let rc = *INSTALLED.get_or_init(|| {
        // SAFETY: the handlers are plain `extern "C"` functions that touch
        // only atomics and close(2) (and, in `prepare`, sleep), needing no
        // locks.
        unsafe { libc::pthread_atfork(Some(prepare), Some(in_parent), Some(in_child)) }
    });
    match rc {
        0 => Ok(()),
        code => Err(std::io::Error::from_raw_os_error(code)),
    }
}

/// A value owned by one process: a forked child gets a fresh one on first
/// use instead of the parent's, which a vanished thread may have been using
/// (holding its lock, say) at the moment of the fork. The parent's value is
/// leaked in the child, never dropped.
pub struct ProcessLocal<T> {
    slot: arc_swap::ArcSwapOption<Owned<T>>,
    init: fn() -> T,
}

struct Owned<T> {
    generation: u64,
    value: T,
}

impl<T> std::ops::Deref for Owned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A handle on a [`ProcessLocal`]'s value for this process.
pub struct Local<T>(std::sync::Arc<Owned<T>>);

impl<T> std::ops::Deref for Local<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T> ProcessLocal<T> {
    /// A process-local value built by `init` on first use in each process.
    pub const fn new(init: fn() -> T) -> ProcessLocal<T> {
        ProcessLocal {
            slot: arc_swap::ArcSwapOption::const_empty(),
            init,
        }
    }

    /// This process's value.
    pub fn get(&self) -> Local<T> {
        let now = generation();
        loop {
            let current = self.slot.load_full();
            if let Some(owned) = &current {
                if owned.generation == now {
                    return Local(std::sync::Arc::clone(owned));
                }
            }
            let fresh = std::sync::Arc::new(Owned {
                generation: now,
                value: (self.init)(),
            });
            let previous = self
                .slot
                .compare_and_swap(&current, Some(std::sync::Arc::clone(&fresh)));
            let replaced = match (&*previous, &current) {
                (Some(p), Some(c)) => std::sync::Arc::ptr_eq(p, c),
                (None, None) => true,
                _ => false,
            };
            if replaced {
                // The inherited value may be mid-use by a thread that no
                // longer exists: never run its destructor.
                std::mem::forget(current);
                return Local(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn the_gate_stays_closed_until_every_fork_in_progress_is_done() {
        // Two forks at once; the first one finishes.
        prepare();
        prepare();
        in_parent();
        let resolved = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&resolved);
        let resolver = std::thread::spawn(move || gated(|| flag.store(true, Ordering::SeqCst)));
        std::thread::sleep(Duration::from_millis(50));
        let during_fork = resolved.load(Ordering::SeqCst);
        in_parent();
        resolver.join().unwrap();
        assert!(
            !during_fork,
            "a resolution ran while a fork was in progress"
        );
        assert!(resolved.load(Ordering::SeqCst));
    }
}
