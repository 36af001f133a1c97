//! A request: what the caller asks for, and the bytes written on the wire
//! (head and body in one buffer).

use super::endpoint::Endpoint;
use super::error::HttpError;

/// One request.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// "GET", "POST", ...
    pub method: &'static str,
    /// Relative to the endpoint's base path, starting with `/`; may include
    /// a query string (already percent-encoded): "/client/features?project=x".
    pub path: &'a str,
    /// Extra headers. `Host`, `Content-Length`, `Transfer-Encoding`,
    /// `Connection` and `Accept-Encoding` are the client's own: copies here
    /// are ignored.
    pub headers: &'a [(&'a str, &'a str)],
    /// Sent with `Content-Length`; the caller sets `Content-Type`.
    pub body: Option<&'a [u8]>,
}

impl std::fmt::Debug for Request<'_> {
    /// Header values are left out: they carry the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &names)
            .field("body_bytes", &self.body.map(<[u8]>::len))
            .finish()
    }
}

/// Headers the client sets itself; a caller's copies are ignored.
const MANAGED: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "accept-encoding",
];

/// Serialises the request: head and body in one buffer, written at once.
pub(super) fn request_bytes(endpoint: &Endpoint, req: &Request<'_>) -> Result<Vec<u8>, HttpError> {
    if !is_token(req.method) {
        return Err(HttpError::InvalidRequest(format!(
            "method {:?} is not a valid HTTP method",
            req.method
        )));
    }
    if !req.path.starts_with('/') || !req.path.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return Err(HttpError::InvalidRequest(format!(
            "path {:?} must start with / and hold no spaces, control characters, non-ASCII or # \
             (percent-encode them)",
            req.path
        )));
    }
    let body = req.body.unwrap_or_default();
    let mut out = Vec::with_capacity(256 + body.len());
    let line = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    out.extend_from_slice(
        format!(
            "{} {}{} HTTP/1.1\r\n",
            req.method,
            endpoint.base_path(),
            req.path
        )
        .as_bytes(),
    );
    line(&mut out, "Host", &endpoint.authority());
    line(&mut out, "Accept-Encoding", "identity");
    if req.body.is_some() || matches!(req.method, "POST" | "PUT" | "PATCH") {
        line(
            &mut out,
            "Content-Length",
            itoa::Buffer::new().format(body.len()),
        );
    }
    for &(name, value) in req.headers {
        if check_header_name(name).is_err() {
            return Err(HttpError::InvalidRequest(format!(
                "header name {name:?} is not valid"
            )));
        }
        // The value is never shown: it may be the token.
        if has_control(value) {
            return Err(HttpError::InvalidRequest(format!(
                "the value of header {name} holds a line break or control character"
            )));
        }
        if !MANAGED.iter().any(|m| m.eq_ignore_ascii_case(name)) {
            line(&mut out, name, value);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

/// Longest value the client's options may put in a request line or header
/// (an application name, a token, a custom header's value).
pub const MAX_HEADER_BYTES: usize = 8192;

/// What is wrong with a header name or a value sent in a request; checked
/// when a client is configured (the Ruby options map it to an
/// ArgumentError naming the option) and again for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// A name that is not an RFC 9110 token.
    InvalidName,
    /// A value longer than [`MAX_HEADER_BYTES`].
    TooLong,
    /// A value with a line break or another control character (a tab is
    /// allowed).
    ControlCharacter,
}

/// Checks a header name: an RFC 9110 token.
pub fn check_header_name(name: &str) -> Result<(), HeaderProblem> {
    if is_token(name) {
        Ok(())
    } else {
        Err(HeaderProblem::InvalidName)
    }
}

/// Checks a value an option sends in a request line or header.
pub fn check_header_value(value: &str) -> Result<(), HeaderProblem> {
    if value.len() > MAX_HEADER_BYTES {
        Err(HeaderProblem::TooLong)
    } else if has_control(value) {
        Err(HeaderProblem::ControlCharacter)
    } else {
        Ok(())
    }
}

/// A line break or another control character other than a tab.
fn has_control(value: &str) -> bool {
    value.bytes().any(|b| b.is_ascii_control() && b != b'\t')
}

/// `tchar` of RFC 9110.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod checks {
    use super::*;

    #[test]
    fn header_names_are_tokens() {
        assert_eq!(check_header_name("X-Team_1"), Ok(()));
        for bad in ["", "X Team", "X:Team", "X\nTeam", "Ä"] {
            assert_eq!(
                check_header_name(bad),
                Err(HeaderProblem::InvalidName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn header_values_hold_no_control_character_and_at_most_8_kib() {
        assert_eq!(check_header_value("a\tb é"), Ok(()));
        assert_eq!(check_header_value(&"x".repeat(MAX_HEADER_BYTES)), Ok(()));
        assert_eq!(
            check_header_value(&"x".repeat(MAX_HEADER_BYTES + 1)),
            Err(HeaderProblem::TooLong)
        );
        for bad in ["a\nb", "a\rb", "a\0b", "a\u{7f}b"] {
            assert_eq!(
                check_header_value(bad),
                Err(HeaderProblem::ControlCharacter),
                "{bad:?}"
            );
        }
    }
}
