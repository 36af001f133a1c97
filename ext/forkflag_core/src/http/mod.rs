//! A small HTTP/1.1 client (plain and TLS) for the background thread.
//!
//! It exists so that forkflag owns every socket it opens. After a fork the
//! child must get rid of the parent's keep-alive connections with a plain
//! close(2) of its copies of the fds: never shutdown(2), never a TLS
//! close_notify, never a graceful drop, any of which would break the
//! connection the parent is still using. Each connection registers its fd
//! in the client's [`SocketRegistry`] so the child can do exactly that, and
//! name resolution runs behind the fork gate ([`crate::process::gate`]).
//!
//! - [`Endpoint`]: the server's base URL;
//! - [`HttpClient`]: one keep-alive connection, a time budget per request,
//!   bodies capped in size;
//! - [`TlsOptions`]: rustls (ring provider) with the system's roots and an
//!   optional CA file; [`Tls`]: those roots, loaded once when the client is
//!   created and shared by its forked children.

mod endpoint;
mod error;
mod head;
mod input;
mod request;
mod resolve;
mod response;
mod socket;
mod tls;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::process::SocketRegistry;
use crate::CoreError;
pub use endpoint::Endpoint;
pub use error::HttpError;
pub use request::{
    check_header_name, check_header_value, HeaderProblem, Request, MAX_HEADER_BYTES,
};
use resolve::Resolver;
pub use response::Response;
use socket::{Budget, Connection};
pub use tls::{Tls, TlsOptions};

/// An HTTP/1.1 client for one server: keeps one connection alive between
/// requests, and registers its socket in a [`SocketRegistry`].
///
/// Use it from one thread of the process that created it. A forked child
/// never uses or drops the parent's client: it calls
/// [`SocketRegistry::close_inherited`] and forgets the client.
pub struct HttpClient {
    endpoint: Endpoint,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    timeout: Duration,
    max_body_bytes: usize,
    resolver: Resolver,
    conn: Option<Connection>,
    sockets: Arc<SocketRegistry>,
}

impl HttpClient {
    /// A client for `endpoint`. Does no network I/O (the first request
    /// connects) and reads no file: an https endpoint's roots come loaded
    /// in `tls` ([`Tls::load`] for this endpoint), and only this client's
    /// rustls configuration is made here. `timeout` bounds each connect,
    /// read and write and each request as a whole; response bodies over
    /// `max_body_bytes` are refused.
    pub fn new(
        endpoint: Endpoint,
        tls: &Tls,
        timeout: Duration,
        max_body_bytes: usize,
        sockets: Arc<SocketRegistry>,
    ) -> Result<HttpClient, CoreError> {
        if timeout.is_zero() {
            return Err(CoreError::InvalidConfig(
                "the HTTP timeout must be longer than zero".to_owned(),
            ));
        }
        let tls = if endpoint.is_tls() {
            let config = tls::client_config(tls)?.ok_or_else(|| {
                CoreError::InvalidConfig(format!(
                    "{}: no TLS roots were loaded for this https URL (Tls::load)",
                    endpoint.display_url("")
                ))
            })?;
            Some((config, tls::server_name(endpoint.host())?))
        } else {
            None
        };
        Ok(HttpClient {
            resolver: Resolver::new(endpoint.host(), endpoint.port()),
            endpoint,
            tls,
            timeout,
            max_body_bytes,
            conn: None,
            sockets,
        })
    }

    /// The server this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `req` and reads the whole response, within `timeout` overall.
    ///
    /// Reuses the keep-alive connection when the server left it open; if a
    /// reused connection turns out closed before any byte of the response
    /// arrived, sends the request once more on a fresh connection.
    pub fn request(&mut self, req: &Request<'_>) -> Result<Response, HttpError> {
        let bytes = request::request_bytes(&self.endpoint, req)?;
        let budget = Budget::starting_now(self.timeout);
        let mut retried = false;
        loop {
            let mut conn = match self.conn.take() {
                Some(mut kept) => {
                    if kept.is_stale() {
                        drop(kept);
                        self.connect(budget)?
                    } else {
                        kept
                    }
                }
                None => self.connect(budget)?,
            };
            let reused = conn.served > 0;
            match self.exchange(&mut conn, &bytes, req.method, budget) {
                Ok(received) => {
                    conn.served = conn.served.saturating_add(1);
                    if received.reusable {
                        // Stop reusing a second before the server's own
                        // idle time-out, to not race its close.
                        conn.idle_until = received
                            .keep_alive
                            .map(|t| crate::sync::after(t.saturating_sub(Duration::from_secs(1))));
                        self.conn = Some(conn);
                    }
                    return Ok(received.response);
                }
                Err((error, before_response)) => {
                    drop(conn);
                    if reused && before_response && !retried && error.is_connection_closed() {
                        retried = true;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Drops the keep-alive connection normally (used on close in the
    /// process that opened it).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Writes the request and reads the response. The flag says whether
    /// the failure came before any byte of the response.
    fn exchange(
        &self,
        conn: &mut Connection,
        bytes: &[u8],
        method: &str,
        budget: Budget,
    ) -> Result<response::Received, (HttpError, bool)> {
        let mut io = conn.io(budget);
        if let Err(e) = io.write_all(bytes).and_then(|()| io.flush()) {
            return Err((
                HttpError::from_io(e, "while sending the request", self.timeout),
                true,
            ));
        }
        let mut input = input::Input::new(io, self.timeout);
        response::read_response(&mut input, method, self.max_body_bytes)
            .map_err(|e| (e, input.received() == 0))
    }

    /// A new connection. When every cached address fails, the name is
    /// resolved again and its addresses tried (within the same budget).
    fn connect(&mut self, budget: Budget) -> Result<Connection, HttpError> {
        let (addrs, fresh) = self.resolver.addresses()?;
        match self.connect_any(&addrs, budget) {
            Err(e @ (HttpError::Connect { .. } | HttpError::Timeout { .. })) => {
                self.resolver.forget();
                if fresh || budget.wait().is_err() {
                    return Err(e);
                }
                let (addrs, _) = self.resolver.addresses()?;
                self.connect_any(&addrs, budget)
            }
            other => other,
        }
    }

    fn connect_any(&self, addrs: &[SocketAddr], budget: Budget) -> Result<Connection, HttpError> {
        let mut last = None;
        for &addr in addrs {
            match Connection::open(addr, budget, &self.sockets) {
                Ok(conn) => return self.secure(conn, budget),
                Err(e) => {
                    last = Some((addr, e));
                    if budget.wait().is_err() {
                        break;
                    }
                }
            }
        }
        Err(match last {
            Some((addr, e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                HttpError::Timeout {
                    during: format!("while connecting to {addr}"),
                    after: self.timeout,
                }
            }
            Some((addr, source)) => HttpError::Connect {
                addr: addr.to_string(),
                source,
            },
            None => HttpError::Resolve {
                host: self.endpoint.host().to_owned(),
                reason: "no address to connect to".to_owned(),
            },
        })
    }

    /// Runs the TLS handshake on a new connection to an https endpoint.
    fn secure(&self, mut conn: Connection, budget: Budget) -> Result<Connection, HttpError> {
        if let Some((config, name)) = &self.tls {
            let session = ClientConnection::new(Arc::clone(config), name.clone())
                .map_err(|e| HttpError::Tls(tls::describe(&e)))?;
            conn.start_tls(session, budget)
                .map_err(|e| HttpError::from_io(e, "during the TLS handshake", self.timeout))?;
        }
        Ok(conn)
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("endpoint", &self.endpoint.display_url(""))
            .field("connected", &self.conn.is_some())
            .finish()
    }
}
