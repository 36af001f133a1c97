//! Small synchronisation helpers for waits that a Ruby thread makes with the
//! GVL released: every wait is bounded and can be interrupted from another
//! thread (Ruby's unblocking function).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The longest wait forkflag schedules (about 31 years): a time further
/// ahead (a huge interval, a server's keep-alive time-out) waits this long.
pub const LONGEST_WAIT: Duration = Duration::from_secs(1_000_000_000);

/// The instant `wait` from now, never past [`LONGEST_WAIT`] from now (an
/// `Instant` plus a huge duration would overflow, and panic).
pub fn after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait.min(LONGEST_WAIT)).unwrap_or(now)
}

/// A value that one thread sets once and others wait for.
#[derive(Debug)]
pub struct Completion<T> {
    inner: Arc<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    value: Mutex<Option<T>>,
    changed: Condvar,
}

impl<T> Clone for Completion<T> {
    fn clone(&self) -> Self {
        Completion {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Default for Completion<T> {
    fn default() -> Self {
        Completion::new()
    }
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited<T> {
    /// The value arrived.
    Done(T),
    /// The time ran out.
    TimedOut,
    /// Another thread interrupted the wait.
    Interrupted,
}

impl<T> Completion<T> {
    /// A completion not yet set.
    pub fn new() -> Completion<T> {
        Completion {
            inner: Arc::new(Inner {
                value: Mutex::new(None),
                changed: Condvar::new(),
            }),
        }
    }

    /// Sets the value (a later set replaces it) and wakes the waiters.
    pub fn set(&self, value: T) {
        let mut slot = self
            .inner
            .value
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(value);
        self.inner.changed.notify_all();
    }

    /// Whether the value is set.
    pub fn is_set(&self) -> bool {
        self.inner
            .value
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Wakes the waiters so they look at `interrupted` (used by Ruby's
    /// unblocking function).
    pub fn wake(&self) {
        let _slot = self
            .inner
            .value
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.inner.changed.notify_all();
    }

    /// Waits for the value, at most `timeout` (`None`: no limit), returning
    /// early when `interrupted` becomes true and [`Completion::wake`] is called.
    pub fn wait(&self, timeout: Option<Duration>, interrupted: &AtomicBool) -> Waited<T>
    where
        T: Clone,
    {
        let deadline = timeout.map(after);
        let mut slot = self
            .inner
            .value
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(v) = slot.as_ref() {
                return Waited::Done(v.clone());
            }
            if interrupted.load(Ordering::SeqCst) {
                return Waited::Interrupted;
            }
            slot = match deadline {
                None => self
                    .inner
                    .changed
                    .wait(slot)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Waited::TimedOut;
                    }
                    self.inner
                        .changed
                        .wait_timeout(slot, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_past_what_the_clock_holds_is_a_long_wait() {
        assert!(after(Duration::MAX) > Instant::now());
        let done = Completion::new();
        done.set(1u8);
        let flag = AtomicBool::new(false);
        assert_eq!(done.wait(Some(Duration::MAX), &flag), Waited::Done(1));
        let never: Completion<u8> = Completion::new();
        let interrupted = AtomicBool::new(true);
        assert_eq!(
            never.wait(Some(Duration::MAX), &interrupted),
            Waited::Interrupted
        );
    }

    #[test]
    fn waits_for_the_value_times_out_and_is_interruptible() {
        let c: Completion<u32> = Completion::new();
        let flag = AtomicBool::new(false);
        assert_eq!(
            c.wait(Some(Duration::from_millis(10)), &flag),
            Waited::TimedOut
        );

        let setter = c.clone();
        let t = std::thread::spawn(move || setter.set(7));
        assert_eq!(
            c.wait(Some(Duration::from_secs(10)), &flag),
            Waited::Done(7)
        );
        t.join().unwrap();

        let c: Completion<u32> = Completion::new();
        let flag = Arc::new(AtomicBool::new(false));
        let (waker, f2) = (c.clone(), Arc::clone(&flag));
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            f2.store(true, Ordering::SeqCst);
            waker.wake();
        });
        assert_eq!(c.wait(None, &flag), Waited::Interrupted);
        t.join().unwrap();
    }
}
