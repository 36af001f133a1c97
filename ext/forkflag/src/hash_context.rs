//! A Ruby Hash read as an evaluation context, lazily and without copying.
//!
//! Keys may be Symbols or Strings, in snake_case or the camelCase of the
//! Unleash API. A field is read when an evaluation needs it, and a flag
//! whose strategies read no field never looks at the hash: first as a Symbol
//! key, by a direct lookup (camelCase, then snake_case), which is how
//! applications write contexts; only a field missing as a Symbol makes the
//! hash be scanned, once per evaluation, for String keys (the last such key
//! wins). Custom properties are read from the properties hash, then from
//! the top level: as a Symbol key by a direct lookup, when a Symbol of
//! their name exists (looked up once per process and name, see
//! [`property_symbol`]), else by a scan for a String or Symbol key with
//! their name (the first such key). Values are read in place: Strings and
//! Symbols as they are, Integers formatted on the stack, anything else
//! through `to_s`.
//!
//! Every read that can run Ruby code or raise runs under `rb_protect`
//! ([`protect`]): a value whose `to_s` raises a StandardError reads as
//! absent; anything else that stops a read (a Time out of range, an
//! Interrupt, a `throw`) is kept in the context and raised by the caller
//! once the evaluation's Rust frames have returned (see
//! [`HashContext::take_failure`]).

use std::cell::{Cell, UnsafeCell};
use std::os::raw::{c_int, c_long};
use std::sync::OnceLock;

use forkflag_core::time::parse_timestamp_millis;
use forkflag_core::{Context, CurrentTime, Field};
use magnus::rb_sys::FromRawValue;
use magnus::{Error, Ruby, Value};
use rb_sys::{
    macros::{FIXNUM_P, RB_SYMBOL_P, RB_TYPE_P, RSTRING_LEN, RSTRING_PTR},
    rb_cTime, rb_hash_foreach, rb_hash_lookup2, rb_obj_as_string, rb_obj_is_kind_of, rb_sym2str,
    rb_time_timespec, ruby_special_consts, ruby_value_type, st_retval, VALUE,
};

use crate::errors::arg_error;
use crate::protect::{is_standard_error, protect};

/// Slots of the standard fields in a scanned hash.
const USER_ID: usize = 0;
const SESSION_ID: usize = 1;
const REMOTE_ADDRESS: usize = 2;
const ENVIRONMENT: usize = 3;
const APP_NAME: usize = 4;
const CURRENT_TIME: usize = 5;
const PROPERTIES: usize = 6;
const SLOTS: usize = 7;

/// Accepted key names and their slots.
const KEY_NAMES: [(&str, usize); 12] = [
    ("userId", USER_ID),
    ("user_id", USER_ID),
    ("sessionId", SESSION_ID),
    ("session_id", SESSION_ID),
    ("remoteAddress", REMOTE_ADDRESS),
    ("remote_address", REMOTE_ADDRESS),
    ("environment", ENVIRONMENT),
    ("appName", APP_NAME),
    ("app_name", APP_NAME),
    ("currentTime", CURRENT_TIME),
    ("current_time", CURRENT_TIME),
    ("properties", PROPERTIES),
];

const QNIL: VALUE = ruby_special_consts::RUBY_Qnil as VALUE;
const QTRUE: VALUE = ruby_special_consts::RUBY_Qtrue as VALUE;
const QFALSE: VALUE = ruby_special_consts::RUBY_Qfalse as VALUE;
const QUNDEF: VALUE = ruby_special_consts::RUBY_Qundef as VALUE;

/// The symbols of [`KEY_NAMES`], interned once (static symbols are never
/// collected).
static KEY_SYMBOLS: OnceLock<[VALUE; 12]> = OnceLock::new();

/// The ID of `eql?`, interned once.
static EQL: OnceLock<rb_sys::ID> = OnceLock::new();

/// Interns the key symbols.
/// (`_ruby`: called on a Ruby thread.)
pub fn init(_ruby: &Ruby) -> Result<(), Error> {
    let mut syms = [QNIL; 12];
    for (i, (name, _)) in KEY_NAMES.iter().enumerate() {
        // SAFETY: on a Ruby thread at load time; rb_intern2 makes a
        // permanent ID, and the Symbol of an ID is static (an immediate
        // value the GC never frees), so it may be kept and looked up later.
        syms[i] = unsafe {
            rb_sys::rb_id2sym(rb_sys::rb_intern2(
                name.as_ptr().cast(),
                name.len() as std::os::raw::c_long,
            ))
        };
    }
    let _ = KEY_SYMBOLS.set(syms);
    // SAFETY: as above; a permanent ID.
    let _ = EQL.set(unsafe { rb_sys::rb_intern2(c"eql?".as_ptr(), 4) });
    // SAFETY: at load time, on the Ruby thread holding the GVL, before any
    // evaluation: the table never reallocates on an evaluation's path.
    unsafe { (*SYMBOLS.0.get()).reserve_exact(PROPERTY_SYMBOLS) };
    Ok(())
}

fn slot_of_text(text: &[u8]) -> Option<usize> {
    KEY_NAMES
        .iter()
        .find(|(name, _)| name.as_bytes() == text)
        .map(|(_, slot)| *slot)
}

/// The text of a String or Symbol key, borrowed from the Ruby object.
///
/// # Safety
/// `key` must be a live VALUE; the slice is valid while it is.
unsafe fn key_text<'a>(key: VALUE) -> Option<&'a [u8]> {
    if RB_TYPE_P(key, ruby_value_type::RUBY_T_STRING) {
        return Some(string_bytes(key));
    }
    if RB_SYMBOL_P(key) {
        return Some(string_bytes(rb_sym2str(key)));
    }
    None
}

/// # Safety
/// `s` must be a live String VALUE; the slice is valid while it is unmodified.
unsafe fn string_bytes<'a>(s: VALUE) -> &'a [u8] {
    let len = RSTRING_LEN(s) as usize;
    if len == 0 {
        return &[];
    }
    std::slice::from_raw_parts(RSTRING_PTR(s) as *const u8, len)
}

/// Whether [`with_value_text`] reads `value` through its `to_s` (Ruby code).
#[inline]
fn reads_through_to_s(value: VALUE) -> bool {
    if value == QNIL || value == QUNDEF || value == QTRUE || value == QFALSE || FIXNUM_P(value) {
        return false;
    }
    // SAFETY: `value` is a live VALUE (type tests only).
    unsafe { !(RB_TYPE_P(value, ruby_value_type::RUBY_T_STRING) || RB_SYMBOL_P(value)) }
}

/// Calls `f` with the text of a Ruby value (`None` for nil).
///
/// A value that is not a String, Symbol, Integer, true or false is read
/// through its `to_s`, under `rb_protect`: one that raises a StandardError
/// reads as absent; anything else it raises or throws goes to `failed`
/// (and the value reads as absent), for the caller to raise once its Rust
/// frames have returned.
pub fn with_value_text<R>(
    value: VALUE,
    failed: impl FnOnce(Error),
    f: impl FnOnce(Option<&str>) -> R,
) -> R {
    if value == QNIL || value == QUNDEF {
        return f(None);
    }
    if value == QTRUE {
        return f(Some("true"));
    }
    if value == QFALSE {
        return f(Some("false"));
    }
    if FIXNUM_P(value) {
        // SAFETY: `value` is a Fixnum.
        let n = unsafe { rb_sys::macros::FIX2LONG(value) };
        let mut buf = itoa_buf::Buffer::new();
        return f(Some(buf.format(n)));
    }
    // SAFETY: `value` is a live VALUE passed in by Ruby for this call;
    // neither test nor rb_sym2str (the Symbol's own frozen String) raises.
    unsafe {
        if RB_TYPE_P(value, ruby_value_type::RUBY_T_STRING) {
            return with_bytes(string_bytes(value), f);
        }
        if RB_SYMBOL_P(value) {
            return with_bytes(string_bytes(rb_sym2str(value)), f);
        }
    }
    // SAFETY: rb_obj_as_string calls the value's `to_s`, which may raise:
    // under protect; the closure holds nothing with a destructor.
    let text = match protect(|| unsafe { rb_obj_as_string(value) }) {
        Ok(text) => text,
        Err(error) => {
            // SAFETY: on a Ruby thread (this is a method call's context).
            let ruby = unsafe { Ruby::get_unchecked() };
            if !is_standard_error(&ruby, &error) {
                failed(error);
            }
            return f(None);
        }
    };
    // SAFETY: `text` is the String rb_obj_as_string returned; the guard
    // below keeps it on this stack frame (visible to the GC) while `f`
    // reads its bytes.
    let result = with_bytes(unsafe { string_bytes(text) }, f);
    rb_sys::rb_gc_guard!(text);
    result
}

fn with_bytes<R>(bytes: &[u8], f: impl FnOnce(Option<&str>) -> R) -> R {
    match std::str::from_utf8(bytes) {
        Ok(s) => f(Some(s)),
        Err(_) => f(Some(&String::from_utf8_lossy(bytes))),
    }
}

/// What [`time_of`] does with a Time whose milliseconds since the epoch do
/// not fit in 64 bits (one hundreds of millions of years away).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BeyondMillis {
    /// Saturate: it compares as the far past or future (an evaluation).
    Saturate,
    /// Reject it (a context built to be reused, whose time must read back).
    Reject,
}

/// The time a Time or an ISO-8601 String names.
///
/// Never wraps around: a Time beyond the millisecond range saturates or is
/// rejected (`beyond`); a Time beyond what Ruby itself can convert
/// (`time_t`) is an ArgumentError naming it; anything else that stops the
/// read (an Interrupt in a `to_s`, say) is returned as it is. The caller
/// raises the error once its Rust frames have returned.
pub fn time_of(value: VALUE, beyond: BeyondMillis) -> Result<CurrentTime, Error> {
    if value == QNIL || value == QUNDEF {
        return Ok(CurrentTime::Now);
    }
    // SAFETY: `value` is live; rb_obj_is_kind_of walks the class chain
    // (calls no method, cannot raise); rb_cTime is Ruby's Time class.
    let is_time = unsafe { rb_obj_is_kind_of(value, rb_cTime) } == QTRUE;
    if !is_time {
        let mut failure = None;
        let time = with_value_text(
            value,
            |e| failure = Some(e),
            |t| {
                t.and_then(parse_timestamp_millis)
                    .map_or(CurrentTime::Unreadable, CurrentTime::At)
            },
        );
        return failure.map_or(Ok(time), Err);
    }
    let seconds = Cell::new(0i64);
    let nanos = Cell::new(0i64);
    // rb_time_timespec raises for a Time outside time_t (and for an
    // uninitialised one): under protect; the closure only writes two Cells.
    let converted = protect(|| {
        // SAFETY: `value` is a live Time; a raise stops at protect.
        let ts = unsafe { rb_time_timespec(value) };
        seconds.set(ts.tv_sec);
        nanos.set(ts.tv_nsec);
        QNIL
    });
    // SAFETY: on a Ruby thread (this is a method call's context).
    let ruby = unsafe { Ruby::get_unchecked() };
    let out_of_range = |why: &str| {
        // SAFETY: `value` is live (an argument of the current call).
        let given = crate::errors::describe(unsafe { Value::from_raw(value) });
        arg_error(
            &ruby,
            format!(
                "current_time {given} {why}; expected a Time within about 292 million years \
                 of 1970, or an ISO-8601 String"
            ),
        )
    };
    match converted {
        Ok(_) => match millis_of(seconds.get(), nanos.get()) {
            Some(ms) => Ok(CurrentTime::At(ms)),
            None if beyond == BeyondMillis::Saturate => Ok(CurrentTime::At(if seconds.get() < 0 {
                i64::MIN
            } else {
                i64::MAX
            })),
            None => Err(out_of_range(
                "is out of range (its milliseconds overflow 64 bits)",
            )),
        },
        Err(error) if is_standard_error(&ruby, &error) => {
            Err(out_of_range(&format!("cannot be converted ({error})")))
        }
        Err(error) => Err(error),
    }
}

/// Milliseconds since the epoch of a `timespec`; `None` beyond `i64`.
fn millis_of(seconds: i64, nanos: i64) -> Option<i64> {
    seconds.checked_mul(1000)?.checked_add(nanos / 1_000_000)
}

/// A Ruby Hash viewed as a context.
pub struct HashContext {
    hash: VALUE,
    fields: Cell<Option<[VALUE; SLOTS]>>,
    /// Whether `Symbol#eql?` is redefined (see [`HashContext::lookup`]);
    /// `None` until asked, and again after any Ruby code ran.
    eql_redefined: Cell<Option<bool>>,
    /// What stopped a read and must reach Ruby (see the module doc); the
    /// first one only.
    failure: Cell<Option<Error>>,
}

impl HashContext {
    /// Wraps a Hash VALUE; it must stay alive (it is an argument of the
    /// current method call) while the context is used.
    #[inline]
    pub fn new(hash: VALUE) -> HashContext {
        HashContext {
            hash,
            fields: Cell::new(None),
            eql_redefined: Cell::new(None),
            failure: Cell::new(None),
        }
    }

    /// What stopped a read of this context, to raise now that the
    /// evaluation returned (it was not counted).
    #[inline]
    pub fn take_failure(&self) -> Option<Error> {
        if self.failed() {
            self.failure.take()
        } else {
            None
        }
    }

    /// Keeps `error` for [`HashContext::take_failure`] (the first one).
    #[cold]
    fn fail(&self, error: Error) {
        let first = self.failure.take().unwrap_or(error);
        self.failure.set(Some(first));
    }

    /// Runs a lookup of keys (`rb_hash_lookup2` with a Symbol key, scans).
    ///
    /// Such a lookup calls no method of the Hash's keys (their hashes were
    /// computed when they were stored); a key whose hash collides with the
    /// Symbol's is compared with the Symbol's `eql?`, which is Ruby's own
    /// (an identity test) unless a program redefined it. So the lookup runs
    /// as it is when `Symbol#eql?` is Ruby's own, and under `rb_protect`
    /// otherwise (see [`protect`]): one stopped by a StandardError reads as
    /// absent, anything else also goes to [`HashContext::fail`].
    #[inline]
    fn lookup(&self, read: impl FnOnce() -> VALUE + Copy) -> VALUE {
        if !self.eql_redefined() {
            return read();
        }
        match protect(read) {
            Ok(value) => value,
            Err(error) => self.lookup_failed(error),
        }
    }

    /// Whether `Symbol#eql?` is not Ruby's own; asked once per evaluation,
    /// and again after Ruby code ran ([`HashContext::with_field`]).
    #[inline]
    fn eql_redefined(&self) -> bool {
        if let Some(known) = self.eql_redefined.get() {
            return known;
        }
        let eql = *EQL.get().expect("hash_context::init interns eql?");
        // SAFETY: on a Ruby thread; rb_method_basic_definition_p resolves a
        // method entry (no method call, no raise).
        let redefined =
            unsafe { rb_sys::rb_method_basic_definition_p(rb_sys::rb_cSymbol, eql) } == 0;
        self.eql_redefined.set(Some(redefined));
        redefined
    }

    #[cold]
    fn lookup_failed(&self, error: Error) -> VALUE {
        // SAFETY: on a Ruby thread (this is a method call's context).
        let ruby = unsafe { Ruby::get_unchecked() };
        if !is_standard_error(&ruby, &error) {
            self.fail(error);
        }
        QUNDEF
    }

    /// The value of a standard field: its Symbol keys by lookup, then the
    /// String keys the scan found.
    fn field(&self, slot: usize) -> VALUE {
        self.lookup(|| self.field_unprotected(slot))
    }

    /// [`HashContext::field`] for a caller that is itself a
    /// [`HashContext::lookup`].
    fn field_unprotected(&self, slot: usize) -> VALUE {
        if let Some(syms) = KEY_SYMBOLS.get() {
            for (i, (_, of)) in KEY_NAMES.iter().enumerate() {
                if *of == slot {
                    // SAFETY: `self.hash` is a live Hash and `syms[i]` a
                    // static Symbol; the caller is a `lookup`.
                    let value = unsafe { rb_hash_lookup2(self.hash, syms[i], QUNDEF) };
                    if value != QUNDEF {
                        return value;
                    }
                }
            }
        }
        self.scanned()[slot]
    }

    /// The standard fields given under String keys, the hash scanned once
    /// (a Symbol key is found by [`HashContext::field`]'s lookup; a field
    /// missing as a Symbol can only come from a String).
    fn scanned(&self) -> [VALUE; SLOTS] {
        if let Some(f) = self.fields.get() {
            return f;
        }
        let mut fields = [QUNDEF; SLOTS];
        unsafe extern "C" fn visit(key: VALUE, value: VALUE, arg: VALUE) -> c_int {
            // SAFETY: `arg` is the address of `fields` below, alive for the
            // whole iteration; the callback neither raises nor allocates.
            let fields = &mut *(arg as *mut [VALUE; SLOTS]);
            if RB_TYPE_P(key, ruby_value_type::RUBY_T_STRING) {
                if let Some(slot) = slot_of_text(string_bytes(key)) {
                    fields[slot] = value;
                }
            }
            st_retval::ST_CONTINUE as c_int
        }
        // SAFETY: `self.hash` is a live Hash; `visit` matches the callback
        // signature and only reads keys. rb_hash_foreach calls no method of
        // the keys or values, and raises only if the callback changed the
        // hash, which it does not.
        unsafe {
            rb_hash_foreach(
                self.hash,
                Some(visit),
                &mut fields as *mut [VALUE; SLOTS] as VALUE,
            )
        };
        self.fields.set(Some(fields));
        fields
    }

    fn custom(&self, name: &str) -> VALUE {
        let symbol = property_symbol(name, |e| {
            self.lookup_failed(e);
        });
        let name = name.as_bytes();
        let reserved = slot_of_text(name).is_some();
        self.lookup(|| {
            let props = self.field_unprotected(PROPERTIES);
            // SAFETY: `props` is a live VALUE from the context hash.
            if props != QUNDEF && unsafe { RB_TYPE_P(props, ruby_value_type::RUBY_T_HASH) } {
                let found = find_property(props, name, symbol);
                if found != QUNDEF {
                    return found;
                }
            }
            if reserved {
                return QUNDEF;
            }
            find_property(self.hash, name, symbol)
        })
    }
}

/// The value of the custom property `name` in `hash`: under `symbol` (the
/// Symbol of that name, when one exists) by a direct lookup, then under a
/// String key; without a Symbol, under the first String or Symbol key with
/// that text. Called by a [`HashContext::lookup`].
fn find_property(hash: VALUE, name: &[u8], symbol: Option<VALUE>) -> VALUE {
    match symbol {
        Some(symbol) => {
            // SAFETY: `hash` is a live Hash and `symbol` a pinned Symbol;
            // the caller is a `lookup`.
            let found = unsafe { rb_hash_lookup2(hash, symbol, QUNDEF) };
            if found != QUNDEF {
                return found;
            }
            // No other Symbol has this text: only String keys are left.
            find_by_text(hash, name, false)
        }
        None => find_by_text(hash, name, true),
    }
}

/// Property names whose Symbol is remembered (the rest are found by scans).
const PROPERTY_SYMBOLS: usize = 64;
/// A name with no Symbol is looked up again once in this many uses, so a
/// Symbol made later is read by lookup too (until then the scan finds it).
const RECHECK_EVERY: u32 = 1024;

struct PropertySymbol {
    name: Box<str>,
    /// The Symbol (pinned), or nil when none existed at the last look.
    symbol: VALUE,
    uses: u32,
}

/// The property Symbols of this process. Read and written only by Ruby
/// threads holding the GVL (evaluations), one at a time, and never while a
/// reference into it is held across a call into Ruby.
struct PropertySymbols(UnsafeCell<Vec<PropertySymbol>>);

// SAFETY: see the type's doc: the GVL serialises every access.
unsafe impl Sync for PropertySymbols {}

static SYMBOLS: PropertySymbols = PropertySymbols(UnsafeCell::new(Vec::new()));

/// The Symbol named `name`, if one exists, remembered per process: a
/// property under a Symbol key is then read with one hash lookup instead
/// of a scan that names every Symbol key through Ruby's symbol table (a
/// read that misses the caches in a server worker). Symbols found are
/// pinned (`rb_gc_register_mark_object`), at most [`PROPERTY_SYMBOLS`];
/// the first use of a name copies it (once per name and process; the table
/// itself is reserved at load).
fn property_symbol(name: &str, failed: impl FnOnce(Error)) -> Option<VALUE> {
    let table = SYMBOLS.0.get();
    // SAFETY: under the GVL (see PropertySymbols); the borrow ends before
    // any call into Ruby.
    let known = unsafe {
        let entries = &mut *table;
        match entries.iter_mut().position(|e| &*e.name == name) {
            Some(i) => {
                let entry = &mut entries[i];
                if entry.symbol != QNIL {
                    return Some(entry.symbol);
                }
                entry.uses = entry.uses.wrapping_add(1);
                if entry.uses % RECHECK_EVERY != 0 {
                    return None;
                }
                Some(i)
            }
            None if entries.len() >= PROPERTY_SYMBOLS => return None,
            None => None,
        }
    };
    let found = protect(|| {
        // SAFETY: on a Ruby thread; the text is valid UTF-8 for its length,
        // so rb_check_symbol_cstr does not raise (it raises only for a
        // broken encoding); it makes no Symbol: nil when none has the name.
        let symbol = unsafe {
            rb_sys::rb_check_symbol_cstr(
                name.as_ptr().cast(),
                name.len() as c_long,
                rb_sys::rb_utf8_encoding(),
            )
        };
        if symbol != QNIL {
            // SAFETY: `symbol` is a live Symbol; pinning keeps a dynamic one
            // (which the GC may otherwise free) at this address for good.
            // It allocates (NoMemoryError): under protect.
            unsafe { rb_sys::rb_gc_register_mark_object(symbol) };
        }
        symbol
    });
    let symbol = match found {
        Ok(symbol) => symbol,
        Err(error) => {
            failed(error);
            return None;
        }
    };
    // SAFETY: as above; nothing else touched the table since (the calls
    // above run no evaluation).
    let entries = unsafe { &mut *table };
    match known {
        Some(i) => entries[i].symbol = symbol,
        None => entries.push(PropertySymbol {
            name: name.into(),
            symbol,
            uses: 0,
        }),
    }
    (symbol != QNIL).then_some(symbol)
}

/// Finds the value whose String key (or, with `symbols`, Symbol key)
/// reads `name`: the first such key.
fn find_by_text(hash: VALUE, name: &[u8], symbols: bool) -> VALUE {
    struct Search<'a> {
        name: &'a [u8],
        symbols: bool,
        found: VALUE,
    }
    unsafe extern "C" fn visit(key: VALUE, value: VALUE, arg: VALUE) -> c_int {
        // SAFETY: `arg` points at the `Search` below for the whole iteration.
        let search = &mut *(arg as *mut Search);
        let text = if search.symbols || !RB_SYMBOL_P(key) {
            key_text(key)
        } else {
            None
        };
        if text == Some(search.name) {
            search.found = value;
            return st_retval::ST_STOP as c_int;
        }
        st_retval::ST_CONTINUE as c_int
    }
    let mut search = Search {
        name,
        symbols,
        found: QUNDEF,
    };
    // SAFETY: `hash` is a live Hash; the callback only compares key bytes
    // (rb_sym2str does not raise), so nothing raises (see `scanned`).
    unsafe { rb_hash_foreach(hash, Some(visit), &mut search as *mut Search as VALUE) };
    search.found
}

impl Context for HashContext {
    fn with_field<R>(&self, field: &Field, f: impl FnOnce(Option<&str>) -> R) -> R {
        let value = match field {
            Field::UserId => self.field(USER_ID),
            Field::SessionId => self.field(SESSION_ID),
            Field::RemoteAddress => self.field(REMOTE_ADDRESS),
            Field::Environment => self.field(ENVIRONMENT),
            Field::AppName => self.field(APP_NAME),
            Field::CurrentTime => self.field(CURRENT_TIME),
            Field::Property(name) => self.custom(name),
        };
        if reads_through_to_s(value) {
            // Ruby code runs: it may redefine what the next lookup relies on.
            self.eql_redefined.set(None);
        }
        with_value_text(value, |e| self.fail(e), f)
    }

    fn current_time(&self) -> CurrentTime {
        match time_of(self.field(CURRENT_TIME), BeyondMillis::Saturate) {
            Ok(time) => time,
            Err(error) => {
                self.fail(error);
                CurrentTime::Unreadable
            }
        }
    }

    #[inline]
    fn failed(&self) -> bool {
        // SAFETY: a read of the Cell's content with no other reference to
        // it alive (this type is used by one thread, and no method of it is
        // running while this one is).
        unsafe { (*self.failure.as_ptr()).is_some() }
    }
}

mod itoa_buf {
    /// Formats an integer on the stack.
    pub struct Buffer {
        bytes: [u8; 24],
    }

    impl Buffer {
        pub fn new() -> Buffer {
            Buffer { bytes: [0; 24] }
        }

        pub fn format(&mut self, n: i64) -> &str {
            let mut i = self.bytes.len();
            let negative = n < 0;
            let mut m = n.unsigned_abs();
            loop {
                i -= 1;
                self.bytes[i] = b'0' + (m % 10) as u8;
                m /= 10;
                if m == 0 {
                    break;
                }
            }
            if negative {
                i -= 1;
                self.bytes[i] = b'-';
            }
            // SAFETY: only ASCII digits and '-' were written.
            unsafe { std::str::from_utf8_unchecked(&self.bytes[i..]) }
        }
    }
}
