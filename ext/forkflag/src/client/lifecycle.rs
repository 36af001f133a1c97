//! Lifecycle control: starting this process's background thread (after a
//! fork or `park` too), waiting for readiness, refresh, flush, park and
//! close. Every wait releases the GVL and can be interrupted.

use forkflag_core::process::fork;
use forkflag_core::sync::{Completion, Waited};
use magnus::{prelude::*, Error, RModule, Ruby, Value};

use super::arguments::seconds;
use super::Client;
use crate::guard::guard;
use crate::nogvl;

/// What [`Client::live_epoch`](super::Client) holds when the next
/// evaluation must go through [`Client::wake_up`] whatever the epoch is
/// (after `park`): no epoch reaches it, since the generation would have
/// to count 2^63 forks. It only asks `wake_up` to look; what `wake_up`
/// then does is decided by the lifecycle itself.
pub(super) const LOOK_AGAIN: u64 = u64::MAX;

impl Client {
    /// Starts (or restarts, after a fork or `park`) this process's
    /// background thread unless it runs, and, when `log_thread` is set or
    /// log messages wait, the Ruby thread that hands them to the loggers.
    /// A forked child starts that Ruby thread only once its first message
    /// waits (a Ruby thread costs a forked process more than the rest of
    /// its first evaluation); the client's creator starts it at once, and
    /// so does every process of a client whose headers come from a Proc
    /// (the Ruby thread calls it before each request).
    #[cold]
    pub(super) fn wake_up(&self, ruby: &Ruby, log_thread: bool) -> Result<(), Error> {
        let epoch = fork::epoch();
        // A client whose headers come from a Proc needs the Ruby thread
        // (it calls the Proc) whenever its own thread runs; a client with
        // listeners needs it for their events, even without a thread (its
        // `update`s are events).
        let (active, header_hook) = {
            let mut lifecycle = self.lifecycle.borrow_mut();
            lifecycle.ensure_running();
            (
                (lifecycle.has_thread() || self.engine.events_wanted()) && !lifecycle.is_closed(),
                lifecycle.settings().header_hook,
            )
        };
        if active && (log_thread || header_hook || epoch & fork::ATTENTION != 0) {
            // Cleared first: a message queued from here on raises it again.
            fork::clear_attention();
            let logging: RModule = ruby.define_module("Forkflag")?.const_get("Logging")?;
            let _: Value = logging.funcall("ensure_running", ())?;
        }
        self.mark_started();
        Ok(())
    }

    /// Notes that this process's thread runs (started, or asked to start,
    /// by the caller); a waiting log message still reaches `wake_up`.
    pub(super) fn mark_started(&self) {
        self.live_epoch.set(fork::epoch() & !fork::ATTENTION);
    }

    /// Wakes up what `epoch` (read once per evaluation) says needs it.
    #[inline]
    pub(super) fn check_fork(&self, ruby: &Ruby, epoch: u64) -> Result<(), Error> {
        if self.live_epoch.get() != epoch {
            self.wake_up(ruby, false)?;
        }
        Ok(())
    }

    /// `_start`: starts the thread and the log thread (a new client).
    pub(super) fn start(ruby: &Ruby, rb_self: &Client) -> Result<(), Error> {
        guard(ruby, || rb_self.wake_up(ruby, true))
    }

    /// `ready?`
    pub(super) fn is_ready(&self) -> bool {
        let lifecycle = self.lifecycle.borrow();
        !lifecycle.has_thread() || self.engine.is_synced()
    }

    /// Waits (GVL released, interruptible) until the flags are current.
    pub(super) fn wait_until_ready(
        ruby: &Ruby,
        rb_self: &Client,
        timeout: Option<f64>,
    ) -> Result<bool, Error> {
        if rb_self.is_ready() {
            return Ok(true);
        }
        let latch = guard(ruby, || Ok(rb_self.lifecycle.borrow_mut().ready_latch()))?;
        rb_self.mark_started();
        let Some(latch) = latch else {
            return Ok(rb_self.is_ready());
        };
        let waited = wait_released(ruby, latch, timeout)?;
        Ok(matches!(waited, Waited::Done(())) || rb_self.is_ready())
    }

    /// Sends the metrics now; returns the evaluations reported, or nil when
    /// it did not complete within `timeout`.
    pub(super) fn flush(ruby: &Ruby, rb_self: &Client, timeout: f64) -> Result<Option<u64>, Error> {
        let done = guard(ruby, || Ok(rb_self.lifecycle.borrow_mut().flush()))?;
        rb_self.mark_started();
        let Some(done) = done else {
            return Ok(Some(0));
        };
        Ok(match wait_released(ruby, done, Some(timeout))? {
            Waited::Done(Ok(sent)) => Some(sent),
            _ => None,
        })
    }

    /// Refreshes now; true when the configuration is current.
    pub(super) fn refresh(ruby: &Ruby, rb_self: &Client, timeout: f64) -> Result<bool, Error> {
        let done = guard(ruby, || Ok(rb_self.lifecycle.borrow_mut().refresh()))?;
        rb_self.mark_started();
        let Some(done) = done else {
            return Ok(rb_self.is_ready());
        };
        let waited = wait_released(ruby, done, Some(timeout))?;
        Ok(matches!(waited, Waited::Done(Ok(()))))
    }

    /// Stops the thread (parks, or closes for good), sending the metrics
    /// first when `flush`. Waits at most `timeout`; true when the thread
    /// finished in time.
    pub(super) fn stop(
        ruby: &Ruby,
        rb_self: &Client,
        timeout: f64,
        flush: bool,
        close: bool,
    ) -> Result<bool, Error> {
        let stopping = guard(ruby, || {
            Ok(rb_self.lifecycle.borrow_mut().stop(flush, close))
        })?;
        if close {
            rb_self.mark_started();
        } else {
            // The next evaluation restarts the thread.
            rb_self.live_epoch.set(LOOK_AGAIN);
        }
        let Some(stopping) = stopping else {
            return Ok(true);
        };
        let waker = stopping.waker();
        let waited = nogvl::wait(
            ruby,
            |stop| stopping.wait(seconds(timeout), stop),
            &move || waker.wake(),
        )?;
        Ok(matches!(waited, Waited::Done(_)))
    }
}

/// Waits for a completion with the GVL released; Ctrl-C, Timeout and
/// Thread#kill interrupt the wait.
fn wait_released<T: Clone + Send>(
    ruby: &Ruby,
    done: Completion<T>,
    timeout: Option<f64>,
) -> Result<Waited<T>, Error> {
    let waker = done.clone();
    nogvl::wait(
        ruby,
        |stop| done.wait(timeout.map(seconds), stop),
        &move || waker.wake(),
    )
}
