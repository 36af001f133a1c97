//! Random evaluation contexts: user ids, session ids, properties, times and
//! remote addresses, valid and not, mixed with the strings of the payload
//! being tried so that its constraints, overrides and stickiness fields come
//! out both ways.

use forkflag_core::OwnedContext;
use serde_json::Value;

use super::hostile::{CIDRS, DATES, FIELDS, NUMERIC, ODD, SEMVER};

/// A splitmix64 generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Strings of a payload (at most this many, each at most 256 bytes).
const STRINGS: usize = 256;

/// Strings found in a document: names and values to build contexts from.
pub fn strings_of(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        if out.len() >= STRINGS {
            return;
        }
        match v {
            Value::String(s) => {
                let end = (0..=s.len().min(256))
                    .rev()
                    .find(|&i| s.is_char_boundary(i))
                    .unwrap_or(0);
                out.push(s[..end].to_string());
            }
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(m) => m.iter().for_each(|(k, i)| {
                out.push(k.clone());
                walk(i, out);
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut out);
    out.sort();
    out.dedup();
    out
}

fn user_id(rng: &mut Rng, strings: &[String]) -> Option<String> {
    Some(match rng.below(8) {
        0 => return None,
        1 => rng.next().to_string(),
        2 => (rng.below(1000)).to_string(),
        3 => rng.pick(ODD).to_string(),
        4 => "x".repeat(rng.below(10_000)),
        5 => rng.pick(NUMERIC).to_string(),
        _ => pick_string(rng, strings),
    })
}

fn pick_string(rng: &mut Rng, strings: &[String]) -> String {
    if strings.is_empty() {
        return String::new();
    }
    strings[rng.below(strings.len())].clone()
}

/// `count` contexts from a seed.
pub fn contexts(seed: u64, strings: &[String], count: usize) -> Vec<OwnedContext> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let mut ctx = OwnedContext {
                user_id: user_id(&mut rng, strings),
                session_id: user_id(&mut rng, strings),
                remote_address: match rng.below(4) {
                    0 => None,
                    1 => Some(rng.pick(CIDRS).to_string()),
                    2 => Some(format!(
                        "{}.{}.{}.{}",
                        rng.below(256),
                        rng.below(256),
                        rng.below(3),
                        rng.below(256)
                    )),
                    _ => Some(pick_string(&mut rng, strings)),
                },
                environment: user_id(&mut rng, strings),
                app_name: user_id(&mut rng, strings),
                current_time: match rng.below(4) {
                    0 => None,
                    1 => Some(rng.pick(DATES).to_string()),
                    2 => Some(pick_string(&mut rng, strings)),
                    _ => Some(format!(
                        "{}-{:02}-{:02}T{:02}:00:00.000Z",
                        1900 + rng.below(300),
                        1 + rng.below(12),
                        1 + rng.below(28),
                        rng.below(24)
                    )),
                },
                properties: Default::default(),
            };
            for _ in 0..rng.below(8) {
                let name = match rng.below(3) {
                    0 => rng.pick(FIELDS).to_string(),
                    _ => pick_string(&mut rng, strings),
                };
                let value = match rng.below(5) {
                    0 => rng.pick(SEMVER).to_string(),
                    1 => rng.pick(NUMERIC).to_string(),
                    2 => rng.pick(ODD).to_string(),
                    _ => pick_string(&mut rng, strings),
                };
                ctx.properties.insert(name, value);
            }
            ctx
        })
        .collect()
}
