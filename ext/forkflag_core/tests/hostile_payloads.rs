//! Hostile client-features payloads, tried systematically against
//! `Engine::update_json` and the evaluations that follow.
//!
//! Inputs are mostly mutations of valid payloads (every state of the Unleash
//! client specification, the examples' flags, and dependency and segment
//! shapes written in tests/fuzz/corpus.rs): fields given values of the wrong
//! type, out-of-range numbers, strings with NULs and odd Unicode, invalid
//! UTF-8, deep nesting, huge arrays, duplicate and missing keys, every
//! operator with garbage operands, pathological regexes, dependency cycles,
//! missing segments, variant weights past `u32`, then bytes flipped, cut,
//! inserted and repeated. Some inputs are random JSON documents. For each,
//! the properties of tests/fuzz/check.rs must hold: no panic, peak heap
//! growth under `64 × input + 8 MiB` (plus the 32 MiB the regexes of a
//! snapshot may take), a rejected payload never replaces the good one, an
//! accepted one evaluates random contexts without panicking or outgrowing
//! its regexes' budget, and compiles to the same answers twice.
//!
//! The cases come from proptest with a fixed seed and run for a fixed time
//! (CI runs it as part of `cargo test --release -p forkflag_core`):
//!
//! - `FORKFLAG_FUZZ_SECONDS` (default 45): how long the random cases run;
//! - `FORKFLAG_FUZZ_SEED` (decimal or `0x` hex; default 19): the seed, or
//!   `random` for one taken from the clock (it is printed);
//! - `FORKFLAG_FUZZ_REPLAY=<file>`: tries that file's bytes over every
//!   corpus payload instead.
//!
//! A failure is shrunk by proptest to the fewest mutations that still fail;
//! the message gives the seed, the property broken, and the path of a file
//! holding the offending input (for `FORKFLAG_FUZZ_REPLAY`). A run prints
//! how many payloads it tried, by class.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::{json, Value};

mod fuzz;
#[path = "support/operators.rs"]
mod operators;
#[path = "support/specification.rs"]
mod specification;
mod support;

use fuzz::check::{check, Outcome, RUNAWAY_PATH};
use fuzz::contexts::{contexts, strings_of, Rng};
use fuzz::json::{raw, to_bytes};
use fuzz::mutate::Case;

/// Seconds the random cases run by default.
const DEFAULT_SECONDS: u64 = 45;
/// Seed used by default, so CI runs are reproducible.
const DEFAULT_SEED: u64 = 19;
/// Largest input tried: the client's default `max_payload_bytes`.
const MAX_INPUT: usize = 64 << 20;
/// Contexts evaluated per accepted input.
const CONTEXTS: usize = 8;

fn seed() -> u64 {
    match std::env::var("FORKFLAG_FUZZ_SEED") {
        Err(_) => DEFAULT_SEED,
        Ok(text) if text == "random" => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(DEFAULT_SEED),
        Ok(text) => match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        }
        .unwrap_or_else(|e| panic!("FORKFLAG_FUZZ_SEED={text:?} is not a number: {e}")),
    }
}

fn seconds() -> u64 {
    std::env::var("FORKFLAG_FUZZ_SECONDS").map_or(DEFAULT_SECONDS, |text| {
        text.parse()
            .unwrap_or_else(|e| panic!("FORKFLAG_FUZZ_SECONDS={text:?} is not a number: {e}"))
    })
}

/// Where failing inputs are written.
fn failure_dir() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    std::fs::create_dir_all(&dir).expect("the failures folder can be made");
    dir
}

/// What a run tried.
#[derive(Default)]
struct Stats {
    inputs: u64,
    /// Inputs over [`MAX_INPUT`], not tried.
    skipped: u64,
    accepted: u64,
    bytes: u64,
    largest: usize,
    evaluations: u64,
    warnings: u64,
    /// Highest heap growth per input byte, for inputs of 64 KiB or more,
    /// and that input's length and classes.
    worst_ratio: (f64, usize, Vec<&'static str>),
    /// Highest heap growth of an input under 64 KiB.
    worst_small: usize,
    longest_error: usize,
    classes: BTreeMap<&'static str, u64>,
    /// The slowest input: seconds, bytes, classes.
    slowest: (f64, usize, Vec<&'static str>),
    /// The slowest input itself (random cases only).
    slowest_input: Vec<u8>,
}

impl Stats {
    fn record(&mut self, classes: &[&'static str], input: &[u8], outcome: &Outcome, took: f64) {
        if took > self.slowest.0 {
            self.slowest = (took, input.len(), classes.to_vec());
        }
        self.inputs += 1;
        self.accepted += u64::from(outcome.accepted);
        self.bytes += input.len() as u64;
        self.largest = self.largest.max(input.len());
        self.evaluations += outcome.evaluations;
        self.warnings += outcome.warnings as u64;
        self.longest_error = self.longest_error.max(outcome.error_len);
        if input.len() >= 64 << 10 {
            let ratio = outcome.growth as f64 / input.len() as f64;
            if ratio > self.worst_ratio.0 {
                self.worst_ratio = (ratio, input.len(), classes.to_vec());
            }
        } else {
            self.worst_small = self.worst_small.max(outcome.growth);
        }
        for class in classes {
            *self.classes.entry(class).or_default() += 1;
        }
    }

    fn print(&self, title: &str, elapsed: Duration) {
        println!(
            "{title}: {} inputs in {:.1} s ({} accepted, {} rejected), {:.1} MiB in all, \
             the largest {} bytes; {} evaluations, {} warnings; heap growth at most {:.1} \
             bytes per input byte (inputs of 64 KiB or more), {} bytes (smaller inputs); \
             longest error {} bytes; {} inputs over 64 MiB not tried",
            self.inputs,
            elapsed.as_secs_f64(),
            self.accepted,
            self.inputs - self.accepted,
            self.bytes as f64 / f64::from(1 << 20),
            self.largest,
            self.evaluations,
            self.warnings,
            self.worst_ratio.0,
            self.worst_small,
            self.longest_error,
            self.skipped,
        );
        println!(
            "  the most heap per byte: {} bytes: {:?}",
            self.worst_ratio.1, self.worst_ratio.2
        );
        println!(
            "  the slowest input: {:.3} s, {} bytes: {:?}",
            self.slowest.0, self.slowest.1, self.slowest.2
        );
        for (class, n) in &self.classes {
            println!("  {n:>8}  {class}");
        }
    }
}

/// The corpus documents and each one's bytes.
fn corpus() -> (Vec<String>, Vec<Value>, Vec<Vec<u8>>) {
    let docs = fuzz::corpus::load();
    let names = docs.iter().map(|d| d.name.clone()).collect();
    let values: Vec<Value> = docs.into_iter().map(|d| d.value).collect();
    let bytes = values.iter().map(to_bytes).collect();
    (names, values, bytes)
}

/// Tries one input over one base; the outcome or the broken property.
fn try_input(base: &[u8], input: &[u8], doc: Option<&Value>, seed: u64) -> Result<Outcome, String> {
    let strings = doc.map(strings_of).unwrap_or_default();
    check(base, input, &contexts(seed, &strings, CONTEXTS))
}

fn replay(path: &str) {
    let input = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let (names, _, bases) = corpus();
    let doc: Option<Value> = serde_json::from_slice(&input).ok();
    let mut failures = Vec::new();
    for (name, base) in names.iter().zip(&bases) {
        match try_input(base, &input, doc.as_ref(), seed()) {
            Ok(o) => println!(
                "over {name}: accepted {}, heap growth {}",
                o.accepted, o.growth
            ),
            Err(e) => failures.push(format!("over {name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{path}:\n{}", failures.join("\n"));
}

#[test]
fn hostile_payloads_never_panic_overgrow_or_replace_a_good_configuration() {
    if let Ok(path) = std::env::var("FORKFLAG_FUZZ_REPLAY") {
        return replay(&path);
    }
    let seed = seed();
    let budget = Duration::from_secs(seconds());
    let dir = failure_dir();
    RUNAWAY_PATH.get_or_init(|| dir.join(format!("seed-{seed}-runaway.json")));
    println!("hostile payloads: seed {seed}, {} s", budget.as_secs());
    let (names, docs, bases) = corpus();
    for (name, base) in names.iter().zip(&bases) {
        check(base, base, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    let mut seed_bytes = [0u8; 32];
    let mut rng = Rng::new(seed);
    for chunk in seed_bytes.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    let config = Config {
        cases: 16,
        failure_persistence: None,
        max_shrink_iters: 4096,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    // A runner runs `cases` cases once; each batch gets a fresh one whose
    // generator comes from the seeded one's.
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut seeded = TestRunner::new_with_rng(config.clone(), rng);
    let strategy = fuzz::mutate::case(docs.len());
    let stats = RefCell::new(Stats::default());
    let started = Instant::now();
    while started.elapsed() < budget {
        let mut runner = TestRunner::new_with_rng(config.clone(), seeded.new_rng());
        let result = runner.run(&strategy, |case: Case| {
            let began = Instant::now();
            let (input, doc) = case.build(&docs);
            if input.len() > MAX_INPUT {
                // The client refuses such a payload before it is parsed.
                stats.borrow_mut().skipped += 1;
                return Ok(());
            }
            let outcome = try_input(&bases[case.base()], &input, Some(&doc), case.contexts)
                .map_err(TestCaseError::fail)?;
            let took = began.elapsed().as_secs_f64();
            let mut stats = stats.borrow_mut();
            if took > stats.slowest.0 {
                stats.slowest_input = input.clone();
            }
            stats.record(&case.classes(), &input, &outcome, took);
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, case)) => {
                let (input, _) = case.build(&docs);
                let path = dir.join(format!("seed-{seed}-{}.json", stats.borrow().inputs));
                std::fs::write(&path, &input).expect("the failing input can be written");
                panic!(
                    "seed {seed}: {reason}\n  over the corpus payload {}\n  input ({} bytes) in {}\n  \
                     case: {case:?}\n  replay: FORKFLAG_FUZZ_REPLAY={} cargo test --release -p \
                     forkflag_core --test hostile_payloads",
                    names[case.base()],
                    input.len(),
                    path.display(),
                    path.display()
                );
            }
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
    let stats = stats.into_inner();
    stats.print(
        &format!("hostile payloads (seed {seed})"),
        started.elapsed(),
    );
    let slowest = dir.join(format!("seed-{seed}-slowest.json"));
    if std::fs::write(&slowest, &stats.slowest_input).is_ok() {
        println!("  the slowest input is in {}", slowest.display());
    }
}

#[test]
fn regexes_keep_their_match_caches_within_the_budget() {
    // 200 flags, each with a short pattern whose lazy DFA has a state for
    // every string of a and b it has seen, evaluated on this thread for
    // 1,000 random strings: their caches took 828 MB here before they were
    // sized by the regex and counted in the budget.
    use forkflag_core::compile::REGEX_MEMORY_BUDGET;
    use forkflag_core::{Engine, OwnedContext};
    let flags: Vec<Value> = (0..200)
        .map(|i| {
            json!({"name": format!("f{i}"), "enabled": true, "strategies": [{"name": "default",
                "constraints": [{"contextName": "p", "operator": "REGEX",
                                 "value": format!("(a|b)*a(a|b){{14}}x{i}")}]}]})
        })
        .collect();
    let engine = Engine::new();
    let outcome = engine
        .update_json(json!({"features": flags}).to_string().as_bytes(), None)
        .unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let snapshot = engine.snapshot();
    let names: Vec<String> = (0..200).map(|i| format!("f{i}")).collect();
    let mut rng = Rng::new(1);
    let baseline = support::start_peak();
    for _ in 0..1000 {
        let text: String = (0..40)
            .map(|_| if rng.next() & 1 == 0 { 'a' } else { 'b' })
            .collect();
        let mut ctx = OwnedContext::default();
        ctx.properties.insert("p".into(), text);
        for name in &names {
            snapshot.check(name.as_bytes(), &ctx, 0);
        }
    }
    let growth = support::peak_growth(baseline);
    println!("200 regexes, 1,000 contexts: evaluation grew the heap by {growth} bytes");
    assert!(growth <= REGEX_MEMORY_BUDGET, "{growth} bytes");
}

/// Values of every JSON type, and some that are not JSON.
fn every_type() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(4294967296u64),
        json!(""),
        json!("x"),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({"a": 1}),
        raw(b"1e400"),
        raw(b"-0"),
        raw(b"\"\xff\""),
        raw(b"\"a\\u0000b\""),
    ]
}

/// Every member's path in a document, one per shape (`features[0].name`
/// for all the flags' names), with the path serde names in errors.
fn member_paths(doc: &Value) -> Vec<(Vec<PathStep>, String)> {
    fn walk(
        v: &Value,
        path: &mut Vec<PathStep>,
        shape: &mut Vec<String>,
        seen: &mut BTreeMap<String, ()>,
        out: &mut Vec<(Vec<PathStep>, String)>,
    ) {
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(PathStep::At(i));
                    shape.push("[]".into());
                    walk(item, path, shape, seen, out);
                    shape.pop();
                    path.pop();
                }
            }
            Value::Object(members) => {
                for (k, item) in members {
                    path.push(PathStep::Key(k.clone()));
                    shape.push(format!(".{k}"));
                    if seen.insert(shape.concat(), ()).is_none() {
                        out.push((path.clone(), serde_path(path)));
                    }
                    walk(item, path, shape, seen, out);
                    shape.pop();
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(
        doc,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut BTreeMap::new(),
        &mut out,
    );
    out
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    At(usize),
}

fn serde_path(path: &[PathStep]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            PathStep::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathStep::At(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[test]
fn every_field_of_the_wire_model_with_every_type() {
    // Every member of every corpus document (one per shape), replaced by a
    // value of every JSON type and a few that are not JSON. A rejection
    // must name the member's path.
    let (names, docs, bases) = corpus();
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    for ((name, doc), base) in names.iter().zip(&docs).zip(&bases) {
        for (path, serde_path) in member_paths(doc) {
            for (k, value) in every_type().into_iter().enumerate() {
                let mut mutated = doc.clone();
                let mut slot = &mut mutated;
                for step in &path {
                    slot = match step {
                        PathStep::Key(key) => &mut slot[key.as_str()],
                        PathStep::At(i) => &mut slot[*i],
                    };
                }
                *slot = value;
                let input = to_bytes(&mutated);
                let began = Instant::now();
                match try_input(base, &input, Some(&mutated), k as u64) {
                    Ok(outcome) => {
                        let class = if outcome.accepted {
                            "accepted"
                        } else {
                            "rejected"
                        };
                        let took = began.elapsed().as_secs_f64();
                        stats.record(&[class], &input, &outcome, took);
                    }
                    Err(e) => failures.push(format!("{name}, {serde_path} = value {k}: {e}")),
                }
                if let Err(e) = forkflag_core::Engine::new().update_json(&input, None) {
                    let e = e.to_string();
                    if !e.contains(&serde_path) && !e.contains("not valid JSON") {
                        failures.push(format!(
                            "{name}, {serde_path} = value {k}: the error does not name the path: {e}"
                        ));
                    }
                }
            }
        }
    }
    stats.print("every field with every type", started.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
