//! What the specs and benchmarks call, compiled only with the `test-hooks`
//! cargo feature (`rake compile` enables it; the gem's own build does not,
//! and `rake gem:check` proves the installed library has none of these).
//! All private: a spec calls them with `__send__`; a benchmark that needs a
//! plain call makes `_noop` public in its own process.
//!
//! - `Forkflag::Client#_noop`: an empty native method with the calling
//!   convention of `enabled?` (any number of arguments, called on a client),
//!   so `bench/evaluate.rb` can show how much of an evaluation is the cost of
//!   calling into native code at all.
//! - `Forkflag._bench_spawn_thread(seconds)`: starts a native thread the
//!   way a client starts its background thread, so `bench/fork.rb` can show
//!   how much of a fork and of a forked child's first answer is the system's
//!   cost of a process having a thread and of creating one.
//! - `Forkflag::Client#_names_remembered`, `#_remembers?(name)`: what the
//!   client's name cache holds (`names.rs`).

use magnus::rb_sys::AsRawValue;
use magnus::{function, method, prelude::*, Error, RClass, RModule, Ruby, Value};

use super::Client;

/// `_noop(name, context = nil)`: takes the arguments `enabled?` takes, looks
/// at none of them and answers `false`.
fn noop(_rb_self: Value, _args: &[Value]) -> bool {
    false
}

/// `Forkflag._bench_spawn_thread(seconds)`: starts a thread as a client
/// starts its background thread (a named std thread, the same stack size),
/// which sleeps `seconds` (0: ends at once); does not wait for it. Answers
/// whether it started.
fn spawn_thread(seconds: f64) -> bool {
    let hold = std::time::Duration::try_from_secs_f64(seconds).unwrap_or_default();
    forkflag_core::runtime::spawn_sleeper(hold)
}

impl Client {
    /// How many name objects the client remembers.
    fn names_remembered(&self) -> usize {
        self.names.remembered()
    }

    /// Whether the client remembers this name object.
    fn remembers(&self, name: Value) -> bool {
        self.names.get(name.as_raw()).is_some()
    }
}

/// Defines the hooks, private, on `Forkflag` and `Forkflag::Client`.
pub(super) fn init(_ruby: &Ruby, module: RModule, class: RClass) -> Result<(), Error> {
    module
        .singleton_class()?
        .define_private_method("_bench_spawn_thread", function!(spawn_thread, 1))?;
    class.define_private_method("_noop", method!(noop, -1))?;
    class.define_private_method("_names_remembered", method!(Client::names_remembered, 0))?;
    class.define_private_method("_remembers?", method!(Client::remembers, 1))?;
    Ok(())
}
