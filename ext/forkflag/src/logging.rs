//! `Forkflag._wait_logs`: where the Ruby log thread waits for messages from
//! the background threads, with the GVL released.

use std::time::Duration;

use forkflag_core::logging;
use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{function, prelude::*, Error, RArray, Ruby, Value};

use crate::nogvl;
use crate::protect::protect;

/// Waits up to `timeout` seconds for log records; returns
/// `[[level, client_id, message], ...]` (empty on timeout or interrupt).
fn wait_logs(ruby: &Ruby, timeout: f64) -> Result<RArray, Error> {
    let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::from_secs(60));
    let records = nogvl::wait(ruby, |stop| logging::wait(timeout, stop), &logging::wake)?;
    let records = &records[..];
    // Allocations (NoMemoryError) while the records are held: under
    // protect, which the closure's plain borrows allow.
    let out = protect(|| {
        let out = ruby.ary_new_capa(records.len());
        for r in records {
            let entry = ruby.ary_from_iter([
                ruby.to_symbol(r.level.name()).as_value(),
                ruby.into_value(r.client),
                ruby.into_value(r.message.as_str()),
            ]);
            // SAFETY: two live Arrays, under protect.
            unsafe { rb_sys::rb_ary_push(out.as_raw(), entry.as_raw()) };
        }
        out.as_raw()
    })?;
    // SAFETY: the Array made above, held on this stack.
    Ok(unsafe { RArray::from_value(Value::from_raw(out)).expect("an Array") })
}

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("Forkflag")?;
    // Private: called by lib/forkflag/logging.rb only.
    module
        .singleton_class()?
        .define_private_method("_wait_logs", function!(wait_logs, 1))?;
    Ok(())
}
