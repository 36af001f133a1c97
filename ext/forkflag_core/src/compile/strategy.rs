//! Compiling a strategy's kind and parameters.

use super::constraint::parse_net;
use super::model;
use std::sync::Arc;

use crate::context::CustomStrategy;
use crate::error::Quoted;
use crate::process::host_name;
use crate::snapshot::arena::{ArenaBuilder, Span, Text};
use crate::snapshot::flag::{RolloutOrigin, Stickiness, StrategyKind};

/// Reads a percentage parameter (0..=100; fractions round down).
fn percentage(raw: &model::Strategy, key: &str, report: &mut dyn FnMut(String)) -> Option<u32> {
    let Some(text) = raw.parameters.get(key) else {
        report(format!(
            "parameter {key:?} is missing; this strategy never matches"
        ));
        return None;
    };
    match text.trim().parse::<f64>() {
        Ok(p) if p.is_finite() => {
            if !(0.0..=100.0).contains(&p) {
                report(format!(
                    "parameter {key:?} is {}, outside 0..100; using {}",
                    Quoted(text),
                    p.clamp(0.0, 100.0)
                ));
            }
            Some(p.clamp(0.0, 100.0).floor() as u32)
        }
        _ => {
            report(format!(
                "parameter {key:?} must be a number from 0 to 100, got {}; this strategy never matches",
                Quoted(text)
            ));
            None
        }
    }
}

fn comma_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim)
}

/// The strategy names evaluated by forkflag itself; a custom strategy
/// cannot take one of them.
pub const BUILT_IN_STRATEGIES: &[&str] = &[
    "default",
    "userWithId",
    "gradualRolloutUserId",
    "gradualRolloutSessionId",
    "gradualRolloutRandom",
    "flexibleRollout",
    "remoteAddress",
    "applicationHostname",
];

/// Compiles a strategy's kind and parameters (`flag_name` is the default
/// group; `custom`, the names of the application's strategies).
pub(super) fn compile_strategy_kind(
    raw: &model::Strategy,
    flag_name: Text,
    custom: &[Arc<str>],
    arena: &mut ArenaBuilder,
    report: &mut dyn FnMut(String),
) -> StrategyKind {
    let own_name = arena.text(&raw.name);
    let param = |key: &str| raw.parameters.get(key).map(String::as_str);
    match raw.name.as_str() {
        "default" => StrategyKind::Default,
        "userWithId" => match param("userIds") {
            Some(ids) => StrategyKind::UserWithId(arena.set(comma_list(ids))),
            None => {
                report("parameter \"userIds\" is missing; this strategy never matches".into());
                StrategyKind::Never(own_name)
            }
        },
        "gradualRolloutUserId" | "gradualRolloutSessionId" => {
            let (field, origin) = if raw.name == "gradualRolloutUserId" {
                (arena.field_index("userId"), RolloutOrigin::UserId)
            } else {
                (arena.field_index("sessionId"), RolloutOrigin::SessionId)
            };
            let pct = percentage(raw, "percentage", report);
            match (pct, param("groupId")) {
                (Some(percentage), Some(group)) => StrategyKind::Rollout {
                    origin,
                    percentage,
                    stickiness: Stickiness::Field(field),
                    group: arena.text(group),
                },
                (Some(_), None) => {
                    report("parameter \"groupId\" is missing; this strategy never matches".into());
                    StrategyKind::Never(own_name)
                }
                _ => StrategyKind::Never(own_name),
            }
        }
        "gradualRolloutRandom" => match percentage(raw, "percentage", report) {
            Some(percentage) => StrategyKind::Random { percentage },
            None => StrategyKind::Never(own_name),
        },
        "flexibleRollout" => match percentage(raw, "rollout", report) {
            Some(percentage) => StrategyKind::Rollout {
                origin: RolloutOrigin::Flexible,
                percentage,
                stickiness: Stickiness::from_param(param("stickiness"), arena),
                group: param("groupId").map_or(flag_name, |g| arena.text(g)),
            },
            None => StrategyKind::Never(own_name),
        },
        "remoteAddress" => match param("IPs") {
            Some(ips) => {
                let nets_start = arena.nets.len();
                let mut texts = Vec::new();
                for entry in comma_list(ips).filter(|e| !e.is_empty()) {
                    match parse_net(entry) {
                        Some(net) => arena.nets.push(net),
                        None => texts.push(entry),
                    }
                }
                StrategyKind::RemoteAddress {
                    nets: Span::since(nets_start, arena.nets.len()),
                    texts: arena.list(texts),
                }
            }
            None => {
                report("parameter \"IPs\" is missing; this strategy never matches".into());
                StrategyKind::Never(own_name)
            }
        },
        "applicationHostname" => {
            let host = host_name();
            let names = param("hostNames").unwrap_or("");
            StrategyKind::Hostname(comma_list(names).any(|n| n.to_lowercase() == host))
        }
        other => match custom.iter().find(|name| &***name == other) {
            Some(name) => StrategyKind::Custom(Box::new(CustomStrategy {
                name: Arc::clone(name),
                parameters: raw
                    .parameters
                    .iter()
                    .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                    .collect(),
            })),
            None => {
                report(format!(
                    "unknown strategy {}; it never matches (no custom strategy of that name is \
                     registered: see the strategies: option)",
                    Quoted(other)
                ));
                StrategyKind::Never(own_name)
            }
        },
    }
}
