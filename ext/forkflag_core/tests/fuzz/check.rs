//! The properties every input must keep.
//!
//! 1. `Engine::update_json` never panics.
//! 2. Its peak heap growth stays under [`bound`] of the input's length
//!    (64 bytes a byte, plus 8 MiB, plus the regexes' budget).
//! 3. A rejected payload leaves the engine's snapshot the same object,
//!    answering as before, and its ETag unset; its error is not empty and
//!    stays short.
//! 4. An accepted payload evaluates every flag (and a missing one) for
//!    random contexts through `check` and `check_variant`, reads its
//!    metadata and counts without panicking or growing the heap past its
//!    regexes' budget (for it and its twin) and 8 MiB, and a second engine
//!    compiling the same bytes reports the same outcome and gives the same
//!    answers.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Once};

use forkflag_core::compile::REGEX_MEMORY_BUDGET;
use forkflag_core::snapshot::tag_for;
use forkflag_core::{Engine, OwnedContext, Snapshot, UpdateOutcome};

use crate::support::{arm_ceiling, disarm_ceiling, peak_growth, start_peak};

/// Heap an update may take per byte of input.
pub const BYTES_PER_INPUT_BYTE: usize = 64;
/// Heap an update may take whatever its input.
pub const CONSTANT_BYTES: usize = 8 << 20;
/// The ETag every input comes with (the base payloads come without one).
const INPUT_ETAG: &str = "\"input\"";
/// Longest error message accepted for a rejected payload.
pub const MAX_ERROR_LEN: usize = 2048;
/// Flags evaluated per input (the first ones by name, and a missing one).
const NAMES_EVALUATED: usize = 64;
/// Repetitions that tell a random answer from a different one: a random
/// answer repeats itself this many times, on both sides, with a
/// probability of at most 4^-64.
const CONFIRMATIONS: usize = 64;

/// The most an update's peak heap may grow for an input of `len` bytes:
/// a factor of the input and a constant, plus what the snapshot's compiled
/// regexes may hold (a budget of their own, whatever the input's length).
pub fn bound(len: usize) -> usize {
    BYTES_PER_INPUT_BYTE * len + CONSTANT_BYTES + REGEX_MEMORY_BUDGET
}

/// What an input did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub accepted: bool,
    pub growth: usize,
    pub error_len: usize,
    pub warnings: usize,
    pub evaluations: u64,
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
    /// The input being tried, for the ceiling handler.
    static INPUT: Cell<(*const u8, usize)> = const { Cell::new((std::ptr::null(), 0)) };
}

/// Where the ceiling handler writes the input it caught.
pub static RUNAWAY_PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

fn on_ceiling(growth: usize) {
    let (ptr, len) = INPUT.with(Cell::get);
    if ptr.is_null() {
        return;
    }
    // SAFETY: `INPUT` holds the input slice only while `guarded` runs with
    // it borrowed, on this thread; the handler runs inside that call.
    let input = unsafe { std::slice::from_raw_parts(ptr, len) };
    let path = RUNAWAY_PATH
        .get()
        .cloned()
        .unwrap_or_else(|| std::env::temp_dir().join("forkflag-fuzz-runaway.json"));
    let written = std::fs::write(&path, input).is_ok();
    // Straight to stderr: the test harness's capture is lost at the abort.
    let _ = writeln!(
        std::io::stderr(),
        "an update of a {len}-byte input grew the heap {growth} bytes past its ceiling; \
         the input {} {}",
        if written {
            "is in"
        } else {
            "could not be written to"
        },
        path.display()
    );
}

/// Runs `f` with panics caught and not printed; a panic comes back as its
/// message and location.
pub fn quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = info.to_string());
            } else {
                default(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|_| LAST_PANIC.with(|p| p.borrow().clone()))
}

/// One flag's answers for one context.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    enabled: Option<bool>,
    variant: Option<VariantAnswer>,
}

/// A variant's name, enabled, feature_enabled and payload (type, value).
type VariantAnswer = (String, bool, bool, Option<(String, String)>);

fn answer(snapshot: &Snapshot, name: &[u8], ctx: &OwnedContext) -> Answer {
    let tag = tag_for(0);
    Answer {
        enabled: snapshot.check(name, ctx, tag).map(|(on, _)| on),
        variant: snapshot.check_variant(name, ctx, tag).map(|(c, _)| {
            (
                c.name().to_string(),
                c.enabled(),
                c.feature_enabled,
                c.variant
                    .and_then(|v| v.payload())
                    .map(|p| (p.payload_type.to_string(), p.value.to_string())),
            )
        }),
    }
}

/// The names evaluated: the first ones, and one no payload has.
fn names_of(snapshot: &Snapshot) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = snapshot
        .names()
        .into_iter()
        .take(NAMES_EVALUATED)
        .map(|n| n.as_bytes().to_vec())
        .collect();
    names.push(b"no-such-flag \xff".to_vec());
    names
}

/// Whether two snapshots answer alike for every name and context, telling
/// random answers (rollouts without a stickiness value) from real
/// differences; the first difference otherwise.
fn same_answers(
    a: &Snapshot,
    b: &Snapshot,
    names: &[Vec<u8>],
    contexts: &[OwnedContext],
) -> Result<u64, String> {
    let mut evaluations = 0;
    for name in names {
        for ctx in contexts {
            let (x, y) = (answer(a, name, ctx), answer(b, name, ctx));
            evaluations += 4;
            if x == y {
                continue;
            }
            let random = (0..CONFIRMATIONS).any(|_| {
                evaluations += 4;
                answer(a, name, ctx) != x || answer(b, name, ctx) != y
            });
            if !random {
                return Err(format!(
                    "flag {:?} answers {x:?} in one and {y:?} in the other, every time, for {ctx:?}",
                    String::from_utf8_lossy(name)
                ));
            }
        }
    }
    Ok(evaluations)
}

/// Reads what the binding reads of every flag, and the counts.
fn read_everything(engine: &Engine, snapshot: &Snapshot) -> u64 {
    let mut reads = 0;
    for flag in snapshot.flags() {
        let name = snapshot.flag_name(flag);
        let index = snapshot.index_of(name.as_bytes());
        assert!(index.is_some(), "flag {name:?} is listed but not found");
        let _ = (snapshot.flag_project(flag), snapshot.flag_type(flag));
        let _ = (flag.is_switched_on(), flag.impression_data());
        reads += 1;
    }
    let tally = engine.take_tally(tag_for(0));
    serde_json::to_string(&tally.toggles).expect("the counts serialize");
    reads
}

/// Updates with `input` under a measured, ceilinged heap; panics caught.
fn guarded(
    engine: &Engine,
    input: &[u8],
) -> (Result<Result<UpdateOutcome, String>, String>, usize) {
    INPUT.with(|i| i.set((input.as_ptr(), input.len())));
    arm_ceiling((2 * bound(input.len())).max(1 << 30), on_ceiling);
    let baseline = start_peak();
    let result = quietly(|| {
        engine
            .update_json(input, Some(INPUT_ETAG))
            .map_err(|e| e.to_string())
    });
    let growth = peak_growth(baseline);
    disarm_ceiling();
    INPUT.with(|i| i.set((std::ptr::null(), 0)));
    (result, growth)
}

/// Checks every property for `input`, loaded over `base`.
pub fn check(base: &[u8], input: &[u8], contexts: &[OwnedContext]) -> Result<Outcome, String> {
    let engine = Engine::new();
    engine
        .update_json(base, None)
        .map_err(|e| format!("the base payload was rejected: {e}"))?;
    let before = engine.snapshot();
    let (result, growth) = guarded(&engine, input);
    let result = result.map_err(|panic| format!("update_json panicked: {panic}"))?;
    if growth > bound(input.len()) {
        return Err(format!(
            "update_json grew the heap by {growth} bytes for a {}-byte input (bound {})",
            input.len(),
            bound(input.len())
        ));
    }
    let mut outcome = Outcome {
        growth,
        ..Outcome::default()
    };
    match result {
        Err(message) => {
            let after = engine.snapshot();
            if !Arc::ptr_eq(&before, &after) {
                return Err(format!(
                    "a rejected payload replaced the snapshot (error: {message})"
                ));
            }
            if engine.etag().is_some() {
                return Err(format!(
                    "a rejected payload set its ETag (error: {message})"
                ));
            }
            if message.is_empty() || message.len() > MAX_ERROR_LEN {
                return Err(format!(
                    "the error is {} bytes long: {:?}",
                    message.len(),
                    message.chars().take(300).collect::<String>()
                ));
            }
            outcome.error_len = message.len();
            let names = names_of(&before);
            outcome.evaluations = quietly(|| same_answers(&before, &after, &names, contexts))
                .map_err(|p| format!("evaluation panicked: {p}"))??;
        }
        Ok(update) => {
            outcome.accepted = true;
            outcome.warnings = update.warnings.len();
            let snapshot = engine.snapshot();
            let twin = Engine::new();
            twin.update_json(base, None)
                .map_err(|e| format!("the base payload was rejected: {e}"))?;
            let (twin_result, _) = guarded(&twin, input);
            let twin_update = twin_result
                .map_err(|panic| format!("update_json panicked the second time: {panic}"))?
                .map_err(|e| format!("accepted once, rejected the second time: {e}"))?;
            if twin_update != update {
                return Err(format!(
                    "compiled twice, the outcomes differ: {update:?} and {twin_update:?}"
                ));
            }
            let twin_snapshot = twin.snapshot();
            let names = names_of(&snapshot);
            let baseline = start_peak();
            outcome.evaluations = quietly(|| -> Result<u64, String> {
                if snapshot.names() != twin_snapshot.names() {
                    return Err("compiled twice, the flag names differ".into());
                }
                let reads = read_everything(&engine, &snapshot);
                Ok(reads + same_answers(&snapshot, &twin_snapshot, &names, contexts)?)
            })
            .map_err(|p| format!("evaluation panicked: {p}"))??;
            // Two snapshots' regex caches on this thread, and the rest.
            let growth = peak_growth(baseline);
            if growth > 2 * REGEX_MEMORY_BUDGET + CONSTANT_BYTES {
                return Err(format!(
                    "evaluating grew the heap by {growth} bytes (bound {})",
                    2 * REGEX_MEMORY_BUDGET + CONSTANT_BYTES
                ));
            }
        }
    }
    Ok(outcome)
}
