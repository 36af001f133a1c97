//! `Forkflag::Client`: evaluation against the live snapshot.
//!
//! `enabled?` and `variant` are defined here, natively, so an evaluation is a
//! single method call: parse the arguments, load the snapshot, evaluate,
//! count. The rest of the client (options, callbacks, lifecycle) is Ruby in
//! `lib/forkflag/client.rb`.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use forkflag_core::engine::{file_stamp_of, SnapshotCache};
use forkflag_core::http::{Endpoint, HttpClient, Tls, TlsOptions};
use forkflag_core::process::{fork, heap, SocketRegistry};
use forkflag_core::runtime::{load_backup, Lifecycle, Secret, Settings, Source};
use forkflag_core::snapshot::tag_for;
use forkflag_core::sync::{Completion, Waited};
use forkflag_core::{Context, EmptyContext, Engine, Flag, Snapshot};
use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::typed_data::DataType;
use magnus::value::{LazyId, StaticSymbol};
use magnus::{
    function, method, prelude::*, typed_data::Obj, Error, RArray, RHash, RModule, RString, Ruby,
    TryConvert, Value,
};
use magnus::{gc::Marker, DataTypeFunctions, TypedData};
use rb_sys::macros::{
    RB_SYMBOL_P, RB_TYPE_P, RHASH_SIZE, RSTRING_LEN, RSTRING_PTR, RTYPEDDATA_GET_DATA,
    RTYPEDDATA_P, RTYPEDDATA_TYPE,
};
use rb_sys::ruby_value_type;

use crate::context::RubyContext;
use crate::errors::{arg_error, config_error, describe, from_core, type_error};
use crate::guard::guard;
use crate::hash_context::HashContext;
use crate::names::NameCache;
use crate::nogvl;
use crate::protect::protect;
use crate::variant::{self, interned};

/// The native half of a client.
#[derive(TypedData)]
#[magnus(class = "Forkflag::Client", free_immediately, size, mark)]
pub struct Client {
    engine: Arc<Engine>,
    /// This client's handle on the current snapshot (no locked instruction
    /// per evaluation; see [`SnapshotCache`]).
    snapshots: RefCell<SnapshotCache>,
    /// The flags that name objects evaluated on this client stand for.
    names: NameCache,
    lifecycle: RefCell<Lifecycle>,
    /// The [`fork::epoch`] seen when this process's background thread was
    /// started (attention bit clear); anything else (a fork happened, the
    /// client was parked, log messages wait for a Ruby thread) sends the
    /// next evaluation through [`Client::wake_up`].
    live_epoch: Cell<u64>,
    /// Whether impression listeners are registered (set from Ruby).
    impressions: Cell<bool>,
    /// Problems found in payloads loaded on Ruby threads, not yet logged.
    warnings: RefCell<Vec<String>>,
}

impl DataTypeFunctions for Client {
    fn mark(&self, marker: &Marker) {
        self.names.mark(marker);
    }
}

/// `live_epoch` of a parked client: never equal to a real epoch.
const PARKED: u64 = u64::MAX;

/// The flag name argument's text, borrowed from the Ruby object (for as
/// long as the caller holds the argument); `None` when it is neither a
/// String nor a Symbol.
fn name_bytes(name: &Value) -> Option<&[u8]> {
    let raw = name.as_raw();
    // SAFETY: `raw` is a live argument of the current call; String bytes are
    // read in place and not kept beyond the borrow of `name`. rb_sym2str
    // returns the Symbol's own frozen String (it does not raise).
    unsafe {
        let s = if RB_TYPE_P(raw, ruby_value_type::RUBY_T_STRING) {
            raw
        } else if RB_SYMBOL_P(raw) {
            rb_sys::rb_sym2str(raw)
        } else {
            return None;
        };
        let len = RSTRING_LEN(s) as usize;
        Some(if len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(RSTRING_PTR(s) as *const u8, len)
        })
    }
}

/// The error for a flag name argument of the wrong type.
fn name_type_error(ruby: &Ruby, name: Value) -> Error {
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
fn typed<T: TypedData>(value: &Value) -> Option<&T> {
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
fn receiver(rb_self: &Value) -> Result<&Client, Error> {
    match typed::<Client>(rb_self) {
        Some(client) => Ok(client),
        // Not reached for methods defined on Forkflag::Client; magnus's
        // conversion produces the usual TypeError.
        None => <&Client>::try_convert(*rb_self),
    }
}

/// Waits for a completion with the GVL released; Ctrl-C, Timeout and
/// Thread#kill interrupt the wait.
fn wait_released<T: Clone + Send>(
    ruby: &Ruby,
    done: Completion<T>,
    timeout: Option<f64>,
) -> Result<Waited<T>, Error> {
    let waker = done.clone();
    nogvl::wait(
        ruby,
        |stop| done.wait(timeout.map(seconds), stop),
        &move || waker.wake(),
    )
}

/// The arguments of an evaluation: `(name, context = nil, default: false)`.
struct EvalArgs {
    name: Value,
    context: Value,
    default: Option<Value>,
}

/// The positional arguments of a method call, and its keywords (a Hash) if
/// the call passed any. Called from a method body, where Ruby's keyword
/// state is that of the current call.
#[inline]
fn split_keywords(args: &[Value]) -> (&[Value], Option<Value>) {
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
fn only_default(ruby: &Ruby, keywords: Value) -> Option<Value> {
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

fn parse_eval_args(
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
enum ContextArg<'a> {
    Empty,
    Hash(rb_sys::VALUE),
    Prebuilt(&'a RubyContext),
}

impl<'a> ContextArg<'a> {
    /// The kind of `context`; `None` when it is none of nil, a Hash or a
    /// `Forkflag::Context`.
    #[inline(always)]
    fn of(context: &'a Value) -> Option<ContextArg<'a>> {
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

    /// Runs `f` with the argument viewed as a [`Context`]. An error is what
    /// stopped a read of a Hash context (see [`HashContext::take_failure`]):
    /// the evaluation was not counted, and the caller raises it once its
    /// own frames have returned.
    #[inline(always)]
    fn with<R>(self, f: impl FnOnce(&dyn ContextRef) -> R) -> Result<R, Error> {
        match self {
            ContextArg::Empty => Ok(f(&EmptyContext)),
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
}

/// Runs `f` with the context argument viewed as a [`Context`].
fn with_context<R>(
    ruby: &Ruby,
    context: &Value,
    f: impl FnOnce(&dyn ContextRef) -> R,
) -> Result<R, Error> {
    match ContextArg::of(context) {
        Some(arg) => arg.with(f),
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

/// Dispatches evaluation to the concrete context type, so each gets a
/// monomorphised evaluator.
trait ContextRef {
    fn check(&self, at: Current<'_>, flag: Found<'_>, tag: u64) -> Option<(bool, bool)>;
    fn check_variant(
        &self,
        at: Current<'_>,
        flag: Found<'_>,
        tag: u64,
    ) -> Option<(variant::Answer, bool, bool)>;
}

/// The snapshot an evaluation reads (from the client's cache), the engine
/// that counts names it does not have, and the client's remembered names
/// (`None` when the snapshot is not the client's cached one).
#[derive(Clone, Copy)]
struct Current<'a> {
    snapshot: &'a Snapshot,
    engine: &'a Engine,
    names: Option<&'a NameCache>,
}

/// What a flag name argument names in the current snapshot.
#[derive(Clone, Copy)]
enum Found<'n> {
    /// The flag at this index.
    At(u32),
    /// No flag: the name's bytes, to count it as unknown.
    Unknown(&'n [u8]),
}

impl<'a> Current<'a> {
    /// Looks the name argument up: a remembered name object first, then
    /// by its bytes (remembering the object when its text cannot change).
    /// `None` when the argument is neither a String nor a Symbol.
    #[inline(always)]
    fn find<'n>(&self, name: &'n Value) -> Option<Found<'n>> {
        match self.names.and_then(|names| names.get(name.as_raw())) {
            Some(index) => Some(Found::At(index)),
            None => self.find_by_text(name),
        }
    }

    /// [`Current::find`] for a name object not remembered.
    #[inline(never)]
    fn find_by_text<'n>(&self, name: &'n Value) -> Option<Found<'n>> {
        let raw = name.as_raw();
        let bytes = name_bytes(name)?;
        Some(match self.snapshot.index_of(bytes) {
            Some(index) => {
                if let Some(names) = self.names {
                    names.remember(raw, index);
                }
                Found::At(index)
            }
            None => Found::Unknown(bytes),
        })
    }
}

impl<C: Context> ContextRef for C {
    #[inline]
    fn check(&self, at: Current<'_>, flag: Found<'_>, tag: u64) -> Option<(bool, bool)> {
        match flag {
            Found::At(index) => {
                let (enabled, flag): (bool, &Flag) = at.snapshot.check_at(index, self, tag);
                Some((enabled, flag.impression_data()))
            }
            Found::Unknown(name) => {
                at.engine.count_unknown(name, false, tag);
                None
            }
        }
    }

    #[inline]
    fn check_variant(
        &self,
        at: Current<'_>,
        flag: Found<'_>,
        tag: u64,
    ) -> Option<(variant::Answer, bool, bool)> {
        match flag {
            Found::At(index) => {
                let (choice, flag) = at.snapshot.check_variant_at(index, self, tag);
                Some((
                    variant::Answer::of(&choice),
                    choice.feature_enabled,
                    flag.impression_data(),
                ))
            }
            Found::Unknown(name) => {
                at.engine.count_unknown(name, true, tag);
                None
            }
        }
    }
}

impl Client {
    /// Builds the native client from options validated by `Forkflag::Config`.
    fn build(ruby: &Ruby, options: RHash) -> Result<Client, Error> {
        guard(ruby, || {
            let opts = Options {
                ruby,
                hash: options,
            };
            let engine = Arc::new(Engine::new());
            let mut warnings = Vec::new();
            let settings = settings_from(&opts)?;
            if let Source::Server { endpoint, .. } = &settings.source {
                // Reject an unusable TLS configuration now, not in the thread.
                HttpClient::new(
                    (**endpoint).clone(),
                    &settings.tls,
                    settings.timeout,
                    settings.max_payload_bytes,
                    Arc::new(SocketRegistry::new()),
                )
                .map_err(|e| from_core(ruby, e))?;
            }
            let bootstrap = opts.string("bootstrap")?;
            if bootstrap.is_none() {
                match load_backup(&engine, &settings) {
                    Ok(true) => {}
                    Ok(false) => {}
                    Err(e) => warnings.push(format!("ignoring the backup file: {e}")),
                }
            }
            if let Some(json) = bootstrap {
                let result = engine.update_json(json.as_bytes(), None);
                heap::after_update(json, &result);
                let outcome = result.map_err(|e| config_error(ruby, format!("bootstrap: {e}")))?;
                warnings.extend(outcome.warnings);
            }
            if let Source::File(path) = &settings.source {
                // Taken before reading: a change in between reads again.
                let stamp = std::fs::metadata(path).map(|m| file_stamp_of(&m));
                let bytes = std::fs::read(path).map_err(|e| {
                    config_error(
                        ruby,
                        format!("cannot read flags file {}: {e}", path.display()),
                    )
                })?;
                let result = engine.update_json(&bytes, None);
                heap::after_update(bytes, &result);
                let outcome = result.map_err(|e| {
                    config_error(ruby, format!("flags file {}: {e}", path.display()))
                })?;
                warnings.extend(outcome.warnings);
                if let Ok(stamp) = stamp {
                    engine.set_file_stamp(stamp);
                }
            }
            Ok(Client {
                snapshots: RefCell::new(engine.cache()),
                names: NameCache::new(),
                lifecycle: RefCell::new(Lifecycle::new(Arc::clone(&engine), settings)),
                engine,
                live_epoch: Cell::new(PARKED),
                impressions: Cell::new(false),
                warnings: RefCell::new(warnings),
            })
        })
    }

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

    /// The current snapshot through the client's cache, with the names
    /// remembered for it.
    #[inline(always)]
    fn cached<'a>(&'a self, cache: &'a mut SnapshotCache) -> Current<'a> {
        let snapshot = cache.load();
        self.names.follow(snapshot);
        Current {
            snapshot,
            engine: &self.engine,
            names: Some(&self.names),
        }
    }

    /// Starts (or restarts, after a fork or `park`) this process's
    /// background thread, and, when `log_thread` is set or log messages
    /// wait, the Ruby thread that hands them to the loggers. A forked child
    /// starts that Ruby thread only once its first message waits (a Ruby
    /// thread costs a forked process more than the rest of its first
    /// evaluation); the client's creator starts it at once.
    #[cold]
    fn wake_up(&self, ruby: &Ruby, log_thread: bool) -> Result<(), Error> {
        let epoch = fork::epoch();
        let live = self.live_epoch.get();
        let active = {
            let mut lifecycle = self.lifecycle.borrow_mut();
            if live == PARKED || fork::generation_of(live) != fork::generation_of(epoch) {
                lifecycle.ensure_running();
            }
            lifecycle.has_thread() && !lifecycle.is_closed()
        };
        if active && (log_thread || epoch & fork::ATTENTION != 0) {
            // Cleared first: a message queued from here on raises it again.
            fork::clear_attention();
            let logging: RModule = ruby.define_module("Forkflag")?.const_get("Logging")?;
            let _: Value = logging.funcall("ensure_running", ())?;
        }
        self.mark_started();
        Ok(())
    }

    /// Notes that this process's thread runs (started, or asked to start,
    /// by the caller); a waiting log message still reaches `wake_up`.
    fn mark_started(&self) {
        self.live_epoch.set(fork::epoch() & !fork::ATTENTION);
    }

    /// Wakes up what `epoch` (read once per evaluation) says needs it.
    #[inline]
    fn check_fork(&self, ruby: &Ruby, epoch: u64) -> Result<(), Error> {
        if self.live_epoch.get() != epoch {
            self.wake_up(ruby, false)?;
        }
        Ok(())
    }

    fn start(ruby: &Ruby, rb_self: &Client) -> Result<(), Error> {
        guard(ruby, || rb_self.wake_up(ruby, true))
    }

    /// Evaluations on a client whose thread runs in this process, without
    /// impression listeners: `(name)` or `(name, context)`, and
    /// `default:` where the method takes it, with a String or Symbol name
    /// and a nil, Hash or `Forkflag::Context` context. Calls `f` with the
    /// context, the current snapshot, the flag found and the count tag, and
    /// returns its result with the `default:` value. `None` (nothing
    /// evaluated, nothing counted) sends the call through the general path,
    /// which answers every call the same way, raises for bad arguments,
    /// starts threads after a fork and emits impressions.
    #[inline(always)]
    fn quick<R>(
        ruby: &Ruby,
        rb_self: Value,
        args: &[Value],
        accepts_default: bool,
        f: impl FnOnce(&dyn ContextRef, Current<'_>, Found<'_>, u64) -> R,
    ) -> Option<(Result<R, Error>, Option<Value>)> {
        let this = typed::<Client>(&rb_self)?;
        let (positional, keywords) = split_keywords(args);
        let default = match keywords {
            None => None,
            Some(kw) if accepts_default => Some(only_default(ruby, kw)?),
            Some(_) => return None,
        };
        let (name, context) = match positional {
            [name] => (name, ContextArg::Empty),
            [name, context] => (name, ContextArg::of(context)?),
            _ => return None,
        };
        let epoch = fork::epoch();
        if this.live_epoch.get() != epoch || this.impressions.get() {
            return None;
        }
        let mut cache = this.snapshots.try_borrow_mut().ok()?;
        let at = this.cached(&mut cache);
        let flag = at.find(name)?;
        let tag = tag_for(fork::generation_of(epoch));
        Some((context.with(|ctx| f(ctx, at, flag, tag)), default))
    }

    /// `enabled?(name, context = nil, default: false)`
    fn enabled(ruby: &Ruby, rb_self: Value, args: &[Value]) -> Result<bool, Error> {
        guard(ruby, || {
            if let Some((answer, default)) =
                Client::quick(ruby, rb_self, args, true, |ctx, at, flag, tag| {
                    ctx.check(at, flag, tag)
                })
            {
                return Ok(match answer? {
                    Some((enabled, _)) => enabled,
                    None => default.is_some_and(|d| d.to_bool()),
                });
            }
            let this = receiver(&rb_self)?;
            let a = parse_eval_args(ruby, "enabled?", args, true)?;
            let epoch = fork::epoch();
            let tag = tag_for(fork::generation_of(epoch));
            let answer = this.with_current(|at| {
                let flag = at
                    .find(&a.name)
                    .ok_or_else(|| name_type_error(ruby, a.name))?;
                with_context(ruby, &a.context, |ctx| ctx.check(at, flag, tag))
            })?;
            // Answered from the snapshot this process has (inherited, in a
            // forked child); only then are the threads started, if needed.
            this.check_fork(ruby, epoch)?;
            match answer {
                Some((enabled, impression)) => {
                    if impression && this.impressions.get() {
                        emit_impression(
                            ruby,
                            Obj::try_convert(rb_self)?,
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
    fn variant(ruby: &Ruby, rb_self: Value, args: &[Value]) -> Result<Value, Error> {
        guard(ruby, || {
            // The Ruby object is made once the evaluation's borrows ended
            // (its allocation may raise NoMemoryError).
            if let Some((answer, _)) =
                Client::quick(ruby, rb_self, args, false, |ctx, at, flag, tag| {
                    ctx.check_variant(at, flag, tag)
                })
            {
                return Ok(answer?.map_or_else(
                    || variant::shared_disabled(false),
                    |(v, _, _)| v.into_ruby(ruby),
                ));
            }
            let this = receiver(&rb_self)?;
            let a = parse_eval_args(ruby, "variant", args, false)?;
            let epoch = fork::epoch();
            let tag = tag_for(fork::generation_of(epoch));
            let answer = this.with_current(|at| {
                let flag = at
                    .find(&a.name)
                    .ok_or_else(|| name_type_error(ruby, a.name))?;
                with_context(ruby, &a.context, |ctx| ctx.check_variant(at, flag, tag))
            })?;
            // As in `enabled?`: answer first, then start the threads.
            this.check_fork(ruby, epoch)?;
            match answer {
                Some((answer, feature_enabled, impression)) => {
                    let obj = answer.into_ruby(ruby);
                    if impression && this.impressions.get() {
                        emit_impression(
                            ruby,
                            Obj::try_convert(rb_self)?,
                            "getVariant",
                            a.name,
                            feature_enabled,
                            Some(obj),
                            a.context,
                        );
                    }
                    Ok(obj)
                }
                None => Ok(variant::shared_disabled(false)),
            }
        })
    }

    fn flag_names(ruby: &Ruby, rb_self: &Client) -> Result<RArray, Error> {
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

    /// Problems found in loaded payloads since the last call, each reported
    /// once per configuration.
    fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.borrow_mut())
    }

    fn is_ready(&self) -> bool {
        let lifecycle = self.lifecycle.borrow();
        !lifecycle.has_thread() || self.engine.is_synced()
    }

    /// Waits (GVL released, interruptible) until the flags are current.
    fn wait_until_ready(
        ruby: &Ruby,
        rb_self: &Client,
        timeout: Option<f64>,
    ) -> Result<bool, Error> {
        if rb_self.is_ready() {
            return Ok(true);
        }
        let latch = guard(ruby, || Ok(rb_self.lifecycle.borrow_mut().ready_latch()))?;
        rb_self.mark_started();
        let Some(latch) = latch else {
            return Ok(rb_self.is_ready());
        };
        let waited = wait_released(ruby, latch, timeout)?;
        Ok(matches!(waited, Waited::Done(())) || rb_self.is_ready())
    }

    /// Sends the metrics now; returns the evaluations reported, or nil when
    /// it did not complete within `timeout`.
    fn flush(ruby: &Ruby, rb_self: &Client, timeout: f64) -> Result<Option<u64>, Error> {
        let done = guard(ruby, || Ok(rb_self.lifecycle.borrow_mut().flush()))?;
        rb_self.mark_started();
        let Some(done) = done else {
            return Ok(Some(0));
        };
        Ok(match wait_released(ruby, done, Some(timeout))? {
            Waited::Done(Ok(sent)) => Some(sent),
            _ => None,
        })
    }

    /// Refreshes now; true when the configuration is current.
    fn refresh(ruby: &Ruby, rb_self: &Client, timeout: f64) -> Result<bool, Error> {
        let done = guard(ruby, || Ok(rb_self.lifecycle.borrow_mut().refresh()))?;
        rb_self.mark_started();
        let Some(done) = done else {
            return Ok(rb_self.is_ready());
        };
        let waited = wait_released(ruby, done, Some(timeout))?;
        Ok(matches!(waited, Waited::Done(Ok(()))))
    }

    /// Stops the thread (parks, or closes for good), sending the metrics
    /// first when `flush`. Waits at most `timeout`; true when the thread
    /// finished in time.
    fn stop(
        ruby: &Ruby,
        rb_self: &Client,
        timeout: f64,
        flush: bool,
        close: bool,
    ) -> Result<bool, Error> {
        let stopping = guard(ruby, || {
            Ok(rb_self.lifecycle.borrow_mut().stop(flush, close))
        })?;
        if close {
            rb_self.mark_started();
        } else {
            rb_self.live_epoch.set(PARKED);
        }
        let Some(stopping) = stopping else {
            return Ok(true);
        };
        let waker = stopping.waker();
        let waited = nogvl::wait(
            ruby,
            |stop| stopping.wait(seconds(timeout), stop),
            &move || waker.wake(),
        )?;
        Ok(matches!(waited, Waited::Done(_)))
    }

    fn stats(ruby: &Ruby, rb_self: &Client) -> Result<RHash, Error> {
        let stats = rb_self.lifecycle.borrow().stats();
        let stats = &stats;
        let ready = rb_self.is_ready();
        let flags = rb_self.engine.load().len();
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

    /// How many name objects the client remembers (tests).
    fn names_remembered(&self) -> usize {
        self.names.remembered()
    }

    /// Whether the client remembers this name object (tests).
    fn remembers(&self, name: Value) -> bool {
        self.names.get(name.as_raw()).is_some()
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
            let result = rb_self.engine.update_json(bytes, None);
            heap::after_update(bytes, &result);
            let outcome = result.map_err(|e| from_core(ruby, e))?;
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

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

/// Reads the options Hash built by `Forkflag::Config#native_options`.
struct Options<'a> {
    ruby: &'a Ruby,
    hash: RHash,
}

impl Options<'_> {
    fn value(&self, key: &str) -> Result<Value, Error> {
        self.hash.aref(self.ruby.to_symbol(key))
    }

    fn string(&self, key: &str) -> Result<Option<String>, Error> {
        Option::<String>::try_convert(self.value(key)?)
    }

    fn required(&self, key: &str) -> Result<String, Error> {
        self.string(key)?
            .ok_or_else(|| arg_error(self.ruby, format!("option :{key} is required")))
    }

    fn seconds(&self, key: &str) -> Result<Duration, Error> {
        Ok(seconds(f64::try_convert(self.value(key)?)?))
    }

    fn flag(&self, key: &str) -> Result<bool, Error> {
        Ok(self.value(key)?.to_bool())
    }
}

fn settings_from(opts: &Options<'_>) -> Result<Settings, Error> {
    let ruby = opts.ruby;
    let source = match (opts.string("url")?, opts.string("file")?) {
        (Some(url), _) => Source::Server {
            endpoint: Arc::new(Endpoint::parse(&url).map_err(|e| arg_error(ruby, e.to_string()))?),
            token: Secret(opts.required("token")?),
        },
        (None, Some(file)) => Source::File(PathBuf::from(file)),
        (None, None) => Source::Static,
    };
    let tls = TlsOptions {
        ca_file: opts.string("tls_ca_file")?.map(PathBuf::from),
        verify: opts.flag("tls_verify")?,
    };
    // Read once, here: the client's threads and forked children share them.
    let tls = match &source {
        Source::Server { endpoint, .. } => {
            Tls::load(endpoint, &tls).map_err(|e| from_core(ruby, e))?
        }
        _ => Tls::plain(),
    };
    let headers: Vec<(String, String)> = Vec::try_convert(opts.value("custom_headers")?)?;
    Ok(Settings {
        client_id: u64::try_convert(opts.value("client_id")?)?,
        source,
        app_name: opts
            .string("app_name")?
            .unwrap_or_else(|| "forkflag".into()),
        instance_id: opts.required("instance_id")?,
        environment: opts.string("environment")?,
        project: opts.string("project")?,
        name_prefix: opts.string("name_prefix")?,
        refresh_interval: opts.seconds("refresh_interval")?,
        metrics_interval: opts.seconds("metrics_interval")?,
        timeout: opts.seconds("timeout")?,
        custom_headers: headers,
        backup_path: opts.string("backup_path")?.map(PathBuf::from),
        metrics_enabled: !opts.flag("disable_metrics")?,
        tls,
        max_payload_bytes: usize::try_convert(opts.value("max_payload_bytes")?)?,
        sdk: opts.required("sdk")?,
        user_agent: opts.required("user_agent")?,
        platform_name: opts.required("platform_name")?,
        platform_version: opts.required("platform_version")?,
    })
}

fn fork_generation() -> u64 {
    fork::generation()
}

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("Forkflag")?;
    module.define_singleton_method("_fork_generation", function!(fork_generation, 0))?;
    let class = module.define_class("Client", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("_build", function!(Client::build, 1))?;
    class.define_method("enabled?", method!(Client::enabled, -1))?;
    class.define_method("variant", method!(Client::variant, -1))?;
    class.define_method("flag_names", method!(Client::flag_names, 0))?;
    class.define_method("_impressions=", method!(Client::set_impressions, 1))?;
    class.define_method("_update", method!(Client::update, 1))?;
    class.define_method("_take_warnings", method!(Client::take_warnings, 0))?;
    class.define_method("_start", method!(Client::start, 0))?;
    class.define_method("ready?", method!(Client::is_ready, 0))?;
    class.define_method("_wait_until_ready", method!(Client::wait_until_ready, 1))?;
    class.define_method("_flush", method!(Client::flush, 1))?;
    class.define_method("_refresh", method!(Client::refresh, 1))?;
    class.define_method("_stop", method!(Client::stop, 3))?;
    class.define_method("_stats", method!(Client::stats, 0))?;
    class.define_method("_names_remembered", method!(Client::names_remembered, 0))?;
    class.define_method("_remembers?", method!(Client::remembers, 1))?;
    Ok(())
}
