//! What evaluation asks of a context.
//!
//! Evaluation reads context fields lazily and only the ones a flag needs, so a
//! binding can answer from its own representation (a Ruby Hash, say) without
//! converting the whole context first. [`OwnedContext`] is the plain Rust one.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::time::parse_timestamp_millis;

/// A context field that constraints, stickiness and overrides can name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// `userId`
    UserId,
    /// `sessionId`
    SessionId,
    /// `remoteAddress`
    RemoteAddress,
    /// `environment`
    Environment,
    /// `appName`
    AppName,
    /// `currentTime`
    CurrentTime,
    /// Any other name: a custom property (the name is shared by every use
    /// of it in a snapshot).
    Property(Arc<str>),
}

impl Field {
    /// Maps a field name of the Unleash API to a field.
    pub fn from_name(name: &str) -> Field {
        match name {
            "userId" => Field::UserId,
            "sessionId" => Field::SessionId,
            "remoteAddress" => Field::RemoteAddress,
            "environment" => Field::Environment,
            "appName" => Field::AppName,
            "currentTime" => Field::CurrentTime,
            other => Field::Property(other.into()),
        }
    }

    /// The field's name in the Unleash API.
    pub fn name(&self) -> &str {
        match self {
            Field::UserId => "userId",
            Field::SessionId => "sessionId",
            Field::RemoteAddress => "remoteAddress",
            Field::Environment => "environment",
            Field::AppName => "appName",
            Field::CurrentTime => "currentTime",
            Field::Property(name) => name,
        }
    }
}

/// The keys a binding accepts for the standard fields of a context: each
/// field with its snake_case and its camelCase (the Unleash API's)
/// spelling, the same word for `environment`. The one list of these
/// spellings: bindings read their keys from it (the Ruby binding also
/// gives it to Ruby as `Forkflag::Context::KEYS`). Custom fields are not
/// listed (any other name), nor the `properties` that holds them.
pub const KEYS: &[(Field, &str, &str)] = &[
    (Field::UserId, "user_id", "userId"),
    (Field::SessionId, "session_id", "sessionId"),
    (Field::RemoteAddress, "remote_address", "remoteAddress"),
    (Field::Environment, "environment", "environment"),
    (Field::AppName, "app_name", "appName"),
    (Field::CurrentTime, "current_time", "currentTime"),
];

/// A strategy the payload names that is none of the built-in ones and that
/// the application registered by name (compiled only for names given to
/// [`crate::Engine::with_custom_strategies`]; any other unknown name never
/// matches). Evaluation asks the context, which calls the application's
/// code with these parameters.
#[derive(Debug)]
pub struct CustomStrategy {
    pub(crate) name: Arc<str>,
    /// Sorted by name.
    pub(crate) parameters: Box<[(Box<str>, Box<str>)]>,
}

impl CustomStrategy {
    /// The strategy's name, as registered.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The strategy's parameters as the payload gives them (names sorted).
    pub fn parameters(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.parameters.iter().map(|(k, v)| (&**k, &**v))
    }
}

/// The evaluation time a context gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentTime {
    /// No time given: evaluate at the current time.
    Now,
    /// Milliseconds since the Unix epoch.
    At(i64),
    /// A time was given but cannot be read (DATE constraints do not match).
    Unreadable,
}

/// Read access to the fields of an evaluation context.
///
/// Implementations must be cheap to query repeatedly: the evaluator may ask
/// for the same field several times while walking a flag's strategies.
pub trait Context {
    /// Calls `f` with the field's text, or `None` when the context lacks it.
    fn with_field<R>(&self, field: &Field, f: impl FnOnce(Option<&str>) -> R) -> R;

    /// The evaluation time the context gives.
    fn current_time(&self) -> CurrentTime {
        self.with_field(&Field::CurrentTime, |v| match v {
            None => CurrentTime::Now,
            Some(text) => {
                parse_timestamp_millis(text).map_or(CurrentTime::Unreadable, CurrentTime::At)
            }
        })
    }

    /// The remote address, parsed.
    fn remote_ip(&self) -> Option<IpAddr> {
        self.with_field(&Field::RemoteAddress, |v| {
            v.and_then(|s| s.trim().parse().ok())
        })
    }

    /// Whether a [custom strategy](CustomStrategy) matches this context.
    /// Only strategies registered with the engine reach here; a context
    /// that cannot call them (the default) matches none.
    #[inline]
    fn custom_strategy(&self, strategy: &CustomStrategy) -> bool {
        let _ = strategy;
        false
    }

    /// Whether a read of this context failed in a way its caller reports
    /// as an error once the evaluation returns (a binding's context whose
    /// value could not be read, say): such an evaluation's answer is not
    /// used, so it is not counted. The failed read itself answered as an
    /// absent field.
    #[inline]
    fn failed(&self) -> bool {
        false
    }
}

/// A context held as owned strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedContext {
    /// `userId`
    pub user_id: Option<String>,
    /// `sessionId`
    pub session_id: Option<String>,
    /// `remoteAddress`
    pub remote_address: Option<String>,
    /// `environment`
    pub environment: Option<String>,
    /// `appName`
    pub app_name: Option<String>,
    /// `currentTime`, as text (ISO-8601).
    pub current_time: Option<String>,
    /// Custom properties.
    pub properties: BTreeMap<String, String>,
}

impl OwnedContext {
    /// Reads a context from the JSON shape of the Unleash client specification
    /// (`{"userId": "1", "properties": {"plan": "pro"}}`). Numbers and booleans
    /// become their text; `null` means absent; unknown top-level string fields
    /// become properties.
    pub fn from_json(value: &serde_json::Value) -> OwnedContext {
        fn text(v: &serde_json::Value) -> Option<String> {
            match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        }
        let mut ctx = OwnedContext::default();
        let Some(obj) = value.as_object() else {
            return ctx;
        };
        if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
            for (k, v) in props {
                if let Some(t) = text(v) {
                    ctx.properties.insert(k.clone(), t);
                }
            }
        }
        for (k, v) in obj {
            let t = text(v);
            match k.as_str() {
                "properties" => {}
                "userId" => ctx.user_id = t,
                "sessionId" => ctx.session_id = t,
                "remoteAddress" => ctx.remote_address = t,
                "environment" => ctx.environment = t,
                "appName" => ctx.app_name = t,
                "currentTime" => ctx.current_time = t,
                _ => {
                    if let Some(t) = t {
                        ctx.properties.insert(k.clone(), t);
                    }
                }
            }
        }
        ctx
    }
}

impl Context for OwnedContext {
    fn with_field<R>(&self, field: &Field, f: impl FnOnce(Option<&str>) -> R) -> R {
        let value = match field {
            Field::UserId => self.user_id.as_deref(),
            Field::SessionId => self.session_id.as_deref(),
            Field::RemoteAddress => self.remote_address.as_deref(),
            Field::Environment => self.environment.as_deref(),
            Field::AppName => self.app_name.as_deref(),
            Field::CurrentTime => self.current_time.as_deref(),
            Field::Property(name) => self.properties.get(&**name).map(String::as_str),
        };
        f(value)
    }
}

/// The empty context.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyContext;

impl Context for EmptyContext {
    fn with_field<R>(&self, _field: &Field, f: impl FnOnce(Option<&str>) -> R) -> R {
        f(None)
    }
}
