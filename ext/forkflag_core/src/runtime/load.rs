//! Loading payload text into an engine: the one sequence every load site
//! runs (the poller, the backup at a cold start, and the binding's
//! bootstrap, flags file and `Client#update`).

use std::time::{Duration, Instant};

use crate::engine::{Engine, UpdateOutcome};
use crate::events::{Event, EventSource, FailureKind, Fault};
use crate::logging::{self, Level};
use crate::process::heap;
use crate::time::now_millis;
use crate::CoreError;

use super::{read_backup, BackupLocation, Settings};

/// Which client loads a payload, and from where: whom its event is for.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// Id of the client (as in log records).
    pub client: u64,
    /// Where the payload came from.
    pub source: EventSource,
}

/// Applies payload text (a full client-features document or delta events)
/// to `engine`, then drops the text and gives back the heap its parsing
/// freed ([`heap::after_update`]). A payload that cannot be read leaves the
/// configuration as it was. The outcome carries the payload's warnings,
/// for the caller to pass on (the log, or the Ruby side's warnings). When
/// someone listens to the engine, a loaded payload queues its event (the
/// poller queues its own, timed from the request).
pub fn load<B: AsRef<[u8]>>(
    engine: &Engine,
    payload: B,
    etag: Option<&str>,
    origin: Origin,
) -> Result<UpdateOutcome, CoreError> {
    let started = Instant::now();
    let outcome = load_and(engine, payload, etag, |_| {})?;
    if let Some(changes) = &outcome.changes {
        tell_loaded(engine, origin, outcome.flags, started.elapsed(), changes);
    }
    Ok(outcome)
}

/// Queues the event of a payload loaded from `origin`.
fn tell_loaded(
    engine: &Engine,
    origin: Origin,
    flags: usize,
    duration: Duration,
    changes: &crate::snapshot::Changes,
) {
    logging::event(
        origin.client,
        Event::Refreshed {
            source: origin.source,
            etag: engine.etag(),
            flags,
            duration,
            at_millis: now_millis(),
            changes: changes.clone(),
            // Every source but `update` loads through here only while the
            // client is created (the poller tells its own loads).
            initial: origin.source != EventSource::Update,
        },
    );
}

/// [`load`], calling `changed` with the payload text when it replaced the
/// configuration, before the text is dropped (the poller keeps a backup of
/// it).
pub(crate) fn load_and<B: AsRef<[u8]>>(
    engine: &Engine,
    payload: B,
    etag: Option<&str>,
    changed: impl FnOnce(&[u8]),
) -> Result<UpdateOutcome, CoreError> {
    let result = engine.update_json(payload.as_ref(), etag);
    if matches!(&result, Ok(outcome) if outcome.changed) {
        changed(payload.as_ref());
    }
    heap::after_update(payload, &result);
    result
}

/// Logs a payload's warnings as the background thread reports them.
pub(crate) fn log_warnings(client_id: u64, warnings: Vec<String>) {
    for warning in warnings {
        logging::log(Level::Warn, client_id, format!("forkflag: {warning}"));
    }
}

/// Queues the event of a backup not loaded (`initial`: at a cold start)
/// or not written, when someone listens to the engine.
pub(crate) fn tell_backup_failed(engine: &Engine, client: u64, message: String, initial: bool) {
    if engine.events_wanted() {
        logging::event(
            client,
            Event::failed_once(
                EventSource::Backup,
                Fault::new(FailureKind::Backup, message),
                initial,
            ),
        );
    }
}

/// Reads the backup named in the settings, for a cold start; an error names
/// the file and why it was not loaded (unreadable, unsafe, or invalid),
/// and is an event for the client's listeners too.
pub fn load_backup(engine: &Engine, settings: &Settings) -> Result<bool, CoreError> {
    let Some(location) = BackupLocation::of(settings) else {
        return Ok(false);
    };
    let origin = Origin {
        client: settings.client_id,
        source: EventSource::Backup,
    };
    let result = read_backup(&location, settings.max_payload_bytes).and_then(|read| {
        read.map(|bytes| load(engine, bytes, None, origin))
            .transpose()
    });
    match result {
        Ok(loaded) => Ok(loaded.is_some()),
        Err(e) => {
            tell_backup_failed(
                engine,
                settings.client_id,
                match &e {
                    // (An I/O error names the file itself.)
                    CoreError::InvalidPayload(_) => format!(
                        "ignoring the backup file {}: {e}",
                        location.path().display()
                    ),
                    _ => format!("ignoring the backup file: {e}"),
                },
                true,
            );
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: Origin = Origin {
        client: 1,
        source: EventSource::Update,
    };

    const ONE_FLAG: &str = r#"{"version":1,"features":[{"name":"a","enabled":true,
        "strategies":[{"name":"default"}]}]}"#;

    #[test]
    fn a_load_applies_the_payload_and_tells_a_change_once() {
        let engine = Engine::new();
        let mut seen = Vec::new();
        let outcome = load_and(&engine, ONE_FLAG, Some("\"v1\""), |bytes| {
            seen.push(bytes.len())
        })
        .expect("a valid payload");
        assert!(outcome.changed);
        assert_eq!(outcome.flags, 1);
        assert_eq!(seen, [ONE_FLAG.len()]);
        assert_eq!(engine.etag().as_deref(), Some("\"v1\""));
        let again = load_and(&engine, String::from(ONE_FLAG), None, |_| {
            panic!("the same payload is no change")
        })
        .expect("still valid");
        assert!(!again.changed);
    }

    #[test]
    fn a_payload_that_cannot_be_read_keeps_the_configuration() {
        let engine = Engine::new();
        load(&engine, ONE_FLAG, None, ORIGIN).expect("a valid payload");
        let error = load_and(&engine, Vec::from(&b"{not json"[..]), None, |_| {
            panic!("nothing changed")
        });
        assert!(error.is_err());
        assert_eq!(engine.load().len(), 1);
    }
}
