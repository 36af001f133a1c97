//! Compiling a constraint: its operand is parsed once, here, and a
//! constraint that cannot be understood becomes one that never holds, with
//! the reason reported.

use std::net::IpAddr;

use ipnet::IpNet;

use super::model;
use crate::error::{shorten_quoted, Quoted};
use crate::snapshot::arena::{index, ArenaBuilder, Span};
use crate::snapshot::constraint::{Cmp, Constraint, Fragment, Test};
use crate::time::parse_timestamp_millis;

/// Why a constraint was compiled to "never holds".
pub(crate) type ConstraintProblem = String;

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
}

/// Parses a network, `10.0.0.0/8` or `::1/128`, or a bare address (a
/// network of one address); surrounding spaces are ignored. Address bits
/// past the prefix are allowed (`10.1.2.3/8` is `10.0.0.0/8`) and cleared
/// here: the network's address is its first one, as evaluation expects
/// (see `eval::constraint::net_contains`).
pub(super) fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (text.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    IpNet::new(addr, prefix.unwrap_or(max))
        .ok()
        .map(|net| net.trunc())
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
    let source = arena.text(pattern);
    arena.regex_sources.push((source, ignore_case));
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
    let operator = arena.text(op);
    let never = |why: String| (Test::Never(operator), Some(why));
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
                .extend(raw.values.iter().filter_map(|v| parse_net(v)));
            let nets = Span::since(start, arena.nets.len());
            let bad: Vec<&String> = raw
                .values
                .iter()
                .filter(|v| parse_net(v).is_none())
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

    #[test]
    fn cidr_contains() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let net = parse_net("10.0.0.0/8").unwrap();
        assert!(net.contains(&ip("10.1.2.3")));
        assert!(!net.contains(&ip("11.1.2.3")));
        let all = parse_net("0.0.0.0/0").unwrap();
        assert!(all.contains(&ip("1.2.3.4")));
        let v6 = parse_net("2001:db8::/32").unwrap();
        assert!(v6.contains(&ip("2001:db8::1")));
        assert!(!v6.contains(&ip("10.0.0.1")));
        assert!(parse_net("10.0.0.0/33").is_none());
        assert!(parse_net("banana").is_none());
        // A bare address is a network of one; bits past the prefix are
        // ignored; spaces around are too.
        let one = parse_net(" 10.1.2.3 ").unwrap();
        assert!(one.contains(&ip("10.1.2.3")) && !one.contains(&ip("10.1.2.4")));
        let loose = parse_net("10.1.2.3/8").unwrap();
        assert!(loose.contains(&ip("10.200.0.1")));
        assert!(parse_net("10.0.0.0/").is_none() && parse_net("10.0.0.0/x").is_none());
    }
}
