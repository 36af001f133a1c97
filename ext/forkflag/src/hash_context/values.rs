//! Ruby values read as evaluation input, in place: the text of a value
//! (Strings and Symbols as they are, Integers formatted on the stack,
//! anything else through `to_s` under `rb_protect`) and the time a Time or
//! an ISO-8601 String names. Shared by Hash contexts and
//! `Forkflag::Context.new`.

use std::cell::Cell;

use forkflag_core::time::parse_timestamp_millis;
use forkflag_core::CurrentTime;
use magnus::rb_sys::FromRawValue;
use magnus::{Error, Ruby, Value};
use rb_sys::{
    macros::{FIXNUM_P, RB_SYMBOL_P, RB_TYPE_P, RSTRING_LEN, RSTRING_PTR},
    rb_cTime, rb_obj_as_string, rb_obj_is_kind_of, rb_sym2str, rb_time_timespec,
    ruby_special_consts, ruby_value_type, VALUE,
};

use crate::errors::arg_error;
use crate::protect::{is_standard_error, protect};

pub(super) const QNIL: VALUE = ruby_special_consts::RUBY_Qnil as VALUE;
const QTRUE: VALUE = ruby_special_consts::RUBY_Qtrue as VALUE;
const QFALSE: VALUE = ruby_special_consts::RUBY_Qfalse as VALUE;
pub(super) const QUNDEF: VALUE = ruby_special_consts::RUBY_Qundef as VALUE;

/// The text of a String or Symbol key, borrowed from the Ruby object.
///
/// # Safety
/// `key` must be a live VALUE; the slice is valid while it is.
pub(super) unsafe fn key_text<'a>(key: VALUE) -> Option<&'a [u8]> {
    if RB_TYPE_P(key, ruby_value_type::RUBY_T_STRING) {
        return Some(string_bytes(key));
    }
    if RB_SYMBOL_P(key) {
        return Some(string_bytes(rb_sym2str(key)));
    }
    None
}

/// # Safety
/// `s` must be a live String VALUE; the slice is valid while it is unmodified.
pub(super) unsafe fn string_bytes<'a>(s: VALUE) -> &'a [u8] {
    let len = RSTRING_LEN(s) as usize;
    if len == 0 {
        return &[];
    }
    std::slice::from_raw_parts(RSTRING_PTR(s) as *const u8, len)
}

/// Whether [`with_value_text`] reads `value` through its `to_s` (Ruby code).
#[inline]
pub(super) fn reads_through_to_s(value: VALUE) -> bool {
    if value == QNIL || value == QUNDEF || value == QTRUE || value == QFALSE || FIXNUM_P(value) {
        return false;
    }
    // SAFETY: `value` is a live VALUE (type tests only).
    unsafe { !(RB_TYPE_P(value, ruby_value_type::RUBY_T_STRING) || RB_SYMBOL_P(value)) }
}

/// Calls `f` with the text of a Ruby value (`None` for nil).
///
/// A value that is not a String, Symbol, Integer, true or false is read
/// through its `to_s`, under `rb_protect`: one that raises a StandardError
/// reads as absent; anything else it raises or throws goes to `failed`
/// (and the value reads as absent), for the caller to raise once its Rust
/// frames have returned.
pub fn with_value_text<R>(
    value: VALUE,
    failed: impl FnOnce(Error),
    f: impl FnOnce(Option<&str>) -> R,
) -> R {
    if value == QNIL || value == QUNDEF {
        return f(None);
    }
    if value == QTRUE {
        return f(Some("true"));
    }
    if value == QFALSE {
        return f(Some("false"));
    }
    if FIXNUM_P(value) {
        // SAFETY: `value` is a Fixnum.
        let n = unsafe { rb_sys::macros::FIX2LONG(value) };
        let mut buf = itoa::Buffer::new();
        return f(Some(buf.format(n)));
    }
    // SAFETY: `value` is a live VALUE passed in by Ruby for this call;
    // neither test nor rb_sym2str (the Symbol's own frozen String) raises.
    unsafe {
        if RB_TYPE_P(value, ruby_value_type::RUBY_T_STRING) {
            return with_bytes(string_bytes(value), f);
        }
        if RB_SYMBOL_P(value) {
            return with_bytes(string_bytes(rb_sym2str(value)), f);
        }
    }
    // SAFETY: rb_obj_as_string calls the value's `to_s`, which may raise:
    // under protect; the closure holds nothing with a destructor.
    let text = match protect(|| unsafe { rb_obj_as_string(value) }) {
        Ok(text) => text,
        Err(error) => {
            // SAFETY: on a Ruby thread (this is a method call's context).
            let ruby = unsafe { Ruby::get_unchecked() };
            if !is_standard_error(&ruby, &error) {
                failed(error);
            }
            return f(None);
        }
    };
    // SAFETY: `text` is the String rb_obj_as_string returned; the guard
    // below keeps it on this stack frame (visible to the GC) while `f`
    // reads its bytes.
    let result = with_bytes(unsafe { string_bytes(text) }, f);
    rb_sys::rb_gc_guard!(text);
    result
}

fn with_bytes<R>(bytes: &[u8], f: impl FnOnce(Option<&str>) -> R) -> R {
    match std::str::from_utf8(bytes) {
        Ok(s) => f(Some(s)),
        Err(_) => f(Some(&String::from_utf8_lossy(bytes))),
    }
}

/// What [`time_of`] does with a Time whose milliseconds since the epoch do
/// not fit in 64 bits (one hundreds of millions of years away).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BeyondMillis {
    /// Saturate: it compares as the far past or future (an evaluation).
    Saturate,
    /// Reject it (a context built to be reused, whose time must read back).
    Reject,
}

/// The time a Time or an ISO-8601 String names.
///
/// Never wraps around: a Time beyond the millisecond range saturates or is
/// rejected (`beyond`); a Time beyond what Ruby itself can convert
/// (`time_t`) is an ArgumentError naming it; anything else that stops the
/// read (an Interrupt in a `to_s`, say) is returned as it is. The caller
/// raises the error once its Rust frames have returned.
pub fn time_of(value: VALUE, beyond: BeyondMillis) -> Result<CurrentTime, Error> {
    if value == QNIL || value == QUNDEF {
        return Ok(CurrentTime::Now);
    }
    // SAFETY: `value` is live; rb_obj_is_kind_of walks the class chain
    // (calls no method, cannot raise); rb_cTime is Ruby's Time class.
    let is_time = unsafe { rb_obj_is_kind_of(value, rb_cTime) } == QTRUE;
    if !is_time {
        let mut failure = None;
        let time = with_value_text(
            value,
            |e| failure = Some(e),
            |t| {
                t.and_then(parse_timestamp_millis)
                    .map_or(CurrentTime::Unreadable, CurrentTime::At)
            },
        );
        return failure.map_or(Ok(time), Err);
    }
    let seconds = Cell::new(0i64);
    let nanos = Cell::new(0i64);
    // rb_time_timespec raises for a Time outside time_t (and for an
    // uninitialised one): under protect; the closure only writes two Cells.
    let converted = protect(|| {
        // SAFETY: `value` is a live Time; a raise stops at protect.
        let ts = unsafe { rb_time_timespec(value) };
        seconds.set(ts.tv_sec);
        nanos.set(ts.tv_nsec);
        QNIL
    });
    // SAFETY: on a Ruby thread (this is a method call's context).
    let ruby = unsafe { Ruby::get_unchecked() };
    let out_of_range = |why: &str| {
        // SAFETY: `value` is live (an argument of the current call).
        let given = crate::errors::describe(unsafe { Value::from_raw(value) });
        arg_error(
            &ruby,
            format!(
                "current_time {given} {why}; expected a Time within about 292 million years \
                 of 1970, or an ISO-8601 String"
            ),
        )
    };
    match converted {
        Ok(_) => match millis_of(seconds.get(), nanos.get()) {
            Some(ms) => Ok(CurrentTime::At(ms)),
            None if beyond == BeyondMillis::Saturate => Ok(CurrentTime::At(if seconds.get() < 0 {
                i64::MIN
            } else {
                i64::MAX
            })),
            None => Err(out_of_range(
                "is out of range (its milliseconds overflow 64 bits)",
            )),
        },
        Err(error) if is_standard_error(&ruby, &error) => {
            Err(out_of_range(&format!("cannot be converted ({error})")))
        }
        Err(error) => Err(error),
    }
}

/// Milliseconds since the epoch of a `timespec`; `None` beyond `i64`.
fn millis_of(seconds: i64, nanos: i64) -> Option<i64> {
    seconds.checked_mul(1000)?.checked_add(nanos / 1_000_000)
}
