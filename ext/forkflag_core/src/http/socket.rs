//! Sockets the client owns: the time budget of a request, and one
//! connection (plain or TLS), its fd registered where a forked child closes
//! it ([`SocketRegistry`]).

use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};
use rustls::ClientConnection;

use crate::process::SocketRegistry;

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
    /// time is over. Checked without blocking before each reuse: every read
    /// here is a `recv` with `MSG_DONTWAIT`, which leaves the socket's file
    /// description (shared with any forked child's copy) in blocking mode.
    pub fn is_stale(&mut self) -> bool {
        if self.idle_until.is_some_and(|t| Instant::now() >= t) {
            return true;
        }
        let mut byte = [0u8; 1];
        let peeked = recv(
            self.sock.as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        );
        match peeked {
            Err(Errno::EAGAIN) => false,
            Ok(0) | Err(_) => true,
            Ok(_) => match self.tls.as_deref_mut() {
                // Bytes nobody asked for on an idle HTTP connection.
                None => true,
                // TLS may send records between responses (session tickets,
                // key updates): read them and see whether they close.
                Some(tls) => loop {
                    match tls.read_tls(&mut NoWait(&self.sock)) {
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

/// Reads what the socket holds now, without waiting (`recv` with
/// `MSG_DONTWAIT`: `WouldBlock` when there is nothing).
struct NoWait<'a>(&'a TcpStream);

impl Read for NoWait<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(recv(self.0.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)?)
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

    #[test]
    fn the_budget_runs_out() {
        let budget = Budget::starting_now(Duration::from_millis(30));
        assert!(budget.wait().unwrap() <= Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(budget.wait().unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
