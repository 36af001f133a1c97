//! Payloads loaded on a Ruby thread (bootstrap, flags file, `update`), and
//! the warnings they leave for the Ruby side to log.

use forkflag_core::events::EventSource;
use forkflag_core::runtime::{self, Origin};
use forkflag_core::{CoreError, Engine};
use magnus::{Error, RString, Ruby};

use super::Client;
use crate::errors::from_core;
use crate::guard::guard;

/// Loads payload text into `engine` the way every payload is loaded
/// ([`runtime::load`]: the update, then the heap given back after a large
/// payload, `json` dropped first when it is owned), and adds the payload's
/// warnings to `warnings`. Returns the number of flags now loaded; on an
/// error the configuration stays. `origin` is whom the load's event is for.
pub(super) fn load_payload<B: AsRef<[u8]>>(
    engine: &Engine,
    json: B,
    warnings: &mut Vec<String>,
    origin: Origin,
) -> Result<usize, CoreError> {
    let outcome = runtime::load(engine, json, None, origin)?;
    warnings.extend(outcome.warnings);
    Ok(outcome.flags)
}

impl Client {
    /// Replaces the configuration with payload text (tests, bootstrap
    /// overrides). Raises `Forkflag::ConfigError` and keeps the current
    /// configuration when the text is not a valid payload.
    pub(super) fn update(ruby: &Ruby, rb_self: &Client, json: RString) -> Result<usize, Error> {
        guard(ruby, || {
            // SAFETY: load_payload copies what it needs and calls no Ruby
            // code, so the String's bytes stay as they are meanwhile.
            let bytes = unsafe { json.as_slice() };
            let mut warnings = rb_self.warnings.borrow_mut();
            let origin = Origin {
                client: rb_self.id,
                source: EventSource::Update,
            };
            load_payload(&rb_self.engine, bytes, &mut warnings, origin)
                .map_err(|e| from_core(ruby, e))
        })
    }

    /// Problems found in loaded payloads since the last call, each reported
    /// once per configuration.
    pub(super) fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.borrow_mut())
    }
}
