//! Reading a response's header section: the status line and the header
//! fields, within a size limit.

use std::io::{self, Read};

use super::error::HttpError;
use super::input::Input;
use super::request::is_token;

/// Largest response header section (and trailer section) accepted.
pub(super) const MAX_HEAD: usize = 64 * 1024;

const WAITING: &str = "while waiting for the response";

/// A response's status line and header fields.
pub(super) struct Head {
    pub minor_version: u8,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

fn head_too_large() -> HttpError {
    HttpError::Protocol(format!(
        "the response header section is larger than {MAX_HEAD} bytes"
    ))
}

/// Reads the header section of one response.
pub(super) fn read_head<R: Read>(input: &mut Input<R>) -> Result<Head, HttpError> {
    let mut size = 0;
    let mut status_line = None;
    let mut headers = Vec::new();
    loop {
        let line = match input.line(MAX_HEAD - size, WAITING, head_too_large)? {
            Some(line) => line,
            None if status_line.is_none() && size == 0 => {
                let closed = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection without answering",
                );
                return Err(HttpError::Io {
                    during: WAITING,
                    source: closed,
                });
            }
            None => {
                return Err(HttpError::Protocol(
                    "response truncated in the header section".to_owned(),
                ))
            }
        };
        size += line.len() + 2;
        if size > MAX_HEAD {
            return Err(head_too_large());
        }
        if status_line.is_none() {
            // Tolerate stray empty lines before the status line.
            if !line.is_empty() {
                status_line = Some(parse_status_line(&line)?);
            }
            continue;
        }
        if line.is_empty() {
            break;
        }
        headers.push(parse_header(&line)?);
    }
    let (minor_version, status) = status_line.ok_or_else(head_too_large)?;
    Ok(Head {
        minor_version,
        status,
        headers,
    })
}

/// A short, escaped excerpt of bytes from the server, for messages.
pub(super) fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(60)];
    let mut out = cut.escape_ascii().to_string();
    if bytes.len() > cut.len() {
        out.push_str("...");
    }
    out
}

/// "HTTP/1.1 200 OK" -> (1, 200).
fn parse_status_line(line: &[u8]) -> Result<(u8, u16), HttpError> {
    let bad = || HttpError::Protocol(format!("malformed status line \"{}\"", excerpt(line)));
    let rest = line.strip_prefix(b"HTTP/").ok_or_else(bad)?;
    let (minor, rest) = match rest {
        [b'1', b'.', minor @ (b'0' | b'1'), rest @ ..] => (minor - b'0', rest),
        _ => {
            return Err(HttpError::Protocol(format!(
                "unsupported HTTP version in \"{}\"; only HTTP/1.x is spoken",
                excerpt(line)
            )))
        }
    };
    match rest {
        [b' ', a, b, c] | [b' ', a, b, c, b' ', ..]
            if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() && *a != b'0' =>
        {
            let status = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            Ok((minor, status))
        }
        _ => Err(bad()),
    }
}

fn parse_header(line: &[u8]) -> Result<(String, String), HttpError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(HttpError::Protocol(
            "obsolete header line folding".to_owned(),
        ));
    }
    let bad = || HttpError::Protocol(format!("malformed header line \"{}\"", excerpt(line)));
    let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let name = std::str::from_utf8(&line[..colon]).map_err(|_| bad())?;
    if !is_token(name) {
        return Err(bad());
    }
    let value = line[colon + 1..].trim_ascii();
    Ok((name.to_owned(), String::from_utf8_lossy(value).into_owned()))
}

/// The comma-separated tokens of every `name` header, lower-cased.
/// The comma-separated tokens of every header `name`, lowercased.
pub(super) fn list(headers: &[(String, String)], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}
