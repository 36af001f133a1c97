//! Differential test: forkflag's evaluator against the official Unleash engine.
//!
//! The official engine, the crate `unleash-yggdrasil` (a pinned
//! dev-dependency), passes the whole client specification, so where the
//! specification is silent it is the best oracle there is. This test:
//!
//! - builds random client-features payloads (every built-in strategy, every
//!   constraint operator, segments, feature and strategy variants,
//!   dependencies) and random contexts, drawing values from small pools that
//!   overlap on purpose so that constraints come out true and false about
//!   equally often;
//! - serializes each payload once and feeds the same bytes to both engines;
//! - asks both `enabled?` and `variant` for every flag and context, and
//!   compares the answers (for variants: name, enabled, feature_enabled and
//!   payload).
//!
//! Every payload also carries *probe* flags: each generated constraint and
//! each generated strategy alone on a flag of its own. They compare operators
//! and strategies one at a time, and their printed true fractions show that
//! the pools make every operator answer both ways.
//!
//! Where forkflag differs from yggdrasil on purpose, the case is filtered by a
//! named [`Exclusion`], each documented with its reason. Triggers are detected
//! from the payload and the context *before* comparing, counted per run, and
//! the filtered cases are still evaluated so the summary shows how many of
//! them really differed. Whether yggdrasil failed to compile a flag is checked
//! against the exclusions that predict it, so the detection cannot drift.
//! Anything else that differs is a mismatch: the flag (with its parents and
//! the segments), the context and both answers are printed and the test fails.
//!
//! Randomness comes from a splitmix64 generator seeded from
//! `FORKFLAG_DIFF_SEED` (decimal or `0x` hex) or the clock; the seed is
//! printed so any failure can be replayed exactly. `FORKFLAG_DIFF_CASES`
//! raises the number of comparisons of each kind for a longer soak.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use forkflag_core::{Engine, OwnedContext, Snapshot};
use regex::Regex;
use serde_json::{json, Map, Value};
use unleash_yggdrasil::{ClientFeatures, Context as OfficialContext, EngineState, UpdateMessage};

#[path = "support/operators.rs"]
mod operators;

/// Comparisons of each kind (enabled, variant) a run makes at least.
const DEFAULT_CASES: u64 = 25_000;
/// Contexts evaluated against each generated payload.
const CONTEXTS_PER_PAYLOAD: usize = 48;
/// A name that is never in a payload.
const UNKNOWN_FLAG: &str = "no-such-flag";
/// Mismatches printed in full (the rest are counted).
const MISMATCHES_SHOWN: usize = 5;

// ---------------------------------------------------------------------------
// Intended differences
// ---------------------------------------------------------------------------

/// A known, intended difference between forkflag and yggdrasil 0.21.7.
///
/// A case (one flag, one context, `enabled?` or `variant`) whose flag or
/// parents trigger one of these is evaluated but not compared.
///
/// Checked and *not* an exclusion: yggdrasil 0.21.7 always quotes IN/NOT_IN
/// values in its rule text, so it compares them as text like forkflag does
/// (`"1.0" IN ["1"]` is false in both); the pools keep numeric-looking ids so
/// that stays tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Exclusion {
    /// A constraint yggdrasil cannot compile: an unknown operator, a
    /// NUM/DATE/SEMVER operand its rule grammar or parser rejects (".5",
    /// "abc", "2024-03-01", a date without exactly three fraction digits,
    /// "01.2.3", "banana"), a NUM/DATE/SEMVER constraint without `value`, or
    /// an empty STR_*/IN_CIDR list. Yggdrasil switches the whole flag off
    /// (and every flag depending on it); forkflag makes only that constraint
    /// never hold, so the flag's other strategies keep working.
    Uncompilable,
    /// A SEMVER or DATE operand that is not a version or date but is a number
    /// ("1", "1.2", "20240301"): yggdrasil's rule grammar reads the
    /// constraint as a numeric comparison; forkflag's never holds.
    OperandReadAsNumber,
    /// A strategy references a segment id the payload does not define:
    /// yggdrasil switches the whole flag off; forkflag only that strategy.
    MissingSegment,
    /// NUM_EQ: yggdrasil holds when |a - b| < f64::EPSILON, forkflag compares
    /// exactly like the Node SDK. Triggered when the context's number and the
    /// operand are different doubles that close (0.3 and 0.30000000000000004).
    NumEqEpsilon,
    /// An invalid REGEX pattern on an inverted constraint: yggdrasil reads the
    /// broken constraint as false and then inverts it (true for everyone);
    /// forkflag's broken constraint never holds, inverted or not.
    InvertedInvalidRegex,
    /// A REGEX constraint with its pattern only in `values`: yggdrasil reads
    /// only `value` and compiles the empty pattern (matches everything);
    /// forkflag falls back to `values[0]`.
    RegexPatternOnlyInValues,
    /// DATE_AFTER/DATE_BEFORE on a field other than currentTime: yggdrasil
    /// reads that field; forkflag, like the Node SDK, always compares the
    /// context's currentTime.
    DateOnOtherField,
    /// A range in netmask notation ("10.0.0.0/255.0.0.0"): yggdrasil's
    /// ipnetwork accepts it; forkflag accepts only prefix lengths (CIDR), so
    /// it ignores the entry in IN_CIDR and matches it as text in remoteAddress.
    NetmaskNotation,
    /// A remoteAddress entry that is neither an address nor a range
    /// ("localhost"): forkflag, like the Node SDK, matches it against the
    /// context's remoteAddress text; yggdrasil drops it. Triggered only when
    /// the context's remoteAddress equals such an entry.
    RemoteAddressTextEntry,
    /// An applicationHostname strategy listing this machine's host name: the
    /// oracle is built without yggdrasil's `hostname` feature, cannot see the
    /// host and answers false; forkflag answers true.
    HostnameOfThisMachine,
    /// Stickiness "": forkflag treats it as "default", like the Node SDK's
    /// `parameters.stickiness || 'default'`; yggdrasil looks up a property
    /// named "" (absent: a rollout never matches, a variant is random).
    EmptyStickiness,
    /// A parent evaluated for a dependency has a flexibleRollout without
    /// groupId (rollout strictly between 0 and 100): yggdrasil hashes it with
    /// the *child's* name (its context carries the child's name); forkflag
    /// hashes the parent's own name, so a parent answers the same whether
    /// asked directly or through a child.
    ParentRolloutHashedWithChildName,
    /// A dependency lists expected parent variants, the parent is switched on
    /// and can come out with no variant at all (no feature variants and a
    /// strategy without variants): yggdrasil treats "no variant" as
    /// satisfying any list; forkflag, like the Node SDK, compares the
    /// parent's variant name ("disabled") with the list.
    ParentWithoutVariants,
    /// A dependency expects its parent disabled *and* lists variants:
    /// yggdrasil picks the parent's variant without checking that the parent
    /// is on; forkflag uses the variant the parent really returns ("disabled"
    /// when it is off). The Unleash UI offers variants only for enabled
    /// parents.
    DisabledParentWithVariants,
    /// The answer depends on a random number: random stickiness, default
    /// stickiness with neither userId nor sessionId, a variant stickiness
    /// field the context lacks, gradualRolloutRandom strictly between 0 and
    /// 100. Each engine draws its own number.
    RandomPath,
}

impl Exclusion {
    /// Every exclusion, in the order the summary lists them.
    const ALL: [Exclusion; 15] = [
        Exclusion::Uncompilable,
        Exclusion::OperandReadAsNumber,
        Exclusion::MissingSegment,
        Exclusion::NumEqEpsilon,
        Exclusion::InvertedInvalidRegex,
        Exclusion::RegexPatternOnlyInValues,
        Exclusion::DateOnOtherField,
        Exclusion::NetmaskNotation,
        Exclusion::RemoteAddressTextEntry,
        Exclusion::HostnameOfThisMachine,
        Exclusion::EmptyStickiness,
        Exclusion::ParentRolloutHashedWithChildName,
        Exclusion::ParentWithoutVariants,
        Exclusion::DisabledParentWithVariants,
        Exclusion::RandomPath,
    ];

    /// Whether yggdrasil reports the flag as uncompilable (it warns and
    /// switches the whole flag off).
    fn fails_official_compile(self) -> bool {
        matches!(self, Exclusion::Uncompilable | Exclusion::MissingSegment)
    }
}

// ---------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------

/// splitmix64: a tiny generator whose whole state is one seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with the given probability in percent.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Between `min` and `max` distinct items, in random order.
    fn subset<T: Copy>(&mut self, items: &[T], min: usize, max: usize) -> Vec<T> {
        let mut pool: Vec<T> = items.to_vec();
        let n = self.range(min, max.min(pool.len()));
        (0..n)
            .map(|_| pool.swap_remove(self.below(pool.len())))
            .collect()
    }
}

/// A seed for payload `index` of a run, independent of the other payloads.
fn payload_seed(seed: u64, index: u64) -> u64 {
    Rng(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03)).next_u64()
}

fn run_seed() -> u64 {
    match std::env::var("FORKFLAG_DIFF_SEED") {
        Ok(text) => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("FORKFLAG_DIFF_SEED must be a number, got {text:?}"))
        }
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

// ---------------------------------------------------------------------------
// Value pools (contexts and payloads draw from the same ones)
// ---------------------------------------------------------------------------

const USER_IDS: &[&str] = &[
    "1", "2", "7", "42", "123", "1.0", "01", "alice", "bob", "Bob", "", "zoë",
];
const SESSION_IDS: &[&str] = &["s-1", "s-2", "s-3", "abc", "7", "XYZ"];
const ENVIRONMENTS: &[&str] = &[
    "production",
    "staging",
    "development",
    "Production",
    "prod-eu",
];
const APP_NAMES: &[&str] = &["web", "worker", "api", "Web-App", "web-admin"];
const REMOTE_ADDRESSES: &[&str] = &[
    "10.0.0.1",
    "10.1.2.3",
    "10.200.0.9",
    "192.168.1.10",
    "192.168.2.1",
    "127.0.0.1",
    "::1",
    "2001:db8::1",
    "2001:db9::1",
    "::ffff:10.0.0.1",
    "8.8.8.8",
    "localhost",
    "not-an-ip",
];
const PLANS: &[&str] = &["free", "pro", "enterprise", "Pro", "PRO-trial", "pro "];
const TENANTS: &[&str] = &[
    "acme",
    "Acme Corp",
    "globex",
    "initech",
    "ÄRGER",
    "ärger",
    "Straße",
    "STRASSE",
    "\u{212A}elvin",
];
const VERSIONS: &[&str] = &[
    "1.0.0",
    "1.2.3",
    "1.2.3-beta",
    "1.2.3-beta.2",
    "1.2.3-alpha.10",
    "1.2.3-rc.1",
    "1.2.3+build.5",
    "2.0.0",
    "0.9.9",
    "1.10.0",
    "1.2",
    "v1.2.3",
    "banana",
];
const SCORES: &[&str] = &[
    "0",
    "1",
    "1.0",
    "1.5",
    "2",
    "10",
    "-3",
    "1e2",
    "100",
    "0.3",
    "0.30000000000000004",
    "abc",
    "inf",
    "NaN",
    "",
    "5.",
];
const EMAILS: &[&str] = &[
    "alice@example.com",
    "BOB@EXAMPLE.COM",
    "carol@test.org",
    "dave@Example.com",
    "eve@example.com.evil",
    "",
];
/// Timestamps with millisecond precision, close to each other on purpose.
const TIMES: &[&str] = &[
    "2024-03-01T12:00:00.000Z",
    "2024-03-01T12:00:00.001Z",
    "2024-03-01T11:59:59.999Z",
    "2024-03-01T14:00:00.000+02:00",
    "2023-12-31T23:59:59.999Z",
    "2025-06-15T08:30:00.000Z",
    "2030-01-01T00:00:00.000Z",
];

/// Context fields: API name, value pool, percent of contexts that have it.
/// `currentTime` is always present (see [`gen_context`]).
const FIELDS: &[(&str, &[&str], usize)] = &[
    ("userId", USER_IDS, 85),
    ("sessionId", SESSION_IDS, 70),
    ("remoteAddress", REMOTE_ADDRESSES, 80),
    ("environment", ENVIRONMENTS, 70),
    ("appName", APP_NAMES, 70),
    ("plan", PLANS, 75),
    ("tenant", TENANTS, 75),
    ("version", VERSIONS, 75),
    ("score", SCORES, 75),
    ("email", EMAILS, 75),
    ("signup", TIMES, 50),
];

const NEEDLES: &[&str] = &[
    "a",
    "A",
    "pro",
    "PRO",
    "@example.com",
    "EXAMPLE",
    "acme",
    "1.2",
    "",
    "ä",
    "Ä",
    "ß",
    "SS",
    "bob",
    "\u{212A}",
    "k",
    "-",
];
const NUMBERS: &[&str] = &[
    "1", "1.5", "2", "10", "-3", "0", "100", "0.3", "1e2", "5.", "+2",
];
const BAD_NUMBERS: &[&str] = &[".5", "abc", "inf", "1,5", "0x10"];
const DATES: &[&str] = &[
    "2024-03-01T12:00:00.000Z",
    "2024-03-01T12:00:00.001Z",
    "2024-03-01T11:59:59.999Z",
    "2024-03-01T13:00:00.000+01:00",
    "2024-03-01T12:00:00Z",
    "2025-06-15T08:30:00.000Z",
];
const BAD_DATES: &[&str] = &[
    "2024-03-01",
    "2024-03-01T12:00:00.000000Z",
    "2024-02-30T12:00:00.000Z",
    "yesterday",
    "20240301",
];
const SEMVERS: &[&str] = &[
    "1.2.3",
    "1.2.3-beta",
    "1.2.3-beta.2",
    "1.2.3-alpha.10",
    "1.2.3-rc.1",
    "2.0.0",
    "1.0.0",
    "1.10.0",
    "0.9.9",
    "1.2.3+build.1",
    "v1.2.3",
];
const BAD_SEMVERS: &[&str] = &["1.2", "01.2.3", "banana", "1"];
const REGEXES: &[&str] = &[
    "^a",
    "^[0-9]+$",
    "example\\.com$",
    "^(alice|bob)$",
    "pro",
    "^1\\.2\\.",
    "ä",
    "^$",
    ".*",
    "^\\w+@",
];
const BAD_REGEXES: &[&str] = &["[", "(unclosed", "a{2,1}"];
const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "192.168.1.0/24",
    "127.0.0.1",
    "::1/128",
    "2001:db8::/32",
    "0.0.0.0/0",
    "10.1.2.3/8",
    "192.168.0.0/16",
    "::/0",
    "10.0.0.0/33",
    "banana",
];
const NETMASK_RANGES: &[&str] = &["10.0.0.0/255.0.0.0", "192.168.1.0/255.255.255.0"];
const ADDRESS_TEXT_ENTRIES: &[&str] = &["localhost", "not-an-ip"];
const GROUPS: &[&str] = &["g1", "checkout", "", "a:b"];
const HOSTS: &[&str] = &["web-1", "build-host"];
const VARIANT_NAMES: &[&str] = &["red", "green", "blue", "yellow"];
const STRATEGY_VARIANT_NAMES: &[&str] = &["v-one", "v-two", "v-three"];
const PAYLOADS: &[(&str, &str)] = &[
    ("string", "hello"),
    ("json", "{\"a\":1}"),
    ("csv", "a,b,c"),
    ("number", "42"),
];
const STICKINESS: &[&str] = &[
    "default",
    "userId",
    "sessionId",
    "tenant",
    "plan",
    "appName",
];

fn pool(field: &str) -> &'static [&'static str] {
    FIELDS
        .iter()
        .find(|(name, _, _)| *name == field)
        .map_or(USER_IDS, |(_, values, _)| values)
}

// ---------------------------------------------------------------------------
// Contexts
// ---------------------------------------------------------------------------

/// A context as a map from Unleash API field names to values; names that are
/// not built-in fields are custom properties.
#[derive(Debug, Clone, Default)]
struct Ctx(BTreeMap<&'static str, String>);

const BUILT_IN: [&str; 6] = [
    "userId",
    "sessionId",
    "remoteAddress",
    "environment",
    "appName",
    "currentTime",
];

impl Ctx {
    fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    fn forkflag(&self) -> OwnedContext {
        let mut ctx = OwnedContext::default();
        for (&name, value) in &self.0 {
            let slot = match name {
                "userId" => &mut ctx.user_id,
                "sessionId" => &mut ctx.session_id,
                "remoteAddress" => &mut ctx.remote_address,
                "environment" => &mut ctx.environment,
                "appName" => &mut ctx.app_name,
                "currentTime" => &mut ctx.current_time,
                _ => {
                    ctx.properties.insert(name.to_owned(), value.clone());
                    continue;
                }
            };
            *slot = Some(value.clone());
        }
        ctx
    }

    fn official(&self) -> OfficialContext {
        let get = |name: &str| self.get(name).map(str::to_owned);
        OfficialContext {
            user_id: get("userId"),
            session_id: get("sessionId"),
            environment: get("environment"),
            app_name: get("appName"),
            current_time: get("currentTime"),
            remote_address: get("remoteAddress"),
            properties: Some(
                self.0
                    .iter()
                    .filter(|(name, _)| !BUILT_IN.contains(name))
                    .map(|(name, value)| (name.to_string(), value.clone()))
                    .collect::<HashMap<_, _>>(),
            ),
        }
    }

    fn to_json(&self) -> Value {
        let mut top = Map::new();
        let mut properties = Map::new();
        for (&name, value) in &self.0 {
            if BUILT_IN.contains(&name) {
                top.insert(name.into(), json!(value));
            } else {
                properties.insert(name.into(), json!(value));
            }
        }
        top.insert("properties".into(), Value::Object(properties));
        Value::Object(top)
    }
}

fn gen_context(rng: &mut Rng) -> Ctx {
    let mut ctx = Ctx::default();
    for &(name, values, percent) in FIELDS {
        if rng.chance(percent) {
            ctx.0.insert(name, rng.pick(values).to_owned());
        }
    }
    ctx.0.insert("currentTime", rng.pick(TIMES).to_owned());
    ctx
}

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| json!(s)).collect())
}

fn gen_constraint(rng: &mut Rng) -> Value {
    const STRING_FIELDS: &[&str] = &[
        "userId",
        "email",
        "tenant",
        "plan",
        "appName",
        "environment",
        "sessionId",
    ];
    /// A single operand: usually good, sometimes rejected by yggdrasil, and
    /// rarely given only in `values`.
    fn single(rng: &mut Rng, c: &mut Map<String, Value>, good: &[&str], bad: &[&str]) {
        let operand = if rng.chance(2) {
            rng.pick(bad)
        } else {
            rng.pick(good)
        };
        if rng.chance(1) {
            c.insert("values".into(), strings(&[operand]));
        } else {
            c.insert("value".into(), json!(operand));
        }
    }
    let mut c = Map::new();
    let (field, operator, case_percent) = match rng.below(100) {
        0..=19 => {
            let field = rng.pick(FIELDS).0;
            let mut values = if rng.chance(3) {
                Vec::new()
            } else {
                rng.subset(pool(field), 1, 4)
            };
            if rng.chance(15) {
                values.push("zzz");
            }
            c.insert("values".into(), strings(&values));
            (field, rng.pick(&["IN", "NOT_IN"]), 10)
        }
        20..=37 => {
            let field = rng.pick(STRING_FIELDS);
            let values = if rng.chance(1) {
                Vec::new()
            } else if rng.chance(50) {
                rng.subset(NEEDLES, 1, 3)
            } else {
                rng.subset(pool(field), 1, 2)
            };
            c.insert("values".into(), strings(&values));
            (
                field,
                rng.pick(&["STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"]),
                50,
            )
        }
        38..=52 => {
            single(rng, &mut c, NUMBERS, BAD_NUMBERS);
            let field = if rng.chance(75) { "score" } else { "userId" };
            (
                field,
                rng.pick(&["NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE"]),
                10,
            )
        }
        53..=61 => {
            single(rng, &mut c, DATES, BAD_DATES);
            let field = if rng.chance(95) {
                "currentTime"
            } else {
                "signup"
            };
            (field, rng.pick(&["DATE_AFTER", "DATE_BEFORE"]), 10)
        }
        62..=73 => {
            single(rng, &mut c, SEMVERS, BAD_SEMVERS);
            let ops = [
                "SEMVER_EQ",
                "SEMVER_GT",
                "SEMVER_GTE",
                "SEMVER_LT",
                "SEMVER_LTE",
            ];
            ("version", rng.pick(&ops), 10)
        }
        74..=84 => {
            single(rng, &mut c, REGEXES, BAD_REGEXES);
            let field = rng.pick(&["email", "userId", "tenant", "version", "plan"]);
            (field, "REGEX", 50)
        }
        85..=98 => {
            let mut values = if rng.chance(1) {
                Vec::new()
            } else {
                rng.subset(CIDRS, 1, 3)
            };
            if rng.chance(1) {
                values.push(rng.pick(NETMASK_RANGES));
            }
            c.insert("values".into(), strings(&values));
            ("remoteAddress", "IN_CIDR", 10)
        }
        _ => {
            c.insert("values".into(), strings(&["x"]));
            ("userId", "SOUNDS_LIKE", 10)
        }
    };
    c.insert("contextName".into(), json!(field));
    c.insert("operator".into(), json!(operator));
    if rng.chance(case_percent) {
        c.insert("caseInsensitive".into(), json!(true));
    }
    if rng.chance(20) {
        c.insert("inverted".into(), json!(true));
    }
    Value::Object(c)
}

fn gen_percentage(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "0".into(),
        1 | 2 => "100".into(),
        3 => "50".into(),
        _ => rng.range(0, 100).to_string(),
    }
}

fn gen_payload_object(rng: &mut Rng) -> Value {
    let (kind, value) = rng.pick(PAYLOADS);
    json!({"type": kind, "value": value})
}

/// Variant weights with a positive total (an all-zero list makes yggdrasil
/// panic when it draws a random number in `1..=0`).
fn gen_weights(rng: &mut Rng, n: usize) -> Vec<u64> {
    if rng.chance(30) {
        return vec![1000 / n as u64; n];
    }
    let mut weights: Vec<u64> = (0..n)
        .map(|_| {
            if rng.chance(10) {
                0
            } else {
                rng.range(1, 1000) as u64
            }
        })
        .collect();
    if weights.iter().all(|&w| w == 0) {
        weights[0] = 1000;
    }
    weights
}

fn gen_strategy_variants(rng: &mut Rng, stickiness: &str) -> Vec<Value> {
    let names = rng.subset(STRATEGY_VARIANT_NAMES, 1, 3);
    let weights = gen_weights(rng, names.len());
    names
        .iter()
        .zip(weights)
        .map(|(name, weight)| {
            let mut v = json!({"name": name, "weight": weight, "weightType": "variable"});
            // Both engines take strategy-variant stickiness from the
            // strategy's parameters; a different value here must not matter.
            let own = if rng.chance(80) {
                stickiness
            } else {
                rng.pick(STICKINESS)
            };
            v["stickiness"] = json!(own);
            if rng.chance(60) {
                v["payload"] = gen_payload_object(rng);
            }
            v
        })
        .collect()
}

fn gen_feature_variants(rng: &mut Rng) -> Vec<Value> {
    let names = rng.subset(VARIANT_NAMES, 1, 4);
    let weights = gen_weights(rng, names.len());
    let stickiness: Option<&str> = match rng.below(100) {
        0..=29 => None,
        30..=94 => Some(rng.pick(STICKINESS)),
        95..=97 => Some("random"),
        _ => Some(""),
    };
    names
        .iter()
        .zip(weights)
        .enumerate()
        .map(|(i, (name, weight))| {
            let mut v = json!({"name": name, "weight": weight, "weightType": "variable"});
            // Only the first variant's stickiness counts, in both engines.
            let own = if i > 0 && rng.chance(15) {
                Some(rng.pick(STICKINESS))
            } else {
                stickiness
            };
            if let Some(own) = own {
                v["stickiness"] = json!(own);
            }
            if rng.chance(60) {
                v["payload"] = gen_payload_object(rng);
            }
            if rng.chance(25) {
                let field = rng.pick(&["userId", "plan", "appName", "tenant"]);
                let values = rng.subset(pool(field), 1, 3);
                v["overrides"] = json!([{"contextName": field, "values": values}]);
            }
            v
        })
        .collect()
}

fn gen_strategy(rng: &mut Rng, segment_ids: &[i64], host: &str) -> Value {
    let mut params = Map::new();
    let mut param = |key: &str, value: String| {
        params.insert(key.into(), json!(value));
    };
    let name = match rng.below(100) {
        0..=16 => "default",
        17..=26 => {
            let ids = rng.subset(USER_IDS, 1, 4);
            let sep = if rng.chance(50) { ", " } else { "," };
            param("userIds", ids.join(sep));
            "userWithId"
        }
        27..=42 => {
            let name = rng.pick(&["gradualRolloutUserId", "gradualRolloutSessionId"]);
            param("percentage", gen_percentage(rng));
            if !rng.chance(3) {
                param("groupId", rng.pick(GROUPS).into());
            }
            name
        }
        43..=46 => {
            param("percentage", rng.pick(&["0", "100"]).into());
            "gradualRolloutRandom"
        }
        47..=77 => {
            param("rollout", gen_percentage(rng));
            match rng.below(100) {
                0..=24 => {}
                25..=94 => param("stickiness", rng.pick(STICKINESS).into()),
                95..=97 => param("stickiness", "random".into()),
                _ => param("stickiness", String::new()),
            }
            if rng.chance(60) {
                param("groupId", rng.pick(GROUPS).into());
            }
            "flexibleRollout"
        }
        78..=88 => {
            let mut entries = rng.subset(CIDRS, 1, 3);
            if rng.chance(12) {
                entries.push(rng.pick(ADDRESS_TEXT_ENTRIES));
            }
            if rng.chance(2) {
                entries.push(rng.pick(NETMASK_RANGES));
            }
            param("IPs", entries.join(", "));
            "remoteAddress"
        }
        89..=96 => {
            let mut names: Vec<String> = rng
                .subset(HOSTS, 1, 2)
                .iter()
                .map(|s| s.to_string())
                .collect();
            if rng.chance(3) {
                names.push(if rng.chance(50) {
                    host.to_uppercase()
                } else {
                    host.to_owned()
                });
            }
            param("hostNames", names.join(","));
            "applicationHostname"
        }
        _ => "myCustomStrategy",
    };
    let mut strategy = json!({"name": name, "parameters": params});
    let count = match rng.below(100) {
        0..=34 => 0,
        35..=69 => 1,
        70..=89 => 2,
        _ => 3,
    };
    strategy["constraints"] = Value::Array((0..count).map(|_| gen_constraint(rng)).collect());
    let mut segments: Vec<i64> = Vec::new();
    if !segment_ids.is_empty() && rng.chance(25) {
        segments = rng.subset(segment_ids, 1, 2);
    }
    if rng.chance(1) {
        segments.push(999);
    }
    if !segments.is_empty() {
        strategy["segments"] = json!(segments);
    }
    if rng.chance(30) {
        let stickiness = strategy["parameters"]
            .get("stickiness")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let stickiness = match stickiness {
            Some(s) => s,
            None if rng.chance(30) => {
                let s = rng.pick(STICKINESS);
                strategy["parameters"]["stickiness"] = json!(s);
                s.to_owned()
            }
            None => "default".to_owned(),
        };
        if name != "flexibleRollout" && rng.chance(30) {
            strategy["parameters"]["groupId"] = json!(rng.pick(GROUPS));
        }
        strategy["variants"] = Value::Array(gen_strategy_variants(rng, &stickiness));
    }
    strategy
}

fn gen_flag(rng: &mut Rng, index: usize, segment_ids: &[i64], host: &str) -> Value {
    let count = if rng.chance(10) { 0 } else { rng.range(1, 4) };
    let strategies: Vec<Value> = (0..count)
        .map(|_| gen_strategy(rng, segment_ids, host))
        .collect();
    let mut flag = json!({
        "name": format!("f{index}"),
        "type": "release",
        "project": "default",
        "enabled": rng.chance(85),
        "impressionData": false,
        "strategies": strategies,
    });
    if rng.chance(35) {
        flag["variants"] = Value::Array(gen_feature_variants(rng));
    }
    flag
}

/// Names of every variant a flag defines (feature and strategy level).
fn variant_names(flag: &Value) -> Vec<String> {
    let mut names: Vec<String> = list(flag, "variants")
        .iter()
        .chain(
            list(flag, "strategies")
                .iter()
                .flat_map(|s| list(s, "variants")),
        )
        .filter_map(|v| text(v, "name").map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Adds dependencies between the flags; rollouts of flags that end up as
/// parents mostly get a groupId, to keep
/// [`Exclusion::ParentRolloutHashedWithChildName`] rare.
fn add_dependencies(rng: &mut Rng, flags: &mut [Value]) {
    let n = flags.len();
    let mut parents = BTreeSet::new();
    for i in 1..n {
        if !rng.chance(35) {
            continue;
        }
        let mut deps = Vec::new();
        for _ in 0..rng.range(1, 2) {
            let parent = match rng.below(100) {
                0..=5 => None,
                6..=13 => Some((rng.below(n - 1) + i + 1) % n),
                _ => Some(rng.below(i)),
            };
            let name = parent.map_or("missing-parent".to_owned(), |j| format!("f{j}"));
            let mut dep = json!({"feature": name});
            let expected = match rng.below(100) {
                0..=59 => None,
                60..=84 => Some(true),
                _ => Some(false),
            };
            if let Some(e) = expected {
                dep["enabled"] = json!(e);
            }
            let names = parent.map(|j| variant_names(&flags[j])).unwrap_or_default();
            let no_variant = parent.is_none_or(|j| may_yield_no_variant(&flags[j]));
            let wants = match expected {
                Some(false) => rng.chance(20),
                _ if no_variant => rng.chance(8),
                _ => rng.chance(45),
            };
            if wants {
                let mut expected_names: Vec<String> = if names.is_empty() {
                    rng.subset(VARIANT_NAMES, 1, 2)
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                } else {
                    rng.subset(&names.iter().map(String::as_str).collect::<Vec<_>>(), 1, 2)
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                };
                if rng.chance(15) {
                    expected_names.push(rng.pick(&["disabled", "nope"]).to_owned());
                }
                dep["variants"] = json!(expected_names);
            }
            if let Some(j) = parent {
                parents.insert(j);
            }
            deps.push(dep);
        }
        flags[i]["dependencies"] = Value::Array(deps);
    }
    for j in parents {
        if let Some(strategies) = flags[j]["strategies"].as_array_mut() {
            for s in strategies {
                if s["name"] == "flexibleRollout"
                    && s["parameters"].get("groupId").is_none()
                    && rng.chance(80)
                {
                    s["parameters"]["groupId"] = json!("parent-group");
                }
            }
        }
    }
}

/// A generated payload and the names to ask about.
struct Generated {
    payload: Value,
    /// The random flags (asked `enabled?` and `variant`).
    main: Vec<String>,
    /// Probe flags and what each probes (asked `enabled?`).
    probes: Vec<(String, String)>,
}

const MAX_CONSTRAINT_PROBES: usize = 16;
const MAX_STRATEGY_PROBES: usize = 10;

fn gen_payload(rng: &mut Rng, host: &str) -> Generated {
    let segment_ids: Vec<i64> = (1..=rng.below(5) as i64).map(|k| k * 7).collect();
    let segments: Vec<Value> = segment_ids
        .iter()
        .map(|id| {
            let constraints: Vec<Value> =
                (0..rng.range(1, 3)).map(|_| gen_constraint(rng)).collect();
            json!({"id": id, "name": format!("segment-{id}"), "constraints": constraints})
        })
        .collect();
    let mut features: Vec<Value> = (0..rng.range(6, 14))
        .map(|i| gen_flag(rng, i, &segment_ids, host))
        .collect();
    add_dependencies(rng, &mut features);
    let main: Vec<String> = features
        .iter()
        .filter_map(|f| text(f, "name").map(str::to_owned))
        .collect();

    let mut probes = Vec::new();
    let constraints: Vec<Value> = segments
        .iter()
        .flat_map(|s| list(s, "constraints"))
        .chain(
            features
                .iter()
                .flat_map(|f| list(f, "strategies"))
                .flat_map(|s| list(s, "constraints")),
        )
        .take(MAX_CONSTRAINT_PROBES)
        .cloned()
        .collect();
    let strategies: Vec<Value> = features
        .iter()
        .flat_map(|f| list(f, "strategies"))
        .take(MAX_STRATEGY_PROBES)
        .map(|s| json!({"name": s["name"], "parameters": s["parameters"]}))
        .collect();
    for (k, c) in constraints.into_iter().enumerate() {
        let name = format!("probe-c{k}");
        let label = text(&c, "operator").unwrap_or("?").to_owned();
        features.push(json!({"name": name, "enabled": true, "strategies": [{"name": "default", "constraints": [c]}]}));
        probes.push((name, label));
    }
    for (k, s) in strategies.into_iter().enumerate() {
        let name = format!("probe-s{k}");
        let label = text(&s, "name").unwrap_or("?").to_owned();
        features.push(json!({"name": name, "enabled": true, "strategies": [s]}));
        probes.push((name, label));
    }
    Generated {
        payload: json!({"version": 2, "features": features, "segments": segments}),
        main,
        probes,
    }
}

// ---------------------------------------------------------------------------
// Detecting exclusions
// ---------------------------------------------------------------------------

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn param<'a>(strategy: &'a Value, key: &str) -> Option<&'a str> {
    strategy.get("parameters").and_then(|p| text(p, key))
}

fn flag_on(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Whether a flag can be on and still have no variant: no feature variants,
/// and no strategies or a strategy without variants.
fn may_yield_no_variant(flag: &Value) -> bool {
    let strategies = list(flag, "strategies");
    list(flag, "variants").is_empty()
        && (strategies.is_empty() || strategies.iter().any(|s| list(s, "variants").is_empty()))
}

/// A rollout percentage strictly between 0 and 100 (where hashing matters).
fn partial(percentage: Option<&str>) -> bool {
    percentage
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| (1..100).contains(&p))
}

/// Whether `entry` is an address or a prefix-length range (what forkflag
/// accepts as a network).
fn is_network(entry: &str) -> bool {
    let entry = entry.trim();
    let (addr, prefix) = match entry.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    let Ok(addr) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

/// What yggdrasil's rule grammar accepts as operands, and its parsers.
struct Grammar {
    number: Regex,
    date: Regex,
    semver: Regex,
    netmask: Regex,
}

impl Grammar {
    fn new() -> Grammar {
        let re = |p: &str| Regex::new(p).expect("test grammar pattern compiles");
        Grammar {
            number: re(r"^[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?$"),
            date: re(
                r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?(Z|[+-][0-9]{2}:[0-9]{2})$",
            ),
            semver: re(
                r"^[0-9]+\.[0-9]+\.[0-9]+(-[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)?(\+[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)?$",
            ),
            netmask: re(r"/[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$"),
        }
    }

    fn is_number(&self, v: &str) -> bool {
        self.number.is_match(v)
    }

    /// Operand of a DATE constraint: fine, read as a number, or rejected.
    fn date_operand(&self, v: &str) -> Option<Exclusion> {
        if self.date.is_match(v) {
            let parses = v.parse::<chrono::DateTime<chrono::Utc>>().is_ok();
            (!parses).then_some(Exclusion::Uncompilable)
        } else if self.is_number(v) {
            Some(Exclusion::OperandReadAsNumber)
        } else {
            Some(Exclusion::Uncompilable)
        }
    }

    /// Operand of a SEMVER constraint. A leading "v" makes yggdrasil's
    /// constraint always false, like forkflag's: not a difference.
    fn semver_operand(&self, v: &str) -> Option<Exclusion> {
        if v.starts_with('v') {
            None
        } else if self.semver.is_match(v) {
            let parses = semver::Version::parse(v).is_ok();
            (!parses).then_some(Exclusion::Uncompilable)
        } else if self.is_number(v) {
            Some(Exclusion::OperandReadAsNumber)
        } else {
            Some(Exclusion::Uncompilable)
        }
    }
}

/// Finds the exclusions a flag triggers for a context.
struct Analysis<'a> {
    flags: HashMap<&'a str, &'a Value>,
    segments: HashMap<i64, &'a Value>,
    grammar: &'a Grammar,
    host: &'a str,
}

impl<'a> Analysis<'a> {
    fn new(payload: &'a Value, grammar: &'a Grammar, host: &'a str) -> Analysis<'a> {
        Analysis {
            flags: list(payload, "features")
                .iter()
                .filter_map(|f| Some((text(f, "name")?, f)))
                .collect(),
            segments: list(payload, "segments")
                .iter()
                .filter_map(|s| Some((s.get("id")?.as_i64()?, s)))
                .collect(),
            grammar,
            host,
        }
    }

    /// Exclusions for asking `name` about `ctx`; `variant` selects the
    /// variant question (the enabled question ignores how variants are drawn).
    fn triggers(&self, name: &str, ctx: &Ctx, variant: bool) -> BTreeSet<Exclusion> {
        let mut out = BTreeSet::new();
        let Some(flag) = self.flags.get(name) else {
            return out;
        };
        if !flag_on(flag, "enabled") {
            return out; // both engines answer "off" before looking further
        }
        self.own(flag, ctx, variant, &mut out);
        for dep in list(flag, "dependencies") {
            let Some(parent) = text(dep, "feature").and_then(|p| self.flags.get(p)) else {
                continue;
            };
            if !list(parent, "dependencies").is_empty() {
                continue; // both engines refuse chains before evaluating
            }
            let expected = dep.get("enabled").and_then(Value::as_bool).unwrap_or(true);
            let wants_variants = !list(dep, "variants").is_empty();
            self.own(parent, ctx, wants_variants, &mut out);
            let ungrouped_rollout = list(parent, "strategies").iter().any(|s| {
                text(s, "name") == Some("flexibleRollout")
                    && param(s, "groupId").is_none()
                    && partial(param(s, "rollout"))
            });
            if ungrouped_rollout {
                out.insert(Exclusion::ParentRolloutHashedWithChildName);
            }
            if wants_variants
                && expected
                && flag_on(parent, "enabled")
                && may_yield_no_variant(parent)
            {
                out.insert(Exclusion::ParentWithoutVariants);
            }
            if wants_variants && !expected {
                out.insert(Exclusion::DisabledParentWithVariants);
            }
        }
        out
    }

    /// Whether yggdrasil should fail to compile this flag.
    fn predicts_compile_failure(&self, flag: &Value) -> bool {
        let mut out = BTreeSet::new();
        self.own(flag, &Ctx::default(), true, &mut out);
        out.iter().any(|e| e.fails_official_compile())
    }

    /// Exclusions triggered by the flag's own strategies and variants.
    fn own(&self, flag: &Value, ctx: &Ctx, variant: bool, out: &mut BTreeSet<Exclusion>) {
        for strategy in list(flag, "strategies") {
            self.strategy(strategy, ctx, out);
            for c in list(strategy, "constraints") {
                self.constraint(c, ctx, out);
            }
            for id in list(strategy, "segments") {
                match id.as_i64().and_then(|id| self.segments.get(&id)) {
                    Some(segment) => {
                        for c in list(segment, "constraints") {
                            self.constraint(c, ctx, out);
                        }
                    }
                    None => {
                        out.insert(Exclusion::MissingSegment);
                    }
                }
            }
            let variants = list(strategy, "variants");
            if variant && !variants.is_empty() {
                variant_draw(variants, param(strategy, "stickiness"), ctx, out);
            }
        }
        let variants = list(flag, "variants");
        if variant && !variants.is_empty() {
            variant_draw(variants, text(&variants[0], "stickiness"), ctx, out);
        }
    }

    fn strategy(&self, strategy: &Value, ctx: &Ctx, out: &mut BTreeSet<Exclusion>) {
        let no_default_id = ctx.get("userId").is_none() && ctx.get("sessionId").is_none();
        match text(strategy, "name").unwrap_or("") {
            "flexibleRollout" => {
                let stickiness = param(strategy, "stickiness");
                if stickiness == Some("") {
                    out.insert(Exclusion::EmptyStickiness);
                }
                let random = match stickiness {
                    Some("random") => true,
                    None | Some("default") => no_default_id,
                    Some(_) => false,
                };
                if random && partial(param(strategy, "rollout")) {
                    out.insert(Exclusion::RandomPath);
                }
            }
            "gradualRolloutRandom" if partial(param(strategy, "percentage")) => {
                out.insert(Exclusion::RandomPath);
            }
            "applicationHostname" => {
                let names = param(strategy, "hostNames").unwrap_or("");
                if names
                    .split(',')
                    .any(|n| n.trim().to_lowercase() == self.host)
                {
                    out.insert(Exclusion::HostnameOfThisMachine);
                }
            }
            "remoteAddress" => {
                let entries = param(strategy, "IPs").unwrap_or("");
                for entry in entries.split(',').map(str::trim) {
                    if self.grammar.netmask.is_match(entry) {
                        out.insert(Exclusion::NetmaskNotation);
                    } else if !entry.is_empty()
                        && !is_network(entry)
                        && ctx.get("remoteAddress").map(str::trim) == Some(entry)
                    {
                        out.insert(Exclusion::RemoteAddressTextEntry);
                    }
                }
            }
            _ => {}
        }
    }

    fn constraint(&self, c: &Value, ctx: &Ctx, out: &mut BTreeSet<Exclusion>) {
        let op = text(c, "operator").unwrap_or("");
        let field = text(c, "contextName").unwrap_or("");
        let values = list(c, "values");
        let value = text(c, "value").map(|v| v.trim_matches([' ', '\t']));
        let single_value =
            op.starts_with("NUM_") || op.starts_with("DATE_") || op.starts_with("SEMVER_");
        if single_value && value.is_none() {
            out.insert(Exclusion::Uncompilable);
            return;
        }
        let found = match op {
            "IN" | "NOT_IN" => None,
            "STR_CONTAINS" | "STR_STARTS_WITH" | "STR_ENDS_WITH" => {
                values.is_empty().then_some(Exclusion::Uncompilable)
            }
            "IN_CIDR" => {
                if values.is_empty() {
                    Some(Exclusion::Uncompilable)
                } else if values
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|v| self.grammar.netmask.is_match(v))
                {
                    Some(Exclusion::NetmaskNotation)
                } else {
                    None
                }
            }
            "NUM_EQ" | "NUM_GT" | "NUM_GTE" | "NUM_LT" | "NUM_LTE" => {
                let v = value.unwrap_or("");
                if !self.grammar.is_number(v) {
                    Some(Exclusion::Uncompilable)
                } else {
                    let operand = v.parse::<f64>().ok();
                    let actual = ctx.get(field).and_then(|a| a.parse::<f64>().ok());
                    match (op, operand, actual) {
                        ("NUM_EQ", Some(a), Some(b)) if a != b && (a - b).abs() < f64::EPSILON => {
                            Some(Exclusion::NumEqEpsilon)
                        }
                        _ => None,
                    }
                }
            }
            "DATE_AFTER" | "DATE_BEFORE" => self
                .grammar
                .date_operand(value.unwrap_or(""))
                .or_else(|| (field != "currentTime").then_some(Exclusion::DateOnOtherField)),
            "SEMVER_EQ" | "SEMVER_GT" | "SEMVER_GTE" | "SEMVER_LT" | "SEMVER_LTE" => {
                self.grammar.semver_operand(value.unwrap_or(""))
            }
            "REGEX" => match text(c, "value") {
                None => Some(Exclusion::RegexPatternOnlyInValues),
                Some(pattern) => {
                    let compiles = regex::RegexBuilder::new(pattern)
                        .case_insensitive(flag_on(c, "caseInsensitive"))
                        .build()
                        .is_ok();
                    (!compiles && flag_on(c, "inverted")).then_some(Exclusion::InvertedInvalidRegex)
                }
            },
            _ => Some(Exclusion::Uncompilable),
        };
        out.extend(found);
    }
}

/// Exclusions from drawing a variant out of `variants` with `stickiness`.
fn variant_draw(
    variants: &[Value],
    stickiness: Option<&str>,
    ctx: &Ctx,
    out: &mut BTreeSet<Exclusion>,
) {
    if stickiness == Some("") {
        out.insert(Exclusion::EmptyStickiness);
    }
    let weighted = variants
        .iter()
        .filter(|v| v.get("weight").and_then(Value::as_u64).unwrap_or(0) > 0)
        .count();
    let seed = match stickiness {
        None | Some("default") => ctx.get("userId").or(ctx.get("sessionId")),
        Some("random") => None,
        Some(field) => ctx.get(field),
    };
    if weighted >= 2 && seed.is_none() {
        out.insert(Exclusion::RandomPath);
    }
}

// ---------------------------------------------------------------------------
// Asking both engines
// ---------------------------------------------------------------------------

/// A variant answer in a form both engines map to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VariantAnswer {
    name: String,
    enabled: bool,
    feature_enabled: bool,
    payload: Option<(String, String)>,
}

fn forkflag_variant(snapshot: &Snapshot, name: &str, ctx: &OwnedContext) -> VariantAnswer {
    match snapshot.check_variant(name.as_bytes(), ctx, 0) {
        Some((choice, _)) => VariantAnswer {
            name: choice.name().to_owned(),
            enabled: choice.enabled(),
            feature_enabled: choice.feature_enabled,
            payload: choice
                .variant
                .and_then(|v| v.payload())
                .map(|p| (p.payload_type.to_string(), p.value.to_string())),
        },
        None => VariantAnswer {
            name: "disabled".into(),
            enabled: false,
            feature_enabled: false,
            payload: None,
        },
    }
}

/// The variant an explanation gives, in the same form.
fn explained_variant(snapshot: &Snapshot, name: &str, ctx: &OwnedContext) -> VariantAnswer {
    let explanation = snapshot.explain(name, ctx);
    let feature_enabled = explanation.enabled;
    let variant = explanation.variant;
    VariantAnswer {
        name: variant.map_or("disabled", |v| v.name()).to_owned(),
        enabled: variant.is_some(),
        feature_enabled,
        payload: variant
            .and_then(|v| v.payload())
            .map(|p| (p.payload_type.to_string(), p.value.to_string())),
    }
}

fn official_variant(engine: &EngineState, name: &str, ctx: &OfficialContext) -> VariantAnswer {
    let v = engine.get_variant(name, ctx, &None);
    VariantAnswer {
        name: v.name,
        enabled: v.enabled,
        feature_enabled: v.feature_enabled,
        payload: v.payload.map(|p| (p.payload_type, p.value)),
    }
}

// ---------------------------------------------------------------------------
// Bookkeeping
// ---------------------------------------------------------------------------

/// Counts for one run.
#[derive(Default)]
struct Stats {
    payloads: u64,
    contexts: u64,
    enabled_compared: u64,
    enabled_true: u64,
    variant_compared: u64,
    variant_feature_enabled: u64,
    variant_real: u64,
    excluded_enabled: u64,
    excluded_variant: u64,
    /// Compared cases whose explanation was checked against the answer.
    explained: u64,
    /// Per exclusion: cases filtered, and how many of those really differed.
    exclusions: BTreeMap<Exclusion, (u64, u64)>,
    /// Per probe label: cases compared, and how many answered true.
    probes: BTreeMap<String, (u64, u64)>,
    mismatch_count: u64,
    mismatches: Vec<String>,
}

impl Stats {
    fn exclude(&mut self, found: &BTreeSet<Exclusion>, differed: bool) {
        for &e in found {
            let entry = self.exclusions.entry(e).or_default();
            entry.0 += 1;
            entry.1 += u64::from(differed);
        }
    }

    fn mismatch(&mut self, report: impl FnOnce() -> String) {
        self.mismatch_count += 1;
        if self.mismatches.len() < MISMATCHES_SHOWN {
            self.mismatches.push(report());
        }
    }

    fn print(&self, seed: u64, elapsed: f64) {
        let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
        println!("differential summary (FORKFLAG_DIFF_SEED={seed}):");
        println!(
            "  {} payloads x {CONTEXTS_PER_PAYLOAD} contexts = {} contexts, {elapsed:.2} s",
            self.payloads, self.contexts
        );
        println!(
            "  enabled: {} compared ({:.1}% true), {} excluded",
            self.enabled_compared,
            pct(self.enabled_true, self.enabled_compared),
            self.excluded_enabled
        );
        println!(
            "  variant: {} compared ({:.1}% feature enabled, {:.1}% a real variant), {} excluded",
            self.variant_compared,
            pct(self.variant_feature_enabled, self.variant_compared),
            pct(self.variant_real, self.variant_compared),
            self.excluded_variant
        );
        println!(
            "  explanations: {} compared with forkflag's own answers",
            self.explained
        );
        println!("  probes (compared, % true):");
        for (label, (n, t)) in &self.probes {
            println!("    {label:<26} {n:>7} {:>6.1}%", pct(*t, *n));
        }
        println!("  exclusions (cases filtered, of which differed):");
        for e in Exclusion::ALL {
            let (n, d) = self.exclusions.get(&e).copied().unwrap_or_default();
            println!("    {:<34} {n:>7} {d:>7}", format!("{e:?}"));
        }
        println!("  mismatches: {}", self.mismatch_count);
    }
}

/// The flag, its parents and the segments: enough to reproduce a case.
fn excerpt(payload: &Value, name: &str) -> Value {
    let features = list(payload, "features");
    let find = |n: &str| features.iter().find(|f| text(f, "name") == Some(n));
    let mut flags: Vec<Value> = find(name).into_iter().cloned().collect();
    if let Some(flag) = find(name) {
        for dep in list(flag, "dependencies") {
            flags.extend(text(dep, "feature").and_then(find).cloned());
        }
    }
    json!({"version": 2, "features": flags, "segments": payload["segments"]})
}

/// One payload of a run, for reporting.
struct Where<'a> {
    seed: u64,
    index: u64,
    payload: &'a Value,
}

impl Where<'_> {
    fn report(
        &self,
        what: &str,
        name: &str,
        ctx: &Ctx,
        ours: &dyn std::fmt::Debug,
        theirs: &dyn std::fmt::Debug,
    ) -> String {
        format!(
            "{what} of {name:?} differs (FORKFLAG_DIFF_SEED={} payload #{})\n  forkflag:  {ours:?}\n  yggdrasil: {theirs:?}\n  context: {}\n  payload excerpt: {}",
            self.seed,
            self.index,
            ctx.to_json(),
            excerpt(self.payload, name)
        )
    }
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

fn run_payload(seed: u64, index: u64, grammar: &Grammar, host: &str, stats: &mut Stats) {
    let mut rng = Rng(payload_seed(seed, index));
    let generated = gen_payload(&mut rng, host);
    let bytes = serde_json::to_vec(&generated.payload).expect("payload serializes");
    let at = Where {
        seed,
        index,
        payload: &generated.payload,
    };

    let ours = Engine::new();
    ours.update_json(&bytes, None)
        .unwrap_or_else(|e| panic!("forkflag rejected payload #{index} (seed {seed}): {e}"));
    let snapshot = ours.snapshot();
    let theirs = EngineState::default();
    let features: ClientFeatures = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("yggdrasil rejected payload #{index} (seed {seed}): {e}"));
    let warned: BTreeSet<String> = theirs
        .take_state(UpdateMessage::FullResponse(features))
        .unwrap_or_default()
        .into_iter()
        .map(|w| w.toggle_name)
        .collect();

    let analysis = Analysis::new(&generated.payload, grammar, host);
    for flag in list(&generated.payload, "features") {
        let name = text(flag, "name").unwrap_or("");
        let predicted = analysis.predicts_compile_failure(flag);
        if predicted != warned.contains(name) {
            stats.mismatch(|| {
                format!(
                    "yggdrasil {} flag {name:?} but the exclusions predicted {} \
                     (FORKFLAG_DIFF_SEED={seed} payload #{index})\n  payload excerpt: {}",
                    if predicted {
                        "compiled"
                    } else {
                        "could not compile"
                    },
                    if predicted { "a failure" } else { "success" },
                    excerpt(&generated.payload, name)
                )
            });
        }
    }

    let probe_labels: HashMap<&str, &str> = generated
        .probes
        .iter()
        .map(|(n, l)| (n.as_str(), l.as_str()))
        .collect();
    let enabled_names: Vec<&str> = generated
        .main
        .iter()
        .chain(generated.probes.iter().map(|(n, _)| n))
        .map(String::as_str)
        .chain([UNKNOWN_FLAG])
        .collect();
    let variant_names: Vec<&str> = generated
        .main
        .iter()
        .map(String::as_str)
        .chain([UNKNOWN_FLAG])
        .collect();

    for _ in 0..CONTEXTS_PER_PAYLOAD {
        let ctx = gen_context(&mut rng);
        let owned = ctx.forkflag();
        let official = ctx.official();
        stats.contexts += 1;
        for &name in &enabled_names {
            let found = analysis.triggers(name, &ctx, false);
            let a = snapshot
                .check(name.as_bytes(), &owned, 0)
                .is_some_and(|(on, _)| on);
            let b = theirs.is_enabled(name, &official, &None);
            if !found.is_empty() {
                stats.excluded_enabled += 1;
                stats.exclude(&found, a != b);
                continue;
            }
            stats.enabled_compared += 1;
            stats.enabled_true += u64::from(a);
            let explained = snapshot.explain(name, &owned).enabled;
            stats.explained += 1;
            if explained != a {
                stats.mismatch(|| at.report("explain (enabled)", name, &ctx, &explained, &a));
            }
            if let Some(label) = probe_labels.get(name) {
                let entry = stats.probes.entry(label.to_string()).or_default();
                entry.0 += 1;
                entry.1 += u64::from(a);
            }
            if a != b {
                stats.mismatch(|| at.report("enabled", name, &ctx, &a, &b));
            }
        }
        for &name in &variant_names {
            let found = analysis.triggers(name, &ctx, true);
            let a = forkflag_variant(&snapshot, name, &owned);
            let b = official_variant(&theirs, name, &official);
            if !found.is_empty() {
                stats.excluded_variant += 1;
                stats.exclude(&found, a != b);
                continue;
            }
            stats.variant_compared += 1;
            stats.variant_feature_enabled += u64::from(a.feature_enabled);
            let explained = explained_variant(&snapshot, name, &owned);
            stats.explained += 1;
            if explained != a {
                stats.mismatch(|| at.report("explain (variant)", name, &ctx, &explained, &a));
            }
            stats.variant_real += u64::from(a.enabled);
            if a != b {
                stats.mismatch(|| at.report("variant", name, &ctx, &a, &b));
            }
        }
    }
    stats.payloads += 1;
}

#[test]
fn forkflag_agrees_with_the_official_engine() {
    let seed = run_seed();
    println!("differential: seed {seed} (replay with FORKFLAG_DIFF_SEED={seed})");
    let target: u64 = std::env::var("FORKFLAG_DIFF_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let grammar = Grammar::new();
    let host = forkflag_core::process::host_name().to_owned();
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut index = 0;
    while (stats.enabled_compared < target || stats.variant_compared < target)
        && index < 100 * target
    {
        run_payload(seed, index, &grammar, &host, &mut stats);
        index += 1;
    }
    stats.print(seed, started.elapsed().as_secs_f64());

    assert!(
        stats.mismatches.is_empty(),
        "{} mismatches between forkflag and yggdrasil (seed {seed}); the first ones:\n\n{}",
        stats.mismatch_count,
        stats.mismatches.join("\n\n")
    );
    assert!(stats.enabled_compared >= target && stats.variant_compared >= target);
    let true_share = stats.enabled_true as f64 / stats.enabled_compared as f64;
    assert!(
        (0.2..=0.8).contains(&true_share),
        "the generator should make flags answer both ways; {:.1}% were true",
        100.0 * true_share
    );
    for op in operators::OPERATORS {
        let (n, t) = stats.probes.get(op).copied().unwrap_or_default();
        assert!(
            n > 0 && t > 0 && t < n,
            "operator {op} was compared {n} times and held {t} times; it should answer both ways"
        );
    }
}
