//! `Forkflag::Context`: a context converted once and reused for many
//! evaluations (one per request, say).

use std::net::IpAddr;

use forkflag_core::context::KEYS;
use forkflag_core::time::try_format_millis;
use forkflag_core::{Context, CurrentTime, Field, OwnedContext};
use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::{function, method, prelude::*, Error, RHash, Ruby, Value};

use crate::errors::{arg_error, describe, type_error};
use crate::guard::guard;
use crate::hash_context::{
    slot_of, static_symbol, time_of, with_value_text, BeyondMillis, PROPERTIES_KEY,
};

/// The key `Forkflag::Context.new` gives the current time under.
const CURRENT_TIME_KEY: &str = KEYS[slot_of(&Field::CurrentTime)].1;

/// A prebuilt context.
#[magnus::wrap(class = "Forkflag::Context", free_immediately, size)]
pub struct RubyContext {
    fields: OwnedContext,
    current_time_millis: Option<i64>,
    remote_ip: Option<IpAddr>,
}

impl Context for RubyContext {
    #[inline]
    fn with_field<R>(&self, field: &Field, f: impl FnOnce(Option<&str>) -> R) -> R {
        self.fields.with_field(field, f)
    }

    #[inline]
    fn current_time(&self) -> CurrentTime {
        self.current_time_millis
            .map_or(CurrentTime::Now, CurrentTime::At)
    }

    #[inline]
    fn remote_ip(&self) -> Option<IpAddr> {
        self.remote_ip
    }
}

/// The text of a value (see [`with_value_text`]); what stopped the read
/// goes to `failure` (the first error only).
fn text_of(value: Value, failure: &mut Option<Error>) -> Option<String> {
    with_value_text(
        value.as_raw(),
        |e| {
            failure.get_or_insert(e);
        },
        |t| t.map(str::to_owned),
    )
}

impl RubyContext {
    /// Builds a context from a Hash whose keys were validated in Ruby.
    fn build(ruby: &Ruby, hash: RHash) -> Result<RubyContext, Error> {
        guard(ruby, || {
            let field_value =
                |name: &str| -> Result<Value, Error> { hash.aref(ruby.to_symbol(name)) };
            let given_time = field_value(CURRENT_TIME_KEY)?;
            let current_time_millis = match time_of(given_time.as_raw(), BeyondMillis::Reject)? {
                CurrentTime::Now => None,
                CurrentTime::At(ms) => Some(ms),
                CurrentTime::Unreadable => {
                    return Err(arg_error(
                        ruby,
                        format!(
                            "current_time must be a Time or an ISO-8601 String such as \
                             \"2024-05-01T12:00:00Z\", got {}",
                            describe(given_time)
                        ),
                    ));
                }
            };
            let mut failure = None;
            let mut fields = OwnedContext {
                current_time: current_time_millis.and_then(try_format_millis),
                ..OwnedContext::default()
            };
            for (field, snake, _) in KEYS {
                let slot = match field {
                    Field::UserId => &mut fields.user_id,
                    Field::SessionId => &mut fields.session_id,
                    Field::RemoteAddress => &mut fields.remote_address,
                    Field::Environment => &mut fields.environment,
                    Field::AppName => &mut fields.app_name,
                    // Read above, as a time.
                    Field::CurrentTime | Field::Property(_) => continue,
                };
                *slot = text_of(field_value(snake)?, &mut failure);
            }
            let properties = &mut fields.properties;
            let props: Value = field_value(PROPERTIES_KEY)?;
            if !props.is_nil() {
                let props = RHash::from_value(props).ok_or_else(|| {
                    type_error(
                        ruby,
                        format!("properties must be a Hash, got {}", describe(props)),
                    )
                })?;
                props.foreach(|k: Value, v: Value| {
                    let key = if let Some(s) = magnus::RString::from_value(k) {
                        s.to_string()?
                    } else if let Some(s) = magnus::Symbol::from_value(k) {
                        s.name()?.into_owned()
                    } else {
                        return Err(type_error(
                            ruby,
                            format!(
                                "property names must be Strings or Symbols, got {}",
                                describe(k)
                            ),
                        ));
                    };
                    if let Some(value) = text_of(v, &mut failure) {
                        properties.insert(key, value);
                    }
                    Ok(magnus::r_hash::ForEach::Continue)
                })?;
            }
            if let Some(error) = failure {
                return Err(error);
            }
            let remote_ip = fields
                .remote_address
                .as_deref()
                .and_then(|a| a.trim().parse().ok());
            Ok(RubyContext {
                fields,
                current_time_millis,
                remote_ip,
            })
        })
    }

    fn user_id(&self) -> Option<String> {
        self.fields.user_id.clone()
    }

    fn session_id(&self) -> Option<String> {
        self.fields.session_id.clone()
    }

    fn remote_address(&self) -> Option<String> {
        self.fields.remote_address.clone()
    }

    fn environment(&self) -> Option<String> {
        self.fields.environment.clone()
    }

    fn app_name(&self) -> Option<String> {
        self.fields.app_name.clone()
    }

    fn current_time_ms(&self) -> Option<i64> {
        self.current_time_millis
    }

    fn properties(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        let h = ruby.hash_new();
        for (k, v) in &rb_self.fields.properties {
            h.aset(k.as_str(), v.as_str())?;
        }
        h.freeze();
        Ok(h)
    }
}

/// `Forkflag::Context::KEYS`: every spelling of a field's key (the core's
/// table, and `properties`) => its snake_case keyword, frozen.
fn keys(ruby: &Ruby) -> Result<RHash, Error> {
    // SAFETY: at load time, on the Ruby thread.
    let symbol = |name: &str| unsafe { Value::from_raw(static_symbol(name)) };
    let keys = ruby.hash_new();
    for (_, snake, camel) in KEYS {
        keys.aset(symbol(snake), symbol(snake))?;
        keys.aset(symbol(camel), symbol(snake))?;
    }
    keys.aset(symbol(PROPERTIES_KEY), symbol(PROPERTIES_KEY))?;
    keys.freeze();
    Ok(keys)
}

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let class = crate::native_class(ruby, "Context")?;
    class.const_set("KEYS", keys(ruby)?)?;
    class
        .singleton_class()?
        .define_private_method("_build", function!(RubyContext::build, 1))?;
    class.define_method("user_id", method!(RubyContext::user_id, 0))?;
    class.define_method("session_id", method!(RubyContext::session_id, 0))?;
    class.define_method("remote_address", method!(RubyContext::remote_address, 0))?;
    class.define_method("environment", method!(RubyContext::environment, 0))?;
    class.define_method("app_name", method!(RubyContext::app_name, 0))?;
    class.define_private_method("_current_time_ms", method!(RubyContext::current_time_ms, 0))?;
    class.define_method("properties", method!(RubyContext::properties, 0))?;
    Ok(())
}
