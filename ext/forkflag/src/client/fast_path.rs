//! The fast path of an evaluation: the common call, answered with no call
//! into Ruby, no allocation and no lock. Anything unusual returns `None`
//! before anything was evaluated or counted, and the general path
//! ([`super::evaluate`]) answers the call instead.

use forkflag_core::engine::SnapshotCache;
use forkflag_core::process::fork;
use forkflag_core::snapshot::tag_for;
use magnus::{Error, Ruby, Value};

use super::arguments::{only_default, split_keywords, typed, ContextArg};
use super::lookup::{ContextRef, Current, Found};
use super::Client;

impl Client {
    /// The current snapshot through the client's cache, with the names
    /// remembered for it.
    #[inline(always)]
    pub(super) fn cached<'a>(&'a self, cache: &'a mut SnapshotCache) -> Current<'a> {
        let snapshot = cache.load();
        self.names.follow(snapshot);
        Current {
            snapshot,
            engine: &self.engine,
            names: Some(&self.names),
        }
    }

    /// Evaluations on a client whose thread runs in this process, without
    /// impression listeners or custom strategies: `(name)` or `(name, context)`, and
    /// `default:` where the method takes it, with a String or Symbol name
    /// and a nil, Hash or `Forkflag::Context` context. Calls `f` with the
    /// context, the current snapshot, the flag found and the count tag, and
    /// returns its result with the `default:` value. `None` (nothing
    /// evaluated, nothing counted) sends the call through the general path,
    /// which answers every call the same way, raises for bad arguments,
    /// starts threads after a fork and emits impressions.
    #[inline(always)]
    pub(super) fn quick<R>(
        ruby: &Ruby,
        rb_self: Value,
        args: &[Value],
        accepts_default: bool,
        f: impl FnOnce(&dyn ContextRef, Current<'_>, Found<'_>, u64) -> R,
    ) -> Option<(Result<R, Error>, Option<Value>)> {
        let this = typed::<Client>(&rb_self)?;
        let (positional, keywords) = split_keywords(args);
        let default = match keywords {
            None => None,
            Some(kw) if accepts_default => Some(only_default(ruby, kw)?),
            Some(_) => return None,
        };
        let (name, context) = match positional {
            [name] => (name, ContextArg::Empty),
            [name, context] => (name, ContextArg::of(context)?),
            _ => return None,
        };
        let epoch = fork::epoch();
        if this.live_epoch.get() != epoch || this.general_only.get() {
            return None;
        }
        let mut cache = this.snapshots.try_borrow_mut().ok()?;
        let at = this.cached(&mut cache);
        let flag = at.find(name)?;
        let tag = tag_for(fork::generation_of(epoch));
        Some((context.with(|ctx| f(ctx, at, flag, tag)), default))
    }
}
