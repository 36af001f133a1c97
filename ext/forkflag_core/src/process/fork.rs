//! Fork detection: the fork generation and the fork handlers.
//!
//! A process-wide fork generation counts the forks between the process that
//! loaded forkflag and this one. A `pthread_atfork` child handler bumps it in
//! every forked child, whoever called fork (Ruby, a C extension,
//! `Process.daemon`), so the hot path notices a fork with one atomic load.
//! The same handler closes the sockets the child inherited from the
//! parent's threads (close(2) only, see [`super::inherited`]), so no Ruby
//! code runs for the clients at a fork: the rest of what the parent's
//! threads owned is forgotten on each client's first use in the child. The
//! prepare handler closes the fork gate ([`super::gate`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use super::{gate, host, inherited};

/// The fork generation shifted left by one, with [`ATTENTION`] in the low
/// bit: what an evaluation compares with the value it saw last, so that one
/// atomic load notices both a fork and log messages waiting for a Ruby
/// thread to take them.
static EPOCH: AtomicU64 = AtomicU64::new(0);

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

// SAFETY (the three handlers): called by the C library around fork(2) on
// the forking thread; they take no lock, allocate nothing and cannot
// unwind, and `in_child` runs only async-signal-safe operations (atomics
// and close(2)), as a forked child of a threaded process requires.
extern "C" fn prepare() {
    gate::close();
}

extern "C" fn in_parent() {
    gate::reopen();
}

extern "C" fn in_child() {
    // Async-signal-safe: atomics and close(2) only. The child has one
    // thread; no resolution is in progress in it.
    gate::reset_in_child();
    // The only thread of the child: a load and a store are enough. The
    // child's log queue starts empty: no attention inherited.
    let generation = generation_of(EPOCH.load(Ordering::SeqCst)) + 1;
    EPOCH.store(generation << 1, Ordering::SeqCst);
    // The parent's connections, copied by the fork: closed at once, so a
    // child that never evaluates holds none of them open. The parent's
    // threads do not exist here; the rest of what they owned is forgotten
    // on the child's first use of each client.
    // SAFETY: this is the forked child, right after the fork.
    unsafe { inherited::close_every_inherited() };
}

/// Runs the one-time initialisers that background threads would otherwise
/// run lazily, so a fork can never interrupt one half-way (the child would
/// wait forever for it): the host name for applicationHostname, and the
/// TLS library's CPU feature detection.
pub fn warm_up() {
    static WARM: Once = Once::new();
    WARM.call_once(|| {
        let _ = host::host_name();
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
