//! The background side of a client: one native thread per client and
//! process that keeps the flags fresh (polling the server, or watching a
//! file) and reports usage metrics.
//!
//! [`Lifecycle`] owns the thread. It is driven from the Ruby side (under the
//! GVL) and knows which process started the thread: in a forked child, where
//! the thread does not exist, the handle, the channel and the shared state
//! are forgotten, never dropped or joined, the inherited sockets are closed
//! with close(2) only, and a new thread starts on first use.

mod backup;
mod native;
mod poll;
mod report;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::engine::Engine;
use crate::http::{Endpoint, Tls};
use crate::logging::{self, Level};
use crate::process::fork;
use crate::process::SocketRegistry;
use crate::sync::Completion;
use crate::CoreError;

pub use backup::{read as read_backup, write as write_backup, Location as BackupLocation};
pub use native::spawn_sleeper;

use native::NativeThread;

/// Where flags come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An Unleash server.
    Server {
        /// The API base (`https://unleash.example.com/api`).
        endpoint: Arc<Endpoint>,
        /// The client token, sent as `Authorization`.
        token: Secret,
    },
    /// A client-features JSON file, re-read when it changes.
    File(PathBuf),
    /// Only the bootstrap given at creation: no thread.
    Static,
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret]")
    }
}

/// Everything the background thread needs to know, fixed at creation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Id of the client in log records.
    pub client_id: u64,
    /// Where flags come from.
    pub source: Source,
    /// `appName`.
    pub app_name: String,
    /// `instanceId`.
    pub instance_id: String,
    /// Environment the client declares in metrics.
    pub environment: Option<String>,
    /// Only flags of this project.
    pub project: Option<String>,
    /// Only flags whose names start with this.
    pub name_prefix: Option<String>,
    /// Time between refreshes.
    pub refresh_interval: Duration,
    /// Time between metrics reports.
    pub metrics_interval: Duration,
    /// Bound on each request (and on waiting for the thread at close).
    pub timeout: Duration,
    /// Extra request headers.
    pub custom_headers: Vec<(String, String)>,
    /// Where the last good payload is kept: the file, or (ending in `/`) a
    /// directory where forkflag keeps it in a private folder (see
    /// [`BackupLocation`]).
    pub backup_path: Option<PathBuf>,
    /// Whether to register and send metrics.
    pub metrics_enabled: bool,
    /// What the server's TLS connections trust, loaded when the client was
    /// created ([`Tls::load`]) and inherited by forked children.
    pub tls: Tls,
    /// Largest accepted response body.
    pub max_payload_bytes: usize,
    /// `forkflag:<version>`.
    pub sdk: String,
    /// User-Agent header.
    pub user_agent: String,
    /// Ruby engine name.
    pub platform_name: String,
    /// Ruby version.
    pub platform_version: String,
}

impl Settings {
    /// Largest accepted payload by default (documented in the README).
    pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;
}

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

/// State shared between the thread and the Ruby side of one process.
#[derive(Debug)]
pub struct Shared {
    /// Set once the flags are current (first successful refresh).
    pub ready: Completion<()>,
    /// The sockets the thread has open.
    pub sockets: Arc<SocketRegistry>,
    /// Whether the thread is running.
    pub alive: AtomicBool,
    /// When the last successful refresh (200 or 304, or file read) ended,
    /// in milliseconds since the epoch (0: never).
    pub last_refresh_millis: AtomicI64,
    /// Successful refreshes.
    pub refreshes: AtomicU64,
    /// Consecutive failures of the poller.
    pub failures: AtomicU32,
    /// Polling stopped for good (401/403, or a bad configuration).
    pub polling_stopped: AtomicBool,
    /// Evaluations reported to the server.
    pub reported_evaluations: AtomicU64,
    /// Connection id of this process, set before the thread starts.
    connection_id: OnceLock<ConnectionId>,
    /// A start made ready by this thread for a forked child (see
    /// [`Prepared`]); null until the thread made it. Owned by this value.
    spare: AtomicPtr<Prepared>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            ready: Completion::new(),
            sockets: SocketRegistry::enlisted(),
            alive: AtomicBool::new(true),
            last_refresh_millis: AtomicI64::new(0),
            refreshes: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            polling_stopped: AtomicBool::new(false),
            reported_evaluations: AtomicU64::new(0),
            connection_id: OnceLock::new(),
            spare: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Connection id of this process's thread (empty before it starts).
    pub fn connection_id(&self) -> &str {
        self.connection_id.get().map_or("", ConnectionId::as_str)
    }

    /// Called by the running thread, once as it starts: makes the start a
    /// forked child of this process will take.
    pub(crate) fn prepare_spare(&self, engine: &Arc<Engine>, settings: &Arc<Settings>) {
        let spare = Box::into_raw(Box::new(Prepared::new(engine, settings)));
        let previous = self.spare.swap(spare, Ordering::AcqRel);
        if !previous.is_null() {
            // SAFETY: published here earlier from Box::into_raw, owned by
            // this value, and no longer reachable from it.
            drop(unsafe { Box::from_raw(previous) });
        }
    }

    /// In a forked child, the spare an ancestor's thread made in the
    /// shared state this process inherited (and forgets).
    ///
    /// Read, not taken: the inherited value is never dropped in this
    /// process, so the spare is owned by the caller alone, and reading it
    /// writes nothing (no copy-on-write of this page).
    ///
    /// # Safety
    /// `self` is inherited from an ancestor process and is forgotten, never
    /// dropped, in this one; called at most once per process and value.
    unsafe fn inherited_spare(&self) -> Option<Box<Prepared>> {
        let spare = self.spare.load(Ordering::Acquire);
        (!spare.is_null()).then(|| Box::from_raw(spare))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let spare = *self.spare.get_mut();
        if !spare.is_null() {
            // SAFETY: published by `prepare_spare` from Box::into_raw and
            // owned by this value.
            drop(unsafe { Box::from_raw(spare) });
        }
    }
}

/// Everything a thread start allocates: the shared state, the command
/// channel and the worker holding them (the thread itself is started
/// without allocating, see `native`).
///
/// A forked child starts its thread on its first evaluation, where every
/// heap page written costs a copy-on-write fault, and an allocation in a
/// long-lived heap writes several (the chunk, and its free-list
/// neighbours). So each running thread makes one of these for its process's
/// future children (`prepare_spare`); the child finds it in the state it
/// inherited and only fills in its connection id.
pub(crate) struct Prepared {
    worker: worker::Worker,
    commands: SyncSender<Command>,
    shared: Arc<Shared>,
}

/// What the starting thread keeps of a [`Prepared`] once the thread runs.
pub(crate) struct Started {
    commands: SyncSender<Command>,
    shared: Arc<Shared>,
}

// A spare is made on a client's thread and used, or dropped with the state
// that holds it, on another: it must be Send (a raw pointer hides it from
// the compiler's own check).
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Prepared>();
};

impl Prepared {
    fn new(engine: &Arc<Engine>, settings: &Arc<Settings>) -> Prepared {
        let (commands, inbox) = sync_channel(16);
        let shared = Arc::new(Shared::new());
        let worker = worker::Worker::new(
            Arc::clone(engine),
            Arc::clone(settings),
            Arc::clone(&shared),
            inbox,
        );
        Prepared {
            worker,
            commands,
            shared,
        }
    }
}

/// A running thread, as the process that started it sees it.
struct Runtime {
    /// Whether it started from a start an ancestor's thread prepared.
    prepared: bool,
    handle: NativeThread,
    commands: SyncSender<Command>,
    shared: Arc<Shared>,
    generation: u64,
}

/// What the client's thread is doing.
enum State {
    /// Not started (yet, or since a fork).
    Idle,
    Running(Runtime),
    /// Stopped on purpose; restarts on first use.
    Parked,
    /// Closed for good.
    Closed,
}

/// Counters for operators (`ForkSafe.stats`, `Client#stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Whether the thread is running in this process.
    pub thread_alive: bool,
    /// Whether the flags are current.
    pub ready: bool,
    /// Milliseconds since the epoch of the last successful refresh (0: never).
    pub last_refresh_millis: i64,
    /// Successful refreshes by this process's thread.
    pub refreshes: u64,
    /// Consecutive poller failures.
    pub failures: u32,
    /// Whether polling stopped for good.
    pub polling_stopped: bool,
    /// Evaluations this process reported to the server.
    pub reported_evaluations: u64,
    /// The lifecycle state: idle, running, parked, closed.
    pub state: &'static str,
    /// Connection id of this process (empty before the first start).
    pub connection_id: String,
    /// Whether this process's running thread started from the start its
    /// parent's thread prepared (see [`Prepared`]).
    pub prepared_start: bool,
}

/// A stop in progress, from [`Lifecycle::stop`].
pub struct Stopping {
    done: Completion<Result<u64, String>>,
    /// The thread, when it was asked to stop: it answers Shutdown right
    /// before it returns.
    thread: Option<NativeThread>,
}

impl Stopping {
    /// A handle on the completion, to wake a waiter (Ruby's unblocking
    /// function).
    pub fn waker(&self) -> Completion<Result<u64, String>> {
        self.done.clone()
    }

    /// Waits at most `timeout` (or until `interrupted` is set and the waker
    /// woken) for the thread to stop; returns the metrics outcome.
    ///
    /// When the thread answered, it is joined before this returns, so a
    /// closed client leaves no thread behind (no native thread of forkflag
    /// in the process once `close` returned, which operators count). The
    /// join is short: answering Shutdown is the thread's last step.
    pub fn wait(
        self,
        timeout: Duration,
        interrupted: &AtomicBool,
    ) -> crate::sync::Waited<Result<u64, String>> {
        let waited = self.done.wait(Some(timeout), interrupted);
        if let (crate::sync::Waited::Done(_), Some(thread)) = (&waited, self.thread) {
            thread.join();
        }
        waited
    }
}

/// The background thread of one client, from the Ruby side.
pub struct Lifecycle {
    engine: Arc<Engine>,
    settings: Arc<Settings>,
    state: State,
    /// Counts from earlier threads of this process (restarts after park).
    carried_refreshes: u64,
    /// The shared state of the last thread this process stopped, so stats
    /// after `park` or `close` still show what it did (with its generation).
    stopped: Option<(u64, Arc<Shared>)>,
    /// A start an ancestor's thread prepared, found after a fork.
    spare: Option<Box<Prepared>>,
}

/// The connection id of one process's thread: a random (version 4) UUID.
///
/// Made without the heap: a forked child makes one on its first
/// evaluation, when every heap page written costs a copy-on-write fault.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConnectionId([u8; 36]);

impl ConnectionId {
    fn random() -> ConnectionId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_mut(4) {
            chunk.copy_from_slice(&crate::process::random::random_u32().to_le_bytes());
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0x0f)];
            at += 2;
        }
        ConnectionId(text)
    }

    /// The id as text (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Lifecycle {
    /// A lifecycle for a client; nothing starts until [`Lifecycle::ensure_running`].
    pub fn new(engine: Arc<Engine>, settings: Settings) -> Lifecycle {
        fork::warm_up();
        Lifecycle {
            engine,
            settings: Arc::new(settings),
            state: State::Idle,
            carried_refreshes: 0,
            stopped: None,
            spare: None,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether this client has a background thread at all (not a static
    /// bootstrap-only client).
    pub fn has_thread(&self) -> bool {
        !matches!(self.settings.source, Source::Static)
    }

    /// Forgets a thread that belongs to another process (we are a forked
    /// child): nothing of it is dropped, joined or shut down; its sockets
    /// are closed with close(2) only.
    pub fn forget_inherited(&mut self) -> bool {
        if matches!(&self.stopped, Some((generation, _)) if *generation != fork::generation()) {
            if let Some((_, shared)) = self.stopped.take() {
                // SAFETY: inherited (its generation differs) and forgotten next.
                self.spare = unsafe { shared.inherited_spare() };
                std::mem::forget(shared);
            }
        }
        let inherited =
            matches!(&self.state, State::Running(rt) if rt.generation != fork::generation());
        if inherited {
            if let State::Running(rt) = std::mem::replace(&mut self.state, State::Idle) {
                // SAFETY: `rt` was started by an ancestor process (its
                // generation differs), so we are a forked child and its
                // sockets are copies of the ancestor's descriptors.
                unsafe { rt.shared.sockets.close_inherited() };
                // SAFETY: as above; `rt` is forgotten next.
                self.spare = unsafe { rt.shared.inherited_spare() };
                std::mem::forget(rt);
            }
            self.carried_refreshes = 0;
        }
        inherited
    }

    /// Starts the thread if it is not running in this process (first use,
    /// after a fork, after `park`). Does nothing once closed.
    pub fn ensure_running(&mut self) {
        self.forget_inherited();
        if !self.has_thread() {
            return;
        }
        match &self.state {
            State::Running(_) | State::Closed => {}
            State::Idle | State::Parked => self.start(),
        }
    }

    fn start(&mut self) {
        let spare = self.spare.take();
        let prepared = spare.is_some();
        let spare = spare.unwrap_or_else(|| Box::new(Prepared::new(&self.engine, &self.settings)));
        // An ancestor made the spare's registry: on its list, not on this
        // process's, which this process's children close at the fork.
        spare.shared.sockets.enlist();
        let _ = spare.shared.connection_id.set(ConnectionId::random());
        match native::spawn(spare) {
            Ok((handle, Started { commands, shared })) => {
                self.state = State::Running(Runtime {
                    prepared,
                    handle,
                    commands,
                    shared,
                    generation: fork::generation(),
                })
            }
            Err((e, started)) => {
                drop(started);
                logging::log(
                    Level::Error,
                    self.settings.client_id,
                    format!("forkflag could not start its background thread: {e}; flags will not refresh"),
                );
                self.state = State::Idle;
            }
        }
    }

    /// Whether a thread of this process is running.
    pub fn is_running(&self) -> bool {
        matches!(&self.state, State::Running(rt) if rt.generation == fork::generation())
    }

    /// Whether [`Lifecycle::close`] was called.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The ready latch of the running thread (starting it if needed).
    pub fn ready_latch(&mut self) -> Option<Completion<()>> {
        self.ensure_running();
        match &self.state {
            State::Running(rt) => Some(rt.shared.ready.clone()),
            _ => None,
        }
    }

    fn send(&mut self, command: Command) -> bool {
        self.ensure_running();
        match &self.state {
            State::Running(rt) => match rt.commands.try_send(command) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            },
            _ => false,
        }
    }

    /// Asks the thread to send the metrics now. `None` when there is no
    /// thread to ask (static client, closed) or it is busy with earlier requests.
    pub fn flush(&mut self) -> Option<Completion<Result<u64, String>>> {
        if !self.settings.metrics_enabled {
            return None;
        }
        let done = Completion::new();
        self.send(Command::Flush(done.clone())).then_some(done)
    }

    /// Asks the thread to refresh now.
    pub fn refresh(&mut self) -> Option<Completion<Result<(), String>>> {
        let done = Completion::new();
        self.send(Command::Refresh(done.clone())).then_some(done)
    }

    /// Stops the thread, after sending the metrics when `flush` is set.
    /// Returns the stop to wait on (bounded by the caller) and leaves the
    /// lifecycle parked (restart on first use) or closed.
    pub fn stop(&mut self, flush: bool, close: bool) -> Option<Stopping> {
        self.forget_inherited();
        let next = if close { State::Closed } else { State::Parked };
        match std::mem::replace(&mut self.state, next) {
            State::Running(rt) => {
                self.carried_refreshes += rt.shared.refreshes.load(Ordering::Relaxed);
                self.stopped = Some((rt.generation, Arc::clone(&rt.shared)));
                let done = Completion::new();
                let sent = rt
                    .commands
                    .try_send(Command::Shutdown {
                        flush: flush && self.settings.metrics_enabled,
                        done: done.clone(),
                    })
                    .is_ok();
                // The thread exits on Shutdown, or when it sees the channel
                // closed. Its handle goes with the stop: joined only once
                // the thread answered Shutdown (its last step), detached
                // otherwise, so a stuck request never blocks the caller
                // beyond its own wait.
                drop(rt.commands);
                let thread = if sent {
                    Some(rt.handle)
                } else {
                    drop(rt.handle);
                    done.set(Ok(0));
                    None
                };
                Some(Stopping { done, thread })
            }
            State::Parked if !close => None,
            State::Parked | State::Idle | State::Closed => None,
        }
    }

    /// Counters for operators.
    pub fn stats(&self) -> Stats {
        let state = match &self.state {
            State::Idle => "idle",
            State::Running(rt) if rt.generation != fork::generation() => "idle",
            State::Running(_) => "running",
            State::Parked => "parked",
            State::Closed => "closed",
        };
        match &self.state {
            State::Running(rt) if rt.generation == fork::generation() => Stats {
                thread_alive: rt.shared.alive.load(Ordering::Relaxed),
                ready: rt.shared.ready.is_set(),
                last_refresh_millis: rt.shared.last_refresh_millis.load(Ordering::Relaxed),
                refreshes: self.carried_refreshes + rt.shared.refreshes.load(Ordering::Relaxed),
                failures: rt.shared.failures.load(Ordering::Relaxed),
                polling_stopped: rt.shared.polling_stopped.load(Ordering::Relaxed),
                reported_evaluations: rt.shared.reported_evaluations.load(Ordering::Relaxed),
                state,
                connection_id: rt.shared.connection_id().to_owned(),
                prepared_start: rt.prepared,
            },
            _ => match &self.stopped {
                Some((generation, shared)) if *generation == fork::generation() => Stats {
                    thread_alive: shared.alive.load(Ordering::Relaxed),
                    ready: shared.ready.is_set(),
                    last_refresh_millis: shared.last_refresh_millis.load(Ordering::Relaxed),
                    refreshes: self.carried_refreshes,
                    failures: shared.failures.load(Ordering::Relaxed),
                    polling_stopped: shared.polling_stopped.load(Ordering::Relaxed),
                    reported_evaluations: shared.reported_evaluations.load(Ordering::Relaxed),
                    state,
                    connection_id: shared.connection_id().to_owned(),
                    prepared_start: false,
                },
                _ => Stats {
                    refreshes: self.carried_refreshes,
                    state,
                    ..Stats::default()
                },
            },
        }
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        if self.forget_inherited() {
            return;
        }
        if let State::Running(rt) = std::mem::replace(&mut self.state, State::Closed) {
            // Dropped without close (the Ruby object was collected): ask the
            // thread to send what it counted and stop; never wait here.
            let _ = rt.commands.try_send(Command::Shutdown {
                flush: self.settings.metrics_enabled,
                done: Completion::new(),
            });
        }
    }
}

/// Reads the backup named in the settings, for a cold start; an error names
/// the file and why it was not loaded (unreadable, unsafe, or invalid).
pub fn load_backup(engine: &Engine, settings: &Settings) -> Result<bool, CoreError> {
    let Some(location) = BackupLocation::of(settings) else {
        return Ok(false);
    };
    match read_backup(&location, settings.max_payload_bytes)? {
        None => Ok(false),
        Some(bytes) => {
            let result = engine.update_json(&bytes, None);
            crate::process::heap::after_update(bytes, &result);
            result.map(|_| true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionId;

    #[test]
    fn a_connection_id_is_a_version_4_uuid_and_a_new_one_each_time() {
        let ids: Vec<ConnectionId> = (0..64).map(|_| ConnectionId::random()).collect();
        for id in &ids {
            let text = id.as_str();
            assert_eq!(text.len(), 36, "{text}");
            for (i, c) in text.char_indices() {
                match i {
                    8 | 13 | 18 | 23 => assert_eq!(c, '-', "{text}"),
                    14 => assert_eq!(c, '4', "{text}"),
                    19 => assert!(matches!(c, '8' | '9' | 'a' | 'b'), "{text}"),
                    _ => assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{text}"),
                }
            }
        }
        for (i, id) in ids.iter().enumerate() {
            assert!(!ids[i + 1..].contains(id), "{id:?} twice");
        }
    }
}
