//! Reading one response: interim responses, the body's framing (RFC 9112
//! section 6), keep-alive.

use std::io::{self, Read};
use std::time::Duration;

use super::error::HttpError;
use super::head::{excerpt, list, read_head, MAX_HEAD};
use super::input::Input;

/// Longest chunk-size line accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most interim (1xx) responses skipped before the final one.
const MAX_INTERIM: usize = 16;

const READING_BODY: &str = "while reading the response body";

/// A response, read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields, in order, as received (names as the server spelt
    /// them).
    pub headers: Vec<(String, String)>,
    /// The body (empty for HEAD, 204 and 304).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response read in full, and whether the connection can carry another
/// request (with the idle time the server announced, if any).
pub(super) struct Received {
    pub response: Response,
    pub reusable: bool,
    pub keep_alive: Option<Duration>,
}

/// Reads one response to a request with method `method`; skips interim
/// (1xx) responses; refuses bodies over `limit` bytes.
pub(super) fn read_response<R: Read>(
    input: &mut Input<R>,
    method: &str,
    limit: usize,
) -> Result<Received, HttpError> {
    let mut interim = 0;
    let head = loop {
        let head = read_head(input)?;
        match head.status {
            101 => {
                return Err(HttpError::Protocol(
                    "unexpected 101 Switching Protocols".to_owned(),
                ))
            }
            100..=199 if interim < MAX_INTERIM => interim += 1,
            100..=199 => {
                return Err(HttpError::Protocol(
                    "too many interim (1xx) responses".to_owned(),
                ))
            }
            _ => break head,
        }
    };
    let mut response = Response {
        status: head.status,
        headers: head.headers,
        body: Vec::new(),
    };
    let no_body = method.eq_ignore_ascii_case("HEAD") || matches!(response.status, 204 | 304);
    let connection = list(&response.headers, "connection");
    let mut reusable = if head.minor_version >= 1 {
        !connection.iter().any(|t| t == "close")
    } else {
        connection.iter().any(|t| t == "keep-alive")
    };
    let framing = if no_body {
        Framing::Empty
    } else {
        let (framing, ambiguous) = framing(&response)?;
        reusable &= !ambiguous;
        framing
    };
    if !matches!(framing, Framing::Empty) {
        if let Some(coding) = response.header("content-encoding") {
            if !coding.trim().eq_ignore_ascii_case("identity") {
                return Err(HttpError::Protocol(format!(
                    "the body is {}-encoded though the request asked for identity",
                    excerpt(coding.as_bytes())
                )));
            }
        }
    }
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => response.body = read_exact_body(input, n, limit)?,
        Framing::Chunked => response.body = read_chunked(input, limit)?,
        Framing::UntilClose => {
            response.body = read_until_close(input, limit)?;
            reusable = false;
        }
    }
    // Bytes after the response: the server is out of step with us.
    reusable &= input.buffered().is_empty();
    let keep_alive = keep_alive_timeout(&response);
    Ok(Received {
        response,
        reusable,
        keep_alive,
    })
}

fn trailers_too_large() -> HttpError {
    HttpError::Protocol(format!(
        "the trailer section is larger than {MAX_HEAD} bytes"
    ))
}

fn chunk_line_too_long() -> HttpError {
    HttpError::Protocol(format!(
        "a chunk-size line is longer than {MAX_CHUNK_LINE} bytes"
    ))
}

enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// How the body is delimited, and whether the framing was ambiguous
/// (Transfer-Encoding and Content-Length both present: the connection must
/// not be reused).
fn framing(response: &Response) -> Result<(Framing, bool), HttpError> {
    let lengths = list(&response.headers, "content-length");
    let codings = list(&response.headers, "transfer-encoding");
    if !codings.is_empty() {
        if codings != ["chunked"] {
            return Err(HttpError::Protocol(format!(
                "unsupported transfer coding \"{}\"",
                codings.join(", ")
            )));
        }
        return Ok((Framing::Chunked, !lengths.is_empty()));
    }
    let Some(first) = lengths.first() else {
        return Ok((Framing::UntilClose, false));
    };
    let valid = first.len() <= 19 && first.bytes().all(|b| b.is_ascii_digit());
    if !valid || lengths.iter().any(|l| l != first) {
        return Err(HttpError::Protocol(format!(
            "invalid Content-Length \"{}\"",
            excerpt(lengths.join(", ").as_bytes())
        )));
    }
    let n = first
        .parse()
        .map_err(|_| HttpError::Protocol(format!("invalid Content-Length {first}")))?;
    Ok((Framing::Length(n), false))
}

/// Moves up to `n` bytes from the buffer (reading more if it is empty) into
/// `body`; returns how many (0 at the end of the stream).
fn take<R: Read>(input: &mut Input<R>, body: &mut Vec<u8>, n: u64) -> Result<usize, HttpError> {
    if input.buffered().is_empty() && input.fill(READING_BODY)? == 0 {
        return Ok(0);
    }
    let data = input.buffered();
    let k = data.len().min(usize::try_from(n).unwrap_or(usize::MAX));
    body.extend_from_slice(&data[..k]);
    input.consume(k);
    Ok(k)
}

fn read_exact_body<R: Read>(
    input: &mut Input<R>,
    n: u64,
    limit: usize,
) -> Result<Vec<u8>, HttpError> {
    if n > limit as u64 {
        return Err(HttpError::BodyTooLarge { limit });
    }
    let mut body = Vec::with_capacity(n.min(1 << 20) as usize);
    while (body.len() as u64) < n {
        let wanted = n - body.len() as u64;
        if take(input, &mut body, wanted)? == 0 {
            return Err(HttpError::Protocol(format!(
                "response truncated after {} of {n} bytes",
                body.len()
            )));
        }
    }
    Ok(body)
}

fn read_chunked<R: Read>(input: &mut Input<R>, limit: usize) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    let truncated = |got: usize| {
        HttpError::Protocol(format!(
            "response truncated after {got} bytes of a chunked body"
        ))
    };
    loop {
        let line = input
            .line(MAX_CHUNK_LINE, READING_BODY, chunk_line_too_long)?
            .ok_or_else(|| truncated(body.len()))?;
        let size = parse_chunk_size(&line)?;
        if size == 0 {
            break;
        }
        if size > (limit - body.len()) as u64 {
            return Err(HttpError::BodyTooLarge { limit });
        }
        let end = body.len() as u64 + size;
        while (body.len() as u64) < end {
            let wanted = end - body.len() as u64;
            if take(input, &mut body, wanted)? == 0 {
                return Err(truncated(body.len()));
            }
        }
        match input.line(MAX_CHUNK_LINE, READING_BODY, chunk_line_too_long)? {
            Some(l) if l.is_empty() => {}
            Some(_) => {
                return Err(HttpError::Protocol(
                    "a chunk is longer than its declared size".to_owned(),
                ))
            }
            None => return Err(truncated(body.len())),
        }
    }
    // Trailer fields: read and ignored.
    let mut size = 0;
    loop {
        let line = input
            .line(MAX_HEAD, READING_BODY, trailers_too_large)?
            .ok_or_else(|| truncated(body.len()))?;
        if line.is_empty() {
            return Ok(body);
        }
        size += line.len() + 2;
        if size > MAX_HEAD {
            return Err(trailers_too_large());
        }
    }
}

/// "1a;ext=1" -> 26.
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let bad = || HttpError::Protocol(format!("invalid chunk size \"{}\"", excerpt(line)));
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let text = std::str::from_utf8(digits).map_err(|_| bad())?;
    u64::from_str_radix(text, 16).map_err(|_| bad())
}

fn read_until_close<R: Read>(input: &mut Input<R>, limit: usize) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        match take(input, &mut body, u64::MAX) {
            Ok(0) => return Ok(body),
            Ok(_) => {}
            // TLS closed without close_notify: the end of the body all the
            // same (a cut payload then fails to parse as JSON).
            Err(HttpError::Io { source, .. }) if source.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(body)
            }
            Err(e) => return Err(e),
        }
        if body.len() > limit {
            return Err(HttpError::BodyTooLarge { limit });
        }
    }
}

/// "Keep-Alive: timeout=5, max=100" -> 5 s.
fn keep_alive_timeout(response: &Response) -> Option<Duration> {
    list(&response.headers, "keep-alive")
        .iter()
        .find_map(|param| {
            let (key, value) = param.split_once('=')?;
            if key.trim() == "timeout" {
                value.trim().parse().ok().map(Duration::from_secs)
            } else {
                None
            }
        })
}
