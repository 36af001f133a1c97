//! A Ruby Hash read as an evaluation context, lazily and without copying.
//!
//! Keys may be Symbols or Strings, in snake_case or the camelCase of the
//! Unleash API. A field is read when an evaluation needs it, and a flag
//! whose strategies read no field never looks at the hash: first as a Symbol
//! key, by a direct lookup (camelCase, then snake_case), which is how
//! applications write contexts; only a field missing as a Symbol makes the
//! hash be scanned, once per evaluation, for String keys (the last such key
//! wins). Custom properties are found by a scan of the properties hash
//! (then of the top level) for a String or Symbol key with their name:
//! looking a Symbol up by name costs more than that scan. Values are read
//! in place: Strings and Symbols as they are, Integers formatted on the
//! stack, anything else through `to_s`.

use std::cell::Cell;
use std::os::raw::c_int;
use std::sync::OnceLock;

use forkflag_core::time::parse_timestamp_millis;
use forkflag_core::{Context, CurrentTime, Field};
use magnus::{Error, Ruby};
use rb_sys::{
    macros::{FIXNUM_P, RB_SYMBOL_P, RB_TYPE_P, RSTRING_LEN, RSTRING_PTR},
    rb_cTime, rb_hash_foreach, rb_hash_lookup2, rb_obj_as_string, rb_obj_is_kind_of, rb_protect,
    rb_sym2str, rb_time_timespec, ruby_special_consts, ruby_value_type, st_retval, VALUE,
};

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

/// Calls `f` with the text of a Ruby value (`None` for nil).
pub fn with_value_text<R>(value: VALUE, f: impl FnOnce(Option<&str>) -> R) -> R {
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
    // SAFETY: `value` is a live VALUE passed in by Ruby for this call.
    unsafe {
        if RB_TYPE_P(value, ruby_value_type::RUBY_T_STRING) {
            return with_bytes(string_bytes(value), f);
        }
        if RB_SYMBOL_P(value) {
            return with_bytes(string_bytes(rb_sym2str(value)), f);
        }
    }
    // Anything else: its `to_s`, run under rb_protect so an exception in a
    // user's `to_s` cannot unwind through Rust frames.
    let mut state: c_int = 0;
    // SAFETY: `as_string` only calls rb_obj_as_string on the VALUE it is
    // given; rb_protect catches any Ruby exception it raises.
    let text = unsafe { rb_protect(Some(as_string), value, &mut state) };
    if state != 0 {
        // SAFETY: clear the exception rb_protect caught; the value is read as absent.
        unsafe { rb_sys::rb_set_errinfo(QNIL) };
        return f(None);
    }
    // SAFETY: `text` is a String returned by rb_obj_as_string, kept alive on
    // this stack frame while `f` runs.
    let result = with_bytes(unsafe { string_bytes(text) }, f);
    std::hint::black_box(text);
    result
}

extern "C" fn as_string(value: VALUE) -> VALUE {
    // SAFETY: called through rb_protect with a live VALUE.
    unsafe { rb_obj_as_string(value) }
}

fn with_bytes<R>(bytes: &[u8], f: impl FnOnce(Option<&str>) -> R) -> R {
    match std::str::from_utf8(bytes) {
        Ok(s) => f(Some(s)),
        Err(_) => f(Some(&String::from_utf8_lossy(bytes))),
    }
}

/// The time a Time or an ISO-8601 String names.
pub fn time_of(value: VALUE) -> CurrentTime {
    if value == QNIL || value == QUNDEF {
        return CurrentTime::Now;
    }
    // SAFETY: `value` is live; rb_cTime is Ruby's Time class.
    let is_time = unsafe { rb_obj_is_kind_of(value, rb_cTime) } == QTRUE;
    if is_time {
        // SAFETY: `value` is a Time, which rb_time_timespec accepts without raising.
        let ts = unsafe { rb_time_timespec(value) };
        return CurrentTime::At(ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000);
    }
    with_value_text(value, |t| {
        t.and_then(parse_timestamp_millis)
            .map_or(CurrentTime::Unreadable, CurrentTime::At)
    })
}

/// A Ruby Hash viewed as a context.
pub struct HashContext {
    hash: VALUE,
    fields: Cell<Option<[VALUE; SLOTS]>>,
}

impl HashContext {
    /// Wraps a Hash VALUE; it must stay alive (it is an argument of the
    /// current method call) while the context is used.
    pub fn new(hash: VALUE) -> HashContext {
        HashContext {
            hash,
            fields: Cell::new(None),
        }
    }

    /// The value of a standard field: its Symbol keys by lookup, then the
    /// String keys the scan found.
    fn field(&self, slot: usize) -> VALUE {
        if let Some(syms) = KEY_SYMBOLS.get() {
            for (i, (_, of)) in KEY_NAMES.iter().enumerate() {
                if *of == slot {
                    // SAFETY: `self.hash` is a live Hash and `syms[i]` a static
                    // Symbol; rb_hash_lookup2 neither raises nor calls Ruby code
                    // for Symbol keys.
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
        // signature and only reads keys.
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
        let props = self.field(PROPERTIES);
        // SAFETY: `props` is a live VALUE from the context hash.
        if props != QUNDEF && unsafe { RB_TYPE_P(props, ruby_value_type::RUBY_T_HASH) } {
            let found = find_by_text(props, name.as_bytes());
            if found != QUNDEF {
                return found;
            }
        }
        if slot_of_text(name.as_bytes()).is_some() {
            return QUNDEF;
        }
        find_by_text(self.hash, name.as_bytes())
    }
}

/// Finds the value whose String or Symbol key reads `name`.
fn find_by_text(hash: VALUE, name: &[u8]) -> VALUE {
    struct Search<'a> {
        name: &'a [u8],
        found: VALUE,
    }
    unsafe extern "C" fn visit(key: VALUE, value: VALUE, arg: VALUE) -> c_int {
        // SAFETY: `arg` points at the `Search` below for the whole iteration.
        let search = &mut *(arg as *mut Search);
        if key_text(key) == Some(search.name) {
            search.found = value;
            return st_retval::ST_STOP as c_int;
        }
        st_retval::ST_CONTINUE as c_int
    }
    let mut search = Search {
        name,
        found: QUNDEF,
    };
    // SAFETY: `hash` is a live Hash; the callback only compares key bytes.
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
        with_value_text(value, f)
    }

    fn current_time(&self) -> CurrentTime {
        time_of(self.field(CURRENT_TIME))
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
