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
//! frames have unwound.
//!
//! # The Ruby C API calls of the binding, and why each is sound
//!
//! Protected (they run Ruby code, or raise):
//! - `rb_obj_as_string` (a context value's `to_s`), `rb_time_timespec`
//!   (raises for a Time outside `time_t` or uninitialised):
//!   `hash_context::with_value_text`, `hash_context::time_of`.
//! - `rb_hash_lookup2` with a Symbol key (context fields, properties, the
//!   `default:` keyword): calls no method of the Hash's keys or values (no
//!   `hash`, `==`, `eql?` of theirs; no default proc); a key whose hash
//!   collides with the Symbol's is compared by the Symbol's `eql?`, which is
//!   Ruby's identity test unless a program redefined it. Context lookups run
//!   under protect when `rb_method_basic_definition_p(Symbol, eql?)` says it
//!   was redefined (asked once per evaluation, and again after any `to_s`),
//!   the `default:` lookup always.
//! - `rb_check_symbol_cstr` with `rb_gc_register_mark_object` (a property
//!   name's Symbol, once per name; the second allocates).
//! - Allocations made while a Rust value with a destructor is live in the
//!   method's frames: `Client#flag_names` (interned names while the snapshot
//!   is held), `Client#_stats` (while the stats are held),
//!   `Forkflag._wait_logs` (while the records are held). An allocation can
//!   raise only NoMemoryError, when Ruby finds no memory even after a GC.
//! - A custom strategy's call (`client::custom`): `rb_utf8_str_new`,
//!   `rb_hash_new`, `rb_hash_aset`, `rb_obj_freeze` (its name and
//!   parameters) and `rb_funcall` of the client's `Forkflag::Strategies`,
//!   all in one `protect`; a StandardError reads as "no match", anything
//!   else goes on once the evaluation returned (it is not counted).
//! - Everything magnus wraps: `funcall`, `aref`/`aset`, `foreach`,
//!   conversions (`TryConvert`), `inspect`, `const_get`, `define_*`.
//!
//! Unprotected, because they cannot raise or run Ruby code:
//! - `rb_sym2str` (a Symbol's own frozen String), `rb_obj_is_kind_of` (walks
//!   the class chain), `rb_keyword_given_p` (reads the frame),
//!   `rb_method_basic_definition_p` (resolves a method entry; calls none),
//!   `rb_utf8_encoding`, and the type tests and accessors (`RB_TYPE_P`,
//!   `RB_SYMBOL_P`, `FIXNUM_P`, `FIX2LONG`, `RSTRING_PTR`, `RSTRING_LEN`,
//!   `RHASH_SIZE`, `RTYPEDDATA_*`).
//! - `rb_hash_foreach` with callbacks that only read keys (it raises only
//!   when a callback changes the hash).
//! - `rb_gc_mark` of remembered names (`names.rs`, during the GC's mark
//!   phase, where nothing raises).
//! - `rb_thread_call_without_gvl` (`nogvl.rs`): run inside magnus's protect;
//!   the function it runs catches panics itself.
//! - Allocations with no Rust value with a destructor live between them
//!   and the method's entry, so a NoMemoryError jumps over plain frames
//!   only: the Variant object `Client#variant` returns (made once the
//!   evaluation's borrows ended: `variant::Answer`), `Variant#name`,
//!   `Variant#payload`, and, at load time, `rb_intern2`/`rb_id2sym` of the
//!   context keys and the shared disabled variants. (A method's return
//!   value, such as a `Context` reader's String, is converted by magnus
//!   after the method returned.)

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
