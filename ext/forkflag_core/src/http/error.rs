//! Why a request failed.

use std::io;
use std::time::Duration;

/// Why a request failed. The messages never include request headers: they
/// carry the client token.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The host name did not resolve.
    #[error("cannot resolve host {host:?}: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// No address of the host accepted a TCP connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed or a TLS record was bad.
    #[error("TLS failed: {0}")]
    Tls(String),
    /// The server did not answer in time.
    #[error("timed out after {} ms {during}", .after.as_millis())]
    Timeout {
        /// What was being done ("while waiting for the response", ...).
        during: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The connection failed.
    #[error("connection failed {during}: {source}")]
    Io {
        /// What was being done ("while sending the request", ...).
        during: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The server's answer is not valid HTTP/1.1.
    #[error("invalid HTTP response: {0}")]
    Protocol(String),
    /// The response body is larger than the configured limit.
    #[error("the response body is larger than the limit of {limit} bytes (max_payload_bytes)")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request itself cannot be sent (a line break in a header value, a
    /// space in the path).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl HttpError {
    /// A short stable tag: "resolve", "connect", "tls", "timeout", "io",
    /// "protocol", "too_large" or "request".
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::Resolve { .. } => "resolve",
            HttpError::Connect { .. } => "connect",
            HttpError::Tls(_) => "tls",
            HttpError::Timeout { .. } => "timeout",
            HttpError::Io { .. } => "io",
            HttpError::Protocol(_) => "protocol",
            HttpError::BodyTooLarge { .. } => "too_large",
            HttpError::InvalidRequest(_) => "request",
        }
    }

    /// Whether the connection was closed or reset by the other side (the
    /// sign of a keep-alive connection the server had already dropped).
    pub(super) fn is_connection_closed(&self) -> bool {
        matches!(
            self,
            HttpError::Io { source, .. } if matches!(
                source.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            )
        )
    }

    /// Classifies an I/O error from the connection: a socket time-out, a
    /// TLS failure (rustls reports those as `InvalidData` wrapping its
    /// error), or a plain I/O error.
    pub(super) fn from_io(e: io::Error, during: &'static str, timeout: Duration) -> HttpError {
        if matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) {
            return HttpError::Timeout {
                during: during.to_owned(),
                after: timeout,
            };
        }
        if let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return HttpError::Tls(super::tls::describe(tls));
        }
        HttpError::Io { during, source: e }
    }
}
