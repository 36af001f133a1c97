//! Hostile values: what a payload field may hold instead of what the wire
//! model expects.
//!
//! A [`Hostile`] is a small description (a class and the indexes or sizes
//! that pick its instance), so proptest can generate and shrink it cheaply;
//! [`Hostile::to_value`] builds the node. Texts come from tables of values
//! each operator, strategy and parser has trouble with.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::json::raw;

/// Strings with NULs, odd Unicode, case folding that changes lengths.
pub const ODD: &[&str] = &[
    "",
    "\0",
    "a\0b",
    "\u{202e}gnirts",
    "\u{feff}bom",
    "e\u{301}\u{301}\u{301}",
    "\u{10ffff}",
    "\u{fffd}",
    "İİİ",
    "ẞß",
    "ǅǈǋ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\u{200b}\u{2060}",
    "\r\n\t\u{b}\u{c}",
    "\\\"'",
    "\u{7f}\u{80}\u{9f}",
    "👍🏽‍🔥",
    "ﬃⅫ",
    " padded ",
    "userId",
    "default",
    "disabled",
];

/// Texts numeric parsers may read in surprising ways.
pub const NUMERIC: &[&str] = &[
    "1e400",
    "-1e400",
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "-0",
    "0x10",
    "1_000",
    " 5 ",
    "+5",
    "5.",
    ".5",
    "1e",
    "9007199254740993",
    "18446744073709551616",
    "-9223372036854775809",
    "1e-400",
    "٣",
    "１",
    "4294967296",
    "100.0000000000000001",
    "-1",
    "101",
    "50",
];

/// Semantic-version operands and values, most of them broken.
pub const SEMVER: &[&str] = &[
    "1.2.3",
    "01.2.3",
    "1.2",
    "1.2.3.4",
    "1.2.3-",
    "1.2.3-α",
    "1.2.3+",
    "18446744073709551616.0.0",
    "18446744073709551615.18446744073709551615.18446744073709551615",
    "v1.2.3",
    " 1.2.3 ",
    "1.2.3-rc.01",
    "0.0.0-0",
    "1.2.3-a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p",
    "1.2.3+build.meta",
];

/// Timestamps, most of them outside what a parser or an i64 of
/// milliseconds accepts.
pub const DATES: &[&str] = &[
    "2024-01-31T12:00:00.000Z",
    "2024-02-30T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "+275760-09-13T00:00:00.000Z",
    "-271821-04-20T00:00:00Z",
    "+262143-12-31T23:59:59.999Z",
    "-262144-01-01T00:00:00Z",
    "9999-12-31T23:59:60Z",
    "1970-01-01T00:00:00+24:00",
    "1970-01-01T00:00:00-23:59",
    "2024-01-01",
    "1714000000",
    "2024-01-01T00:00:00.0000000000001Z",
    "0000-00-00T00:00:00Z",
    "2024-01-01T00:00:00Z\0",
];

/// Regular expressions that are slow, huge, deep or invalid.
pub const REGEXES: &[&str] = &[
    "(a*)*b",
    "(a+)+$",
    "^(a|aa)+$",
    "\\w{1000}",
    "(?:\\w{100}){100}",
    "\\w{50}\\w{50}\\w{50}",
    "[",
    "a{4294967295}",
    "a{1000}{1000}",
    "\\p{Greek}+",
    "(?i)ǅ",
    "\\b\\B",
    "^$",
    "(?x) # a comment",
    "[\\s\\S]{65535}",
    "x{2}{3}{4}{5}{6}",
    "(?u:\\pL{100}){10}",
    "\\",
    "(?P<n>a)(?P<n>b)",
    "\0",
];

/// Address operands and values.
pub const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "10.0.0.0/33",
    "::/0",
    "0.0.0.0/0",
    "1.2.3.4/-1",
    "::ffff:1.2.3.4/96",
    "1.2.3.4/",
    "/8",
    "256.1.1.1",
    "fe80::1%eth0",
    "1.2.3",
    "::1/128",
    "2001:db8::/129",
    " 10.0.0.1 ",
    "10.0.0.1/08",
    "127.0.0.1",
];

/// `head`'s texts, then `tail`'s: a table that adds wrong values to a list
/// of right ones. `N` must be the two lengths' sum (checked at compile time).
const fn joined<const N: usize>(head: &[&'static str], tail: &[&'static str]) -> [&'static str; N] {
    assert!(
        head.len() + tail.len() == N,
        "N is not the sum of the lengths"
    );
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < head.len() {
            head[i]
        } else {
            tail[i - head.len()]
        };
        i += 1;
    }
    out
}

/// Every operator, and a few that are not.
pub const OPERATORS: &[&str] = &joined::<23>(
    &crate::operators::OPERATORS,
    &["in", "NUM_EQ ", "", "SOUNDS_LIKE"],
);

/// Every built-in strategy, and a few that are not.
pub const STRATEGIES: &[&str] =
    &joined::<10>(forkflag_core::compile::BUILT_IN_STRATEGIES, &["custom", ""]);

/// The standard fields' names in the Unleash API, as the core lists them.
const STANDARD_FIELDS: [&str; 6] = {
    let mut names = [""; 6];
    let mut i = 0;
    while i < names.len() {
        names[i] = forkflag_core::context::KEYS[i].2;
        i += 1;
    }
    names
};

/// Field names for constraints, stickiness and overrides.
pub const FIELDS: &[&str] =
    &joined::<11>(&STANDARD_FIELDS, &["default", "random", "plan", "", "\0"]);

/// Bytes that are not UTF-8 (placed inside a string's quotes).
pub const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xfe\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xe2\x82",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xf0\x9f\x98",
];

/// Number texts: out of range, negative zero, and some that are not JSON.
pub const NUMBER_TEXTS: &[&str] = &[
    "1e400",
    "-1e400",
    "1E+400",
    "-0",
    "-0.0",
    "1e-400",
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "0.1e999999999999",
    "4294967296",
    "4294967295",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "9007199254740993",
    "1.0",
    "01",
    "NaN",
    "Infinity",
    "-Infinity",
    "+1",
    ".5",
    "1.",
    "0x1F",
];

/// Integers at the edges of the types the wire model reads into.
pub const INTEGERS: &[i64] = &[
    0,
    1,
    -1,
    100,
    101,
    1000,
    i32::MAX as i64,
    u32::MAX as i64,
    u32::MAX as i64 + 1,
    1 << 53,
    i64::MAX,
    i64::MIN,
];

/// Which text table a string is drawn from.
#[derive(Debug, Clone, Copy)]
pub enum Texts {
    Odd,
    Numeric,
    Semver,
    Date,
    Regex,
    Cidr,
    Operator,
    Strategy,
    Field,
}

impl Texts {
    /// The tables an operator's values are drawn from (all but names).
    pub const OPERANDS: [Texts; 6] = [
        Texts::Odd,
        Texts::Numeric,
        Texts::Semver,
        Texts::Date,
        Texts::Regex,
        Texts::Cidr,
    ];

    pub fn table(self) -> &'static [&'static str] {
        match self {
            Texts::Odd => ODD,
            Texts::Numeric => NUMERIC,
            Texts::Semver => SEMVER,
            Texts::Date => DATES,
            Texts::Regex => REGEXES,
            Texts::Cidr => CIDRS,
            Texts::Operator => OPERATORS,
            Texts::Strategy => STRATEGIES,
            Texts::Field => FIELDS,
        }
    }

    pub fn pick(self, i: usize) -> &'static str {
        let table = self.table();
        table[i % table.len()]
    }
}

/// Brackets for deep nesting.
#[derive(Debug, Clone, Copy)]
pub enum Nesting {
    Arrays,
    Objects,
    Mixed,
    /// Opened and never closed.
    Unclosed,
}

/// A value for a node of the payload.
#[derive(Debug, Clone)]
pub enum Hostile {
    Null,
    Bool(bool),
    Integer(usize),
    Float(f64),
    /// A number text written as it is ([`NUMBER_TEXTS`]).
    NumberText(usize),
    Text(Texts, usize),
    /// A string of `len` bytes: one text of [`ODD`] repeated.
    LongText(usize, usize),
    /// A string with bytes that are not UTF-8 inside.
    InvalidUtf8(usize),
    /// A string holding a lone UTF-16 surrogate escape.
    LoneSurrogate,
    EmptyArray,
    EmptyObject,
    Array(Vec<Hostile>),
    Object(Vec<(usize, Hostile)>),
    /// An array of `len` copies of a small value.
    HugeArray(Box<Hostile>, usize),
    /// `depth` brackets deep.
    Deep(Nesting, usize),
}

impl Hostile {
    /// The class name, for the counts a run prints.
    pub fn class(&self) -> &'static str {
        match self {
            Hostile::Null => "null",
            Hostile::Bool(_) => "boolean",
            Hostile::Integer(_) => "integer at a type's edge",
            Hostile::Float(_) => "float",
            Hostile::NumberText(_) => "number out of range or not JSON",
            Hostile::Text(Texts::Odd, _) => "string: NUL, odd Unicode",
            Hostile::Text(Texts::Numeric, _) => "string: numeric text",
            Hostile::Text(Texts::Semver, _) => "string: semver",
            Hostile::Text(Texts::Date, _) => "string: date",
            Hostile::Text(Texts::Regex, _) => "string: regex",
            Hostile::Text(Texts::Cidr, _) => "string: address",
            Hostile::Text(Texts::Operator, _) => "string: operator",
            Hostile::Text(Texts::Strategy, _) => "string: strategy",
            Hostile::Text(Texts::Field, _) => "string: field name",
            Hostile::LongText(..) => "string: long",
            Hostile::InvalidUtf8(_) => "invalid UTF-8",
            Hostile::LoneSurrogate => "lone surrogate escape",
            Hostile::EmptyArray => "empty array",
            Hostile::EmptyObject => "empty object",
            Hostile::Array(_) => "array",
            Hostile::Object(_) => "object",
            Hostile::HugeArray(..) => "huge array",
            Hostile::Deep(..) => "deep nesting",
        }
    }

    /// The node.
    pub fn to_value(&self) -> Value {
        match self {
            Hostile::Null => Value::Null,
            Hostile::Bool(b) => Value::Bool(*b),
            Hostile::Integer(i) => json!(INTEGERS[i % INTEGERS.len()]),
            Hostile::Float(f) => json!(f),
            Hostile::NumberText(i) => raw(NUMBER_TEXTS[i % NUMBER_TEXTS.len()].as_bytes()),
            Hostile::Text(texts, i) => Value::String(texts.pick(*i).into()),
            Hostile::LongText(i, len) => {
                let unit = match ODD[i % ODD.len()] {
                    "" => "a",
                    unit => unit,
                };
                Value::String(unit.repeat(len / unit.len() + 1))
            }
            Hostile::InvalidUtf8(i) => {
                let mut bytes = b"\"a".to_vec();
                bytes.extend_from_slice(INVALID_UTF8[i % INVALID_UTF8.len()]);
                bytes.extend_from_slice(b"b\"");
                raw(&bytes)
            }
            Hostile::LoneSurrogate => raw(b"\"\\ud800x\""),
            Hostile::EmptyArray => json!([]),
            Hostile::EmptyObject => json!({}),
            Hostile::Array(items) => Value::Array(items.iter().map(Hostile::to_value).collect()),
            Hostile::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (Texts::Field.pick(*k).to_string(), v.to_value()))
                    .collect(),
            ),
            Hostile::HugeArray(item, len) => {
                let item = super::json::to_bytes(&item.to_value());
                let mut bytes = Vec::with_capacity((item.len() + 1) * len + 2);
                bytes.push(b'[');
                for i in 0..*len {
                    if i > 0 {
                        bytes.push(b',');
                    }
                    bytes.extend_from_slice(&item);
                }
                bytes.push(b']');
                raw(&bytes)
            }
            Hostile::Deep(nesting, depth) => {
                let (open, close): (&[u8], &[u8]) = match nesting {
                    Nesting::Arrays | Nesting::Unclosed => (b"[", b"]"),
                    Nesting::Objects => (b"{\"a\":", b"}"),
                    Nesting::Mixed => (b"[{\"features\":", b"}]"),
                };
                let mut bytes = open.repeat(*depth);
                bytes.extend_from_slice(b"1");
                if !matches!(nesting, Nesting::Unclosed) {
                    bytes.extend_from_slice(&close.repeat(*depth));
                }
                raw(&bytes)
            }
        }
    }
}

/// A length: mostly small, sometimes large, rarely huge.
pub fn length(huge: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0..16usize,
        3 => 16..2_000usize,
        1 => 2_000..huge,
    ]
}

fn texts() -> impl Strategy<Value = Texts> {
    // Every table: the operands', then the names'.
    let names = [Texts::Operator, Texts::Strategy, Texts::Field];
    prop::sample::select([&Texts::OPERANDS[..], &names].concat())
}

/// A scalar short enough to repeat many times.
fn short_scalar() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        Just(Hostile::Null),
        any::<bool>().prop_map(Hostile::Bool),
        any::<usize>().prop_map(Hostile::Integer),
        any::<usize>().prop_map(Hostile::NumberText),
        (texts(), any::<usize>()).prop_map(|(t, i)| Hostile::Text(t, i)),
        any::<usize>().prop_map(Hostile::InvalidUtf8),
        Just(Hostile::EmptyArray),
        Just(Hostile::EmptyObject),
    ]
}

fn scalar() -> impl Strategy<Value = Hostile> {
    let float = prop::sample::select(vec![0.5, -0.0, 1e300, -1e-300, f64::MAX, 99.999, 100.5]);
    prop_oneof![
        1 => Just(Hostile::Null),
        1 => any::<bool>().prop_map(Hostile::Bool),
        1 => any::<usize>().prop_map(Hostile::Integer),
        1 => float.prop_map(Hostile::Float),
        1 => any::<usize>().prop_map(Hostile::NumberText),
        6 => (texts(), any::<usize>()).prop_map(|(t, i)| Hostile::Text(t, i)),
        1 => (any::<usize>(), length(1 << 20)).prop_map(|(i, n)| Hostile::LongText(i, n)),
        1 => any::<usize>().prop_map(Hostile::InvalidUtf8),
        1 => Just(Hostile::LoneSurrogate),
        1 => Just(Hostile::EmptyArray),
        1 => Just(Hostile::EmptyObject),
    ]
}

/// Any hostile value.
pub fn hostile() -> impl Strategy<Value = Hostile> {
    let nested = scalar().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Hostile::Array),
            prop::collection::vec((any::<usize>(), inner), 0..6).prop_map(Hostile::Object),
        ]
    });
    let nesting = prop::sample::select(vec![
        Nesting::Arrays,
        Nesting::Objects,
        Nesting::Mixed,
        Nesting::Unclosed,
    ]);
    prop_oneof![
        12 => nested,
        1 => (short_scalar(), length(200_000)).prop_map(|(item, n)| Hostile::HugeArray(Box::new(item), n)),
        1 => (nesting, prop_oneof![100..200usize, 200..300_000usize])
            .prop_map(|(n, d)| Hostile::Deep(n, d)),
    ]
}

/// A text from one table (for operands, names and parameters).
pub fn text_from(table: Texts) -> impl Strategy<Value = Hostile> {
    any::<usize>().prop_map(move |i| Hostile::Text(table, i))
}
