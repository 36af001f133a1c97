//! Testing a compiled constraint against a context: the context field is
//! read and compared with the parsed operand. No test allocates unless it
//! must lowercase non-ASCII text.

use std::cmp::Ordering;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::context::{Context, CurrentTime};
use crate::snapshot::arena::{Arena, Span};
use crate::snapshot::constraint::{Cmp, Constraint, Fragment, Test};
use crate::time::now_millis;

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

impl Constraint {
    /// Whether the constraint holds for the context (`arena` is the one of
    /// the snapshot the constraint belongs to).
    #[inline]
    pub(crate) fn holds<C: Context + ?Sized>(&self, arena: &Arena, ctx: &C) -> bool {
        let result = match &self.test {
            Test::Never(_) => return false,
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
                Some(ip) => nets.of(&arena.nets).iter().any(|n| net_contains(n, &ip)),
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
        Test::Date(..) | Test::Cidr(..) | Test::Never(_) => false,
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

/// Whether `ip` is in `net`, a network as compiled: its address is its
/// first one (the bits past the prefix are cleared when it is parsed), so
/// a test is one mask and compare. (`IpNet::contains` computes the first
/// and last address on every call: measured twice as slow.)
#[inline]
pub(super) fn net_contains(net: &IpNet, ip: &IpAddr) -> bool {
    match (net, ip) {
        (IpNet::V4(net), IpAddr::V4(ip)) => {
            u32::from(*ip) & u32::from(net.netmask()) == u32::from(net.addr())
        }
        (IpNet::V6(net), IpAddr::V6(ip)) => {
            u128::from(*ip) & u128::from(net.netmask()) == u128::from(net.addr())
        }
        _ => false,
    }
}

/// Whether `ip` (or the raw text) matches one of the remoteAddress entries.
#[inline]
pub(crate) fn remote_address_matches<'a>(
    nets: &[IpNet],
    mut texts: impl Iterator<Item = &'a str>,
    ip: Option<IpAddr>,
    raw: Option<&str>,
) -> bool {
    if let Some(ip) = ip {
        if nets.iter().any(|n| net_contains(n, &ip)) {
            return true;
        }
    }
    match raw {
        Some(raw) => texts.any(|t| t == raw.trim()),
        None => false,
    }
}

#[cfg(test)]
#[path = "constraint_tests.rs"]
mod tests;
