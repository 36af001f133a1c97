//! Keeping the configuration fresh: conditional GETs of the server's
//! client-features with backoff, or re-reading a file when it changes.
//!
//! Failures are logged when the poller starts failing, when the kind of
//! failure changes, and when it recovers; never once per retry.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::load::{load_and, log_warnings, tell_backup_failed};
use super::shared::Shared;
use super::{write_backup, BackupLocation, Settings, Source};
use crate::engine::Engine;
use crate::events::{Event, EventSource, FailureKind, Fault};
use crate::http::{HttpClient, Request};
use crate::logging::{self, Level};
use crate::snapshot::Changes;
use crate::time::now_millis;
use crate::CoreError;

/// Longest time between two looks at a watched file.
const FILE_CHECK: Duration = Duration::from_secs(1);

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The configuration is current (new, or unchanged).
    Current(Fresh),
    /// Something failed; the configuration stays as it was.
    Failed(Fault),
    /// The server refused the token: polling stops.
    Refused(Fault),
}

/// How a poll found the configuration current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fresh {
    /// A payload was loaded: the flags it has, and what it changed (when
    /// someone listens).
    Loaded {
        flags: usize,
        changes: Option<Changes>,
    },
    /// The server answered 304 Not Modified.
    NotModified,
    /// Nothing was asked (an unchanged file, a static configuration).
    Unasked,
}

impl Outcome {
    /// A failure's message, for the one who asked for the refresh.
    pub(crate) fn failure(self) -> Result<(), String> {
        match self {
            Outcome::Current(_) => Ok(()),
            Outcome::Failed(fault) | Outcome::Refused(fault) => Err(fault.message),
        }
    }
}

/// The poller's state.
pub(crate) struct Poller {
    backoff: Backoff,
    features_path: String,
    backup: Option<BackupLocation>,
    /// Whether the last backup write failed (reported then, not again
    /// until one succeeds).
    backup_failing: bool,
}

/// `application/x-www-form-urlencoded` escaping for query values.
pub(crate) fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Poller {
    pub(crate) fn new(settings: &Settings) -> Poller {
        let mut query = Vec::new();
        if let Some(p) = &settings.project {
            query.push(format!("project={}", query_escape(p)));
        }
        if let Some(p) = &settings.name_prefix {
            query.push(format!("namePrefix={}", query_escape(p)));
        }
        let features_path = if query.is_empty() {
            "/client/features".to_owned()
        } else {
            format!("/client/features?{}", query.join("&"))
        };
        Poller {
            backoff: Backoff::new(),
            features_path,
            // Only a server's payloads are kept: a flags file is its own backup.
            backup: match settings.source {
                Source::Server { .. } => BackupLocation::of(settings),
                _ => None,
            },
            backup_failing: false,
        }
    }

    /// Whether polling stopped for good.
    pub(crate) fn stopped(&self) -> bool {
        self.backoff.refused()
    }

    /// Time until the next poll: the interval, stretched by failures.
    pub(crate) fn delay(&self, settings: &Settings) -> Duration {
        match settings.source {
            Source::File(_) => settings.refresh_interval.min(FILE_CHECK),
            _ => self.backoff.delay(settings.refresh_interval),
        }
    }

    /// Polls once.
    pub(crate) fn poll(
        &mut self,
        http: Option<&mut HttpClient>,
        engine: &Engine,
        settings: &Settings,
        shared: &Shared,
    ) -> Outcome {
        if self.backoff.refused() {
            return Outcome::Refused(Fault::new(FailureKind::Refused, "polling stopped"));
        }
        let started = Instant::now();
        let outcome = match (&settings.source, http) {
            (Source::Server { .. }, Some(http)) => self.fetch(http, engine, settings, shared),
            (Source::Server { .. }, None) => Outcome::Refused(Fault::new(
                FailureKind::Connection,
                "the HTTP client could not be created",
            )),
            (Source::File(path), _) => self.read_file(path, engine, settings),
            (Source::Static, _) => Outcome::Current(Fresh::Unasked),
        };
        let duration = started.elapsed();
        if matches!(outcome, Outcome::Current(_)) {
            engine.mark_synced();
        }
        self.record(&outcome, settings, shared);
        if engine.events_wanted() {
            self.tell(&outcome, duration, engine, settings);
        }
        outcome
    }

    /// Queues the event of a poll for the client's listeners.
    fn tell(&self, outcome: &Outcome, duration: Duration, engine: &Engine, settings: &Settings) {
        let source = match settings.source {
            Source::File(_) => EventSource::File,
            _ => EventSource::Server,
        };
        let event = match outcome {
            Outcome::Current(Fresh::Unasked) => return,
            Outcome::Current(fresh) => {
                let (flags, changes) = match fresh {
                    Fresh::Loaded { flags, changes } => (*flags, changes.clone()),
                    _ => (engine.load().len(), None),
                };
                Event::Refreshed {
                    source,
                    etag: engine.etag(),
                    flags,
                    duration,
                    at_millis: now_millis(),
                    changes: changes.unwrap_or_default(),
                    initial: false,
                }
            }
            Outcome::Failed(fault) | Outcome::Refused(fault) => Event::Failed {
                source,
                fault: fault.clone(),
                failures: self.backoff.streak(),
                at_millis: now_millis(),
                initial: false,
            },
        };
        logging::event(settings.client_id, event);
    }

    fn record(&mut self, outcome: &Outcome, settings: &Settings, shared: &Shared) {
        let id = settings.client_id;
        match outcome {
            Outcome::Current(_) => {
                if let Some(was) = self.backoff.succeeded() {
                    logging::log(
                        // Warn, like the failure it ends: whoever saw that one
                        // (the default logger shows WARN and up) sees this.
                        Level::Warn,
                        id,
                        format!("forkflag: refresh recovered (it was failing: {was})"),
                    );
                }
                shared.refreshes.fetch_add(1, Ordering::Relaxed);
                shared
                    .last_refresh_millis
                    .store(now_millis(), Ordering::Relaxed);
                shared.ready.set(());
            }
            Outcome::Failed(Fault { message: why, .. }) => {
                if self.backoff.failed(why) {
                    logging::log(
                        Level::Error,
                        id,
                        format!(
                            "forkflag: refresh failed: {why}; evaluating with the last good configuration, \
                             retrying with backoff"
                        ),
                    );
                }
            }
            Outcome::Refused(Fault { message: why, .. }) => {
                self.backoff.refuse();
                shared.polling_stopped.store(true, Ordering::Relaxed);
                logging::log(
                    Level::Error,
                    id,
                    format!("forkflag: {why}; polling stopped, evaluating with the last good configuration"),
                );
            }
        }
        shared
            .failures
            .store(self.backoff.streak(), Ordering::Relaxed);
        let delay = u64::try_from(self.delay(settings).as_millis()).unwrap_or(u64::MAX);
        shared.refresh_delay_millis.store(delay, Ordering::Relaxed);
    }

    fn fetch(
        &mut self,
        http: &mut HttpClient,
        engine: &Engine,
        settings: &Settings,
        shared: &Shared,
    ) -> Outcome {
        let Source::Server { endpoint, token } = &settings.source else {
            return Outcome::Current(Fresh::Unasked);
        };
        let etag = engine.etag();
        let interval = settings.refresh_interval.as_millis().to_string();
        let custom = super::report::request_headers(settings);
        let mut headers = super::report::common_headers(
            settings,
            custom.as_deref().map(Vec::as_slice),
            token,
            &interval,
            shared.connection_id(),
        );
        if let Some(etag) = etag.as_deref() {
            headers.push(("If-None-Match", etag));
        }
        let request = Request {
            method: "GET",
            path: &self.features_path,
            headers: &headers,
            body: None,
        };
        let url = endpoint.display_url(&self.features_path);
        let response = match http.request(&request) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(Fault::unanswered("GET", &url, &e)),
        };
        match response.status {
            200 => {
                let etag = response.header("etag").map(str::to_owned);
                match self.load(engine, settings, response.body, etag.as_deref()) {
                    Ok(fresh) => Outcome::Current(fresh),
                    Err(e) => Outcome::Failed(Fault::new(
                        FailureKind::InvalidPayload,
                        format!("GET {url}: {e}"),
                    )),
                }
            }
            304 => Outcome::Current(Fresh::NotModified),
            status @ (401 | 403) => Outcome::Refused(Fault::status(
                status,
                format!(
                    "the Unleash server refused the token (HTTP {status}) for GET {url}; check that \
                     it is a client (backend) token for this environment"
                ),
            )),
            status => Outcome::Failed(Fault::status(status, format!("GET {url}: HTTP {status}"))),
        }
    }

    /// Loads a payload the source sent, keeps a backup of it when it is
    /// new, and logs its warnings.
    fn load(
        &mut self,
        engine: &Engine,
        settings: &Settings,
        payload: Vec<u8>,
        etag: Option<&str>,
    ) -> Result<Fresh, CoreError> {
        let outcome = load_and(engine, payload, etag, |payload| {
            self.save_backup(payload, settings, engine)
        })?;
        log_warnings(settings.client_id, outcome.warnings);
        Ok(Fresh::Loaded {
            flags: outcome.flags,
            changes: outcome.changes,
        })
    }

    fn save_backup(&mut self, payload: &[u8], settings: &Settings, engine: &Engine) {
        let Some(location) = &self.backup else {
            return;
        };
        match write_backup(location, payload) {
            Ok(()) => self.backup_failing = false,
            Err(e) => {
                if !self.backup_failing {
                    logging::log(
                        Level::Warn,
                        settings.client_id,
                        format!("forkflag: the backup file is not updated: {e}"),
                    );
                    tell_backup_failed(
                        engine,
                        settings.client_id,
                        format!("the backup file is not updated: {e}"),
                        false,
                    );
                }
                self.backup_failing = true;
            }
        }
    }

    fn read_file(&mut self, path: &Path, engine: &Engine, settings: &Settings) -> Outcome {
        let unreadable = |e: std::io::Error| {
            Outcome::Failed(Fault::new(
                FailureKind::File,
                format!("cannot read flags file {}: {e}", path.display()),
            ))
        };
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return unreadable(e),
        };
        let stamp = crate::engine::file_stamp_of(&meta);
        if engine.file_stamp() == Some(stamp) {
            return Outcome::Current(Fresh::Unasked);
        }
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) => return unreadable(e),
        };
        match self.load(engine, settings, bytes, None) {
            Ok(fresh) => {
                engine.set_file_stamp(stamp);
                Outcome::Current(fresh)
            }
            Err(e) => Outcome::Failed(Fault::new(
                FailureKind::InvalidPayload,
                format!("flags file {}: {e}", path.display()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_query_values() {
        assert_eq!(query_escape("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(query_escape("plain-name_1.0~"), "plain-name_1.0~");
    }
}
