//! The keys of a Hash context, from the core's one table of spellings
//! ([`KEYS`]): the slot of each standard field in a scanned hash (its index
//! in the table), the Symbols each is looked up by, and `properties`.

use std::sync::OnceLock;

use forkflag_core::context::KEYS;
use forkflag_core::Field;
use rb_sys::VALUE;

use super::values::QUNDEF;

/// The key of the Hash of custom properties (not a field: it holds them).
pub const PROPERTIES_KEY: &str = "properties";

/// The slot of `properties` in a scanned hash, after the standard fields'.
pub(super) const PROPERTIES: usize = KEYS.len();

/// Slots of a scanned hash.
pub(super) const SLOTS: usize = KEYS.len() + 1;

/// The slot of a standard field: its index in [`KEYS`] (checked below when
/// compiling); `usize::MAX` for a custom property.
#[inline]
pub const fn slot_of(field: &Field) -> usize {
    match field {
        Field::UserId => 0,
        Field::SessionId => 1,
        Field::RemoteAddress => 2,
        Field::Environment => 3,
        Field::AppName => 4,
        Field::CurrentTime => 5,
        Field::Property(_) => usize::MAX,
    }
}

const _: () = {
    let mut i = 0;
    while i < KEYS.len() {
        assert!(
            slot_of(&KEYS[i].0) == i,
            "slot_of follows the order of KEYS"
        );
        i += 1;
    }
};

/// The Symbols each slot is looked up by: camelCase first (the Unleash
/// API's spelling, a context parsed from JSON), then snake_case; `QUNDEF`
/// where a slot has one spelling only. Static Symbols, never collected.
static KEY_SYMBOLS: OnceLock<[[VALUE; 2]; SLOTS]> = OnceLock::new();

/// The static Symbol named `name`.
///
/// # Safety
/// On a Ruby thread holding the GVL.
pub unsafe fn static_symbol(name: &str) -> VALUE {
    // rb_intern2 makes a permanent ID, and the Symbol of an ID is static
    // (an immediate value the GC never frees), so it may be kept.
    rb_sys::rb_id2sym(rb_sys::rb_intern2(
        name.as_ptr().cast(),
        name.len() as std::os::raw::c_long,
    ))
}

/// Interns the key Symbols (at load time, on the Ruby thread).
pub(super) fn intern() {
    let mut symbols = [[QUNDEF; 2]; SLOTS];
    for (slot, (_, snake, camel)) in KEYS.iter().enumerate() {
        // SAFETY: called by `hash_context::init`, on the Ruby thread.
        symbols[slot][0] = unsafe { static_symbol(camel) };
        if snake != camel {
            // SAFETY: as above.
            symbols[slot][1] = unsafe { static_symbol(snake) };
        }
    }
    // SAFETY: as above.
    symbols[PROPERTIES][0] = unsafe { static_symbol(PROPERTIES_KEY) };
    let _ = KEY_SYMBOLS.set(symbols);
}

/// The Symbols of `slot`, in lookup order (`QUNDEF`: none); `None`
/// before [`intern`].
#[inline(always)]
pub(super) fn symbols_of(slot: usize) -> Option<&'static [VALUE; 2]> {
    KEY_SYMBOLS.get().map(|symbols| &symbols[slot])
}

/// The slot a key's text names, in either spelling.
pub(super) fn slot_of_text(text: &[u8]) -> Option<usize> {
    if text == PROPERTIES_KEY.as_bytes() {
        return Some(PROPERTIES);
    }
    KEYS.iter()
        .position(|(_, snake, camel)| snake.as_bytes() == text || camel.as_bytes() == text)
}
