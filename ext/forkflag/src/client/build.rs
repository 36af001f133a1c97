//! Making a client: the options Hash built by `Forkflag::Config` read into
//! the core's [`Settings`], the TLS configuration checked, and the first
//! configuration loaded (bootstrap, backup or flags file).

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use forkflag_core::engine::file_stamp_of;
use forkflag_core::events::EventSource;
pub(super) use forkflag_core::http::MAX_HEADER_BYTES;
use forkflag_core::http::{
    check_header_name, check_header_value, Endpoint, HeaderProblem, HttpClient, Tls, TlsOptions,
};
use forkflag_core::process::SocketRegistry;
use forkflag_core::runtime::{load_backup, Lifecycle, Origin, Secret, Settings, Source};
use forkflag_core::Engine;
use magnus::rb_sys::AsRawValue;
use magnus::{prelude::*, Error, RHash, Ruby, Symbol, TryConvert, Value};

use super::arguments::seconds;
use super::lifecycle::LOOK_AGAIN;
use super::payload::load_payload;
use super::Client;
use crate::errors::{arg_error, config_error, from_core};
use crate::guard::guard;
use crate::names::NameCache;

/// Reads the options Hash built by `Forkflag::Config#native_options`.
struct Options<'a> {
    ruby: &'a Ruby,
    hash: RHash,
}

impl Options<'_> {
    fn value(&self, key: &str) -> Result<Value, Error> {
        self.hash.aref(self.ruby.to_symbol(key))
    }

    fn string(&self, key: &str) -> Result<Option<String>, Error> {
        Option::<String>::try_convert(self.value(key)?)
    }

    fn required(&self, key: &str) -> Result<String, Error> {
        self.string(key)?
            .ok_or_else(|| arg_error(self.ruby, format!("option :{key} is required")))
    }

    fn seconds(&self, key: &str) -> Result<Duration, Error> {
        Ok(seconds(f64::try_convert(self.value(key)?)?))
    }

    fn flag(&self, key: &str) -> Result<bool, Error> {
        Ok(self.value(key)?.to_bool())
    }
}

/// The server URL parsed by the core; an ArgumentError naming the option
/// and what is wrong with the value.
fn endpoint(ruby: &Ruby, url: &str) -> Result<Endpoint, Error> {
    Endpoint::parse(url).map_err(|e| arg_error(ruby, format!("option :url: {e}")))
}

/// `Forkflag._check_url(url)`: raises the ArgumentError [`Client.new`]
/// would raise for this URL (`Forkflag::Config` checks it at once, in the
/// order of the options).
pub(super) fn check_url(ruby: &Ruby, url: String) -> Result<(), Error> {
    guard(ruby, || endpoint(ruby, &url).map(drop))
}

/// `Forkflag._header_problem(name, value)`: what the core finds wrong with
/// a header name (`nil`: none to check) and a value an option sends in a
/// request line or header: `nil`, `:invalid_name`, `:too_long` or
/// `:control_character`. The Ruby options name the option in the error.
pub(super) fn header_problem(
    ruby: &Ruby,
    name: Option<String>,
    value: String,
) -> Result<Option<Symbol>, Error> {
    guard(ruby, || {
        let problem = match name.as_deref().map(check_header_name) {
            Some(Err(problem)) => Err(problem),
            _ => check_header_value(&value),
        };
        Ok(problem.err().map(|problem| {
            ruby.to_symbol(match problem {
                HeaderProblem::InvalidName => "invalid_name",
                HeaderProblem::TooLong => "too_long",
                HeaderProblem::ControlCharacter => "control_character",
            })
        }))
    })
}

/// `Forkflag._reply_headers(client_id, pairs)`: the headers a client's
/// Proc gave for its next request (`[[name, value], ...]`, checked by the
/// Ruby side; checked again here: ArgumentError for one the core refuses).
pub(super) fn reply_headers(
    ruby: &Ruby,
    client: u64,
    headers: Vec<(String, String)>,
) -> Result<(), Error> {
    guard(ruby, || {
        for (name, value) in &headers {
            if check_header_name(name).is_err() || check_header_value(value).is_err() {
                return Err(arg_error(
                    ruby,
                    format!("custom header {name:?} cannot be sent: a name of letters, digits and -, a value without control characters, at most {MAX_HEADER_BYTES} bytes"),
                ));
            }
        }
        forkflag_core::logging::reply_headers(client, headers);
        Ok(())
    })
}

fn settings_from(opts: &Options<'_>) -> Result<Settings, Error> {
    let ruby = opts.ruby;
    let source = match (opts.string("url")?, opts.string("file")?) {
        (Some(url), _) => Source::Server {
            endpoint: Arc::new(endpoint(ruby, &url)?),
            token: Secret(opts.required("token")?),
        },
        (None, Some(file)) => Source::File(PathBuf::from(file)),
        (None, None) => Source::Static,
    };
    let tls = TlsOptions {
        ca_file: opts.string("tls_ca_file")?.map(PathBuf::from),
        verify: opts.flag("tls_verify")?,
    };
    // Read once, here: the client's threads and forked children share them.
    let tls = match &source {
        Source::Server { endpoint, .. } => {
            Tls::load(endpoint, &tls).map_err(|e| from_core(ruby, e))?
        }
        _ => Tls::plain(),
    };
    let headers: Vec<(String, String)> = Vec::try_convert(opts.value("custom_headers")?)?;
    Ok(Settings {
        client_id: u64::try_convert(opts.value("client_id")?)?,
        source,
        app_name: opts
            .string("app_name")?
            .unwrap_or_else(|| "forkflag".into()),
        instance_id: opts.required("instance_id")?,
        environment: opts.string("environment")?,
        project: opts.string("project")?,
        name_prefix: opts.string("name_prefix")?,
        refresh_interval: opts.seconds("refresh_interval")?,
        metrics_interval: opts.seconds("metrics_interval")?,
        timeout: opts.seconds("timeout")?,
        custom_headers: headers,
        header_hook: opts.flag("header_hook")?,
        backup_path: opts.string("backup_path")?.map(PathBuf::from),
        metrics_enabled: !opts.flag("disable_metrics")?,
        tls,
        max_payload_bytes: usize::try_convert(opts.value("max_payload_bytes")?)?,
        sdk: opts.required("sdk")?,
        user_agent: opts.required("user_agent")?,
        platform_name: opts.required("platform_name")?,
        platform_version: opts.required("platform_version")?,
    })
}

/// The sampling threshold of a rate (0.0 to 1.0, checked by the Ruby
/// side): an evaluation is instrumented when a random `u32` is below it;
/// 0 is off, `1 << 32` every evaluation.
fn sample_threshold(rate: f64) -> u64 {
    if rate.is_nan() || rate <= 0.0 {
        0
    } else {
        (rate.min(1.0) * (1u64 << 32) as f64).ceil() as u64
    }
}

impl Client {
    /// Builds the native client from options validated by `Forkflag::Config`.
    pub(super) fn build(ruby: &Ruby, options: RHash) -> Result<Client, Error> {
        guard(ruby, || {
            let opts = Options {
                ruby,
                hash: options,
            };
            let strategies = opts.value("strategies")?;
            let strategies = (!strategies.is_nil()).then_some(strategies);
            let names: Vec<String> = match strategies {
                Some(s) => Vec::try_convert(s.funcall("names", ())?)?,
                None => Vec::new(),
            };
            let engine = Arc::new(Engine::with_custom_strategies(
                names.iter().map(|n| Arc::from(n.as_str())).collect(),
            ));
            let mut warnings = Vec::new();
            let settings = settings_from(&opts)?;
            let sample = sample_threshold(f64::try_convert(opts.value("instrument_evaluations")?)?);
            if let Source::Server { endpoint, .. } = &settings.source {
                // Reject an unusable TLS configuration now, not in the thread.
                HttpClient::new(
                    (**endpoint).clone(),
                    &settings.tls,
                    settings.timeout,
                    settings.max_payload_bytes,
                    Arc::new(SocketRegistry::new()),
                )
                .map_err(|e| from_core(ruby, e))?;
            }
            let bootstrap = opts.string("bootstrap")?;
            // Events wanted from the start (ActiveSupport is loaded): the
            // first configuration is one too.
            engine.set_events_wanted(opts.value("events")?.to_bool());
            if bootstrap.is_none() {
                if let Err(e) = load_backup(&engine, &settings) {
                    warnings.push(format!("ignoring the backup file: {e}"));
                }
            }
            let client_id = settings.client_id;
            let origin = |source| Origin {
                client: client_id,
                source,
            };
            if let Some(json) = bootstrap {
                load_payload(&engine, json, &mut warnings, origin(EventSource::Bootstrap))
                    .map_err(|e| config_error(ruby, format!("bootstrap: {e}")))?;
            }
            if let Source::File(path) = &settings.source {
                // Taken before reading: a change in between reads again.
                let stamp = std::fs::metadata(path).map(|m| file_stamp_of(&m));
                let bytes = std::fs::read(path).map_err(|e| {
                    config_error(
                        ruby,
                        format!("cannot read flags file {}: {e}", path.display()),
                    )
                })?;
                load_payload(&engine, bytes, &mut warnings, origin(EventSource::File)).map_err(
                    |e| config_error(ruby, format!("flags file {}: {e}", path.display())),
                )?;
                if let Ok(stamp) = stamp {
                    engine.set_file_stamp(stamp);
                }
            }
            Ok(Client {
                snapshots: RefCell::new(engine.cache()),
                names: NameCache::new(),
                lifecycle: RefCell::new(Lifecycle::new(Arc::clone(&engine), settings)),
                engine,
                live_epoch: Cell::new(LOOK_AGAIN),
                impressions: Cell::new(false),
                general_only: Cell::new(strategies.is_some() || sample > 0),
                sample,
                id: client_id,
                warnings: RefCell::new(warnings),
                strategies: strategies.map(|s| s.as_raw()),
            })
        })
    }
}
