//! One snapshot's strings and operands, in a few flat buffers.
//!
//! A compiled payload holds tens of thousands of small strings: flag names,
//! IN-list values, user ids, group ids. Each in its own allocation costs a
//! malloc block (a 7-byte value takes a 32-byte block) and scatters the
//! read-only snapshot over the heap. Here every string is appended once to
//! one text buffer and addressed by a `u32` offset and length ([`Text`]);
//! lists of strings are [`Span`]s of one table of such handles, and an
//! IN-list with many values is an open-addressing hash table laid out in
//! that same table, so a lookup hashes the value and probes without
//! allocating. Parsed operands (networks, versions, regexes) live in their
//! own flat vectors.
//!
//! Strings the binding hands out by reference count (variant names,
//! payloads, property names) are [`Arc`]s shared by every use of the same
//! text in a snapshot.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::ops::Range;
use std::sync::Arc;

use hashbrown::HashTable;
use ipnet::IpNet;
use rustc_hash::FxBuildHasher;

use crate::context::Field;

/// A compiled REGEX operand.
pub(crate) type Regex = regex_automata::meta::Regex;

/// A string in an [`Arena`]'s text buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Text {
    off: u32,
    len: u32,
}

impl Text {
    /// No text (an absent optional string; no stored text starts at
    /// `u32::MAX`).
    pub(crate) const ABSENT: Text = Text {
        off: u32::MAX,
        len: 0,
    };
}

/// A free slot of a hashed string set (no text has this length).
const FREE: Text = Text {
    off: u32::MAX,
    len: u32::MAX,
};

/// A run of consecutive entries in one of a snapshot's flat vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// The entries from `start` up to (not including) `end`.
    pub(crate) fn since(start: usize, end: usize) -> Span {
        Span {
            start: index(start),
            len: index(end - start),
        }
    }

    /// The indexes the span covers.
    #[inline]
    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }

    /// Whether the span covers nothing.
    #[inline]
    pub(crate) fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The entries the span covers.
    #[inline]
    pub(crate) fn of<T>(self, items: &[T]) -> &[T] {
        &items[self.range()]
    }
}

/// A vector index or length as stored in a snapshot.
///
/// Every index points into a buffer built from one payload, whose strings
/// and records would need gigabytes of JSON to pass 4 GiB; such a payload
/// fails the compile with a panic rather than wrapping around.
pub(crate) fn index(i: usize) -> u32 {
    u32::try_from(i).expect("a compiled snapshot stays under 4 GiB")
}

/// A set of strings (IN-lists, user ids, override values).
#[derive(Debug, Clone, Copy)]
pub(crate) enum StrSet {
    /// A few values, scanned.
    Few(Span),
    /// A hash table of `mask + 1` slots from `start` in the text table.
    Hashed { start: u32, mask: u32 },
}

/// Sets with more values than this are hashed.
const HASH_SET_THRESHOLD: usize = 8;

/// The strings and parsed operands of one snapshot.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    text: Box<str>,
    texts: Box<[Text]>,
    pub(crate) nets: Box<[IpNet]>,
    pub(crate) versions: Box<[semver::Version]>,
    pub(crate) regexes: Box<[Regex]>,
    /// Each regex's pattern, as the payload gave it, and whether it
    /// ignores case (for descriptions).
    pub(crate) regex_sources: Box<[(Text, bool)]>,
    /// Fields named by stickiness parameters.
    pub(crate) fields: Box<[Field]>,
}

#[inline]
fn set_hash(value: &str) -> u64 {
    FxBuildHasher.hash_one(value)
}

impl Arena {
    /// The string a handle of this arena names.
    ///
    /// Handles are made only by `ArenaBuilder::text`, each for a whole
    /// string it appended to the buffer this arena owns unchanged, and are
    /// read only through the arena built with them; so the range is in
    /// bounds and on character boundaries, and the checked read never
    /// fails (a handle of another arena would be a bug: a panic, which the
    /// binding reports as an internal error, never a read out of bounds).
    #[inline]
    pub(crate) fn get(&self, t: Text) -> &str {
        &self.text[t.off as usize..t.off as usize + t.len as usize]
    }

    /// The bytes of the string a handle names (as [`Arena::get`], for a
    /// comparison: a bounds check only).
    #[inline]
    pub(crate) fn bytes(&self, t: Text) -> &[u8] {
        &self.text.as_bytes()[t.off as usize..t.off as usize + t.len as usize]
    }

    /// The string a handle names, or "" when the handle is not one of this
    /// arena's; `None` for [`Text::ABSENT`].
    pub(crate) fn get_checked(&self, t: Text) -> Option<&str> {
        if t == Text::ABSENT {
            return None;
        }
        Some(
            self.text
                .get(t.off as usize..t.off as usize + t.len as usize)
                .unwrap_or(""),
        )
    }

    /// The strings of a list.
    #[inline]
    pub(crate) fn list(&self, span: Span) -> impl Iterator<Item = &str> + '_ {
        span.of(&self.texts).iter().map(|&t| self.get(t))
    }

    /// The bytes of the strings of a list (for comparisons).
    #[inline]
    pub(crate) fn byte_list(&self, span: Span) -> impl Iterator<Item = &[u8]> + '_ {
        span.of(&self.texts).iter().map(|&t| self.bytes(t))
    }

    /// The strings of a set, sorted (for descriptions: a hashed set keeps
    /// no order).
    pub(crate) fn set_values(&self, set: StrSet) -> Vec<&str> {
        let handles = match set {
            StrSet::Few(span) => span.of(&self.texts),
            StrSet::Hashed { start, mask } => {
                &self.texts[start as usize..=start as usize + mask as usize]
            }
        };
        let mut values: Vec<&str> = handles
            .iter()
            .filter(|&&t| t != FREE)
            .map(|&t| self.get(t))
            .collect();
        values.sort_unstable();
        values
    }

    /// Whether a set holds `value`.
    #[inline]
    pub(crate) fn contains(&self, set: StrSet, value: &str) -> bool {
        match set {
            StrSet::Few(span) => span
                .of(&self.texts)
                .iter()
                .any(|&t| t.len as usize == value.len() && self.bytes(t) == value.as_bytes()),
            StrSet::Hashed { start, mask } => {
                let slots = &self.texts[start as usize..=start as usize + mask as usize];
                let mask = mask as usize;
                let mut i = set_hash(value) as usize & mask;
                // At most two thirds of the slots are used, so a free one ends
                // every probe.
                loop {
                    let t = slots[i];
                    if t == FREE {
                        return false;
                    }
                    if t.len as usize == value.len() && self.bytes(t) == value.as_bytes() {
                        return true;
                    }
                    i = (i + 1) & mask;
                }
            }
        }
    }
}

/// Builds an [`Arena`] while a payload is compiled.
#[derive(Default)]
pub(crate) struct ArenaBuilder {
    text: String,
    texts: Vec<Text>,
    /// Texts already in the buffer, by content (equal strings are stored
    /// once).
    seen: HashTable<Text>,
    shared: HashSet<Arc<str>>,
    pub(crate) nets: Vec<IpNet>,
    pub(crate) versions: Vec<semver::Version>,
    pub(crate) regexes: Vec<Regex>,
    pub(crate) regex_sources: Vec<(Text, bool)>,
    /// Each compiled regex's index, by pattern and case-insensitivity
    /// (equal regexes are compiled once).
    pub(crate) regex_index: HashMap<(Box<str>, bool), u32>,
    /// Heap the regexes may take (compiled, and one thread's caches).
    pub(crate) regex_bytes: usize,
    fields: Vec<Field>,
    field_index: HashMap<Field, u32>,
}

impl ArenaBuilder {
    fn get(&self, t: Text) -> &str {
        &self.text[t.off as usize..t.off as usize + t.len as usize]
    }

    /// Stores a string (once per distinct content) and returns its handle.
    pub(crate) fn text(&mut self, s: &str) -> Text {
        let hash = set_hash(s);
        let (text, seen) = (&self.text, &self.seen);
        let at = |t: &Text| &text[t.off as usize..t.off as usize + t.len as usize];
        if let Some(&t) = seen.find(hash, |t| at(t) == s) {
            return t;
        }
        // Checked first: the end of the new text must fit a u32 as well,
        // below `u32::MAX` (which marks `Text::ABSENT`).
        index(self.text.len() + s.len() + 1);
        let t = Text {
            off: index(self.text.len()),
            len: index(s.len()),
        };
        self.text.push_str(s);
        let text = &self.text;
        self.seen.insert_unique(hash, t, |t| {
            set_hash(&text[t.off as usize..t.off as usize + t.len as usize])
        });
        t
    }

    /// Stores a list of strings.
    pub(crate) fn list<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> Span {
        let handles: Vec<Text> = items.into_iter().map(|s| self.text(s)).collect();
        let start = self.texts.len();
        self.texts.extend(handles);
        Span::since(start, self.texts.len())
    }

    /// Stores a set of strings: scanned when small, hashed when large.
    pub(crate) fn set<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) -> StrSet {
        let mut handles: Vec<Text> = values.into_iter().map(|s| self.text(s)).collect();
        handles.sort_unstable_by_key(|t| t.off);
        handles.dedup();
        let start = self.texts.len();
        if handles.len() <= HASH_SET_THRESHOLD {
            self.texts.extend(handles);
            return StrSet::Few(Span::since(start, self.texts.len()));
        }
        let slots = (handles.len() * 3 / 2 + 1).next_power_of_two();
        let mask = slots - 1;
        self.texts.resize(start + slots, FREE);
        for t in handles {
            let mut i = set_hash(self.get(t)) as usize & mask;
            while self.texts[start + i] != FREE {
                i = (i + 1) & mask;
            }
            self.texts[start + i] = t;
        }
        StrSet::Hashed {
            start: index(start),
            mask: index(mask),
        }
    }

    /// A reference-counted string shared by every use of the same text.
    pub(crate) fn shared(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.shared.get(s) {
            return Arc::clone(found);
        }
        let new: Arc<str> = Arc::from(s);
        self.shared.insert(Arc::clone(&new));
        new
    }

    /// A context field; a custom property's name is shared.
    pub(crate) fn field(&mut self, name: &str) -> Field {
        match Field::from_name(name) {
            Field::Property(_) => Field::Property(self.shared(name)),
            field => field,
        }
    }

    /// The index in [`Arena::fields`] of a field named by a parameter.
    pub(crate) fn field_index(&mut self, name: &str) -> u32 {
        let field = self.field(name);
        if let Some(&i) = self.field_index.get(&field) {
            return i;
        }
        self.fields.push(field.clone());
        let i = index(self.fields.len() - 1);
        self.field_index.insert(field, i);
        i
    }

    /// The finished arena.
    pub(crate) fn finish(self) -> Arena {
        Arena {
            text: self.text.into_boxed_str(),
            texts: self.texts.into_boxed_slice(),
            nets: self.nets.into_boxed_slice(),
            versions: self.versions.into_boxed_slice(),
            regexes: self.regexes.into_boxed_slice(),
            regex_sources: self.regex_sources.into_boxed_slice(),
            fields: self.fields.into_boxed_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_are_stored_once() {
        let mut b = ArenaBuilder::default();
        let a = b.text("production");
        let c = b.text("staging");
        assert_eq!(b.text("production"), a);
        let arena = b.finish();
        assert_eq!(arena.get(a), "production");
        assert_eq!(arena.get(c), "staging");
        assert_eq!(arena.text.len(), "productionstaging".len());
    }

    #[test]
    fn sets_small_and_hashed() {
        let mut b = ArenaBuilder::default();
        let few = b.set(["a", "", "bc"]);
        let values: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
        let many = b.set(values.iter().map(String::as_str));
        let empty = b.set([]);
        let arena = b.finish();
        assert!(matches!(few, StrSet::Few(_)));
        assert!(matches!(many, StrSet::Hashed { .. }));
        for v in ["a", "", "bc"] {
            assert!(arena.contains(few, v), "{v:?}");
        }
        for v in ["b", "abc", "user-1"] {
            assert!(!arena.contains(few, v), "{v:?}");
        }
        for v in &values {
            assert!(arena.contains(many, v), "{v}");
        }
        for v in ["", "user-1000", "user-", "a", "user-01"] {
            assert!(!arena.contains(many, v), "{v:?}");
        }
        assert!(!arena.contains(empty, ""));
    }

    #[test]
    fn lists_keep_order_and_duplicates() {
        let mut b = ArenaBuilder::default();
        let span = b.list(["b", "a", "b"]);
        let arena = b.finish();
        assert_eq!(arena.list(span).collect::<Vec<_>>(), ["b", "a", "b"]);
    }
}
