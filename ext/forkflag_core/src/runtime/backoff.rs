//! The failure bookkeeping the poller and the metrics reporter share: how
//! far the next attempt is pushed back, which failure is being reported
//! (so the log shows a failure when it starts or changes, and the recovery,
//! never once per retry), and whether the server refused for good.
//!
//! Like the other Unleash SDKs: each failure adds one interval to the wait
//! (`interval * (1 + failures)`, failures counted up to [`MAX_FAILURES`]),
//! each success takes one away; no jitter.

use std::time::Duration;

/// Most consecutive failures counted: the wait is at most eleven intervals.
pub(crate) const MAX_FAILURES: u32 = 10;

/// One background task's failures.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// The failures the wait counts: one more per failure, one fewer per
    /// success, at most [`MAX_FAILURES`].
    failures: u32,
    /// Failures since the last success (what listeners are told).
    streak: u32,
    /// The failure being reported, to report only changes.
    failing: Option<String>,
    /// The server refused for good (401/403): no more attempts.
    refused: bool,
}

impl Backoff {
    /// No failures yet.
    pub(crate) fn new() -> Backoff {
        Backoff::default()
    }

    /// Failures since the last success, this one included: 1 for the
    /// first failure after a success, and so on without a cap.
    pub(crate) fn streak(&self) -> u32 {
        self.streak
    }

    /// Time until the next attempt: `interval`, stretched by failures.
    pub(crate) fn delay(&self, interval: Duration) -> Duration {
        interval.saturating_mul(1 + self.failures)
    }

    /// Records a success: one failure fewer. Returns the failure that was
    /// being reported, if any, for the caller to log the recovery.
    pub(crate) fn succeeded(&mut self) -> Option<String> {
        self.failures = self.failures.saturating_sub(1);
        self.streak = 0;
        self.failing.take()
    }

    /// Records a failure that pushes the next attempt back. Returns whether
    /// `why` is news (not the failure already reported), for the caller to
    /// log it.
    pub(crate) fn failed(&mut self, why: &str) -> bool {
        self.failures = (self.failures + 1).min(MAX_FAILURES);
        self.streak = self.streak.saturating_add(1);
        self.note(why)
    }

    /// Notes a failure that does not push the next attempt back (a
    /// registration the next report retries). Returns whether it is news.
    pub(crate) fn note(&mut self, why: &str) -> bool {
        if self.failing.as_deref() == Some(why) {
            return false;
        }
        self.failing = Some(why.to_owned());
        true
    }

    /// Records that the server refused for good.
    pub(crate) fn refuse(&mut self) {
        self.streak = self.streak.saturating_add(1);
        self.refused = true;
    }

    /// Whether the server refused for good.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn each_failure_adds_an_interval_up_to_eleven_and_each_success_takes_one_away() {
        let mut backoff = Backoff::new();
        assert_eq!(backoff.delay(MINUTE), MINUTE);
        backoff.failed("HTTP 500");
        backoff.failed("HTTP 500");
        assert_eq!(backoff.delay(MINUTE), 3 * MINUTE);
        for _ in 0..20 {
            backoff.failed("HTTP 500");
        }
        assert_eq!(backoff.delay(MINUTE), 11 * MINUTE);
        backoff.succeeded();
        assert_eq!(backoff.delay(MINUTE), 10 * MINUTE);
        for _ in 0..20 {
            backoff.succeeded();
        }
        assert_eq!(backoff.delay(MINUTE), MINUTE);
    }

    #[test]
    fn a_failure_is_news_when_it_starts_or_changes_and_its_end_is_told_once() {
        let mut backoff = Backoff::new();
        assert_eq!(backoff.succeeded(), None, "nothing was failing");
        assert!(backoff.failed("HTTP 500"));
        assert!(!backoff.failed("HTTP 500"), "the same failure again");
        assert!(backoff.failed("HTTP 502"), "another failure");
        assert_eq!(backoff.succeeded(), Some("HTTP 502".to_owned()));
        assert_eq!(backoff.succeeded(), None, "the recovery is told once");
        assert!(backoff.failed("HTTP 502"), "failing again is news");
    }

    #[test]
    fn a_noted_failure_is_reported_but_does_not_push_back() {
        let mut backoff = Backoff::new();
        assert!(backoff.note("registration failed"));
        assert!(!backoff.note("registration failed"));
        assert_eq!(backoff.delay(MINUTE), MINUTE);
        assert_eq!(backoff.succeeded(), Some("registration failed".to_owned()));
    }

    #[test]
    fn the_streak_counts_every_failure_since_the_last_success() {
        let mut backoff = Backoff::new();
        for _ in 0..25 {
            backoff.failed("HTTP 500");
        }
        assert_eq!(backoff.streak(), 25, "not capped as the wait is");
        backoff.succeeded();
        assert_eq!(backoff.streak(), 0, "a success ends it");
        backoff.failed("HTTP 500");
        assert_eq!(backoff.streak(), 1);
        backoff.note("registration failed");
        assert_eq!(backoff.streak(), 1, "a noted failure is not counted");
        backoff.refuse();
        assert_eq!(backoff.streak(), 2, "a refusal is a failure");
    }

    #[test]
    fn a_refusal_is_kept() {
        let mut backoff = Backoff::new();
        assert!(!backoff.refused());
        backoff.refuse();
        backoff.succeeded();
        assert!(backoff.refused());
    }

    #[test]
    fn a_huge_interval_saturates() {
        let mut backoff = Backoff::new();
        backoff.failed("down");
        assert_eq!(backoff.delay(Duration::MAX), Duration::MAX);
    }
}
