//! Constraints, compiled once and tested on every evaluation.
//!
//! Values are parsed when the snapshot is compiled (numbers, dates, semvers,
//! CIDRs, regexes, IN-sets), so a test only reads the context field and
//! compares. No test allocates unless it must lowercase non-ASCII text.

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::compile::model;
use crate::context::{Context, CurrentTime, Field};
use crate::error::{shorten_quoted, Quoted};
use crate::snapshot::arena::{index, Arena, ArenaBuilder, Span, StrSet};
use crate::time::{now_millis, parse_timestamp_millis};

/// An ordering comparison against a fixed operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    #[inline]
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Cmp::Eq => ord == Ordering::Equal,
            Cmp::Gt => ord == Ordering::Greater,
            Cmp::Gte => ord != Ordering::Less,
            Cmp::Lt => ord == Ordering::Less,
            Cmp::Lte => ord != Ordering::Greater,
        }
    }
}

/// String-fragment operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment {
    Contains,
    StartsWith,
    EndsWith,
}

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address.
    pub(crate) fn parse(text: &str) -> Option<IpNet> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    #[inline]
    pub(crate) fn contains(&self, ip: &IpAddr) -> bool {
        fn masked_eq(a: u128, b: u128, bits: u32, width: u32) -> bool {
            if bits == 0 {
                return true;
            }
            let shift = width - bits;
            (a >> shift) == (b >> shift)
        }
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked_eq(
                u32::from(net) as u128,
                u32::from(*ip) as u128,
                self.prefix as u32,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked_eq(u128::from(net), u128::from(*ip), self.prefix as u32, 128)
            }
            _ => false,
        }
    }
}

/// What a constraint checks, with its operand already parsed. Strings and
/// operands live in the snapshot's [`Arena`].
#[derive(Debug)]
pub(crate) enum Test {
    In(StrSet),
    NotIn(StrSet),
    Fragment {
        kind: Fragment,
        values: Span,
        ignore_case: bool,
    },
    Num(Cmp, f64),
    Date(Cmp, i64),
    /// Index into [`Arena::versions`].
    Semver(Cmp, u32),
    /// Index into [`Arena::regexes`].
    Regex(u32),
    /// Networks in [`Arena::nets`].
    Cidr(Span),
    /// A constraint that cannot be understood (unknown operator, unreadable
    /// operand): it never holds, whatever `inverted` says, so a broken
    /// configuration cannot switch a flag on for everyone.
    Never,
}

/// A compiled constraint.
#[derive(Debug)]
pub struct Constraint {
    pub(crate) field: Field,
    pub(crate) inverted: bool,
    pub(crate) test: Test,
}

/// Why a constraint was compiled to "never holds".
pub(crate) type ConstraintProblem = String;

/// A compiled REGEX operand.
pub(crate) type Regex = regex_automata::meta::Regex;

/// Largest compiled regex, in bytes of its automata.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Most heap the regexes of one snapshot may take, in bytes: their compiled
/// automata, and the match caches one evaluating thread fills. A regex
/// costs kilobytes however short its pattern (a few for `^a$`, a megabyte
/// for `\w{40}`), and its lazy DFA's caches grow as it meets new inputs (up
/// to 4 MiB a thread with the regex crate's defaults, for a pattern as
/// short as `(a|b)*a(a|b){14}`), so without a budget a payload of a megabyte
/// could take gigabytes; a REGEX constraint past the budget never matches
/// and is reported. Equal patterns share one compiled regex.
pub const REGEX_MEMORY_BUDGET: usize = 32 << 20;

/// Smallest and largest lazy DFA cache a regex gets (each of its two,
/// forward and reverse): twice its compiled size, within these. Measured
/// on six patterns (ASCII and Unicode classes, alternations, an exploding
/// DFA), matching is as fast as with the regex crate's default (the
/// largest).
const MIN_DFA_CACHE: usize = 32 << 10;
const MAX_DFA_CACHE: usize = 2 << 20;

impl Constraint {
    /// Compiles a constraint. A problem is reported alongside a constraint
    /// that never holds.
    pub(crate) fn compile(
        raw: &model::Constraint,
        arena: &mut ArenaBuilder,
    ) -> (Constraint, Option<ConstraintProblem>) {
        let field = arena.field(&raw.context_name);
        let (test, problem) = compile_test(raw, arena);
        (
            Constraint {
                field,
                inverted: raw.inverted,
                test,
            },
            problem,
        )
    }

    /// Whether the constraint holds for the context (`arena` is the one of
    /// the snapshot the constraint belongs to).
    #[inline]
    pub(crate) fn holds<C: Context + ?Sized>(&self, arena: &Arena, ctx: &C) -> bool {
        let result = match &self.test {
            Test::Never => return false,
            Test::Date(cmp, operand) => {
                let at = match ctx.current_time() {
                    CurrentTime::Now => now_millis(),
                    CurrentTime::At(t) => t,
                    CurrentTime::Unreadable => return false,
                };
                cmp.holds(at.cmp(operand))
            }
            Test::Cidr(nets) => match ctx.with_field(&self.field, |v| {
                v.and_then(|s| s.trim().parse::<IpAddr>().ok())
            }) {
                Some(ip) => nets.of(&arena.nets).iter().any(|n| n.contains(&ip)),
                None => false,
            },
            test => ctx.with_field(&self.field, |value| test_value(arena, test, value)),
        };
        result != self.inverted
    }
}

#[inline]
fn test_value(arena: &Arena, test: &Test, value: Option<&str>) -> bool {
    match *test {
        Test::In(set) => value.is_some_and(|v| arena.contains(set, v)),
        Test::NotIn(set) => value.is_none_or(|v| !arena.contains(set, v)),
        Test::Fragment {
            kind,
            values,
            ignore_case,
        } => match value {
            Some(v) => fragment_matches(kind, arena, values, ignore_case, v),
            None => false,
        },
        Test::Num(cmp, operand) => match value.and_then(|v| v.parse::<f64>().ok()) {
            Some(n) => n.partial_cmp(&operand).is_some_and(|o| cmp.holds(o)),
            None => false,
        },
        Test::Semver(cmp, operand) => {
            let operand = &arena.versions[operand as usize];
            match value.map(|v| (v, plain_version(v))) {
                // A plain version ranks below the operand's pre-releases of
                // the same numbers, as semantic versioning orders them.
                Some((_, Some(numbers))) => cmp.holds(
                    numbers
                        .cmp(&(operand.major, operand.minor, operand.patch))
                        .then(if operand.pre.is_empty() {
                            Ordering::Equal
                        } else {
                            Ordering::Greater
                        }),
                ),
                Some((text, None)) => {
                    semver::Version::parse(text).is_ok_and(|v| cmp.holds(v.cmp_precedence(operand)))
                }
                None => false,
            }
        }
        // As `regex::Regex::is_match` asks it: `meta::Regex::is_match`
        // takes another path that measured up to twice as slow here.
        Test::Regex(re) => value.is_some_and(|v| {
            let input = regex_automata::Input::new(v).earliest(true);
            arena.regexes[re as usize].search_half(&input).is_some()
        }),
        Test::Date(..) | Test::Cidr(..) | Test::Never => false,
    }
}

/// A context version of the common form `major.minor.patch` (digits, no
/// leading zero, no pre-release or build part), read without the semver
/// parser; `None` for anything else, which that parser then reads (or
/// refuses).
fn plain_version(text: &str) -> Option<(u64, u64, u64)> {
    let bytes = text.as_bytes();
    let mut numbers = [0u64; 3];
    let mut at = 0;
    for (k, number) in numbers.iter_mut().enumerate() {
        let start = at;
        while let Some(&b) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            *number = number.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            at += 1;
        }
        let len = at - start;
        if len == 0 || (len > 1 && bytes[start] == b'0') {
            return None;
        }
        if k < 2 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
    }
    (at == bytes.len()).then_some((numbers[0], numbers[1], numbers[2]))
}

fn fragment_matches(
    kind: Fragment,
    arena: &Arena,
    values: Span,
    ignore_case: bool,
    value: &str,
) -> bool {
    if !ignore_case {
        let hay = value.as_bytes();
        return match kind {
            Fragment::Contains => arena.list(values).any(|p| value.contains(p)),
            Fragment::StartsWith => arena.byte_list(values).any(|p| hay.starts_with(p)),
            Fragment::EndsWith => arena.byte_list(values).any(|p| hay.ends_with(p)),
        };
    }
    if value.is_ascii() {
        // Operands were lowercased at compile time.
        let hay = value.as_bytes();
        return arena.byte_list(values).any(|needle| {
            if needle.len() > hay.len() {
                return false;
            }
            match kind {
                Fragment::StartsWith => hay[..needle.len()].eq_ignore_ascii_case(needle),
                Fragment::EndsWith => hay[hay.len() - needle.len()..].eq_ignore_ascii_case(needle),
                // An empty needle is contained in every value, the empty one
                // included (`windows` of an empty value yields nothing).
                Fragment::Contains => {
                    needle.is_empty()
                        || hay
                            .windows(needle.len())
                            .any(|w| w.eq_ignore_ascii_case(needle))
                }
            }
        });
    }
    let lowered = value.to_lowercase();
    arena.list(values).any(|p| match kind {
        Fragment::Contains => lowered.contains(p),
        Fragment::StartsWith => lowered.starts_with(p),
        Fragment::EndsWith => lowered.ends_with(p),
    })
}

fn single_value(raw: &model::Constraint) -> Option<&str> {
    raw.value
        .as_deref()
        .or_else(|| raw.values.first().map(String::as_str))
}

/// Compiles a pattern (or finds it compiled) within the snapshot's
/// [`REGEX_MEMORY_BUDGET`]; returns its index in the regexes, or why not.
fn compile_regex(
    pattern: &str,
    ignore_case: bool,
    arena: &mut ArenaBuilder,
) -> Result<u32, String> {
    use regex_automata::{meta, util::syntax, MatchKind};

    if let Some(&i) = arena.regex_index.get(&(pattern.into(), ignore_case)) {
        return Ok(i);
    }
    let left = REGEX_MEMORY_BUDGET.saturating_sub(arena.regex_bytes);
    let too_many = || {
        format!(
            "is past what one payload's regexes may hold together ({} MiB); it never matches",
            REGEX_MEMORY_BUDGET >> 20
        )
    };
    // What `regex::Regex::new` sets, with the size limit.
    let config = meta::Config::new()
        .match_kind(MatchKind::LeftmostFirst)
        .utf8_empty(true)
        .nfa_size_limit(Some(REGEX_SIZE_LIMIT.min(left)));
    let syntax = syntax::Config::new()
        .utf8(true)
        .case_insensitive(ignore_case);
    let build = |config: meta::Config| {
        meta::Builder::new()
            .configure(config)
            .syntax(syntax)
            .build(pattern)
            .map_err(Box::new)
    };
    let re = match build(config.clone()) {
        Ok(re) => re,
        Err(e) if e.size_limit().is_some() && left < REGEX_SIZE_LIMIT => return Err(too_many()),
        Err(e) => {
            // A syntax error's last line says what is wrong; the lines
            // above repeat the whole pattern.
            let why = e.to_string();
            return Err(format!(
                "is not valid: {}",
                why.lines().last().unwrap_or("").trim()
            ));
        }
    };
    // The caches follow the compiled size, known once it is built.
    let size = re.memory_usage();
    let cache = (2 * size).clamp(MIN_DFA_CACHE, MAX_DFA_CACHE);
    let cost = size + 2 * cache;
    if cost > left {
        return Err(too_many());
    }
    let re = match cache {
        MAX_DFA_CACHE => re,
        _ => {
            build(config.hybrid_cache_capacity(cache)).map_err(|e| format!("is not valid: {e}"))?
        }
    };
    arena.regex_bytes += cost;
    arena.regexes.push(re);
    let i = index(arena.regexes.len() - 1);
    arena.regex_index.insert((pattern.into(), ignore_case), i);
    Ok(i)
}

fn compile_test(
    raw: &model::Constraint,
    arena: &mut ArenaBuilder,
) -> (Test, Option<ConstraintProblem>) {
    let op = raw.operator.as_str();
    let cmp = |suffix: &str| match suffix {
        "EQ" => Some(Cmp::Eq),
        "GT" => Some(Cmp::Gt),
        "GTE" => Some(Cmp::Gte),
        "LT" => Some(Cmp::Lt),
        "LTE" => Some(Cmp::Lte),
        _ => None,
    };
    let never = |why: String| (Test::Never, Some(why));
    match op {
        "IN" => (
            Test::In(arena.set(raw.values.iter().map(String::as_str))),
            None,
        ),
        "NOT_IN" => (
            Test::NotIn(arena.set(raw.values.iter().map(String::as_str))),
            None,
        ),
        "STR_CONTAINS" | "STR_STARTS_WITH" | "STR_ENDS_WITH" => {
            let kind = match op {
                "STR_CONTAINS" => Fragment::Contains,
                "STR_STARTS_WITH" => Fragment::StartsWith,
                _ => Fragment::EndsWith,
            };
            let lowered: Vec<String>;
            let values = if raw.case_insensitive {
                lowered = raw.values.iter().map(|v| v.to_lowercase()).collect();
                arena.list(lowered.iter().map(String::as_str))
            } else {
                arena.list(raw.values.iter().map(String::as_str))
            };
            (
                Test::Fragment {
                    kind,
                    values,
                    ignore_case: raw.case_insensitive,
                },
                None,
            )
        }
        "NUM_EQ" | "NUM_GT" | "NUM_GTE" | "NUM_LT" | "NUM_LTE" => {
            let c = cmp(&op[4..]).expect("operator suffix listed above");
            match single_value(raw).map(|v| (v, v.trim().parse::<f64>())) {
                Some((_, Ok(n))) if n.is_finite() => (Test::Num(c, n), None),
                Some((v, _)) => never(format!("{op} needs a number, got {}", Quoted(v))),
                None => never(format!("{op} has no value")),
            }
        }
        "DATE_AFTER" | "DATE_BEFORE" => {
            let c = if op == "DATE_AFTER" { Cmp::Gt } else { Cmp::Lt };
            match single_value(raw).map(|v| (v, parse_timestamp_millis(v))) {
                Some((_, Some(t))) => (Test::Date(c, t), None),
                Some((v, None)) => never(format!(
                    "{op} needs an ISO-8601 timestamp such as 2024-01-31T12:00:00.000Z, got {}",
                    Quoted(v)
                )),
                None => never(format!("{op} has no value")),
            }
        }
        "SEMVER_EQ" | "SEMVER_GT" | "SEMVER_GTE" | "SEMVER_LT" | "SEMVER_LTE" => {
            let c = cmp(&op[7..]).expect("operator suffix listed above");
            match single_value(raw).map(|v| (v, semver::Version::parse(v.trim()))) {
                Some((_, Ok(v))) => {
                    arena.versions.push(v);
                    (Test::Semver(c, index(arena.versions.len() - 1)), None)
                }
                Some((v, Err(e))) => never(format!(
                    "{op} needs a semantic version such as 1.2.3, got {} ({})",
                    Quoted(v),
                    shorten_quoted(&e.to_string())
                )),
                None => never(format!("{op} has no value")),
            }
        }
        "REGEX" => match single_value(raw) {
            Some(pattern) => match compile_regex(pattern, raw.case_insensitive, arena) {
                Ok(i) => (Test::Regex(i), None),
                Err(why) => never(format!("REGEX pattern {} {why}", Quoted(pattern))),
            },
            None => never("REGEX has no pattern".into()),
        },
        "IN_CIDR" => {
            let start = arena.nets.len();
            arena
                .nets
                .extend(raw.values.iter().filter_map(|v| IpNet::parse(v)));
            let nets = Span::since(start, arena.nets.len());
            let bad: Vec<&String> = raw
                .values
                .iter()
                .filter(|v| IpNet::parse(v).is_none())
                .collect();
            let problem = (!bad.is_empty()).then(|| {
                let shown: Vec<String> =
                    bad.iter().take(5).map(|v| Quoted(v).to_string()).collect();
                let more = match bad.len() {
                    n if n > 5 => format!(" and {} more", n - 5),
                    _ => String::new(),
                };
                format!(
                    "IN_CIDR ignores values that are not an IP address or CIDR range: [{}]{more}",
                    shown.join(", ")
                )
            });
            (Test::Cidr(nets), problem)
        }
        other => never(format!(
            "unknown constraint operator {}; this constraint never matches",
            Quoted(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::OwnedContext;

    fn constraint(name: &str, op: &str, values: &[&str], value: Option<&str>) -> model::Constraint {
        model::Constraint {
            context_name: name.into(),
            operator: op.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
            value: value.map(str::to_string),
            inverted: false,
            case_insensitive: false,
        }
    }

    #[test]
    fn cidr_contains() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(&"10.1.2.3".parse().unwrap()));
        assert!(!net.contains(&"11.1.2.3".parse().unwrap()));
        let all = IpNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(&"1.2.3.4".parse().unwrap()));
        let v6 = IpNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(&"2001:db8::1".parse().unwrap()));
        assert!(!v6.contains(&"10.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_none());
        assert!(IpNet::parse("banana").is_none());
    }

    #[test]
    fn semver_constraints_answer_as_the_semver_parser_orders() {
        // Plain versions take a shorter path than the others; every pair
        // must answer as semantic versioning's precedence does.
        let contexts = [
            "1.2.3",
            "1.2.4",
            "1.10.0",
            "0.0.0",
            "2.0.0",
            "1.2.3-rc.1",
            "1.2.3+build",
            "01.2.3",
            "1.2",
            "1.2.3.4",
            "1..3",
            " 1.2.3",
            "1.2.3 ",
            "",
            "x.y.z",
            "18446744073709551615.0.0",
            "18446744073709551616.0.0",
        ];
        let operands = [
            "1.2.3",
            "1.2.3-rc.1",
            "1.2.4-alpha",
            "0.0.1",
            "1.10.0",
            "1.2.3+meta",
        ];
        for op in ["SEMVER_EQ", "SEMVER_GT", "SEMVER_LT"] {
            for operand in operands {
                let mut b = ArenaBuilder::default();
                let (c, problem) =
                    Constraint::compile(&constraint("version", op, &[], Some(operand)), &mut b);
                assert!(problem.is_none(), "{op} {operand}: {problem:?}");
                let arena = b.finish();
                for text in contexts {
                    let ctx = OwnedContext {
                        properties: [("version".to_string(), text.to_string())].into(),
                        ..Default::default()
                    };
                    let expected = semver::Version::parse(text).is_ok_and(|v| {
                        let ord = v.cmp_precedence(&semver::Version::parse(operand).unwrap());
                        match op {
                            "SEMVER_EQ" => ord == Ordering::Equal,
                            "SEMVER_GT" => ord == Ordering::Greater,
                            _ => ord == Ordering::Less,
                        }
                    });
                    assert_eq!(c.holds(&arena, &ctx), expected, "{text:?} {op} {operand}");
                }
            }
        }
    }

    #[test]
    fn regexes_past_the_heap_budget_never_match_and_equal_ones_are_compiled_once() {
        // Short patterns, each of them costly (a Unicode class repeated):
        // the first ones are compiled and match, the ones past the budget
        // are reported and never match; a pattern repeated costs nothing.
        let mut b = ArenaBuilder::default();
        let pattern = |i: usize| format!("^\\w{{10}}{i}$");
        let compiled: Vec<_> = (0..400)
            .map(|i| {
                let raw = constraint("userId", "REGEX", &[], Some(&pattern(i)));
                Constraint::compile(&raw, &mut b)
            })
            .collect();
        for _ in 0..100 {
            let raw = constraint("userId", "REGEX", &[], Some(&pattern(0)));
            assert!(Constraint::compile(&raw, &mut b).1.is_none());
        }
        let refused: Vec<&String> = compiled.iter().filter_map(|(_, p)| p.as_ref()).collect();
        assert!(
            b.regex_bytes <= REGEX_MEMORY_BUDGET,
            "{} bytes",
            b.regex_bytes
        );
        assert!(
            !refused.is_empty() && refused.len() < 400,
            "{} of 400 refused",
            refused.len()
        );
        assert!(
            refused[0].contains("(32 MiB); it never matches"),
            "{}",
            refused[0]
        );
        assert_eq!(b.regexes.len(), 400 - refused.len());
        let arena = b.finish();
        let user = |i: usize| OwnedContext {
            user_id: Some(format!("abcdefghij{i}")),
            ..Default::default()
        };
        assert!(compiled[0].0.holds(&arena, &user(0)));
        assert!(!compiled[0].0.holds(&arena, &user(1)));
        assert!(!compiled[399].0.holds(&arena, &user(399)));
    }

    #[test]
    fn unknown_operator_never_holds_even_inverted() {
        let mut raw = constraint("userId", "SOUNDS_LIKE", &["x"], None);
        raw.inverted = true;
        let mut b = ArenaBuilder::default();
        let (c, problem) = Constraint::compile(&raw, &mut b);
        assert!(problem.unwrap().contains("SOUNDS_LIKE"));
        assert!(!c.holds(&b.finish(), &OwnedContext::default()));
    }

    #[test]
    fn empty_fragment_is_in_every_value_whatever_the_case() {
        for ignore_case in [false, true] {
            let mut raw = constraint("userId", "STR_CONTAINS", &[""], None);
            raw.case_insensitive = ignore_case;
            let mut b = ArenaBuilder::default();
            let (c, _) = Constraint::compile(&raw, &mut b);
            let arena = b.finish();
            for id in ["", "x", "ÜBOB"] {
                let ctx = OwnedContext {
                    user_id: Some(id.into()),
                    ..Default::default()
                };
                assert!(
                    c.holds(&arena, &ctx),
                    "{id:?} contains \"\" (ignore case: {ignore_case})"
                );
            }
        }
    }

    #[test]
    fn ascii_case_insensitive_fragments() {
        let mut raw = constraint("userId", "STR_CONTAINS", &["BoB"], None);
        raw.case_insensitive = true;
        let mut b = ArenaBuilder::default();
        let (c, _) = Constraint::compile(&raw, &mut b);
        let arena = b.finish();
        let ctx = |id: &str| OwnedContext {
            user_id: Some(id.into()),
            ..Default::default()
        };
        assert!(c.holds(&arena, &ctx("hi bOb!")));
        assert!(!c.holds(&arena, &ctx("hi bo b")));
        assert!(c.holds(&arena, &ctx("ÜBOB")));
    }
}
