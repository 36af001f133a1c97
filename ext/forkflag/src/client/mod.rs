//! `Forkflag::Client`: evaluation against the live snapshot.
//!
//! `enabled?` and `variant` are defined here, natively, so an evaluation is a
//! single method call: parse the arguments, load the snapshot, evaluate,
//! count. The rest of the client (options, callbacks, lifecycle) is Ruby in
//! `lib/forkflag/client.rb`, which calls the private native methods (`_`
//! names) defined here.
//!
//! - `arguments`: reading an evaluation's arguments, and their errors.
//! - `lookup`: finding the named flag and checking it against a context.
//! - `fast_path`: the common evaluation, with no call into Ruby.
//! - `evaluate`: `enabled?` and `variant`, one generic evaluation for both.
//! - `custom`: custom strategies, answered by Ruby code.
//! - `build`: options into settings, and the first configuration.
//! - `payload`: payloads loaded on a Ruby thread, and their warnings.
//! - `lifecycle`: the background thread's start, waits, park and close.
//! - `inspect`: stats, flag names and count.
//! - `events`: whether events are made, and impression flags.
//! - `test_hooks`: what specs and benchmarks call (the `test-hooks` cargo
//!   feature; not in the released library).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use forkflag_core::engine::SnapshotCache;
use forkflag_core::process::fork;
use forkflag_core::runtime::Lifecycle;
use forkflag_core::Engine;
use magnus::rb_sys::FromRawValue;
use magnus::{function, method, prelude::*, Error, Ruby, Value};
use magnus::{gc::Marker, DataTypeFunctions, TypedData};

use crate::names::NameCache;

mod arguments;
mod build;
mod custom;
mod evaluate;
mod events;
mod explain;
mod fast_path;
mod inspect;
mod lifecycle;
mod lookup;
mod payload;
#[cfg(feature = "test-hooks")]
mod test_hooks;

/// The native half of a client.
#[derive(TypedData)]
#[magnus(class = "Forkflag::Client", free_immediately, size, mark)]
pub struct Client {
    engine: Arc<Engine>,
    /// This client's handle on the current snapshot (no locked instruction
    /// per evaluation; see [`SnapshotCache`]).
    snapshots: RefCell<SnapshotCache>,
    /// The flags that name objects evaluated on this client stand for.
    names: NameCache,
    lifecycle: RefCell<Lifecycle>,
    /// The [`fork::epoch`] at which [`Client::wake_up`] last left nothing
    /// to do (this process's thread running or asked to start, attention
    /// bit clear), or [`lifecycle::LOOK_AGAIN`]. The fast path answers only
    /// while the current epoch equals it; anything else (a fork happened,
    /// the client was parked, log messages wait for a Ruby thread) sends
    /// the evaluation through `wake_up`, which asks the lifecycle what to
    /// do.
    ///
    /// Stored, not derived: the fast path's whole check is one load and
    /// one compare of this client's own word (in the cache line it reads
    /// anyway). Deriving it from the lifecycle would borrow the `RefCell`
    /// and read the thread's generation behind a pointer on every
    /// evaluation. It holds no state of its own: a stale value costs one
    /// `wake_up`, which derives the truth from the lifecycle again.
    live_epoch: Cell<u64>,
    /// Whether impression listeners are registered (set from Ruby).
    impressions: Cell<bool>,
    /// Whether every evaluation takes the general path: impression
    /// listeners are registered, or the client has custom strategies
    /// (answered by Ruby code). One flag for the fast path to test.
    general_only: Cell<bool>,
    /// Evaluations instrumented, out of 2^32 (`instrument_evaluations`;
    /// 0: none). Above 0, `general_only` is set: the fast path never
    /// looks at it.
    sample: u64,
    /// The client's id (its settings' `client_id`), for the events of
    /// payloads loaded on Ruby threads.
    id: u64,
    /// Problems found in payloads loaded on Ruby threads, not yet logged.
    warnings: RefCell<Vec<String>>,
    /// The `Forkflag::Strategies` that answers custom strategies; `None`
    /// when the client has none (see `custom`). Marked by the client, so it
    /// lives (and does not move) as long as the client.
    strategies: Option<rb_sys::VALUE>,
}

impl DataTypeFunctions for Client {
    fn mark(&self, marker: &Marker) {
        self.names.mark(marker);
        if let Some(strategies) = self.strategies {
            // SAFETY: a live object held by this client, during its mark.
            marker.mark(unsafe { Value::from_raw(strategies) });
        }
    }
}

impl Client {
    /// The object that answers this client's custom strategies.
    #[inline(always)]
    fn strategies(&self) -> Option<rb_sys::VALUE> {
        self.strategies
    }
}

/// `Forkflag._fork_generation`: this process's fork generation.
fn fork_generation() -> u64 {
    fork::generation()
}

/// Defines `Forkflag::Client`: `enabled?`, `variant`, `flag_names`,
/// `known?` and `ready?` public; the methods the Ruby facade calls (`_` names) private,
/// like `Forkflag._fork_generation`, `Forkflag._check_url` and
/// `Forkflag._header_problem`.
pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("Forkflag")?;
    let module_private = module.singleton_class()?;
    module_private.define_private_method("_fork_generation", function!(fork_generation, 0))?;
    module_private.define_private_method("_check_url", function!(build::check_url, 1))?;
    module_private.define_private_method("_header_problem", function!(build::header_problem, 2))?;
    module_private.define_private_method("_reply_headers", function!(build::reply_headers, 2))?;
    // Read by the Ruby argument checks (loaded after the library).
    let arguments = module.define_module("Arguments")?;
    arguments.const_set("MAX_HEADER_BYTES", build::MAX_HEADER_BYTES)?;
    // Read by `Forkflag::Strategies` (lib/forkflag/strategies.rb).
    let built_in = ruby.ary_from_iter(forkflag_core::compile::BUILT_IN_STRATEGIES.iter().map(
        |name| {
            let name = ruby.str_new(name);
            name.freeze();
            name
        },
    ));
    built_in.freeze();
    module
        .define_class("Strategies", ruby.class_object())?
        .const_set("BUILT_IN", built_in)?;
    let class = crate::native_class(ruby, "Client")?;
    class
        .singleton_class()?
        .define_private_method("_build", function!(Client::build, 1))?;
    class.define_method("enabled?", method!(Client::enabled, -1))?;
    class.define_method("variant", method!(Client::variant, -1))?;
    class.define_method("flag_names", method!(Client::flag_names, 0))?;
    class.define_method("ready?", method!(Client::is_ready, 0))?;
    class.define_method("known?", method!(Client::is_known, 1))?;
    class.define_private_method("_impressions=", method!(Client::set_impressions, 1))?;
    class.define_private_method("_update", method!(Client::update, 1))?;
    class.define_private_method("_events=", method!(Client::set_events, 1))?;
    class.define_private_method(
        "_impression_flags?",
        method!(Client::has_impression_flags, 0),
    )?;
    class.define_private_method("_take_warnings", method!(Client::take_warnings, 0))?;
    class.define_private_method("_start", method!(Client::start, 0))?;
    class.define_private_method("_wait_until_ready", method!(Client::wait_until_ready, 1))?;
    class.define_private_method("_flush", method!(Client::flush, 1))?;
    class.define_private_method("_refresh", method!(Client::refresh, 1))?;
    class.define_private_method("_stop", method!(Client::stop, 3))?;
    class.define_private_method("_stats", method!(Client::stats, 0))?;
    class.define_private_method("_flag_count", method!(Client::flag_count, 0))?;
    class.define_private_method("_explain", method!(Client::explain, 2))?;
    class.define_private_method("_flags", method!(Client::flags, 0))?;
    class.define_private_method("_flag", method!(Client::flag, 1))?;
    class.define_private_method("_counts", method!(Client::counts, 0))?;
    #[cfg(feature = "test-hooks")]
    test_hooks::init(ruby, module, class)?;
    Ok(())
}
