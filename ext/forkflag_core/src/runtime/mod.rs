//! The background side of a client: one thread per client and process
//! that keeps the flags fresh (polling the server, or watching a file) and
//! reports usage metrics.
//!
//! - [`Lifecycle`] (`lifecycle`) starts, parks and closes the thread from
//!   the Ruby side, and forgets it in a forked child;
//! - `worker` is the thread's loop; `poll` keeps the flags fresh and
//!   `report` sends the metrics, both backing off through `backoff`;
//! - [`load`] is how every payload gets into an engine; `backup` keeps the
//!   last good one on disk;
//! - [`Settings`] and [`Shared`] are what the thread is given and what it
//!   shares with the Ruby side.

mod backoff;
mod backup;
mod lifecycle;
mod load;
mod poll;
mod report;
mod settings;
mod shared;
mod thread;
mod worker;

pub use backup::{read as read_backup, write as write_backup, Location as BackupLocation};
pub use lifecycle::{Lifecycle, Stats, Stopping};
pub use load::{load, load_backup, Origin};
#[doc(hidden)]
pub use settings::{Secret, Settings, Source};
pub use shared::{ConnectionId, Shared};
pub use thread::spawn_sleeper;

use crate::sync::Completion;

/// Requests from the Ruby side to the thread.
pub(crate) enum Command {
    /// Send the metrics now; report the outcome.
    Flush(Completion<Result<u64, String>>),
    /// Refresh now; report whether the configuration is current.
    Refresh(Completion<Result<(), String>>),
    /// Stop, after sending metrics if asked.
    Shutdown {
        flush: bool,
        done: Completion<Result<u64, String>>,
    },
}
