//! Name resolution behind the fork gate, cached.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::error::HttpError;

/// How long resolved addresses are used before the name is resolved again.
const TTL: Duration = Duration::from_secs(5 * 60);

/// The addresses of the server.
pub(super) struct Resolver {
    host: String,
    port: u16,
    /// The host is an IP address: the resolver is never asked.
    literal: Option<IpAddr>,
    cached: Vec<SocketAddr>,
    resolved_at: Option<Instant>,
}

impl Resolver {
    pub fn new(host: &str, port: u16) -> Resolver {
        Resolver {
            host: host.to_owned(),
            port,
            literal: host.parse().ok(),
            cached: Vec::new(),
            resolved_at: None,
        }
    }

    /// The addresses to try, and whether they were just looked up (true for
    /// IP literals: there is nothing to look up again).
    pub fn addresses(&mut self) -> Result<(Vec<SocketAddr>, bool), HttpError> {
        if let Some(ip) = self.literal {
            return Ok((vec![SocketAddr::new(ip, self.port)], true));
        }
        if self.resolved_at.is_some_and(|at| at.elapsed() < TTL) && !self.cached.is_empty() {
            return Ok((self.cached.clone(), false));
        }
        let target = (self.host.as_str(), self.port);
        // getaddrinfo takes process-wide locks: no fork may happen while it
        // runs, or the child could never resolve a name again.
        let found = crate::process::gate::gated(|| {
            target.to_socket_addrs().map(Iterator::collect::<Vec<_>>)
        });
        let failed = |reason: String| HttpError::Resolve {
            host: self.host.clone(),
            reason,
        };
        match found {
            Ok(addrs) if !addrs.is_empty() => {
                self.cached.clone_from(&addrs);
                self.resolved_at = Some(Instant::now());
                Ok((addrs, true))
            }
            Ok(_) => Err(failed("no address found".to_owned())),
            Err(e) => Err(failed(e.to_string())),
        }
    }

    /// Drops the cached addresses: the next request resolves again.
    pub fn forget(&mut self) {
        self.cached.clear();
        self.resolved_at = None;
    }
}
