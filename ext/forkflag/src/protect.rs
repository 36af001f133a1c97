//! Ruby C API calls that may raise, or run Ruby code, made while Rust
//! frames are live.
//!
//! A Ruby exception (or `throw`, `break`, Thread#kill) is a `longjmp`: raised
//! from a C call made by Rust code, it would jump over the Rust frames
//! between that call and the method's entry, skipping their destructors
//! (a `RefCell` borrow never released, say), which is undefined behaviour.
//! Every such call runs through [`protect`], which stops the jump at
//! `rb_protect` and hands it back as an [`Error`]; the caller then decides
//! what it means and, when it must reach Ruby, returns it once its own
//! frames have unwound. The calls that cannot raise are listed, each with
//! its reason, in docs/FORK_SAFETY.md ("Ruby calls from Rust frames").

use magnus::{Error, Ruby};
use rb_sys::VALUE;

/// Runs `call` (Ruby C API calls) under `rb_protect`.
///
/// `call` must not panic, and must hold nothing with a destructor while it
/// calls into Ruby: a jump out of it skips its own frame. Being `Copy`
/// keeps its captures to references and plain values, so only what it
/// creates itself needs care.
#[inline]
pub fn protect<F>(call: F) -> Result<VALUE, Error>
where
    F: FnOnce() -> VALUE + Copy,
{
    magnus::rb_sys::protect(call)
}

/// Whether `error` is an exception an evaluation reads as "no value": a
/// `StandardError` raised by the application's own object (its `to_s`, say).
/// Anything else (Interrupt, SystemExit, NoMemoryError, a `throw`,
/// Thread#kill) must go on once the Rust frames have unwound.
pub fn is_standard_error(ruby: &Ruby, error: &Error) -> bool {
    error.is_kind_of(ruby.exception_standard_error())
}
