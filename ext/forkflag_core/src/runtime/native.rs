//! Starting the background thread without touching the heap.
//!
//! A forked child starts its thread in its first evaluation, and there every
//! heap page written costs a copy-on-write fault (~2 µs on the machines of
//! docs/PERFORMANCE.md). The standard library's `thread::Builder::spawn`
//! allocates as it starts a thread (the thread's handle, its result, its
//! boxed start, the name with its nul) and frees what it is given to run in
//! the starting thread; each writes malloc's chunks and free lists in pages
//! the parent wrote (about 10 faults per child, measured). Here the
//! starting thread calls `pthread_create` with a pointer to a [`Prepared`]
//! made ahead of time, on the parent's thread; the new thread takes what it
//! runs out of it, names itself and frees the allocation, all on its own
//! time. The thread is joinable ([`NativeThread::join`]) and detached when
//! its handle is dropped, as a standard `JoinHandle` is.
//!
//! Its stack is the standard library's default size (2 MiB), so a child
//! reuses a stack of its parent's threads from the C library's cache, as
//! with a thread the standard library starts. A panic in the thread is caught at its top (after the panic hook
//! printed it): unwinding out of `pthread_create`'s start routine would
//! abort the process.

use std::ffi::{c_void, CStr};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use super::{worker::Worker, Prepared};

/// The stack size the standard library gives its threads by default.
const STACK_BYTES: usize = 2 * 1024 * 1024;

/// The thread's name (Linux keeps 15 bytes; `ForkSafe.native_threads` looks
/// for it).
pub(crate) const NAME: &CStr = c"forkflag-worker";

/// A thread started by [`spawn`], joinable once.
#[derive(Debug)]
pub(crate) struct NativeThread(libc::pthread_t);

impl NativeThread {
    /// Waits for the thread to end.
    pub(crate) fn join(self) {
        let id = self.0;
        std::mem::forget(self);
        // SAFETY: `id` is a joinable thread of this process (not detached:
        // the handle owned it, and it is forgotten above, never joined twice).
        unsafe { libc::pthread_join(id, std::ptr::null_mut()) };
    }
}

impl Drop for NativeThread {
    fn drop(&mut self) {
        // SAFETY: the handle owns the joinable thread; it is detached once.
        // (A handle inherited by a forked child is forgotten, never dropped.)
        unsafe { libc::pthread_detach(self.0) };
    }
}

/// What the new thread receives: the worker part of a [`Prepared`] whose
/// other fields the starting thread moved out (see [`spawn`]).
struct Launch(*mut Prepared);

impl Launch {
    /// Takes the worker out and frees the allocation without dropping the
    /// fields the starting thread moved out.
    ///
    /// # Safety
    /// The pointer came from `Box::into_raw` of a `Prepared` whose
    /// `commands` and `shared` were moved out with `ptr::read`, and whose
    /// `worker` has not been; called once.
    unsafe fn into_worker(self) -> Worker {
        let worker = std::ptr::read(&(*self.0).worker);
        let layout = std::alloc::Layout::new::<Prepared>();
        std::alloc::dealloc(self.0.cast(), layout);
        worker
    }
}

/// Starts the thread that runs `prepared`'s worker; returns the handle, the
/// command channel and the shared state, moved out of `prepared` without
/// a write to it (the new thread frees it). Nothing here allocates or frees.
pub(crate) fn spawn(
    prepared: Box<Prepared>,
) -> Result<(NativeThread, super::Started), (io::Error, super::Started)> {
    let raw = Box::into_raw(prepared);
    // SAFETY: `raw` is a live, owned Prepared; `commands` and `shared` are
    // read out once and never dropped through `raw` (Launch::into_worker
    // frees the allocation without dropping them).
    let started = unsafe {
        super::Started {
            commands: std::ptr::read(&(*raw).commands),
            shared: std::ptr::read(&(*raw).shared),
        }
    };
    let launch = Launch(raw);
    match start(run_worker, launch.0.cast()) {
        Ok(thread) => Ok((thread, started)),
        Err(e) => {
            // SAFETY: the thread did not start, so `launch` is still ours.
            drop(unsafe { launch.into_worker() });
            Err((e, started))
        }
    }
}

/// The new thread's start routine for [`spawn`].
// SAFETY: a pthread start routine: it takes ownership of the `Launch` the
// starting thread gave up and catches every panic, so nothing unwinds out
// of it into C.
extern "C" fn run_worker(arg: *mut c_void) -> *mut c_void {
    name_this_thread(NAME);
    // SAFETY: `arg` is the Launch pointer `spawn` gave up to this thread.
    let worker = unsafe { Launch(arg.cast()).into_worker() };
    let _ = catch_unwind(AssertUnwindSafe(move || worker.run()));
    std::ptr::null_mut()
}

/// Starts a thread that sleeps `hold` and ends, the way [`spawn`] starts a
/// client's (same stack, a name as long, nothing allocated): the reference
/// `bench/fork.rb` measures a client's start against.
pub fn spawn_sleeper(hold: Duration) -> bool {
    // SAFETY: a pthread start routine that reads its argument as a number
    // (never as a pointer) and cannot panic.
    extern "C" fn sleeper(arg: *mut c_void) -> *mut c_void {
        name_this_thread(c"forkflag-bench");
        std::thread::sleep(Duration::from_millis(arg as usize as u64));
        std::ptr::null_mut()
    }
    let millis = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
    // The pointer carries the duration, nothing else.
    start(sleeper, millis as usize as *mut c_void)
        .map(drop)
        .is_ok()
}

/// Names the calling thread (`name`: at most 15 bytes, as Linux keeps).
fn name_this_thread(name: &CStr) {
    // SAFETY: `name` is nul-terminated; a longer one is refused, not read past.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), name.as_ptr()) };
}

/// `pthread_create` with the standard library's default stack size.
fn start(
    routine: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> io::Result<NativeThread> {
    // SAFETY: the attributes are initialised before use and destroyed
    // after; `routine` is a valid start routine that does not unwind.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        check(libc::pthread_attr_init(&mut attr))?;
        let stack = STACK_BYTES.max(libc::PTHREAD_STACK_MIN);
        let mut id: libc::pthread_t = std::mem::zeroed();
        let made = check(libc::pthread_attr_setstacksize(&mut attr, stack))
            .and_then(|()| check(libc::pthread_create(&mut id, &attr, routine, arg)));
        libc::pthread_attr_destroy(&mut attr);
        made.map(|()| NativeThread(id))
    }
}

fn check(code: libc::c_int) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_started_thread_runs_named_and_is_joined() {
        static RAN: AtomicUsize = AtomicUsize::new(0);
        static NAMED: AtomicUsize = AtomicUsize::new(0);
        // SAFETY: a pthread start routine that reads its argument as a
        // number and touches only atomics and its own stack.
        extern "C" fn routine(arg: *mut c_void) -> *mut c_void {
            name_this_thread(NAME);
            let mut buf = [0u8; 16];
            // SAFETY: the buffer holds the 16 bytes Linux allows.
            let rc = unsafe {
                libc::pthread_getname_np(libc::pthread_self(), buf.as_mut_ptr().cast(), buf.len())
            };
            let named = rc == 0 && CStr::from_bytes_until_nul(&buf).ok() == Some(NAME);
            NAMED.store(usize::from(named), Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            RAN.store(arg as usize, Ordering::SeqCst);
            std::ptr::null_mut()
        }
        let thread = start(routine, 7 as *mut c_void).expect("the thread starts");
        thread.join();
        assert_eq!(
            RAN.load(Ordering::SeqCst),
            7,
            "join waits for the thread to end"
        );
        assert_eq!(
            NAMED.load(Ordering::SeqCst),
            1,
            "the thread carries its name"
        );
    }

    #[test]
    fn a_sleeper_starts_and_its_handle_detaches() {
        assert!(spawn_sleeper(Duration::ZERO));
        assert!(spawn_sleeper(Duration::from_millis(5)));
    }
}
