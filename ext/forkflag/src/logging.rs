//! `Forkflag._wait_logs`: where the Ruby log thread waits for messages from
//! the background threads, with the GVL released.

use std::time::Duration;

use forkflag_core::logging;
use magnus::{function, prelude::*, Error, RArray, Ruby};

use crate::nogvl;

/// Waits up to `timeout` seconds for log records; returns
/// `[[level, client_id, message], ...]` (empty on timeout or interrupt).
fn wait_logs(ruby: &Ruby, timeout: f64) -> Result<RArray, Error> {
    let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::from_secs(60));
    let records = nogvl::wait(ruby, |stop| logging::wait(timeout, stop), &logging::wake)?;
    let out = ruby.ary_new();
    for r in records {
        let entry = ruby.ary_new();
        entry.push(ruby.to_symbol(r.level.name()))?;
        entry.push(r.client)?;
        entry.push(r.message)?;
        out.push(entry)?;
    }
    Ok(out)
}

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("Forkflag")?;
    module.define_singleton_method("_wait_logs", function!(wait_logs, 1))?;
    Ok(())
}
