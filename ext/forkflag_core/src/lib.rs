//! forkflag's core: Unleash flag evaluation with no Ruby dependency.
//!
//! - [`model`] reads the client-features payload,
//! - [`compile`] turns it into an immutable [`Snapshot`],
//! - [`eval`] answers `enabled?` and `variant` against a [`Context`],
//! - [`Engine`] holds the current snapshot for lock-free readers,
//! - [`metrics`] counts evaluations per fork generation,
//! - [`fork`] notices forks.

#![deny(missing_docs)]

pub mod compile;
pub mod context;
pub mod engine;
mod error;
pub mod eval;
pub mod http;
pub mod logging;
pub mod process;
pub mod runtime;
pub mod snapshot;
pub mod sync;
pub mod time;

pub use context::{Context, CurrentTime, EmptyContext, Field, OwnedContext};
pub use engine::{Engine, UpdateOutcome};
pub use error::CoreError;
pub use eval::VariantChoice;
pub use snapshot::{Flag, Payload, Snapshot, Variant};

/// The version of the Unleash client specification this engine implements.
pub const CLIENT_SPEC_VERSION: &str = "5.2.0";
