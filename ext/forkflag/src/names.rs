//! The flag a name object stands for, remembered per client.
//!
//! A call site such as `client.enabled?("new-checkout")` in a file with
//! `# frozen_string_literal: true`, or `client.enabled?(:new_checkout)`,
//! passes the same Ruby object every time, and that object's text cannot
//! change: a frozen String stays frozen, a Symbol is immutable. For such
//! objects the client remembers which flag of its current snapshot they name,
//! so a repeated evaluation finds its flag with a multiply and a compare
//! instead of hashing and comparing the name's bytes.
//!
//! Two things keep an entry true:
//! - The client marks every object it remembers (`rb_gc_mark`, which also
//!   pins it against compaction), so a remembered object is never freed and
//!   its address never reused by another object while the entry exists.
//! - The entries belong to one snapshot: [`NameCache::follow`] empties the
//!   table when the client's snapshot changes. The client's snapshot cache
//!   holds that snapshot alive until it moves to another, so a new snapshot
//!   never has the address of the one the entries were made for.
//!
//! Other names (Strings that are not frozen, which a call site builds anew
//! each time) are looked up by their bytes and not remembered. The table is
//! fixed in size; a name whose slot another name holds replaces it.

use std::cell::Cell;

use forkflag_core::Snapshot;
use magnus::{gc::Marker, rb_sys::FromRawValue, Value};
use rb_sys::macros::{RB_TYPE_P, SPECIAL_CONST_P, STATIC_SYM_P};
use rb_sys::{ruby_fl_type, ruby_special_consts, ruby_value_type, RBasic, VALUE};

/// Entries per client (a power of two): 4 KiB.
const SLOTS: usize = 256;

/// A remembered name object and the index of its flag.
#[derive(Clone, Copy)]
struct Entry {
    key: VALUE,
    index: u32,
}

/// A free slot. Its key is Ruby's `Qundef`, which no argument can be (every
/// other value, `false` and `nil` included, can be passed as a name).
const FREE: Entry = Entry {
    key: ruby_special_consts::RUBY_Qundef as VALUE,
    index: 0,
};

/// The name objects a client has evaluated, for its current snapshot.
pub struct NameCache {
    entries: Box<[Cell<Entry>]>,
    /// The address of the snapshot the entries index into (an identity
    /// only; never read through).
    snapshot: Cell<usize>,
}

impl NameCache {
    pub fn new() -> NameCache {
        NameCache {
            entries: (0..SLOTS).map(|_| Cell::new(FREE)).collect(),
            snapshot: Cell::new(0),
        }
    }

    /// Called with the client's snapshot before every lookup: when it is
    /// not the one the entries were made for, forgets them all.
    #[inline]
    pub fn follow(&self, snapshot: &Snapshot) {
        let current = snapshot as *const Snapshot as usize;
        if self.snapshot.get() != current {
            self.reset(current);
        }
    }

    #[cold]
    fn reset(&self, snapshot: usize) {
        for entry in self.entries.iter() {
            entry.set(FREE);
        }
        self.snapshot.set(snapshot);
    }

    #[inline]
    fn slot(&self, key: VALUE) -> &Cell<Entry> {
        // Fibonacci hashing: the top bits of the product mix every bit of
        // the address (object addresses share their low and high bits).
        let at = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros());
        &self.entries[at as usize]
    }

    /// The flag index remembered for `name`, if any.
    #[inline]
    pub fn get(&self, name: VALUE) -> Option<u32> {
        let entry = self.slot(name).get();
        (entry.key == name).then_some(entry.index)
    }

    /// Remembers that `name` is the flag at `index`, when `name` is an
    /// object whose text cannot change.
    #[inline]
    pub fn remember(&self, name: VALUE, index: u32) {
        if is_immutable_name(name) {
            self.slot(name).set(Entry { key: name, index });
        }
    }

    /// Marks the remembered objects (pinning them), from the client's mark.
    pub fn mark(&self, marker: &Marker) {
        for entry in self.entries.iter() {
            let key = entry.get().key;
            if !SPECIAL_CONST_P(key) {
                // SAFETY: a remembered key is an object this table has kept
                // marked since it was remembered, so it is live.
                marker.mark(unsafe { Value::from_raw(key) });
            }
        }
    }

    /// How many entries are in use (for tests).
    #[cfg(feature = "test-hooks")]
    pub fn remembered(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.get().key != FREE.key)
            .count()
    }
}

/// Whether `name` is a Symbol or a frozen String: an object whose text no
/// Ruby code can change.
#[inline]
fn is_immutable_name(name: VALUE) -> bool {
    if STATIC_SYM_P(name) {
        return true;
    }
    if SPECIAL_CONST_P(name) {
        return false;
    }
    // SAFETY: `name` is a live argument of the current call and not a
    // special constant, so it points at an object with an RBasic header.
    unsafe {
        RB_TYPE_P(name, ruby_value_type::RUBY_T_SYMBOL)
            || (RB_TYPE_P(name, ruby_value_type::RUBY_T_STRING)
                && (*(name as *const RBasic)).flags & ruby_fl_type::RUBY_FL_FREEZE as VALUE != 0)
    }
}
