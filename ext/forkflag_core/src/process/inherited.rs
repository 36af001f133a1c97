//! Descriptors a forked child must close: the sockets of the HTTP clients'
//! connections, which the child inherits from its parent's threads.
//!
//! After a fork the child must get rid of the parent's keep-alive
//! connections with a plain close(2) of its copies of the fds: never
//! shutdown(2), never a TLS close_notify, never a graceful drop, any of
//! which would break the connection the parent is still using. A
//! [`SocketRegistry`] records one client's fds lock-free, and the fork
//! handler closes every enlisted registry's at once in the child.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::Arc;

const SLOTS: usize = 8;
const EMPTY: RawFd = -1;
/// How many registries the fork handler can reach (clients with a running
/// thread, per process). A registry beyond them is closed on the child's
/// first use of its client instead.
const ENLISTED: usize = 64;

/// The registries of this process that a forked child closes from the fork
/// handler, at once, before any Ruby code runs. A registry leaves the list
/// (in `Drop`) before its memory is freed, so each pointer in it at the
/// instant of a fork points to a live registry in the child.
static LIST: [AtomicPtr<SocketRegistry>; ENLISTED] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; ENLISTED];

/// Puts `to` in the first entry of the list that holds `from` (enlisting
/// with `from` null, leaving with `to` null); false when none holds it.
fn replace_entry(from: *mut SocketRegistry, to: *mut SocketRegistry) -> bool {
    LIST.iter().any(|entry| {
        entry
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

/// In a forked child, from the fork handler: closes (close(2) only) the
/// sockets of every enlisted registry, all inherited from the parent, and
/// empties the list (the registries belong to the parent's threads, which
/// the child forgets without dropping). Returns how many it closed.
///
/// Async-signal-safe: atomic loads, swaps and close(2) only.
///
/// # Safety
/// Only in a forked child, before any thread of the child registers a
/// socket (right after the fork).
pub unsafe fn close_every_inherited() -> usize {
    let mut closed = 0;
    for entry in &LIST {
        // Free entries are only read: a process without clients writes
        // nothing here (no copy-on-write of the list's page).
        if entry.load(Ordering::SeqCst).is_null() {
            continue;
        }
        let registry = entry.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !registry.is_null() {
            // SAFETY: the registry was enlisted at the fork (so alive: it
            // leaves the list before it is freed, and the child frees
            // nothing of the parent's threads), and the caller guarantees
            // we are the forked child.
            closed += unsafe { (*registry).close_inherited() };
        }
    }
    closed
}

/// Open socket file descriptors of one client, so a forked child can close
/// them without touching the parent's connections.
///
/// Lock-free: a fork may happen at any instant, and the child must be able
/// to read the registry whatever the parent's threads were doing.
pub struct SocketRegistry {
    slots: [AtomicI32; SLOTS],
}

impl SocketRegistry {
    /// An empty registry.
    pub fn new() -> SocketRegistry {
        SocketRegistry {
            slots: std::array::from_fn(|_| AtomicI32::new(EMPTY)),
        }
    }

    /// An empty registry that a forked child closes from the fork handler
    /// (see [`close_every_inherited`]), when the list has room; otherwise
    /// only [`SocketRegistry::close_inherited`] closes it.
    pub fn enlisted() -> Arc<SocketRegistry> {
        let registry = Arc::new(SocketRegistry::new());
        registry.enlist();
        registry
    }

    /// Puts this registry on this process's list, which a forked child's
    /// fork handler closes (see [`close_every_inherited`]), unless it is
    /// there already or the list is full. Allocates nothing.
    ///
    /// A registry made in a parent and used in its child (the start a
    /// parent's thread prepared) is on the parent's list, not the child's:
    /// the child's fork handler emptied its copy of the list. Enlisted again
    /// when its thread starts, the child's own children close its sockets
    /// at the fork too.
    pub fn enlist(&self) {
        let this = (self as *const SocketRegistry).cast_mut();
        if !LIST.iter().any(|e| e.load(Ordering::SeqCst) == this) {
            replace_entry(std::ptr::null_mut(), this);
        }
    }

    /// In a forked child only (right after the fork, or at least before the
    /// child opens sockets through this registry's client): close(2) every
    /// registered fd, never shutdown(2) and never a TLS close_notify, so the
    /// parent's connections go on undisturbed. Returns how many were closed.
    /// Empty slots are only read: a child that has nothing to close writes
    /// nothing (no copy-on-write of the registry's page).
    ///
    /// Async-signal-safe: atomic loads, swaps and close(2) only, no
    /// allocation.
    ///
    /// # Safety
    /// The caller guarantees that the process is a forked child and that the
    /// registry's fds were opened by the parent's `HttpClient` (so each fd
    /// number is still the inherited socket and nothing else in the child
    /// uses it).
    pub unsafe fn close_inherited(&self) -> usize {
        let mut closed = 0;
        for slot in &self.slots {
            if slot.load(Ordering::SeqCst) == EMPTY {
                continue;
            }
            let fd = slot.swap(EMPTY, Ordering::SeqCst);
            if fd != EMPTY {
                // SAFETY: per this function's contract, `fd` is a socket the
                // parent's client registered before the fork and the child
                // has not reused; closing the child's copy of it only drops
                // a reference, the parent's socket stays open.
                unsafe { libc::close(fd) };
                closed += 1;
            }
        }
        closed
    }

    /// How many sockets are registered (open) right now.
    pub fn open_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.load(Ordering::SeqCst) != EMPTY)
            .count()
    }

    /// The registered fds (for tests that check them in a forked child).
    #[cfg(test)]
    pub(crate) fn registered_fds(&self) -> Vec<RawFd> {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::SeqCst))
            .filter(|&fd| fd != EMPTY)
            .collect()
    }

    pub(crate) fn register(&self, fd: RawFd) -> Option<usize> {
        self.slots.iter().position(|slot| {
            slot.compare_exchange(EMPTY, fd, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        })
    }

    /// Clears the slot if it still holds `fd`; false if a forked child's
    /// close_inherited emptied it (and closed the fd) already.
    pub(crate) fn unregister(&self, index: usize, fd: RawFd) -> bool {
        self.slots[index]
            .compare_exchange(fd, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// Whether the fork handler would close this registry (tests).
#[cfg(test)]
pub(crate) fn is_enlisted(registry: *const SocketRegistry) -> bool {
    LIST.iter()
        .any(|entry| std::ptr::eq(entry.load(Ordering::SeqCst), registry))
}

/// Takes a registry off the list, as a forked child's fork handler does
/// (tests).
#[cfg(test)]
pub(crate) fn delist_for_test(registry: *const SocketRegistry) {
    replace_entry(registry.cast_mut(), std::ptr::null_mut());
}

impl Drop for SocketRegistry {
    fn drop(&mut self) {
        replace_entry(self, std::ptr::null_mut());
    }
}

impl Default for SocketRegistry {
    fn default() -> SocketRegistry {
        SocketRegistry::new()
    }
}

impl std::fmt::Debug for SocketRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketRegistry")
            .field("open", &self.open_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Far above any open fd: close(2) on it only fails with EBADF.
    const NOT_OPEN: RawFd = 2_000_000_000;

    #[test]
    fn a_slot_emptied_by_close_inherited_is_not_ours_any_more() {
        let registry = SocketRegistry::new();
        let slot = registry.register(NOT_OPEN).unwrap();
        assert_eq!(registry.open_count(), 1);
        // SAFETY: NOT_OPEN names no file of this process.
        assert_eq!(unsafe { registry.close_inherited() }, 1);
        assert_eq!(registry.open_count(), 0);
        assert!(
            !registry.unregister(slot, NOT_OPEN),
            "a connection dropped now must not close the number"
        );
        // SAFETY: as above; nothing is registered any more.
        assert_eq!(unsafe { registry.close_inherited() }, 0);
        let slot = registry.register(NOT_OPEN).unwrap();
        assert!(registry.unregister(slot, NOT_OPEN));
    }

    #[test]
    fn a_full_registry_refuses_more() {
        let registry = SocketRegistry::new();
        let slots: Vec<_> = (0..SLOTS as RawFd)
            .map(|i| registry.register(NOT_OPEN + i))
            .collect();
        assert!(slots.iter().all(Option::is_some));
        assert_eq!(registry.register(NOT_OPEN + 100), None);
        assert_eq!(registry.open_count(), SLOTS);
    }

    #[test]
    fn a_dropped_registry_leaves_the_fork_handlers_list() {
        let registry = SocketRegistry::enlisted();
        let ptr = Arc::as_ptr(&registry);
        assert!(is_enlisted(ptr));
        drop(registry);
        assert!(!is_enlisted(ptr));
    }

    #[test]
    fn a_registry_enlists_once_and_again_after_leaving_the_list() {
        let registry = Arc::new(SocketRegistry::new());
        let ptr = Arc::as_ptr(&registry);
        assert!(!is_enlisted(ptr));
        registry.enlist();
        registry.enlist();
        assert!(is_enlisted(ptr));
        // What a forked child's handler does to its copy of the list: the
        // registry is off it, and enlisting puts it back.
        delist_for_test(ptr);
        assert!(!is_enlisted(ptr));
        registry.enlist();
        assert!(is_enlisted(ptr));
        drop(registry);
        assert!(!is_enlisted(ptr));
    }
}
