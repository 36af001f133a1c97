//! `Forkflag::Client`: evaluation against the live snapshot.
//!
//! `enabled?` and `variant` are defined here, natively, so an evaluation is a
//! single method call: parse the arguments, load the snapshot, evaluate,
//! count. The rest of the client (options, callbacks, lifecycle) is Ruby in
//! `lib/forkflag/client.rb`.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use forkflag_core::metrics::tag_for;
use forkflag_core::{fork, Context, EmptyContext, Engine, Flag};
use magnus::rb_sys::AsRawValue;
use magnus::{
    function, method, prelude::*, typed_data::Obj, Error, RArray, RHash, RString, Ruby, TryConvert,
    Value,
};
use rb_sys::macros::{RB_SYMBOL_P, RB_TYPE_P, RSTRING_LEN, RSTRING_PTR};
use rb_sys::ruby_value_type;

use crate::context::RubyContext;
use crate::errors::{arg_error, config_error, from_core, type_error};
use crate::guard::guard;
use crate::hash_context::HashContext;
use crate::variant::{interned, RubyVariant};

/// The native half of a client.
#[magnus::wrap(class = "Forkflag::Client", free_immediately, size)]
pub struct Client {
    engine: Arc<Engine>,
    /// Whether impression listeners are registered (set from Ruby).
    impressions: Cell<bool>,
    /// Problems found in payloads loaded on Ruby threads, not yet logged.
    warnings: RefCell<Vec<String>>,
}

/// The flag name argument, borrowed from the Ruby object.
fn name_bytes<'a>(ruby: &Ruby, name: Value) -> Result<&'a [u8], Error> {
    let raw = name.as_raw();
    // SAFETY: `raw` is a live argument of the current call; String bytes are
    // read in place and not kept beyond it.
    unsafe {
        let s = if RB_TYPE_P(raw, ruby_value_type::RUBY_T_STRING) {
            raw
        } else if RB_SYMBOL_P(raw) {
            rb_sys::rb_sym2str(raw)
        } else {
            return Err(type_error(
                ruby,
                format!(
                    "flag name must be a String or Symbol, got {} ({})",
                    name.inspect(),
                    name.class()
                ),
            ));
        };
        let len = RSTRING_LEN(s) as usize;
        Ok(if len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(RSTRING_PTR(s) as *const u8, len)
        })
    }
}

/// The arguments of an evaluation: `(name, context = nil, default: false)`.
struct EvalArgs {
    name: Value,
    context: Value,
    default: Option<Value>,
}

fn parse_eval_args(
    ruby: &Ruby,
    method_name: &str,
    args: &[Value],
    accepts_default: bool,
) -> Result<EvalArgs, Error> {
    // SAFETY: called from a method body, where Ruby's keyword state is that
    // of the current call.
    let kw_given = unsafe { rb_sys::rb_keyword_given_p() } != 0;
    let (positional, keywords) = match (kw_given, args.split_last()) {
        (true, Some((last, rest))) => (rest, Some(*last)),
        _ => (args, None),
    };
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
        let default_key = ruby.to_symbol("default");
        kw.foreach(|k: Value, v: Value| {
            if accepts_default && k.as_raw() == default_key.as_raw() {
                default = Some(v);
                Ok(magnus::r_hash::ForEach::Continue)
            } else {
                Err(arg_error(
                    ruby,
                    format!("unknown keyword: {} for {method_name}", k.inspect()),
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

/// Runs `f` with the context argument viewed as a [`Context`].
fn with_context<R>(
    ruby: &Ruby,
    context: Value,
    f: impl FnOnce(&dyn ContextRef) -> R,
) -> Result<R, Error> {
    let raw = context.as_raw();
    if context.is_nil() {
        return Ok(f(&EmptyContext));
    }
    // SAFETY: `raw` is a live argument of the current call.
    if unsafe { RB_TYPE_P(raw, ruby_value_type::RUBY_T_HASH) } {
        return Ok(f(&HashContext::new(raw)));
    }
    if let Ok(ctx) = <&RubyContext>::try_convert(context) {
        return Ok(f(ctx));
    }
    Err(type_error(
        ruby,
        format!(
            "context must be a Hash, a Forkflag::Context or nil, got {} ({})",
            context.inspect(),
            context.class()
        ),
    ))
}

/// Dispatches evaluation to the concrete context type, so each gets a
/// monomorphised evaluator.
trait ContextRef {
    fn check(&self, engine: &Engine, name: &[u8], tag: u64) -> Option<(bool, bool)>;
    fn check_variant(&self, engine: &Engine, name: &[u8], tag: u64) -> Option<(RubyVariant, bool)>;
}

impl<C: Context> ContextRef for C {
    #[inline]
    fn check(&self, engine: &Engine, name: &[u8], tag: u64) -> Option<(bool, bool)> {
        let snapshot = engine.load();
        snapshot
            .check(name, self, tag)
            .map(|(enabled, flag): (bool, &Flag)| (enabled, flag.impression_data()))
    }

    #[inline]
    fn check_variant(&self, engine: &Engine, name: &[u8], tag: u64) -> Option<(RubyVariant, bool)> {
        let snapshot = engine.load();
        snapshot
            .check_variant(name, self, tag)
            .map(|(choice, flag)| (RubyVariant::from_choice(&choice), flag.impression_data()))
    }
}

impl Client {
    /// Builds the native client from options validated by `Forkflag::Config`.
    fn build(ruby: &Ruby, options: RHash) -> Result<Client, Error> {
        guard(ruby, || {
            let engine = Arc::new(Engine::new());
            let mut warnings = Vec::new();
            let bootstrap: Value = options.aref(ruby.to_symbol("bootstrap"))?;
            if !bootstrap.is_nil() {
                let json = RString::try_convert(bootstrap)?;
                // SAFETY: the bytes are copied by update_json before any Ruby
                // code runs.
                let bytes = unsafe { json.as_slice() };
                let outcome = engine
                    .update_json(bytes, None)
                    .map_err(|e| config_error(ruby, format!("bootstrap: {e}")))?;
                warnings.extend(outcome.warnings);
            }
            let file: Value = options.aref(ruby.to_symbol("file"))?;
            if !file.is_nil() {
                let path = String::try_convert(file)?;
                let bytes = std::fs::read(&path).map_err(|e| {
                    config_error(ruby, format!("cannot read flags file {path}: {e}"))
                })?;
                let outcome = engine
                    .update_json(&bytes, None)
                    .map_err(|e| config_error(ruby, format!("flags file {path}: {e}")))?;
                warnings.extend(outcome.warnings);
            }
            Ok(Client {
                engine,
                impressions: Cell::new(false),
                warnings: RefCell::new(warnings),
            })
        })
    }

    /// `enabled?(name, context = nil, default: false)`
    fn enabled(ruby: &Ruby, rb_self: Obj<Client>, args: &[Value]) -> Result<bool, Error> {
        guard(ruby, || {
            let a = parse_eval_args(ruby, "enabled?", args, true)?;
            let name = name_bytes(ruby, a.name)?;
            let tag = tag_for(fork::generation());
            let this = &*rb_self;
            match with_context(ruby, a.context, |ctx| ctx.check(&this.engine, name, tag))? {
                Some((enabled, impression)) => {
                    if impression && this.impressions.get() {
                        emit_impression(
                            ruby,
                            rb_self,
                            "isEnabled",
                            a.name,
                            enabled,
                            None,
                            a.context,
                        );
                    }
                    Ok(enabled)
                }
                None => Ok(a.default.is_some_and(|d| d.to_bool())),
            }
        })
    }

    /// `variant(name, context = nil)`
    fn variant(
        ruby: &Ruby,
        rb_self: Obj<Client>,
        args: &[Value],
    ) -> Result<Obj<RubyVariant>, Error> {
        guard(ruby, || {
            let a = parse_eval_args(ruby, "variant", args, false)?;
            let name = name_bytes(ruby, a.name)?;
            let tag = tag_for(fork::generation());
            let this = &*rb_self;
            match with_context(ruby, a.context, |ctx| {
                ctx.check_variant(&this.engine, name, tag)
            })? {
                Some((variant, impression)) => {
                    let obj = ruby.obj_wrap(variant);
                    if impression && this.impressions.get() {
                        emit_impression(
                            ruby,
                            rb_self,
                            "getVariant",
                            a.name,
                            obj.is_feature_enabled(),
                            Some(obj.as_value()),
                            a.context,
                        );
                    }
                    Ok(obj)
                }
                None => Ok(ruby.obj_wrap(RubyVariant::disabled(false))),
            }
        })
    }

    fn flag_names(ruby: &Ruby, rb_self: &Client) -> Result<RArray, Error> {
        guard(ruby, || {
            let snapshot = rb_self.engine.load();
            let names = snapshot.names();
            let array = ruby.ary_new_capa(names.len());
            for name in names {
                array.push(interned(ruby, name))?;
            }
            Ok(array)
        })
    }

    /// Problems found in loaded payloads since the last call, each reported
    /// once per configuration.
    fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.borrow_mut())
    }

    fn set_impressions(&self, on: bool) {
        self.impressions.set(on);
    }

    /// Replaces the configuration with payload text (tests, bootstrap
    /// overrides). Raises `Forkflag::ConfigError` and keeps the current
    /// configuration when the text is not a valid payload.
    fn update(ruby: &Ruby, rb_self: &Client, json: RString) -> Result<usize, Error> {
        guard(ruby, || {
            // SAFETY: update_json copies what it needs before Ruby runs again.
            let bytes = unsafe { json.as_slice() };
            let outcome = rb_self
                .engine
                .update_json(bytes, None)
                .map_err(|e| from_core(ruby, e))?;
            rb_self.warnings.borrow_mut().extend(outcome.warnings);
            Ok(outcome.flags)
        })
    }
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

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("Forkflag")?;
    let class = module.define_class("Client", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("_build", function!(Client::build, 1))?;
    class.define_method("enabled?", method!(Client::enabled, -1))?;
    class.define_method("variant", method!(Client::variant, -1))?;
    class.define_method("flag_names", method!(Client::flag_names, 0))?;
    class.define_method("_impressions=", method!(Client::set_impressions, 1))?;
    class.define_method("_update", method!(Client::update, 1))?;
    class.define_method("_take_warnings", method!(Client::take_warnings, 0))?;
    Ok(())
}
