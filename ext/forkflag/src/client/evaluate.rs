//! `enabled?` and `variant`: one evaluation, [`evaluate`], for both. It
//! tries the fast path ([`Client::quick`]) and otherwise takes the general
//! path, which answers every call the same way, raises for bad arguments,
//! starts threads after a fork and emits impressions. What differs between
//! the two methods is an [`Evaluation`].

use forkflag_core::process::fork;
use forkflag_core::snapshot::tag_for;
use magnus::{prelude::*, typed_data::Obj, Error, IntoValue, Ruby, Value};

use super::arguments::{name_type_error, parse_eval_args, receiver, with_context};
use super::lookup::{ContextRef, Current, Found};
use super::Client;
use crate::guard::guard;
use crate::variant;

/// What one evaluation method checks and answers.
pub(super) trait Evaluation {
    /// The method's name, as argument errors give it.
    const NAME: &'static str;
    /// The impression event's type (the Unleash SDKs' name).
    const EVENT: &'static str;
    /// Whether the method takes `default:`.
    const TAKES_DEFAULT: bool;
    /// What checking a known flag gives, before any Ruby object is made.
    type Checked;
    /// The method's Ruby answer.
    type Output: IntoValue;

    /// Checks the flag against the context; `None` for an unknown flag.
    fn check(
        ctx: &dyn ContextRef,
        at: Current<'_>,
        flag: Found<'_>,
        tag: u64,
    ) -> Option<Self::Checked>;

    /// The answer for a known flag, made once the evaluation's borrows
    /// ended (making a Ruby object may raise NoMemoryError).
    fn answer(ruby: &Ruby, checked: Self::Checked) -> Answered<Self::Output>;

    /// The answer for an unknown flag.
    fn unknown(default: Option<Value>) -> Self::Output;
}

/// The answer for a known flag, and what an impression event reports.
pub(super) struct Answered<T> {
    output: T,
    /// Whether the flag was on (the event's `enabled`).
    enabled: bool,
    /// Whether the flag has impression data.
    impression: bool,
    /// The variant object, for `variant`'s event.
    variant: Option<Value>,
}

/// `enabled?(name, context = nil, default: false)`.
pub(super) struct Enabled;

impl Evaluation for Enabled {
    const NAME: &'static str = "enabled?";
    const EVENT: &'static str = "isEnabled";
    const TAKES_DEFAULT: bool = true;
    type Checked = (bool, bool);
    type Output = bool;

    #[inline(always)]
    fn check(
        ctx: &dyn ContextRef,
        at: Current<'_>,
        flag: Found<'_>,
        tag: u64,
    ) -> Option<(bool, bool)> {
        ctx.check(at, flag, tag)
    }

    #[inline(always)]
    fn answer(_ruby: &Ruby, (enabled, impression): (bool, bool)) -> Answered<bool> {
        Answered {
            output: enabled,
            enabled,
            impression,
            variant: None,
        }
    }

    #[inline(always)]
    fn unknown(default: Option<Value>) -> bool {
        default.is_some_and(|d| d.to_bool())
    }
}

/// `variant(name, context = nil)`.
pub(super) struct Variant;

impl Evaluation for Variant {
    const NAME: &'static str = "variant";
    const EVENT: &'static str = "getVariant";
    const TAKES_DEFAULT: bool = false;
    type Checked = (variant::Answer, bool, bool);
    type Output = Value;

    #[inline(always)]
    fn check(
        ctx: &dyn ContextRef,
        at: Current<'_>,
        flag: Found<'_>,
        tag: u64,
    ) -> Option<Self::Checked> {
        ctx.check_variant(at, flag, tag)
    }

    #[inline(always)]
    fn answer(
        ruby: &Ruby,
        (answer, feature_enabled, impression): Self::Checked,
    ) -> Answered<Value> {
        let obj = answer.into_ruby(ruby);
        Answered {
            output: obj,
            enabled: feature_enabled,
            impression,
            variant: Some(obj),
        }
    }

    #[inline(always)]
    fn unknown(_default: Option<Value>) -> Value {
        variant::shared_disabled(false)
    }
}

/// The evaluation method `E` called on `rb_self` with `args`.
#[inline(always)]
pub(super) fn evaluate<E: Evaluation>(
    ruby: &Ruby,
    rb_self: Value,
    args: &[Value],
) -> Result<E::Output, Error> {
    guard(ruby, || {
        if let Some((checked, default)) =
            Client::quick(ruby, rb_self, args, E::TAKES_DEFAULT, E::check)
        {
            return Ok(match checked? {
                Some(checked) => E::answer(ruby, checked).output,
                None => E::unknown(default),
            });
        }
        general::<E>(ruby, rb_self, args)
    })
}

/// The general path of [`evaluate`].
#[inline]
fn general<E: Evaluation>(ruby: &Ruby, rb_self: Value, args: &[Value]) -> Result<E::Output, Error> {
    let this = receiver(&rb_self)?;
    let a = parse_eval_args(ruby, E::NAME, args, E::TAKES_DEFAULT)?;
    let epoch = fork::epoch();
    let tag = tag_for(fork::generation_of(epoch));
    let checked = this.with_current(|at| {
        let flag = at
            .find(&a.name)
            .ok_or_else(|| name_type_error(ruby, a.name))?;
        // The context is wrapped to answer custom strategies only for a
        // flag that asks one.
        let strategies = match flag {
            Found::At(index) if at.snapshot.calls_custom(index) => this.strategies(),
            _ => None,
        };
        with_context(ruby, &a.context, strategies, |ctx| {
            E::check(ctx, at, flag, tag)
        })
    })?;
    // Answered from the snapshot this process has (inherited, in a forked
    // child); only then are the threads started, if needed.
    this.check_fork(ruby, epoch)?;
    let Some(checked) = checked else {
        return Ok(E::unknown(a.default));
    };
    let answered = E::answer(ruby, checked);
    if this.sample > 0 {
        instrument_evaluation(ruby, this.sample, rb_self, a.name, &answered);
    }
    if answered.impression && this.impressions.get() {
        emit_impression(
            ruby,
            Obj::try_convert(rb_self)?,
            E::EVENT,
            a.name,
            answered.enabled,
            answered.variant,
            a.context,
        );
    }
    Ok(answered.output)
}

impl Client {
    /// Runs `f` on the current snapshot, through the client's cache unless
    /// an evaluation of this client is already under way on this thread
    /// (a context's key whose `eql?` evaluates again).
    #[inline]
    fn with_current<R>(&self, f: impl FnOnce(Current<'_>) -> R) -> R {
        match self.snapshots.try_borrow_mut() {
            Ok(mut cache) => f(self.cached(&mut cache)),
            Err(_) => f(Current {
                snapshot: &self.engine.load(),
                engine: &self.engine,
                names: None,
            }),
        }
    }

    /// `enabled?(name, context = nil, default: false)`
    pub(super) fn enabled(ruby: &Ruby, rb_self: Value, args: &[Value]) -> Result<bool, Error> {
        evaluate::<Enabled>(ruby, rb_self, args)
    }

    /// `variant(name, context = nil)`
    pub(super) fn variant(ruby: &Ruby, rb_self: Value, args: &[Value]) -> Result<Value, Error> {
        evaluate::<Variant>(ruby, rb_self, args)
    }

    /// Whether impression events are wanted (set from Ruby).
    pub(super) fn set_impressions(&self, on: bool) {
        self.impressions.set(on);
        self.general_only
            .set(on || self.strategies.is_some() || self.sample > 0);
    }
}

/// Calls `Client#_instrument_evaluation` (Ruby), which never raises, for
/// the sampled fraction of evaluations (`sample` out of 2^32). Out of line
/// and cold: the general path of a client without sampling only tests
/// `sample`.
#[cold]
#[inline(never)]
fn instrument_evaluation<T>(
    ruby: &Ruby,
    sample: u64,
    client: Value,
    name: Value,
    answered: &Answered<T>,
) {
    if u64::from(forkflag_core::process::random::random_u32()) >= sample {
        return;
    }
    let variant = answered.variant.unwrap_or_else(|| ruby.qnil().as_value());
    let result: Result<Value, Error> =
        client.funcall("_instrument_evaluation", (name, answered.enabled, variant));
    // As for impressions: an evaluation never raises because of a
    // subscriber.
    drop(result);
}

/// Calls `Client#_emit_impression` (Ruby), which never raises.
fn emit_impression(
    ruby: &Ruby,
    client: Obj<Client>,
    event: &str,
    name: Value,
    enabled: bool,
    variant: Option<Value>,
    context: Value,
) {
    let variant = variant.unwrap_or_else(|| ruby.qnil().as_value());
    let result: Result<Value, Error> = client.funcall(
        "_emit_impression",
        (ruby.to_symbol(event), name, enabled, variant, context),
    );
    // The Ruby side rescues listener errors itself; anything left is dropped
    // so that an evaluation never raises because of a listener.
    drop(result);
}
