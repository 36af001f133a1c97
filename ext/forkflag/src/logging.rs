//! `Forkflag._wait_logs`: where the Ruby log thread waits for messages (and
//! events) from the background threads, with the GVL released.

use std::time::Duration;

use forkflag_core::events::Event;
use forkflag_core::logging::{self, Record};
use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{function, prelude::*, Error, RArray, Ruby, Value};

use crate::nogvl;
use crate::protect::protect;

/// Waits up to `timeout` seconds for log records; returns
/// `[[level, client_id, message], ...]` (empty on timeout or interrupt).
/// An event's record is `[:event, client_id, data]`, data being
/// `[:refresh, source, etag, flags, duration, at_ms, added, changed, removed, initial]`
/// or `[:error, source, kind, message, status, failures, at_ms, initial]`.
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
                third(ruby, r),
            ]);
            // SAFETY: two live Arrays, under protect.
            unsafe { rb_sys::rb_ary_push(out.as_raw(), entry.as_raw()) };
        }
        out.as_raw()
    })?;
    // SAFETY: the Array made above, held on this stack.
    Ok(unsafe { RArray::from_value(Value::from_raw(out)).expect("an Array") })
}

/// A record's message, or its event's data. Allocates: called under
/// protect only.
fn third(ruby: &Ruby, record: &Record) -> Value {
    let names = |names: &[String]| {
        ruby.ary_from_iter(names.iter().map(|n| ruby.str_new(n)))
            .as_value()
    };
    let symbol = |name: &str| ruby.to_symbol(name).as_value();
    let optional = |text: Option<&str>| {
        text.map_or_else(|| ruby.qnil().as_value(), |t| ruby.str_new(t).as_value())
    };
    match record.event.as_deref() {
        None => ruby.into_value(record.message.as_str()),
        Some(Event::Refreshed {
            source,
            etag,
            flags,
            duration,
            at_millis,
            changes,
            initial,
        }) => ruby
            .ary_from_iter([
                symbol("refresh"),
                symbol(source.name()),
                optional(etag.as_deref()),
                ruby.into_value(*flags),
                ruby.into_value(duration.as_secs_f64()),
                ruby.into_value(*at_millis),
                names(&changes.added),
                names(&changes.changed),
                names(&changes.removed),
                ruby.into_value(*initial),
            ])
            .as_value(),
        Some(Event::Failed {
            source,
            fault,
            failures,
            at_millis,
            initial,
        }) => ruby
            .ary_from_iter([
                symbol("error"),
                symbol(source.name()),
                symbol(fault.kind.name()),
                ruby.str_new(&fault.message).as_value(),
                fault
                    .status
                    .map_or_else(|| ruby.qnil().as_value(), |s| ruby.into_value(s)),
                ruby.into_value(*failures),
                ruby.into_value(*at_millis),
                ruby.into_value(*initial),
            ])
            .as_value(),
    }
}

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("Forkflag")?;
    // Private: called by lib/forkflag/logging.rb only.
    module
        .singleton_class()?
        .define_private_method("_wait_logs", function!(wait_logs, 1))?;
    Ok(())
}
