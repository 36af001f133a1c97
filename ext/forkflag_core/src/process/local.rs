//! Values owned by one process: a forked child builds its own on first use
//! and never touches its parent's.

use std::ops::Deref;
use std::sync::Arc;

use super::fork::generation;

/// A value owned by one process: a forked child gets a fresh one on first
/// use instead of the parent's, which a vanished thread may have been using
/// (holding its lock, say) at the moment of the fork. The parent's value is
/// leaked in the child, never dropped.
pub struct ProcessLocal<T> {
    slot: arc_swap::ArcSwapOption<Owned<T>>,
    init: fn() -> T,
}

struct Owned<T> {
    generation: u64,
    value: T,
}

impl<T> Deref for Owned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A handle on a [`ProcessLocal`]'s value for this process.
pub struct Local<T>(Arc<Owned<T>>);

impl<T> Deref for Local<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T> ProcessLocal<T> {
    /// A process-local value built by `init` on first use in each process.
    pub const fn new(init: fn() -> T) -> ProcessLocal<T> {
        ProcessLocal {
            slot: arc_swap::ArcSwapOption::const_empty(),
            init,
        }
    }

    /// This process's value.
    pub fn get(&self) -> Local<T> {
        let now = generation();
        loop {
            let current = self.slot.load_full();
            if let Some(owned) = &current {
                if owned.generation == now {
                    return Local(Arc::clone(owned));
                }
            }
            let fresh = Arc::new(Owned {
                generation: now,
                value: (self.init)(),
            });
            let previous = self
                .slot
                .compare_and_swap(&current, Some(Arc::clone(&fresh)));
            let replaced = match (&*previous, &current) {
                (Some(p), Some(c)) => Arc::ptr_eq(p, c),
                (None, None) => true,
                _ => false,
            };
            if replaced {
                // The inherited value may be mid-use by a thread that no
                // longer exists: never run its destructor.
                std::mem::forget(current);
                return Local(fresh);
            }
        }
    }
}
