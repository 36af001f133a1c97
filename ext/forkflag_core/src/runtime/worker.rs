//! The background thread's loop: poll, report, answer commands.
//!
//! The thread never touches the Ruby VM. It ends on a Shutdown command or
//! when the client side goes away (its channel closes).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::poll::Poller;
use super::report::Reporter;
use super::shared::Shared;
use super::{Command, Settings, Source};
use crate::engine::Engine;
use crate::http::HttpClient;
use crate::logging::{self, Level};
use crate::sync::after;

/// Longest sleep when there is nothing scheduled (polling stopped, no metrics).
const IDLE: Duration = Duration::from_secs(3600);

/// One client's background thread.
pub(crate) struct Worker {
    engine: Arc<Engine>,
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    inbox: Receiver<Command>,
}

/// Marks the thread dead however it ends.
struct AliveFlag(Arc<Shared>);

impl Drop for AliveFlag {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Relaxed);
    }
}

impl Worker {
    pub(crate) fn new(
        engine: Arc<Engine>,
        settings: Arc<Settings>,
        shared: Arc<Shared>,
        inbox: Receiver<Command>,
    ) -> Worker {
        Worker {
            engine,
            settings,
            shared,
            inbox,
        }
    }

    fn http_client(&self) -> Option<HttpClient> {
        let Source::Server { endpoint, .. } = &self.settings.source else {
            return None;
        };
        match HttpClient::new(
            (**endpoint).clone(),
            &self.settings.tls,
            self.settings.timeout,
            self.settings.max_payload_bytes,
            Arc::clone(&self.shared.sockets),
        ) {
            Ok(http) => Some(http),
            Err(e) => {
                logging::log(
                    Level::Error,
                    self.settings.client_id,
                    format!("forkflag: {e}; the client cannot reach the server"),
                );
                None
            }
        }
    }

    pub(crate) fn run(self) {
        let _alive = AliveFlag(Arc::clone(&self.shared));
        let settings = &*self.settings;
        let engine = &*self.engine;
        let shared = &*self.shared;
        let mut http = self.http_client();
        let mut poller = Poller::new(settings);
        let mut reporter = Reporter::new();
        let metrics = settings.metrics_enabled && matches!(settings.source, Source::Server { .. });

        // The first thing a (re)started thread does is a conditional refresh.
        let mut next_poll = Instant::now();
        let mut next_report = after(settings.metrics_interval);
        loop {
            let now = Instant::now();
            let mut wake = if poller.stopped() {
                now + IDLE
            } else {
                next_poll
            };
            if metrics {
                wake = wake.min(next_report);
            }
            match self.inbox.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(Command::Flush(done)) => {
                    done.set(reporter.report(http.as_mut(), engine, settings, shared));
                }
                Ok(Command::Refresh(done)) => {
                    let outcome = poller.poll(http.as_mut(), engine, settings, shared);
                    next_poll = after(poller.delay(settings));
                    done.set(outcome.failure());
                }
                Ok(Command::Shutdown { flush, done }) => {
                    let result = if flush {
                        reporter.report(http.as_mut(), engine, settings, shared)
                    } else {
                        Ok(0)
                    };
                    if let Some(http) = http.as_mut() {
                        http.disconnect();
                    }
                    done.set(result);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if !poller.stopped() && now >= next_poll {
                poller.poll(http.as_mut(), engine, settings, shared);
                next_poll = after(poller.delay(settings));
            }
            if metrics && now >= next_report {
                let _ = reporter.report(http.as_mut(), engine, settings, shared);
                next_report = after(reporter.delay(settings));
            }
        }
    }
}
