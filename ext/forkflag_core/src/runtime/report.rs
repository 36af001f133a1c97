//! Usage reporting: `POST /api/client/register` once per process, then a
//! metrics bucket every interval.
//!
//! Counts are taken out of the snapshot counters (this fork generation's
//! only) into a pending tally; a failed POST keeps them for the next attempt,
//! up to [`MAX_ATTEMPTS`] attempts, after which they are dropped with a warning.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::backoff::Backoff;
use super::shared::Shared;
use super::{Secret, Settings, Source};
use crate::compile::BUILT_IN_STRATEGIES;
use crate::engine::Engine;
use crate::events::{Event, EventSource, FailureKind, Fault};
use crate::http::{HttpClient, Request};
use crate::logging::{self, Level};
use crate::process::fork;
use crate::snapshot::{tag_for, Tally};
use crate::time::{format_millis, now_millis};
use crate::CLIENT_SPEC_VERSION;

/// Attempts after which unsent counts are dropped.
pub(crate) const MAX_ATTEMPTS: u32 = 10;

/// Longest wait for the application's headers before a request (then the
/// latest ones it gave are sent).
const HEADER_WAIT: Duration = Duration::from_secs(2);

/// The extra headers of one request: asked of the application when it
/// gives them per request ([`Settings::header_hook`]), else the configured
/// ones.
pub(crate) fn request_headers(settings: &Settings) -> Option<Arc<Vec<(String, String)>>> {
    if !settings.header_hook {
        return None;
    }
    logging::fetch_headers(settings.client_id, settings.timeout.min(HEADER_WAIT))
}

/// Headers every request to the server carries: the protocol's, then the
/// extra ones (`custom`: those of [`request_headers`], else the configured
/// ones). An extra `Authorization` replaces the token's.
pub(crate) fn common_headers<'a>(
    settings: &'a Settings,
    custom: Option<&'a [(String, String)]>,
    token: &'a Secret,
    interval_ms: &'a str,
    connection_id: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let custom = custom.unwrap_or(&settings.custom_headers);
    let mut headers = Vec::with_capacity(8 + custom.len());
    if !custom
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("Authorization"))
    {
        headers.push(("Authorization", token.0.as_str()));
    }
    headers.extend([
        ("Unleash-Client-Spec", CLIENT_SPEC_VERSION),
        ("UNLEASH-APPNAME", settings.app_name.as_str()),
        ("UNLEASH-INSTANCEID", settings.instance_id.as_str()),
        ("UNLEASH-CONNECTION-ID", connection_id),
        ("UNLEASH-INTERVAL", interval_ms),
        ("UNLEASH-SDK", settings.sdk.as_str()),
        ("User-Agent", settings.user_agent.as_str()),
    ]);
    for (k, v) in custom {
        headers.push((k.as_str(), v.as_str()));
    }
    headers
}

/// The reporter's state.
pub(crate) struct Reporter {
    registered: bool,
    pending: Tally,
    bucket_start: i64,
    attempts: u32,
    backoff: Backoff,
    started: i64,
}

impl Reporter {
    pub(crate) fn new() -> Reporter {
        let now = now_millis();
        Reporter {
            registered: false,
            pending: Tally::default(),
            bucket_start: now,
            attempts: 0,
            backoff: Backoff::new(),
            started: now,
        }
    }

    /// Time until the next report: the interval, stretched by failures.
    pub(crate) fn delay(&self, settings: &Settings) -> Duration {
        self.backoff.delay(settings.metrics_interval)
    }

    fn post(
        &mut self,
        http: &mut HttpClient,
        settings: &Settings,
        shared: &Shared,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(), Fault> {
        let Source::Server { endpoint, token } = &settings.source else {
            return Ok(());
        };
        let interval = settings.metrics_interval.as_millis().to_string();
        let custom = request_headers(settings);
        let mut headers = common_headers(
            settings,
            custom.as_deref().map(Vec::as_slice),
            token,
            &interval,
            shared.connection_id(),
        );
        headers.push(("Content-Type", "application/json"));
        let body = serde_json::to_vec(body)
            .map_err(|e| Fault::new(FailureKind::InvalidPayload, e.to_string()))?;
        let url = endpoint.display_url(path);
        let request = Request {
            method: "POST",
            path,
            headers: &headers,
            body: Some(&body),
        };
        match http.request(&request) {
            Ok(r) if (200..300).contains(&r.status) => Ok(()),
            Ok(r) => Err(Fault::status(
                r.status,
                format!("POST {url}: HTTP {}", r.status),
            )),
            Err(e) => Err(Fault::unanswered("POST", &url, &e)),
        }
    }

    fn register(
        &mut self,
        http: &mut HttpClient,
        settings: &Settings,
        shared: &Shared,
        engine: &Engine,
    ) {
        // The strategies this client evaluates: the built-in ones and the
        // application's.
        let strategies: Vec<&str> = BUILT_IN_STRATEGIES
            .iter()
            .copied()
            .chain(engine.custom_strategies().iter().map(|name| &**name))
            .collect();
        let body = json!({
            "appName": settings.app_name,
            "instanceId": settings.instance_id,
            "connectionId": shared.connection_id(),
            "sdkVersion": settings.sdk,
            "strategies": strategies,
            "started": format_millis(self.started),
            "interval": settings.metrics_interval.as_millis() as u64,
            "environment": settings.environment,
            "platformName": settings.platform_name,
            "platformVersion": settings.platform_version,
            "specVersion": CLIENT_SPEC_VERSION,
        });
        match self.post(http, settings, shared, "/client/register", &body) {
            Ok(()) => self.registered = true,
            Err(fault) => {
                let why = format!("registration failed: {}", fault.message);
                if self.backoff.note(&why) {
                    log_failure(settings, &why);
                }
            }
        }
    }

    /// Registers if needed, then sends this process's counts. Returns how
    /// many evaluations were reported.
    pub(crate) fn report(
        &mut self,
        http: Option<&mut HttpClient>,
        engine: &Engine,
        settings: &Settings,
        shared: &Shared,
    ) -> Result<u64, String> {
        let Some(http) = http else {
            return Ok(0);
        };
        if self.backoff.refused() {
            return Err("metrics stopped: the server refused the token".into());
        }
        if !self.registered {
            self.register(http, settings, shared, engine);
        }
        let fresh = engine.take_tally(tag_for(fork::generation()));
        self.pending.merge(&fresh);
        if self.pending.is_empty() {
            return Ok(0);
        }
        let stop = now_millis().max(self.bucket_start);
        let body = json!({
            "appName": settings.app_name,
            "instanceId": settings.instance_id,
            "connectionId": shared.connection_id(),
            "environment": settings.environment,
            "sdkVersion": settings.sdk,
            "platformName": settings.platform_name,
            "platformVersion": settings.platform_version,
            "specVersion": CLIENT_SPEC_VERSION,
            "bucket": {
                "start": format_millis(self.bucket_start),
                "stop": format_millis(stop),
                "toggles": self.pending.toggles,
            },
        });
        match self.post(http, settings, shared, "/client/metrics", &body) {
            Ok(()) => {
                let sent = self.pending.evaluations();
                shared
                    .reported_evaluations
                    .fetch_add(sent, Ordering::Relaxed);
                self.pending = Tally::default();
                self.bucket_start = stop;
                self.attempts = 0;
                if let Some(was) = self.backoff.succeeded() {
                    logging::log(
                        // Warn, like the failure it ends: whoever saw that one
                        // (the default logger shows WARN and up) sees this.
                        Level::Warn,
                        settings.client_id,
                        format!("forkflag: metrics recovered (they were failing: {was})"),
                    );
                }
                Ok(sent)
            }
            Err(fault) => {
                self.attempts += 1;
                let why = fault.message.clone();
                if fault.kind == FailureKind::Refused {
                    self.backoff.refuse();
                    logging::log(
                        Level::Error,
                        settings.client_id,
                        format!("forkflag: {why}: the server refused the token; metrics stopped"),
                    );
                } else {
                    let failure =
                        format!("metrics failed: {why}; counts kept for the next attempt");
                    if self.backoff.failed(&failure) {
                        log_failure(settings, &failure);
                    }
                }
                if engine.events_wanted() {
                    logging::event(
                        settings.client_id,
                        Event::Failed {
                            source: EventSource::Metrics,
                            fault,
                            failures: self.backoff.streak(),
                            at_millis: now_millis(),
                            initial: false,
                        },
                    );
                }
                if self.attempts >= MAX_ATTEMPTS || self.backoff.refused() {
                    let lost = self.pending.evaluations();
                    logging::log(
                        Level::Warn,
                        settings.client_id,
                        format!(
                            "forkflag: dropped the counts of {lost} evaluations after {} failed attempts",
                            self.attempts
                        ),
                    );
                    self.pending = Tally::default();
                    self.bucket_start = stop;
                    self.attempts = 0;
                }
                Err(why)
            }
        }
    }
}

/// Logs a failure of the reporter (a warning: metrics are not flags).
fn log_failure(settings: &Settings, why: &str) {
    logging::log(Level::Warn, settings.client_id, format!("forkflag: {why}"));
}
