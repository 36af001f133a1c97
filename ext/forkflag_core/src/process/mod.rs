//! What belongs to one process, and what changes when it forks.
//!
//! The fork generation and the fork handlers ([`fork`]), the fork gate that
//! keeps forks out of the resolver ([`gate`]), values a forked child builds
//! afresh ([`ProcessLocal`]), the sockets a child closes at once
//! ([`SocketRegistry`]), and per-process facts and resources: the host name,
//! the allocator's free pages ([`heap`]), a random source reseeded in each
//! child ([`random`]). Nothing here depends on the rest of the crate.

pub mod fork;
#[cfg(test)]
pub(crate) mod forked;
pub mod gate;
pub mod heap;
mod host;
pub mod inherited;
mod local;
pub mod random;

pub use host::host_name;
pub use inherited::SocketRegistry;
pub use local::{Local, ProcessLocal};
