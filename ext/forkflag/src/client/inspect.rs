//! What a client tells about itself: its counters (`stats`), the names and
//! the number of its flags.

use forkflag_core::process::fork;
use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{prelude::*, Error, RArray, RHash, Ruby, Value};

use super::arguments::name_type_error;
use super::lookup::name_bytes;
use super::Client;
use crate::guard::guard;
use crate::protect::protect;
use crate::variant::interned;

impl Client {
    /// `flag_names`: the names of the loaded flags, sorted.
    pub(super) fn flag_names(ruby: &Ruby, rb_self: &Client) -> Result<RArray, Error> {
        guard(ruby, || {
            let snapshot = rb_self.engine.load();
            let names = snapshot.names();
            let names = &names[..];
            // Allocations (NoMemoryError) while the snapshot is held: under
            // protect, which the closure's plain borrows allow.
            let array = protect(|| {
                let array = ruby.ary_new_capa(names.len());
                for name in names {
                    // SAFETY: a live Array and a live String, under protect.
                    unsafe { rb_sys::rb_ary_push(array.as_raw(), interned(ruby, name).as_raw()) };
                }
                array.as_raw()
            })?;
            // SAFETY: the Array made above, held on this stack.
            Ok(unsafe { RArray::from_value(Value::from_raw(array)).expect("an Array") })
        })
    }

    /// `known?(name)`: whether the loaded flags include one of this name
    /// (a String or Symbol). Counts nothing.
    pub(super) fn is_known(ruby: &Ruby, rb_self: &Client, name: Value) -> Result<bool, Error> {
        match name_bytes(&name) {
            Some(bytes) => Ok(rb_self.engine.load().index_of(bytes).is_some()),
            None => Err(name_type_error(ruby, name)),
        }
    }

    /// `_flag_count`: the number of loaded flags (`inspect`).
    pub(super) fn flag_count(&self) -> usize {
        self.engine.load().len()
    }

    /// `_stats`: the lifecycle's counters, with readiness, the number of
    /// flags and the fork generation.
    pub(super) fn stats(ruby: &Ruby, rb_self: &Client) -> Result<RHash, Error> {
        let stats = rb_self.lifecycle.borrow().stats();
        let stats = &stats;
        let ready = rb_self.is_ready();
        let flags = rb_self.flag_count();
        // Allocations (NoMemoryError) while `stats` is held: under protect,
        // which the closure's plain borrows allow.
        let h = protect(|| {
            let h = ruby.hash_new();
            let set = |key: &str, value: Value| {
                // SAFETY: a live Hash, a Symbol key and a live value, under
                // protect.
                unsafe {
                    rb_sys::rb_hash_aset(h.as_raw(), ruby.to_symbol(key).as_raw(), value.as_raw())
                };
            };
            set("state", ruby.to_symbol(stats.state).as_value());
            set("thread_alive", ruby.into_value(stats.thread_alive));
            set("ready", ruby.into_value(ready));
            set(
                "last_refresh_ms",
                ruby.into_value(stats.last_refresh_millis),
            );
            set("refreshes", ruby.into_value(stats.refreshes));
            set("failures", ruby.into_value(stats.failures));
            set(
                "refresh_delay_ms",
                ruby.into_value(stats.refresh_delay_millis),
            );
            set("polling_stopped", ruby.into_value(stats.polling_stopped));
            set(
                "reported_evaluations",
                ruby.into_value(stats.reported_evaluations),
            );
            set(
                "connection_id",
                ruby.into_value(stats.connection_id.as_str()),
            );
            set("flags", ruby.into_value(flags));
            set("fork_generation", ruby.into_value(fork::generation()));
            h.as_raw()
        })?;
        // SAFETY: the Hash made above, held on this stack.
        Ok(unsafe { RHash::from_value(Value::from_raw(h)).expect("a Hash") })
    }
}
