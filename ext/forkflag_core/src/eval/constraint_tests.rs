//! Tests of constraint matching (`constraint.rs`).

use super::*;
use crate::compile::model;
use crate::compile::REGEX_MEMORY_BUDGET;
use crate::context::OwnedContext;
use crate::snapshot::arena::ArenaBuilder;

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

/// A constraint compiled alone, with its arena.
fn compiled(raw: &model::Constraint) -> (Constraint, Arena, Option<String>) {
    let mut b = ArenaBuilder::default();
    let (c, problem) = Constraint::compile(raw, &mut b);
    (c, b.finish(), problem)
}

fn user(id: &str) -> OwnedContext {
    OwnedContext {
        user_id: Some(id.into()),
        ..Default::default()
    }
}

#[test]
fn unknown_operator_never_holds_even_inverted() {
    let mut raw = constraint("userId", "SOUNDS_LIKE", &["x"], None);
    raw.inverted = true;
    let (c, arena, problem) = compiled(&raw);
    assert!(problem.unwrap().contains("SOUNDS_LIKE"));
    assert!(!c.holds(&arena, &OwnedContext::default()));
}

#[test]
fn empty_fragment_is_in_every_value_whatever_the_case() {
    for ignore_case in [false, true] {
        let mut raw = constraint("userId", "STR_CONTAINS", &[""], None);
        raw.case_insensitive = ignore_case;
        let (c, arena, _) = compiled(&raw);
        for id in ["", "x", "ÜBOB"] {
            assert!(
                c.holds(&arena, &user(id)),
                "{id:?} contains \"\" (ignore case: {ignore_case})"
            );
        }
    }
}

#[test]
fn ascii_case_insensitive_fragments() {
    let mut raw = constraint("userId", "STR_CONTAINS", &["BoB"], None);
    raw.case_insensitive = true;
    let (c, arena, _) = compiled(&raw);
    assert!(c.holds(&arena, &user("hi bOb!")));
    assert!(!c.holds(&arena, &user("hi bo b")));
    assert!(c.holds(&arena, &user("ÜBOB")));
}

#[test]
fn a_compiled_network_contains_what_ipnet_says_it_contains() {
    let nets = [
        "10.0.0.0/8",
        "10.1.2.3/8",
        "0.0.0.0/0",
        "1.2.3.4/32",
        "2001:db8::/32",
        "2001:db8::1/127",
        "::/0",
        "::1/128",
    ];
    let ips = [
        "10.0.0.1",
        "11.0.0.1",
        "1.2.3.4",
        "1.2.3.5",
        "2001:db8::1",
        "2001:db9::1",
        "::1",
        "::ffff:10.0.0.1",
    ];
    for net in nets {
        let net: IpNet = net.parse().unwrap();
        for ip in ips {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(
                net_contains(&net.trunc(), &ip),
                net.contains(&ip),
                "{net} {ip}"
            );
        }
    }
}
