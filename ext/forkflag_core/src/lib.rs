//! forkflag's core: Unleash flag evaluation with no Ruby dependency.
//!
//! The modules, each using only the ones before it in this list:
//!
//! 1. foundations: `error` ([`CoreError`]), [`time`], [`sync`] (bounded,
//!    interruptible waits);
//! 2. [`process`]: what one process owns and what a fork changes (the fork
//!    generation and handlers, the fork gate, process-local values, the
//!    sockets a child closes, the host name, the heap, randomness);
//! 3. [`context`]: what evaluation asks of a context ([`Context`], [`Field`]);
//! 4. [`snapshot`]: the compiled model ([`Snapshot`], flags, variants,
//!    constraints as data, the string arena, fork-tagged usage counters);
//! 5. [`compile`]: the payload's wire model and its compilation into a
//!    snapshot; [`eval`]: `enabled?` and `variant` against a snapshot (the
//!    two do not use each other);
//! 6. [`engine`]: the current snapshot for lock-free readers ([`Engine`]);
//! 7. [`events`]: what a client tells its listeners (a refresh and its
//!    changes, a failure); [`logging`]: messages and events on their way to
//!    the Ruby thread; [`http`]: the HTTP client whose sockets a forked
//!    child closes;
//! 8. [`runtime`]: the client's lifecycle and background thread.
//!
//! Within a folder the same holds between files: no file uses one that
//! uses it (a folder's `mod.rs` re-exporting its parts aside).

#![deny(missing_docs)]

pub mod compile;
pub mod context;
pub mod engine;
mod error;
pub mod eval;
pub mod events;
pub mod http;
pub mod logging;
pub mod process;
pub mod runtime;
pub mod snapshot;
pub mod sync;
pub mod time;

pub use context::{Context, CurrentTime, CustomStrategy, EmptyContext, Field, OwnedContext};
pub use engine::{Engine, UpdateOutcome};
pub use error::CoreError;
pub use eval::{Explanation, Reason, VariantChoice};
pub use snapshot::{Flag, Payload, Snapshot, Variant};

/// The version of the Unleash client specification this engine implements.
pub const CLIENT_SPEC_VERSION: &str = "5.2.0";
