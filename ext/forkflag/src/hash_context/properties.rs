//! Custom properties of a Hash context: found under a Symbol key by a
//! direct lookup when a Symbol of their name exists (remembered per
//! process), else by a scan for a String (or Symbol) key with their name.

use std::cell::UnsafeCell;
use std::os::raw::{c_int, c_long};

use magnus::Error;
use rb_sys::{macros::RB_SYMBOL_P, rb_hash_foreach, rb_hash_lookup2, st_retval, VALUE};

use super::values::{key_text, QNIL, QUNDEF};
use crate::protect::protect;

/// The value of the custom property `name` in `hash`: under `symbol` (the
/// Symbol of that name, when one exists) by a direct lookup, then under a
/// String key; without a Symbol, under the first String or Symbol key with
/// that text. Called by a [`HashContext::lookup`].
pub(super) fn find_property(hash: VALUE, name: &[u8], symbol: Option<VALUE>) -> VALUE {
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

/// Reserves the table, so it never reallocates on an evaluation's path.
pub(super) fn reserve() {
    // SAFETY: called at load time, on the Ruby thread holding the GVL,
    // before any evaluation.
    unsafe { (*SYMBOLS.0.get()).reserve_exact(PROPERTY_SYMBOLS) };
}

/// The Symbol named `name`, if one exists, remembered per process: a
/// property under a Symbol key is then read with one hash lookup instead
/// of a scan that names every Symbol key through Ruby's symbol table (a
/// read that misses the caches in a server worker). Symbols found are
/// pinned (`rb_gc_register_mark_object`), at most [`PROPERTY_SYMBOLS`];
/// the first use of a name copies it (once per name and process; the table
/// itself is reserved at load).
pub(super) fn property_symbol(name: &str, failed: impl FnOnce(Error)) -> Option<VALUE> {
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
pub(super) fn find_by_text(hash: VALUE, name: &[u8], symbols: bool) -> VALUE {
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
