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
//!
//! The same Ruby thread answers the one question a background thread asks
//! of Ruby code: a client whose request headers come from a Proc queues a
//! [`Level::Headers`] record before each request and waits, bounded, for
//! the answer ([`fetch_headers`], [`reply_headers`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::events::Event;
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
    /// Not a message: the client asks for the headers of its next request
    /// (see [`fetch_headers`]).
    Headers,
    /// Not a message: an event for the client's listeners
    /// ([`Record::event`], queued by [`event`]).
    Event,
}

impl Level {
    /// Lowercase name, as Ruby's Logger methods are called.
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Headers => "headers",
            Level::Event => "event",
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
    /// The event of a [`Level::Event`] record.
    pub event: Option<Box<Event>>,
}

/// Most records kept while no Ruby thread drains them.
pub const CAPACITY: usize = 1000;

/// The latest headers the Ruby thread gave a client, and how many answers
/// it gave.
struct Reply {
    serial: u64,
    headers: Arc<Vec<(String, String)>>,
}

struct Queue {
    records: Mutex<VecDeque<Record>>,
    /// Answers to [`fetch_headers`], by client.
    replies: Mutex<HashMap<u64, Reply>>,
    replied: Condvar,
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
            replies: Mutex::new(HashMap::new()),
            replied: Condvar::new(),
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
    push(Record {
        level,
        client,
        message: message.into(),
        event: None,
    });
}

/// Queues an event for the client's listeners, with the log records (the
/// same Ruby thread delivers it, after the records queued before it).
pub fn event(client: u64, event: Event) {
    push(Record {
        level: Level::Event,
        client,
        message: String::new(),
        event: Some(Box::new(event)),
    });
}

fn push(record: Record) {
    let queue = QUEUE.get();
    let mut records = queue.records.lock().unwrap_or_else(PoisonError::into_inner);
    if records.len() >= CAPACITY {
        records.pop_front();
        queue.dropped.fetch_add(1, Ordering::Relaxed);
    }
    records.push_back(record);
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
                event: None,
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

/// Asks the Ruby thread for the client's request headers (a
/// [`Level::Headers`] record) and waits up to `timeout` for its answer.
/// Returns the latest answer this process has: this one, or an earlier one
/// when none came in time (the Ruby thread busy, or not started yet in a
/// forked child); `None` when this process never had one.
pub fn fetch_headers(client: u64, timeout: Duration) -> Option<Arc<Vec<(String, String)>>> {
    let queue = QUEUE.get();
    let lock = || queue.replies.lock().unwrap_or_else(PoisonError::into_inner);
    let before = lock().get(&client).map_or(0, |r| r.serial);
    log(Level::Headers, client, String::new());
    let deadline = Instant::now() + timeout;
    let mut replies = lock();
    loop {
        if replies.get(&client).is_some_and(|r| r.serial > before) {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        replies = queue
            .replied
            .wait_timeout(replies, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    replies.get(&client).map(|r| Arc::clone(&r.headers))
}

/// The Ruby thread's answer to [`fetch_headers`]: the client's headers,
/// checked by the caller.
pub fn reply_headers(client: u64, headers: Vec<(String, String)>) {
    let queue = QUEUE.get();
    let mut replies = queue.replies.lock().unwrap_or_else(PoisonError::into_inner);
    let reply = replies.entry(client).or_insert_with(|| Reply {
        serial: 0,
        headers: Arc::new(Vec::new()),
    });
    reply.serial += 1;
    reply.headers = Arc::new(headers);
    queue.replied.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_asked_of_the_ruby_thread_and_the_latest_answer_kept() {
        let client = 9_001;
        // Nobody answers: nothing this process ever had.
        assert_eq!(fetch_headers(client, Duration::from_millis(20)), None);
        let asked = take();
        assert!(asked
            .iter()
            .any(|r| r.level == Level::Headers && r.client == client));
        // An answer arriving while the request waits.
        let answerer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            reply_headers(client, vec![("X-Token".into(), "1".into())]);
        });
        let got = fetch_headers(client, Duration::from_secs(5)).unwrap();
        assert_eq!(*got, vec![("X-Token".to_string(), "1".to_string())]);
        answerer.join().unwrap();
        // None in time: the latest one.
        let got = fetch_headers(client, Duration::from_millis(20)).unwrap();
        assert_eq!(got[0].1, "1");
        take();
    }
}
