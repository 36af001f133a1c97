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

use std::cell::Cell;
use std::os::raw::c_int;
use std::sync::OnceLock;

use forkflag_core::{Context, CurrentTime, Field};
use magnus::{Error, Ruby};
use rb_sys::{
    macros::RB_TYPE_P, rb_hash_foreach, rb_hash_lookup2, ruby_value_type, st_retval, VALUE,
};

use crate::protect::{is_standard_error, protect};

mod keys;
mod properties;
mod values;

pub use keys::{slot_of, static_symbol, PROPERTIES_KEY};
use keys::{slot_of_text, symbols_of, PROPERTIES, SLOTS};
use properties::{find_property, property_symbol};
use values::{reads_through_to_s, string_bytes, QUNDEF};
pub use values::{time_of, with_value_text, BeyondMillis};

/// The ID of `eql?`, interned once.
static EQL: OnceLock<rb_sys::ID> = OnceLock::new();

/// Interns the key Symbols and `eql?`, and reserves the property Symbols'
/// table. (`_ruby`: called on a Ruby thread.)
pub fn init(_ruby: &Ruby) -> Result<(), Error> {
    keys::intern();
    // SAFETY: on a Ruby thread at load time; a permanent ID.
    let _ = EQL.set(unsafe { rb_sys::rb_intern2(c"eql?".as_ptr(), 4) });
    properties::reserve();
    Ok(())
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
    #[inline(always)]
    fn field_unprotected(&self, slot: usize) -> VALUE {
        if let Some(&[first, second]) = symbols_of(slot) {
            // SAFETY: `self.hash` is a live Hash and the keys static
            // Symbols; the caller is a `lookup`.
            let value = unsafe { rb_hash_lookup2(self.hash, first, QUNDEF) };
            if value != QUNDEF {
                return value;
            }
            if second != QUNDEF {
                // SAFETY: as above.
                let value = unsafe { rb_hash_lookup2(self.hash, second, QUNDEF) };
                if value != QUNDEF {
                    return value;
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

impl Context for HashContext {
    fn with_field<R>(&self, field: &Field, f: impl FnOnce(Option<&str>) -> R) -> R {
        let value = match field {
            Field::Property(name) => self.custom(name),
            standard => self.field(slot_of(standard)),
        };
        if reads_through_to_s(value) {
            // Ruby code runs: it may redefine what the next lookup relies on.
            self.eql_redefined.set(None);
        }
        with_value_text(value, |e| self.fail(e), f)
    }

    fn current_time(&self) -> CurrentTime {
        match time_of(
            self.field(slot_of(&Field::CurrentTime)),
            BeyondMillis::Saturate,
        ) {
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
