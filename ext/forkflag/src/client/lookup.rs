//! Finding the flag a name argument names in the current snapshot, and
//! checking it against a context of any kind.

use forkflag_core::{Context, Engine, Flag, Snapshot};
use magnus::rb_sys::AsRawValue;
use magnus::Value;
use rb_sys::macros::{RB_SYMBOL_P, RB_TYPE_P, RSTRING_LEN, RSTRING_PTR};
use rb_sys::ruby_value_type;

use crate::names::NameCache;
use crate::variant;

/// Dispatches evaluation to the concrete context type, so each gets a
/// monomorphised evaluator.
pub(super) trait ContextRef {
    /// `enabled?`: whether the flag is on, and whether it has impression
    /// data; `None` for an unknown flag (counted as such).
    fn check(&self, at: Current<'_>, flag: Found<'_>, tag: u64) -> Option<(bool, bool)>;
    /// `variant`: the variant, whether the flag is on, and whether it has
    /// impression data; `None` for an unknown flag (counted as such).
    fn check_variant(
        &self,
        at: Current<'_>,
        flag: Found<'_>,
        tag: u64,
    ) -> Option<(variant::Answer, bool, bool)>;
    /// `explain`: the variant, whether the flag is on, and the trace as
    /// JSON (see [`forkflag_core::Snapshot::explain`]); counts nothing.
    fn explain(&self, snapshot: &Snapshot, name: &str) -> (variant::Answer, bool, String);
}

/// The snapshot an evaluation reads (from the client's cache), the engine
/// that counts names it does not have, and the client's remembered names
/// (`None` when the snapshot is not the client's cached one).
#[derive(Clone, Copy)]
pub(super) struct Current<'a> {
    pub(super) snapshot: &'a Snapshot,
    pub(super) engine: &'a Engine,
    pub(super) names: Option<&'a NameCache>,
}

/// What a flag name argument names in the current snapshot.
#[derive(Clone, Copy)]
pub(super) enum Found<'n> {
    /// The flag at this index.
    At(u32),
    /// No flag: the name's bytes, to count it as unknown.
    Unknown(&'n [u8]),
}

impl Current<'_> {
    /// Looks the name argument up: a remembered name object first, then
    /// by its bytes (remembering the object when its text cannot change).
    /// `None` when the argument is neither a String nor a Symbol.
    #[inline(always)]
    pub(super) fn find<'n>(&self, name: &'n Value) -> Option<Found<'n>> {
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

    fn explain(&self, snapshot: &Snapshot, name: &str) -> (variant::Answer, bool, String) {
        super::explain::explain_with(self, snapshot, name)
    }
}

/// The flag name argument's text, borrowed from the Ruby object (for as
/// long as the caller holds the argument); `None` when it is neither a
/// String nor a Symbol.
pub(super) fn name_bytes(name: &Value) -> Option<&[u8]> {
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
