//! [`Lifecycle`]: a client's background thread as the Ruby side drives it
//! (under the GVL): started on first use, parked, closed, and forgotten in
//! a forked child, where the thread does not exist. There the handle, the
//! channel and the shared state are forgotten, never dropped or joined,
//! the inherited sockets are closed with close(2) only, and a new thread
//! starts on first use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::shared::Shared;
use super::thread;
use super::worker::Worker;
use super::{Command, Settings, Source};
use crate::engine::Engine;
use crate::logging::{self, Level};
use crate::process::fork;
use crate::sync::{Completion, Waited};

/// Counters for operators (`ForkSafe.stats`, `Client#stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Whether the thread is running in this process.
    pub thread_alive: bool,
    /// Whether the flags are current.
    pub ready: bool,
    /// Milliseconds since the epoch of the last successful refresh (0: never).
    pub last_refresh_millis: i64,
    /// Successful refreshes by this process's threads.
    pub refreshes: u64,
    /// Poller failures since its last success.
    pub failures: u32,
    /// The poller's wait after its last attempt, in milliseconds (the
    /// refresh interval, stretched while it backs off; 0: no attempt yet).
    pub refresh_delay_millis: u64,
    /// Whether polling stopped for good.
    pub polling_stopped: bool,
    /// Evaluations this process reported to the server.
    pub reported_evaluations: u64,
    /// The lifecycle state: idle, running, parked, closed.
    pub state: &'static str,
    /// Connection id of this process (empty before the first start).
    pub connection_id: String,
}

/// A stop in progress, from [`Lifecycle::stop`].
pub struct Stopping {
    done: Completion<Result<u64, String>>,
    /// The thread, when it was asked to stop: it answers Shutdown right
    /// before it returns.
    thread: Option<JoinHandle<()>>,
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
    pub fn wait(self, timeout: Duration, interrupted: &AtomicBool) -> Waited<Result<u64, String>> {
        let waited = self.done.wait(Some(timeout), interrupted);
        if let (Waited::Done(_), Some(thread)) = (&waited, self.thread) {
            let _ = thread.join();
        }
        waited
    }
}

/// What the Ruby side asked of the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    /// Run on use (from the first evaluation, and again after a fork).
    Run,
    /// Stopped on purpose; run again on first use.
    Park,
    /// Closed for good.
    Close,
}

/// The latest thread started in this process (or, until the first use
/// after a fork, in an ancestor).
struct Thread {
    /// The fork generation of the process that started it.
    generation: u64,
    shared: Arc<Shared>,
    /// Its handle and channel while it runs; `None` once asked to stop.
    running: Option<Running>,
}

struct Running {
    handle: JoinHandle<()>,
    commands: SyncSender<Command>,
}

impl Thread {
    fn is_inherited(&self) -> bool {
        self.generation != fork::generation()
    }
}

/// The background thread of one client, from the Ruby side.
pub struct Lifecycle {
    engine: Arc<Engine>,
    settings: Arc<Settings>,
    intent: Intent,
    /// The latest thread; kept once stopped so stats after `park` or
    /// `close` still show what it did.
    thread: Option<Thread>,
}

impl Lifecycle {
    /// A lifecycle for a client; nothing starts until [`Lifecycle::ensure_running`].
    pub fn new(engine: Arc<Engine>, settings: Settings) -> Lifecycle {
        fork::warm_up();
        Lifecycle {
            engine,
            settings: Arc::new(settings),
            intent: Intent::Run,
            thread: None,
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
    /// child): nothing of it is dropped, joined or shut down; the sockets
    /// of one that was running are closed with close(2) only. Returns
    /// whether it was running.
    pub fn forget_inherited(&mut self) -> bool {
        if !self.thread.as_ref().is_some_and(Thread::is_inherited) {
            return false;
        }
        let Some(thread) = self.thread.take() else {
            return false;
        };
        let running = thread.running.is_some();
        if running {
            // SAFETY: the thread was started by an ancestor process (its
            // generation differs), so we are a forked child and its
            // sockets are copies of the ancestor's descriptors.
            unsafe { thread.shared.sockets.close_inherited() };
        }
        std::mem::forget(thread);
        running
    }

    /// Starts the thread if it is not running in this process (first use,
    /// after a fork, after `park`). Does nothing once closed.
    pub fn ensure_running(&mut self) {
        self.forget_inherited();
        if !self.has_thread() || self.intent == Intent::Close || self.is_running() {
            return;
        }
        self.intent = Intent::Run;
        self.start();
    }

    fn start(&mut self) {
        // A restart after `park` counts on from the thread it replaces.
        let refreshes = self
            .thread
            .as_ref()
            .map_or(0, |t| t.shared.refreshes.load(Ordering::Relaxed));
        let shared = Arc::new(Shared::new(refreshes));
        let (commands, inbox) = sync_channel(16);
        let worker = Worker::new(
            Arc::clone(&self.engine),
            Arc::clone(&self.settings),
            Arc::clone(&shared),
            inbox,
        );
        match thread::spawn(worker) {
            Ok(handle) => {
                self.thread = Some(Thread {
                    generation: fork::generation(),
                    shared,
                    running: Some(Running { handle, commands }),
                });
            }
            Err(e) => logging::log(
                Level::Error,
                self.settings.client_id,
                format!(
                    "forkflag could not start its background thread: {e}; flags will not refresh"
                ),
            ),
        }
    }

    /// This process's running thread, if any.
    fn running(&self) -> Option<(&Shared, &Running)> {
        let thread = self.thread.as_ref().filter(|t| !t.is_inherited())?;
        Some((&thread.shared, thread.running.as_ref()?))
    }

    /// Whether a thread of this process is running.
    pub fn is_running(&self) -> bool {
        self.running().is_some()
    }

    /// Whether [`Lifecycle::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.intent == Intent::Close
    }

    /// The ready latch of the running thread (starting it if needed).
    pub fn ready_latch(&mut self) -> Option<Completion<()>> {
        self.ensure_running();
        self.running().map(|(shared, _)| shared.ready.clone())
    }

    fn send(&mut self, command: Command) -> bool {
        self.ensure_running();
        self.running()
            .is_some_and(|(_, running)| running.commands.try_send(command).is_ok())
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
    /// lifecycle parked (restart on first use) or closed; a closed one
    /// stays closed.
    pub fn stop(&mut self, flush: bool, close: bool) -> Option<Stopping> {
        self.forget_inherited();
        if close {
            self.intent = Intent::Close;
        } else if self.intent != Intent::Close {
            self.intent = Intent::Park;
        }
        let running = self.thread.as_mut()?.running.take()?;
        let done = Completion::new();
        let sent = running
            .commands
            .try_send(Command::Shutdown {
                flush: flush && self.settings.metrics_enabled,
                done: done.clone(),
            })
            .is_ok();
        // The thread exits on Shutdown, or when it sees the channel closed.
        // Its handle goes with the stop: joined only once the thread
        // answered Shutdown (its last step), detached otherwise, so a stuck
        // request never blocks the caller beyond its own wait.
        drop(running.commands);
        let thread = if sent {
            Some(running.handle)
        } else {
            done.set(Ok(0));
            None
        };
        Some(Stopping { done, thread })
    }

    /// Counters for operators.
    pub fn stats(&self) -> Stats {
        let thread = self.thread.as_ref().filter(|t| !t.is_inherited());
        let state = match self.intent {
            Intent::Close => "closed",
            Intent::Park => "parked",
            Intent::Run if self.is_running() => "running",
            Intent::Run => "idle",
        };
        let Some(Thread { shared, .. }) = thread else {
            return Stats {
                state,
                ..Stats::default()
            };
        };
        Stats {
            thread_alive: shared.alive.load(Ordering::Relaxed),
            ready: shared.ready.is_set(),
            last_refresh_millis: shared.last_refresh_millis.load(Ordering::Relaxed),
            refreshes: shared.refreshes.load(Ordering::Relaxed),
            failures: shared.failures.load(Ordering::Relaxed),
            refresh_delay_millis: shared.refresh_delay_millis.load(Ordering::Relaxed),
            polling_stopped: shared.polling_stopped.load(Ordering::Relaxed),
            reported_evaluations: shared.reported_evaluations.load(Ordering::Relaxed),
            state,
            connection_id: shared.connection_id().to_owned(),
        }
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        self.forget_inherited();
        if let Some(running) = self.thread.as_mut().and_then(|t| t.running.take()) {
            // Dropped without close (the Ruby object was collected): ask the
            // thread to send what it counted and stop; never wait here.
            let _ = running.commands.try_send(Command::Shutdown {
                flush: self.settings.metrics_enabled,
                done: Completion::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lifecycle watching a one-flag file, and the file's directory.
    fn watching_a_file() -> (Lifecycle, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("forkflag-lifecycle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("flags.json");
        std::fs::write(
            &file,
            r#"{"version":1,"features":[{"name":"a","enabled":true}]}"#,
        )
        .unwrap();
        let settings = Settings {
            refresh_interval: Duration::from_secs(3600),
            metrics_enabled: false,
            ..Settings::for_test(Source::File(file))
        };
        (Lifecycle::new(Arc::new(Engine::new()), settings), dir)
    }

    fn stop(lifecycle: &mut Lifecycle, close: bool) {
        let stopping = lifecycle.stop(false, close).expect("a thread to stop");
        let waited = stopping.wait(Duration::from_secs(5), &AtomicBool::new(false));
        assert!(matches!(waited, Waited::Done(Ok(0))));
    }

    #[test]
    fn park_keeps_the_counts_a_restart_counts_on_and_close_is_for_good() {
        let (mut lifecycle, dir) = watching_a_file();
        assert_eq!(lifecycle.stats().state, "idle");
        let ready = lifecycle.ready_latch().expect("a thread");
        let forever = AtomicBool::new(false);
        assert!(matches!(
            ready.wait(Some(Duration::from_secs(5)), &forever),
            Waited::Done(())
        ));
        let first = lifecycle.stats();
        assert_eq!((first.state, first.refreshes), ("running", 1));
        assert!(first.thread_alive && first.ready);

        stop(&mut lifecycle, false);
        let parked = lifecycle.stats();
        assert_eq!((parked.state, parked.refreshes), ("parked", 1));
        assert_eq!(parked.connection_id, first.connection_id);

        lifecycle.ensure_running();
        let restarted = lifecycle.stats();
        assert_eq!(restarted.state, "running");
        assert!(restarted.refreshes >= 1, "counts on: {restarted:?}");
        assert_ne!(restarted.connection_id, first.connection_id);

        stop(&mut lifecycle, true);
        assert!(
            lifecycle.stop(false, false).is_none(),
            "nothing left to stop"
        );
        lifecycle.ensure_running();
        assert_eq!(lifecycle.stats().state, "closed", "park after close");
        assert!(!lifecycle.is_running());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
