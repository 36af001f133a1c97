//! What a client tells about its flags for people: `explain` (an answer
//! and how it was reached), the flags described, and this process's counts
//! since its last report. None of it is on the evaluation path; each gives
//! Ruby plain data as JSON text, which the Ruby side reads.

use forkflag_core::process::fork;
use forkflag_core::snapshot::tag_for;
use forkflag_core::VariantChoice;
use magnus::rb_sys::FromRawValue;
use magnus::{prelude::*, Error, IntoValue, RArray, RString, Ruby, Value};

use super::arguments::{name_type_error, with_context};
use super::lookup::name_bytes;
use super::Client;
use crate::guard::guard;
use crate::protect::protect;
use crate::variant;

/// A new UTF-8 String holding `text` (under protect: the caller may hold
/// values with destructors).
fn string(text: &str) -> Result<RString, Error> {
    let (ptr, len) = (text.as_ptr(), text.len());
    // SAFETY: `ptr`/`len` name `text`'s bytes, alive for this call;
    // rb_utf8_str_new copies them, under protect.
    let raw = protect(|| unsafe { rb_sys::rb_utf8_str_new(ptr as *const _, len as _) })?;
    // SAFETY: the String just made, held on this stack.
    Ok(unsafe { RString::from_value(Value::from_raw(raw)).expect("a String") })
}

impl Client {
    /// `_explain(name, context)`: `[enabled, variant, trace JSON]` for the
    /// flag (a String or Symbol) and context (as `enabled?` takes it).
    /// Counts nothing and fires no impression.
    pub(super) fn explain(
        ruby: &Ruby,
        rb_self: &Client,
        name: Value,
        context: Value,
    ) -> Result<RArray, Error> {
        guard(ruby, || {
            let Some(bytes) = name_bytes(&name) else {
                return Err(name_type_error(ruby, name));
            };
            // The Rust values with destructors end with this block, before
            // the Variant and the Array are made (which may raise).
            let (answer, enabled, trace) = {
                let name_text = String::from_utf8_lossy(bytes).into_owned();
                let snapshot = rb_self.engine.snapshot();
                // A custom strategy is asked only for a flag that may ask one.
                let strategies = match snapshot.index_of(bytes) {
                    Some(i) if snapshot.calls_custom(i) => rb_self.strategies(),
                    _ => None,
                };
                let (answer, enabled, trace) = with_context(ruby, &context, strategies, |ctx| {
                    ctx.explain(&snapshot, &name_text)
                })?;
                (answer, enabled, string(&trace)?)
            };
            let variant = answer.into_ruby(ruby);
            Ok(ruby.ary_new_from_values(&[
                enabled.into_value_with(ruby),
                variant,
                trace.as_value(),
            ]))
        })
    }

    /// `_flags`: every flag described, as a JSON array sorted by name.
    pub(super) fn flags(ruby: &Ruby, rb_self: &Client) -> Result<RString, Error> {
        guard(ruby, || {
            string(&rb_self.engine.snapshot().describe_all().to_string())
        })
    }

    /// `_flag(name)`: the flag described as JSON, or nil.
    pub(super) fn flag(
        ruby: &Ruby,
        rb_self: &Client,
        name: Value,
    ) -> Result<Option<RString>, Error> {
        guard(ruby, || {
            let Some(bytes) = name_bytes(&name) else {
                return Err(name_type_error(ruby, name));
            };
            match rb_self.engine.snapshot().describe(bytes) {
                Some(description) => string(&description.to_string()).map(Some),
                None => Ok(None),
            }
        })
    }

    /// `_counts`: this process's evaluations since its last report, per
    /// flag (`{name: {yes, no, variants}}`, JSON), not taken.
    pub(super) fn counts(ruby: &Ruby, rb_self: &Client) -> Result<RString, Error> {
        guard(ruby, || {
            let tag = tag_for(fork::generation_of(fork::epoch()));
            string(&rb_self.engine.peek_tally(tag).to_json())
        })
    }
}

/// The explanation through a context of any kind (see
/// [`super::lookup::ContextRef::explain`]).
pub(super) fn explain_with<C: forkflag_core::Context>(
    ctx: &C,
    snapshot: &forkflag_core::Snapshot,
    name: &str,
) -> (variant::Answer, bool, String) {
    let explanation = snapshot.explain(name, ctx);
    let answer = variant::Answer::of(&VariantChoice {
        variant: explanation.variant,
        feature_enabled: explanation.enabled,
    });
    (answer, explanation.enabled, explanation.trace.to_string())
}
