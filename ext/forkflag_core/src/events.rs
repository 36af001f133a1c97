//! What a client tells its listeners: a refresh that completed (and what
//! it changed), and a failure of background work.
//!
//! Events travel with the log records ([`crate::logging::event`]), so the
//! same Ruby thread of each process delivers them, in a forked child too.
//! They are made only for an engine someone listens to
//! ([`crate::Engine::events_wanted`]).

use std::time::Duration;

use crate::http::HttpError;
use crate::snapshot::Changes;

/// Where a configuration (or a failure) came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// A poll of the Unleash server.
    Server,
    /// The flags file (read at start, or re-read when it changed).
    File,
    /// The bootstrap given at creation.
    Bootstrap,
    /// The backup of the last good payload, at a cold start.
    Backup,
    /// `Client#update`.
    Update,
    /// The metrics reporter.
    Metrics,
}

impl EventSource {
    /// Lowercase name, as the Ruby Symbol is spelt.
    pub fn name(self) -> &'static str {
        match self {
            EventSource::Server => "server",
            EventSource::File => "file",
            EventSource::Bootstrap => "bootstrap",
            EventSource::Backup => "backup",
            EventSource::Update => "update",
            EventSource::Metrics => "metrics",
        }
    }
}

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The server answered an HTTP status that is not a success.
    HttpStatus,
    /// A request took longer than the timeout.
    Timeout,
    /// The server could not be reached (name, connection, TLS, reset).
    Connection,
    /// A payload could not be read; the configuration stays as it was.
    InvalidPayload,
    /// The flags file could not be read.
    File,
    /// The server refused the token (401/403): polling or metrics stopped.
    Refused,
    /// The backup was not loaded or not written.
    Backup,
}

impl FailureKind {
    /// Lowercase name, as the Ruby Symbol is spelt.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::HttpStatus => "http_status",
            FailureKind::Timeout => "timeout",
            FailureKind::Connection => "connection",
            FailureKind::InvalidPayload => "invalid_payload",
            FailureKind::File => "file",
            FailureKind::Refused => "refused",
            FailureKind::Backup => "backup",
        }
    }
}

/// A failure, as a log line says it and as listeners get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The HTTP status, when the server answered one.
    pub status: Option<u16>,
    /// What failed (never contains a token).
    pub message: String,
}

impl Fault {
    /// A fault of `kind` without a status.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Fault {
        Fault {
            kind,
            status: None,
            message: message.into(),
        }
    }

    /// The fault of a request that got no answer (`method` and `url` name
    /// it in the message): a timeout, or a connection that failed.
    pub(crate) fn unanswered(method: &str, url: &str, error: &HttpError) -> Fault {
        let kind = match error {
            HttpError::Timeout { .. } => FailureKind::Timeout,
            _ => FailureKind::Connection,
        };
        Fault::new(kind, format!("{method} {url}: {error}"))
    }

    /// The fault of an HTTP status.
    pub fn status(status: u16, message: impl Into<String>) -> Fault {
        Fault {
            kind: if status == 401 || status == 403 {
                FailureKind::Refused
            } else {
                FailureKind::HttpStatus
            },
            status: Some(status),
            message: message.into(),
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A refresh completed: a payload was applied, or the source said
    /// nothing changed (304).
    Refreshed {
        /// Where the configuration came from.
        source: EventSource,
        /// The response's ETag (the server's; none for other sources).
        etag: Option<String>,
        /// Flags now loaded.
        flags: usize,
        /// Time the fetch and load took.
        duration: Duration,
        /// When it ended, in milliseconds since the epoch.
        at_millis: i64,
        /// The flags added, changed and removed (all empty when nothing
        /// changed).
        changes: Changes,
        /// Whether this is the configuration the client was created with
        /// (bootstrap, backup, or the flags file read at creation):
        /// listeners, registered once the client exists, do not get it.
        initial: bool,
    },
    /// Background work failed.
    Failed {
        /// What was being done.
        source: EventSource,
        /// What failed.
        fault: Fault,
        /// Consecutive failures of this work, this one included.
        failures: u32,
        /// When, in milliseconds since the epoch.
        at_millis: i64,
        /// Whether it happened while the client was created (the backup
        /// read at a cold start): listeners, registered once the client
        /// exists, do not get it.
        initial: bool,
    },
}

impl Event {
    /// A failure of `source`, now, the first of its kind in a row (the
    /// backup's: it is not retried).
    pub fn failed_once(source: EventSource, fault: Fault, initial: bool) -> Event {
        Event::Failed {
            source,
            fault,
            failures: 1,
            at_millis: crate::time::now_millis(),
            initial,
        }
    }
}
