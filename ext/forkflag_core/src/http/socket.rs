//! Sockets the client owns: the registry a forked child closes, the time
//! budget of a request, and one connection (plain or TLS).

use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConnection;

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
    pub(super) fn registered_fds(&self) -> Vec<RawFd> {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::SeqCst))
            .filter(|&fd| fd != EMPTY)
            .collect()
    }

    fn register(&self, fd: RawFd) -> Option<usize> {
        self.slots.iter().position(|slot| {
            slot.compare_exchange(EMPTY, fd, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        })
    }

    /// Clears the slot if it still holds `fd`; false if a forked child's
    /// close_inherited emptied it (and closed the fd) already.
    fn unregister(&self, index: usize, fd: RawFd) -> bool {
        self.slots[index]
            .compare_exchange(fd, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// Whether the fork handler would close this registry (tests).
#[cfg(test)]
pub(super) fn is_enlisted(registry: *const SocketRegistry) -> bool {
    LIST.iter()
        .any(|entry| std::ptr::eq(entry.load(Ordering::SeqCst), registry))
}

/// Takes a registry off the list, as a forked child's fork handler does
/// (tests).
#[cfg(test)]
pub(super) fn delist_for_test(registry: *const SocketRegistry) {
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

/// The time budget of one request: no socket operation waits longer than
/// `per_op`, and none starts after `deadline`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    pub deadline: Instant,
    pub per_op: Duration,
}

impl Budget {
    /// A budget of `timeout` from now, `timeout` per operation.
    pub fn starting_now(timeout: Duration) -> Budget {
        Budget {
            deadline: crate::sync::after(timeout),
            per_op: timeout,
        }
    }

    /// How long the next operation may wait, or `TimedOut` once the
    /// deadline has passed. Never zero.
    pub fn wait(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left.min(self.per_op))
    }
}

/// One TCP connection to the server, with TLS on top for https. Dropping
/// it unregisters the fd first, then closes it.
pub(super) struct Connection {
    /// Closed in `drop`, after unregistering, unless close_inherited
    /// closed it already.
    sock: ManuallyDrop<TcpStream>,
    tls: Option<Box<ClientConnection>>,
    registry: Arc<SocketRegistry>,
    slot: Option<usize>,
    /// Responses read on this connection so far.
    pub served: u32,
    /// The server's keep-alive timeout, if it announced one: past it the
    /// connection is not reused.
    pub idle_until: Option<Instant>,
}

impl Connection {
    /// Connects to `addr` (waiting at most the budget's next wait), sets
    /// TCP_NODELAY and registers the fd.
    pub fn open(
        addr: SocketAddr,
        budget: Budget,
        registry: &Arc<SocketRegistry>,
    ) -> io::Result<Connection> {
        let sock = TcpStream::connect_timeout(&addr, budget.wait()?)?;
        // Requests are written in one piece; a failure here only costs latency.
        let _ = sock.set_nodelay(true);
        let slot = registry.register(sock.as_raw_fd());
        Ok(Connection {
            sock: ManuallyDrop::new(sock),
            tls: None,
            registry: Arc::clone(registry),
            slot,
            served: 0,
            idle_until: None,
        })
    }

    /// Runs the TLS handshake within the budget.
    pub fn start_tls(&mut self, mut tls: ClientConnection, budget: Budget) -> io::Result<()> {
        let mut sock = TimedSocket {
            sock: &self.sock,
            budget,
        };
        while tls.is_handshaking() {
            budget.wait()?;
            tls.complete_io(&mut sock)?;
        }
        self.tls = Some(Box::new(tls));
        Ok(())
    }

    /// Reads and writes through TLS if any, each socket operation bounded
    /// by the budget.
    pub fn io(&mut self, budget: Budget) -> ConnectionIo<'_> {
        ConnectionIo {
            sock: TimedSocket {
                sock: &self.sock,
                budget,
            },
            tls: self.tls.as_deref_mut(),
        }
    }

    /// Whether an idle keep-alive connection can no longer be used: the
    /// server closed it (or said something unasked), or its announced idle
    /// time is over. Checked without blocking before each reuse.
    pub fn is_stale(&mut self) -> bool {
        if self.idle_until.is_some_and(|t| Instant::now() >= t) {
            return true;
        }
        if self.sock.set_nonblocking(true).is_err() {
            return true;
        }
        let stale = self.peek_stale();
        self.sock.set_nonblocking(false).is_err() || stale
    }

    fn peek_stale(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.sock.peek(&mut byte) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Ok(0) | Err(_) => true,
            Ok(_) => match self.tls.as_deref_mut() {
                // Bytes nobody asked for on an idle HTTP connection.
                None => true,
                // TLS may send records between responses (session tickets,
                // key updates): read them and see whether they close.
                Some(tls) => loop {
                    match tls.read_tls(&mut &*self.sock) {
                        Ok(0) => break true,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            break match tls.process_new_packets() {
                                Ok(state) => {
                                    state.peer_has_closed() || state.plaintext_bytes_to_read() > 0
                                }
                                Err(_) => true,
                            };
                        }
                        Err(_) => break true,
                    }
                },
            },
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Unregister BEFORE the fd is closed: a fork in between must never
        // leave the child a registered fd number that the parent may reuse
        // for something else.
        let ours = match self.slot.take() {
            Some(index) => self.registry.unregister(index, self.sock.as_raw_fd()),
            None => true,
        };
        if ours {
            // SAFETY: `sock` is dropped exactly once, here, and not used
            // after (the connection is being dropped).
            unsafe { ManuallyDrop::drop(&mut self.sock) };
        }
        // Otherwise a forked child's close_inherited closed the fd already
        // and its number may name another file by now: leave it alone.
    }
}

/// The socket as rustls and the HTTP reader see it: every read and write
/// first checks the request's deadline and bounds its wait.
struct TimedSocket<'a> {
    sock: &'a TcpStream,
    budget: Budget,
}

/// A socket time-out shows up as `WouldBlock` (EAGAIN) on Unix; rustls
/// would treat that as "try later", so it becomes `TimedOut`.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::ErrorKind::TimedOut.into()
    } else {
        e
    }
}

impl Read for TimedSocket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.set_read_timeout(Some(self.budget.wait()?))?;
        let mut sock = self.sock;
        sock.read(buf).map_err(timed_out)
    }
}

impl Write for TimedSocket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.set_write_timeout(Some(self.budget.wait()?))?;
        let mut sock = self.sock;
        sock.write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads and writes on a [`Connection`] within a [`Budget`].
pub(super) struct ConnectionIo<'a> {
    sock: TimedSocket<'a>,
    tls: Option<&'a mut ClientConnection>,
}

impl Read for ConnectionIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            Some(tls) => rustls::Stream::new(tls, &mut self.sock).read(buf),
            None => self.sock.read(buf),
        }
    }
}

impl Write for ConnectionIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            Some(tls) => rustls::Stream::new(tls, &mut self.sock).write(buf),
            None => self.sock.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(tls) => rustls::Stream::new(tls, &mut self.sock).flush(),
            None => Ok(()),
        }
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
    fn the_budget_runs_out() {
        let budget = Budget::starting_now(Duration::from_millis(30));
        assert!(budget.wait().unwrap() <= Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(budget.wait().unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
