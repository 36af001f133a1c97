//! References the Ruby benchmarks measure against. Not part of the public API.
//!
//! - `Forkflag::Client#_noop`: an empty native method with the calling
//!   convention of `enabled?` (any number of arguments, called on a client),
//!   so `bench/evaluate.rb` can show how much of an evaluation is the cost of
//!   calling into native code at all.
//! - `Forkflag._bench_spawn_thread(seconds)`: starts a native thread the
//!   way a client starts its background thread, so `bench/fork.rb` can show
//!   how much of a fork and of a forked child's first answer is the system's
//!   cost of a process having a thread and of creating one.

use magnus::{function, method, prelude::*, Error, Ruby, Value};

/// @api private
/// `_noop(name, context = nil)`: takes the arguments `enabled?` takes, looks
/// at none of them and answers `false`.
fn noop(_rb_self: Value, _args: &[Value]) -> bool {
    false
}

/// @api private
/// `Forkflag._bench_spawn_thread(seconds)`: starts a native thread as a
/// client starts its background thread (`pthread_create`, the same stack
/// size, a name as long, nothing allocated), which sleeps `seconds` (0:
/// ends at once); does not wait for it. Answers whether it started.
fn spawn_thread(seconds: f64) -> bool {
    let hold = std::time::Duration::try_from_secs_f64(seconds).unwrap_or_default();
    forkflag_core::runtime::spawn_sleeper(hold)
}

/// Defines `Forkflag::Client#_noop` and `Forkflag._bench_spawn_thread`.
pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("Forkflag")?;
    module.define_singleton_method("_bench_spawn_thread", function!(spawn_thread, 1))?;
    let class = module.define_class("Client", ruby.class_object())?;
    class.define_method("_noop", method!(noop, -1))?;
    Ok(())
}
