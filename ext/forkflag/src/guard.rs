//! Keeps Rust panics from reaching Ruby as `fatal`.
//!
//! magnus turns a panic into Ruby's `fatal`, which ends the process. Every
//! method of the binding runs its body through [`guard`] instead, so a bug
//! surfaces as a `Forkflag::InternalError` the application can rescue.

use std::panic::{catch_unwind, AssertUnwindSafe};

use magnus::{Error, Ruby};

use crate::errors::internal_error;

/// Runs `f`, turning a panic into `Forkflag::InternalError`.
pub fn guard<T>(ruby: &Ruby, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => Err(internal_error(ruby, panic_message(&panic))),
    }
}

/// The text of a panic payload.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let detail = if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    };
    format!("internal error in forkflag (please report it): {detail}")
}
