//! The arguments of an evaluation: `(name, context = nil, default: false)`,
//! read without calling into Ruby where the fast path needs it, and checked
//! with full errors on the general path.

use std::time::Duration;

use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::typed_data::DataType;
use magnus::value::{LazyId, StaticSymbol};
use magnus::{prelude::*, Error, RHash, Ruby, TryConvert, TypedData, Value};
use rb_sys::macros::{RB_TYPE_P, RHASH_SIZE, RTYPEDDATA_GET_DATA, RTYPEDDATA_P, RTYPEDDATA_TYPE};
use rb_sys::{ruby_value_type, VALUE};

use super::custom::WithStrategies;
use super::lookup::ContextRef;
use super::Client;
use crate::context::RubyContext;
use crate::errors::{arg_error, describe, type_error};
use crate::hash_context::HashContext;
use crate::protect::protect;

/// The error for a flag name argument of the wrong type.
pub(super) fn name_type_error(ruby: &Ruby, name: Value) -> Error {
    type_error(
        ruby,
        format!(
            "flag name must be a String or Symbol, got {} ({})",
            describe(name),
            name.class()
        ),
    )
}

/// `value`'s Rust data when it is a Ruby object wrapping a `T`.
///
/// The same test as magnus's conversion (`rb_check_typeddata`), made inline:
/// magnus runs that check through `rb_protect`, which costs more than
/// evaluating a default-strategy flag (see docs/PERFORMANCE.md).
#[inline]
pub(super) fn typed<T: TypedData>(value: &Value) -> Option<&T> {
    let raw = value.as_raw();
    let expected = T::data_type() as *const DataType as *const rb_sys::rb_data_type_t;
    // SAFETY: `raw` is a live argument of the current call. Its type pointer
    // is read only after checking that it is typed data, and its data only
    // after checking that the type is `T`'s own (`DataType` is a transparent
    // wrapper of `rb_data_type_t`). Such data is the `T` magnus wrapped, and
    // lives as long as the object, which the caller holds for the borrow.
    unsafe {
        if RB_TYPE_P(raw, ruby_value_type::RUBY_T_DATA)
            && RTYPEDDATA_P(raw)
            && RTYPEDDATA_TYPE(raw) == expected
        {
            (RTYPEDDATA_GET_DATA(raw) as *const T).as_ref()
        } else {
            None
        }
    }
}

/// The client an evaluation method was called on.
#[inline]
pub(super) fn receiver(rb_self: &Value) -> Result<&Client, Error> {
    match typed::<Client>(rb_self) {
        Some(client) => Ok(client),
        // Not reached for methods defined on Forkflag::Client; magnus's
        // conversion produces the usual TypeError.
        None => <&Client>::try_convert(*rb_self),
    }
}

/// A number of seconds as a Duration (negative: zero; too large: the
/// longest Duration).
pub(super) fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

/// The arguments of an evaluation: `(name, context = nil, default: false)`.
pub(super) struct EvalArgs {
    pub(super) name: Value,
    pub(super) context: Value,
    pub(super) default: Option<Value>,
}

/// The positional arguments of a method call, and its keywords (a Hash) if
/// the call passed any. Called from a method body, where Ruby's keyword
/// state is that of the current call.
#[inline]
pub(super) fn split_keywords(args: &[Value]) -> (&[Value], Option<Value>) {
    match args.split_last() {
        // Keywords arrive as a last Hash argument; only then is Ruby asked
        // whether the call passed them (it reads the frame through TLS).
        // SAFETY: a live argument of the current call, and the keyword
        // state of the current call.
        Some((last, rest))
            if unsafe {
                RB_TYPE_P(last.as_raw(), ruby_value_type::RUBY_T_HASH)
                    && rb_sys::rb_keyword_given_p() != 0
            } =>
        {
            (rest, Some(*last))
        }
        _ => (args, None),
    }
}

/// The `default:` keyword's name, interned once (a lookup by text would
/// build a Ruby String on every call).
static DEFAULT_KEYWORD: LazyId = LazyId::new("default");

/// `:default`, the keyword's Symbol.
#[inline]
fn default_keyword(ruby: &Ruby) -> StaticSymbol {
    StaticSymbol::from(LazyId::get_inner_with(&DEFAULT_KEYWORD, ruby))
}

/// The value of `default:` when the keywords are that one alone; `None`
/// for any other keywords (the general path names them in its error).
#[inline]
pub(super) fn only_default(ruby: &Ruby, keywords: Value) -> Option<Value> {
    let raw = keywords.as_raw();
    // SAFETY: `raw` is the keywords Hash of the current call.
    if unsafe { RHASH_SIZE(raw) } != 1 {
        return None;
    }
    let undef = rb_sys::Qundef as rb_sys::VALUE;
    let key = default_keyword(ruby).as_raw();
    // SAFETY: a lookup by a static Symbol; it can run Ruby code only
    // through a redefined Symbol#eql? (see HashContext::field_unprotected),
    // hence under protect. On an error the general path looks again
    // (magnus's own, protected iteration) and reports it.
    let value = protect(|| unsafe { rb_sys::rb_hash_lookup2(raw, key, undef) }).ok()?;
    // SAFETY: a value of the live keywords Hash.
    (value != undef).then(|| unsafe { Value::from_raw(value) })
}

/// Reads the arguments of `method_name`, raising for a wrong count or an
/// unknown keyword (`default:` is known when `accepts_default`).
pub(super) fn parse_eval_args(
    ruby: &Ruby,
    method_name: &str,
    args: &[Value],
    accepts_default: bool,
) -> Result<EvalArgs, Error> {
    let (positional, keywords) = split_keywords(args);
    if positional.is_empty() || positional.len() > 2 {
        return Err(arg_error(
            ruby,
            format!(
                "wrong number of arguments (given {}, expected 1..2) to {method_name}",
                positional.len()
            ),
        ));
    }
    let mut default = None;
    if let Some(kw) = keywords {
        let kw = RHash::from_value(kw).expect("keywords arrive as a Hash");
        let default_key = default_keyword(ruby);
        kw.foreach(|k: Value, v: Value| {
            if accepts_default && k.as_raw() == default_key.as_raw() {
                default = Some(v);
                Ok(magnus::r_hash::ForEach::Continue)
            } else {
                Err(arg_error(
                    ruby,
                    format!("unknown keyword: {} for {method_name}", describe(k)),
                ))
            }
        })?;
    }
    Ok(EvalArgs {
        name: positional[0],
        context: positional
            .get(1)
            .copied()
            .unwrap_or_else(|| ruby.qnil().as_value()),
        default,
    })
}

/// An evaluation's context argument, by kind.
#[derive(Clone, Copy)]
pub(super) enum ContextArg<'a> {
    Empty,
    Hash(rb_sys::VALUE),
    Prebuilt(&'a RubyContext),
}

impl<'a> ContextArg<'a> {
    /// The kind of `context`; `None` when it is none of nil, a Hash or a
    /// `Forkflag::Context`.
    #[inline(always)]
    pub(super) fn of(context: &'a Value) -> Option<ContextArg<'a>> {
        let raw = context.as_raw();
        if context.is_nil() {
            return Some(ContextArg::Empty);
        }
        // SAFETY: `raw` is a live argument of the current call.
        if unsafe { RB_TYPE_P(raw, ruby_value_type::RUBY_T_HASH) } {
            return Some(ContextArg::Hash(raw));
        }
        typed::<RubyContext>(context).map(ContextArg::Prebuilt)
    }

    /// Runs `f` with the argument viewed as a [`forkflag_core::Context`].
    /// An error is what stopped a read of a Hash context (see
    /// [`HashContext::take_failure`]): the evaluation was not counted, and
    /// the caller raises it once its own frames have returned.
    #[inline(always)]
    pub(super) fn with<R>(self, f: impl FnOnce(&dyn ContextRef) -> R) -> Result<R, Error> {
        match self {
            ContextArg::Empty => Ok(f(&forkflag_core::EmptyContext)),
            ContextArg::Hash(raw) => {
                let ctx = HashContext::new(raw);
                let answer = f(&ctx);
                match ctx.take_failure() {
                    None => Ok(answer),
                    Some(error) => Err(error),
                }
            }
            ContextArg::Prebuilt(ctx) => Ok(f(ctx)),
        }
    }

    /// [`ContextArg::with`] for a client with custom strategies, which
    /// `dispatcher` answers given `argument`, the context argument itself
    /// (see [`WithStrategies`]); an error is also what stopped a custom
    /// strategy.
    #[inline(never)]
    pub(super) fn with_strategies<R>(
        self,
        argument: VALUE,
        dispatcher: VALUE,
        f: impl FnOnce(&dyn ContextRef) -> R,
    ) -> Result<R, Error> {
        fn run<C: forkflag_core::Context, R>(
            inner: &C,
            argument: VALUE,
            dispatcher: VALUE,
            f: impl FnOnce(&dyn ContextRef) -> R,
        ) -> Result<R, Error> {
            let ctx = WithStrategies::new(inner, dispatcher, argument);
            let answer = f(&ctx);
            ctx.take_failure().map_or(Ok(answer), Err)
        }
        match self {
            ContextArg::Empty => run(&forkflag_core::EmptyContext, argument, dispatcher, f),
            ContextArg::Hash(raw) => {
                let inner = HashContext::new(raw);
                let answer = run(&inner, argument, dispatcher, f)?;
                inner.take_failure().map_or(Ok(answer), Err)
            }
            ContextArg::Prebuilt(ctx) => run(ctx, argument, dispatcher, f),
        }
    }
}

/// Runs `f` with the context argument viewed as a context, raising a
/// TypeError for an argument of another kind.
pub(super) fn with_context<R>(
    ruby: &Ruby,
    context: &Value,
    strategies: Option<VALUE>,
    f: impl FnOnce(&dyn ContextRef) -> R,
) -> Result<R, Error> {
    match ContextArg::of(context) {
        Some(arg) => match strategies {
            None => arg.with(f),
            Some(dispatcher) => arg.with_strategies(context.as_raw(), dispatcher, f),
        },
        None => Err(type_error(
            ruby,
            format!(
                "context must be a Hash, a Forkflag::Context or nil, got {} ({})",
                describe(*context),
                context.class()
            ),
        )),
    }
}
