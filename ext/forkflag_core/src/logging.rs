//! Messages from background threads, on their way to a Ruby Logger.
//!
//! Background threads never touch the Ruby VM. They push records into a
//! bounded queue; one Ruby thread waits on it (with the GVL released) and
//! hands each record to the logger of the client that wrote it. A record
//! queued while no thread waits raises the attention bit of
//! [`crate::process::fork::epoch`]: a forked child starts its Ruby thread only then,
//! from the next evaluation, instead of on every fork.
//!
//! The queue is per process: a forked child gets a fresh one on first use
//! and never touches its parent's (whose lock a vanished thread may hold).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::process::ProcessLocal;

/// Severity of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Details for debugging.
    Debug,
    /// A change worth knowing (recovered, ready).
    Info,
    /// Something is wrong but the client keeps working.
    Warn,
    /// Something failed (refresh, metrics).
    Error,
}

impl Level {
    /// Lowercase name, as Ruby's Logger methods are called.
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Severity.
    pub level: Level,
    /// Id of the client that wrote it.
    pub client: u64,
    /// The text (never contains a token).
    pub message: String,
}

/// Most records kept while no Ruby thread drains them.
pub const CAPACITY: usize = 1000;

struct Queue {
    records: Mutex<VecDeque<Record>>,
    arrived: Condvar,
    dropped: AtomicU64,
    /// Threads inside [`wait`] (changed with `records` locked). With none,
    /// a new record raises the fork module's attention bit, so that the
    /// next evaluation starts a Ruby thread to take it.
    waiters: AtomicUsize,
}

impl Queue {
    fn new() -> Queue {
        Queue {
            records: Mutex::new(VecDeque::new()),
            arrived: Condvar::new(),
            dropped: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
        }
    }
}

static QUEUE: ProcessLocal<Queue> = ProcessLocal::new(Queue::new);

/// Queues a record; never blocks for long (the oldest record is dropped
/// when the queue is full).
pub fn log(level: Level, client: u64, message: impl Into<String>) {
    let queue = QUEUE.get();
    let mut records = queue.records.lock().unwrap_or_else(PoisonError::into_inner);
    if records.len() >= CAPACITY {
        records.pop_front();
        queue.dropped.fetch_add(1, Ordering::Relaxed);
    }
    records.push_back(Record {
        level,
        client,
        message: message.into(),
    });
    if queue.waiters.load(Ordering::Relaxed) == 0 {
        crate::process::fork::request_attention();
    }
    queue.arrived.notify_all();
}

/// Waits up to `timeout` for records and takes them all. Returns early,
/// empty, when `interrupted` is set and [`wake`] is called.
pub fn wait(timeout: Duration, interrupted: &AtomicBool) -> Vec<Record> {
    let queue = QUEUE.get();
    let mut records = queue.records.lock().unwrap_or_else(PoisonError::into_inner);
    if records.is_empty() && !interrupted.load(Ordering::SeqCst) {
        queue.waiters.fetch_add(1, Ordering::Relaxed);
        records = queue
            .arrived
            .wait_timeout(records, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        queue.waiters.fetch_sub(1, Ordering::Relaxed);
    }
    let mut out: Vec<Record> = records.drain(..).collect();
    let dropped = queue.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        out.insert(
            0,
            Record {
                level: Level::Warn,
                client: 0,
                message: format!("{dropped} log messages were dropped while nothing read them"),
            },
        );
    }
    out
}

/// Wakes every thread waiting in [`wait`].
pub fn wake() {
    let queue = QUEUE.get();
    let _records = queue.records.lock().unwrap_or_else(PoisonError::into_inner);
    queue.arrived.notify_all();
}

/// Takes the queued records without waiting.
pub fn take() -> Vec<Record> {
    wait(Duration::ZERO, &AtomicBool::new(true))
}
