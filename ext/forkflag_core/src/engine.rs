//! The live configuration: the current snapshot, swapped atomically.
//!
//! Readers load the snapshot once per evaluation without locking. Writers
//! (the background refresher, a bootstrap, a test override) compile a new
//! snapshot and swap it in. Snapshots that were replaced are kept until their
//! usage counters have been collected twice, so a count made by an evaluation
//! that was still holding the old snapshot is not lost.
//!
//! Nothing here takes a lock, so a fork at any instant leaves the child with
//! an engine it can use at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption, Guard};

use crate::compile::model::{ClientFeatures, Update};
use crate::compile::{compile, fingerprint};
use crate::process::heap;
use crate::snapshot::counter::FlagCounters;
use crate::snapshot::Tally;
use crate::snapshot::{Changes, Snapshot};
use crate::CoreError;

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// Whether a new snapshot replaced the old one (false when the payload
    /// was identical to the current one).
    pub changed: bool,
    /// Problems found in the payload and not reported before.
    pub warnings: Vec<String>,
    /// Number of flags now loaded.
    pub flags: usize,
    /// The flags added, changed and removed, when someone listens to the
    /// engine's changes ([`Engine::set_events_wanted`]); `None` otherwise
    /// (nothing is compared).
    pub changes: Option<Changes>,
}

impl heap::Loaded for Result<UpdateOutcome, CoreError> {
    fn read_through(&self) -> bool {
        !matches!(self, Ok(outcome) if !outcome.changed)
    }
}

/// The current snapshot and what is needed to update it.
#[derive(Debug)]
pub struct Engine {
    current: ArcSwap<Snapshot>,
    /// ETag of the response the current configuration came from.
    etag: ArcSwapOption<String>,
    /// The raw state delta events apply to (kept once deltas are in use).
    delta_base: ArcSwapOption<ClientFeatures>,
    /// Replaced snapshots and how many times their counters were collected.
    retired: ArcSwap<Vec<(Arc<Snapshot>, u8)>>,
    /// Whether the configuration was ever confirmed current by its source
    /// (the server or the file), in this process or an ancestor.
    synced: AtomicBool,
    /// Counters of names evaluated while the configuration did not have
    /// them (a flag created on the server since the last refresh, or a
    /// child forked before the first one): counted like the official SDKs
    /// do, so the server's totals match the evaluations made (it drops names
    /// that are not flags). At most [`MAX_UNKNOWN_NAMES`] names.
    unknown: ArcSwap<HashMap<Box<str>, Arc<FlagCounters>>>,
    /// The identity of the flags file the configuration was last read from.
    /// It lives here, not in the thread, so a forked child's new thread
    /// does not read an unchanged file again (which would also leave every
    /// worker with a private copy of the freed read buffer).
    file_stamp: ArcSwapOption<FileStamp>,
    /// The names compiled as custom strategies.
    custom: Box<[Arc<str>]>,
    /// Whether someone listens to this engine's changes and its source's
    /// failures (change or error listeners, or ActiveSupport): updates then
    /// compare the flags, and the load sites queue events
    /// ([`crate::logging::event`]).
    events_wanted: AtomicBool,
}

/// One reader's handle on an engine's current snapshot. Checking that it
/// is still current is a plain load and compare, where [`Engine::load`]
/// takes and releases a reference with two locked instructions; the price
/// is that the handle keeps the snapshot it last saw alive until its next
/// load. Loads always return the current snapshot, as [`Engine::load`] does.
pub struct SnapshotCache(arc_swap::Cache<CurrentOf, Arc<Snapshot>>);

/// An engine, seen as the `ArcSwap` that holds its current snapshot.
#[doc(hidden)]
pub struct CurrentOf(Arc<Engine>);

impl std::ops::Deref for CurrentOf {
    type Target = ArcSwap<Snapshot>;
    fn deref(&self) -> &ArcSwap<Snapshot> {
        &self.0.current
    }
}

impl SnapshotCache {
    /// The current snapshot.
    #[inline]
    pub fn load(&mut self) -> &Arc<Snapshot> {
        self.0.load()
    }
}

impl std::fmt::Debug for SnapshotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCache")
    }
}

/// A flags file's identity: modification time, length and inode.
pub type FileStamp = (std::time::SystemTime, u64, u64);

/// The stamp of a file's current metadata.
pub fn file_stamp_of(meta: &std::fs::Metadata) -> FileStamp {
    (
        meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH),
        meta.len(),
        std::os::unix::fs::MetadataExt::ino(meta),
    )
}

/// Most distinct unknown names counted (a bound on memory when an
/// application evaluates names it builds at run time).
pub const MAX_UNKNOWN_NAMES: usize = 1024;

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    /// An engine with no flags.
    pub fn new() -> Engine {
        Engine::with_custom_strategies(Vec::new())
    }

    /// An engine with no flags that compiles strategies of these names
    /// (other than the built-in ones) as custom strategies, which the
    /// evaluation's context answers (see [`crate::Context::custom_strategy`]).
    pub fn with_custom_strategies(names: Vec<Arc<str>>) -> Engine {
        Engine {
            custom: names.into_boxed_slice(),
            current: ArcSwap::from_pointee(Snapshot::empty()),
            etag: ArcSwapOption::empty(),
            delta_base: ArcSwapOption::empty(),
            retired: ArcSwap::from_pointee(Vec::new()),
            synced: AtomicBool::new(false),
            unknown: ArcSwap::from_pointee(HashMap::new()),
            file_stamp: ArcSwapOption::empty(),
            events_wanted: AtomicBool::new(false),
        }
    }

    /// Turns the comparison of each new configuration with the one it
    /// replaces (and the events of the load sites) on or off.
    pub fn set_events_wanted(&self, wanted: bool) {
        self.events_wanted.store(wanted, Ordering::Relaxed);
    }

    /// Whether someone listens to this engine's changes.
    pub fn events_wanted(&self) -> bool {
        self.events_wanted.load(Ordering::Relaxed)
    }

    /// The names compiled as custom strategies.
    pub fn custom_strategies(&self) -> &[Arc<str>] {
        &self.custom
    }

    /// The stamp of the flags file the configuration was last read from.
    pub fn file_stamp(&self) -> Option<FileStamp> {
        self.file_stamp.load().as_deref().copied()
    }

    /// Records the stamp of the flags file just read.
    pub fn set_file_stamp(&self, stamp: FileStamp) {
        self.file_stamp.store(Some(Arc::new(stamp)));
    }

    /// Records that the source confirmed the configuration current.
    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }

    /// Whether the source ever confirmed the configuration current.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// The current snapshot, for one unit of work (no lock, no allocation).
    #[inline]
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// A handle on the current snapshot for one reader that evaluates
    /// again and again (a client in the binding): see [`SnapshotCache`].
    pub fn cache(self: &Arc<Self>) -> SnapshotCache {
        SnapshotCache(arc_swap::Cache::new(CurrentOf(Arc::clone(self))))
    }

    /// The current snapshot, to keep.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The ETag the current configuration came with.
    pub fn etag(&self) -> Option<String> {
        self.etag.load_full().map(|e| (*e).clone())
    }

    /// Applies payload text: a full client-features document or a batch of
    /// delta events. A payload that cannot be read leaves the current
    /// configuration untouched.
    pub fn update_json(&self, json: &[u8], etag: Option<&str>) -> Result<UpdateOutcome, CoreError> {
        let print = fingerprint(json);
        let current = self.current.load_full();
        if print == current.fingerprint && !current.is_empty() {
            self.set_etag(etag);
            return Ok(UpdateOutcome {
                changed: false,
                warnings: Vec::new(),
                flags: current.len(),
                changes: self.events_wanted().then(Changes::default),
            });
        }
        let state = match Update::parse(json)? {
            Update::Full(state) => {
                if self.delta_base.load().is_some() {
                    self.delta_base.store(Some(Arc::new(state.clone())));
                }
                state
            }
            Update::Delta(events) => {
                let mut state =
                    match self.delta_base.load_full() {
                        Some(base) => (*base).clone(),
                        None if current.is_empty() => ClientFeatures::default(),
                        None => return Err(CoreError::InvalidPayload(
                            "delta events arrived for a configuration loaded as a full document; \
                             a delta stream must start with a hydration event"
                                .into(),
                        )),
                    };
                state.apply(events);
                self.delta_base.store(Some(Arc::new(state.clone())));
                state
            }
        };
        let (snapshot, warnings) = compile(&state, etag, print, Some(&current), &self.custom);
        let flags = snapshot.len();
        let changes = self
            .events_wanted()
            .then(|| snapshot.changes_since(&current));
        self.replace(Arc::new(snapshot));
        self.set_etag(etag);
        Ok(UpdateOutcome {
            changed: true,
            warnings,
            flags,
            changes,
        })
    }

    fn set_etag(&self, etag: Option<&str>) {
        if let Some(etag) = etag {
            self.etag.store(Some(Arc::new(etag.to_owned())));
        }
    }

    /// Installs a snapshot, retiring the previous one.
    pub fn replace(&self, snapshot: Arc<Snapshot>) {
        let old = self.current.swap(snapshot);
        self.retired.rcu(|list| {
            let mut list = (**list).clone();
            list.push((Arc::clone(&old), 0));
            list
        });
    }

    /// Counts an evaluation of a name the snapshot does not have (as
    /// false; `variant` also counts the disabled variant). Lock-free: the
    /// first evaluation of a new name copies the small map of such names.
    pub fn count_unknown(&self, name: &[u8], variant: bool, tag: u64) {
        let Ok(name) = std::str::from_utf8(name) else {
            return;
        };
        let count = |counters: &FlagCounters| {
            counters.count(false, tag);
            if variant {
                counters.variants[0].add_one(tag);
            }
        };
        {
            let names = self.unknown.load();
            if let Some(counters) = names.get(name) {
                count(counters);
                return;
            }
            if names.len() >= MAX_UNKNOWN_NAMES {
                return;
            }
        }
        let fresh = Arc::new(FlagCounters::new(1));
        self.unknown.rcu(|names| {
            let mut names = (**names).clone();
            names
                .entry(name.into())
                .or_insert_with(|| Arc::clone(&fresh));
            names
        });
        if let Some(counters) = self.unknown.load().get(name) {
            count(counters);
        }
    }

    /// Takes the counts of the given fork generation tag from the current
    /// and retired snapshots.
    pub fn take_tally(&self, tag: u64) -> Tally {
        let mut tally = Tally::default();
        tally.drain_from(&self.current.load(), tag);
        for (name, counters) in self.unknown.load().iter() {
            tally.add_unknown(name, counters, tag, true);
        }
        let retired = self.retired.load_full();
        if retired.is_empty() {
            return tally;
        }
        for (snapshot, _) in retired.iter() {
            tally.drain_from(snapshot, tag);
        }
        self.retired.rcu(|list| {
            list.iter()
                .filter_map(|(s, n)| {
                    let drained = retired.iter().any(|(r, _)| Arc::ptr_eq(r, s));
                    let n = if drained { n + 1 } else { *n };
                    (n < 2).then(|| (Arc::clone(s), n))
                })
                .collect::<Vec<_>>()
        });
        tally
    }

    /// Reads the counts of a generation tag without taking them.
    pub fn peek_tally(&self, tag: u64) -> Tally {
        let mut tally = Tally::default();
        tally.peek_from(&self.current.load(), tag);
        for (name, counters) in self.unknown.load().iter() {
            tally.add_unknown(name, counters, tag, false);
        }
        for (snapshot, _) in self.retired.load().iter() {
            tally.peek_from(snapshot, tag);
        }
        tally
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
