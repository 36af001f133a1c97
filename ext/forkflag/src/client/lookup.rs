//! Finding the flag a name argument names in the current snapshot, and
//! checking it against a context of any kind.

use forkflag_core::{Context, Engine, Flag, Snapshot};
use magnus::rb_sys::AsRawValue;
use magnus::Value;

use super::arguments::name_bytes;
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
}
