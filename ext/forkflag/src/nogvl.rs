//! Waiting in native code with the GVL released.
//!
//! [`wait`] runs a blocking function without the GVL so other Ruby threads
//! keep running, and registers an unblocking function so Thread#kill,
//! Thread#raise, Timeout and Ctrl-C interrupt the wait. A panic inside the
//! function is caught there and resumed once the GVL is back; a Ruby
//! exception raised while the GVL is taken back is caught by `rb_protect`
//! and returned as an error, so neither unwinds through foreign frames.

use std::ffi::c_void;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use magnus::{Error, Ruby};
use rb_sys::rb_thread_call_without_gvl;

/// What the unblocking function may touch: shared with the waiting thread.
struct Interrupt<'a> {
    flag: AtomicBool,
    wake: &'a (dyn Fn() + Sync),
}

/// What only the waiting thread touches.
struct Call<'a, F, T> {
    func: Option<F>,
    result: Option<std::thread::Result<T>>,
    interrupt: &'a Interrupt<'a>,
}

unsafe extern "C" fn run<F, T>(data: *mut c_void) -> *mut c_void
where
    F: FnOnce(&AtomicBool) -> T,
{
    // SAFETY: `data` is the `Call` that `wait` passed, alive until
    // rb_thread_call_without_gvl returns; only this thread uses it.
    let call = &mut *(data as *mut Call<'_, F, T>);
    if let Some(func) = call.func.take() {
        let flag = &call.interrupt.flag;
        call.result = Some(catch_unwind(AssertUnwindSafe(|| func(flag))));
    }
    std::ptr::null_mut()
}

unsafe extern "C" fn unblock(data: *mut c_void) {
    // SAFETY: `data` is the `Interrupt` that `wait` passed, alive until
    // rb_thread_call_without_gvl returns; it is only read here (atomics and
    // a Sync closure).
    let interrupt = &*(data as *const Interrupt<'_>);
    interrupt.flag.store(true, Ordering::SeqCst);
    (interrupt.wake)();
}

/// Runs `func` with the GVL released. `func` gets a flag that becomes true
/// when Ruby wants the thread back; `wake` must make a blocked `func` look
/// at it (notify its condition variable). Pending interrupts are raised once
/// the GVL is back.
pub fn wait<F, T>(ruby: &Ruby, func: F, wake: &(dyn Fn() + Sync)) -> Result<T, Error>
where
    F: FnOnce(&AtomicBool) -> T,
{
    let interrupt = Interrupt {
        flag: AtomicBool::new(false),
        wake,
    };
    let mut call = Call {
        func: Some(func),
        result: None,
        interrupt: &interrupt,
    };
    let call_ptr = &mut call as *mut Call<'_, F, T> as *mut c_void;
    let interrupt_ptr = &interrupt as *const Interrupt<'_> as *mut c_void;
    magnus::rb_sys::protect(|| {
        // SAFETY: both pointers stay valid for the whole call; `run` and
        // `unblock` match the callback signatures. No value with a
        // destructor lives in this closure's frame, so an exception raised
        // here (a pending interrupt) may jump to rb_protect.
        unsafe {
            rb_thread_call_without_gvl(Some(run::<F, T>), call_ptr, Some(unblock), interrupt_ptr)
        };
        rb_sys::Qnil as rb_sys::VALUE
    })?;
    match call.result.take() {
        Some(Ok(value)) => {
            ruby.thread_check_ints()?;
            Ok(value)
        }
        Some(Err(panic)) => resume_unwind(panic),
        // Ruby interrupted before `func` ran: raise what is pending.
        None => {
            ruby.thread_check_ints()?;
            Err(crate::errors::error(
                ruby,
                "the wait was interrupted before it started",
            ))
        }
    }
}
