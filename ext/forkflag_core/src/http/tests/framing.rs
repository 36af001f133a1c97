//! The response reader on in-memory input: framing rules, and garbage that
//! must never panic.

use std::io::Read;
use std::time::Duration;

use super::super::input::Input;
use super::super::response::{read_response, Received};
use super::super::HttpError;

/// Hands out the input a few bytes at a time, like a slow socket.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(self.step).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn parse_with(data: &[u8], step: usize, method: &str, limit: usize) -> Result<Received, HttpError> {
    let mut input = Input::new(Dribble { data, step }, Duration::from_secs(1));
    read_response(&mut input, method, limit)
}

fn parse(data: &str) -> Result<Received, HttpError> {
    parse_with(data.as_bytes(), 3, "GET", 1 << 20)
}

fn error(data: &str) -> String {
    match parse(data) {
        Ok(r) => panic!("accepted {data:?}: status {}", r.response.status),
        Err(e) => e.to_string(),
    }
}

#[test]
fn keep_alive_follows_version_and_connection_header() {
    let reusable = |s: &str| parse(s).unwrap().reusable;
    assert!(reusable("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(!reusable(
        "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!reusable("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(reusable(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    ));
    // Transfer-Encoding with Content-Length: chunked wins, the connection goes.
    let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n").unwrap();
    assert_eq!(
        (r.response.body.as_slice(), r.reusable),
        (&b"ok"[..], false)
    );
    // Bytes after the response (received with it): out of step, not reused.
    let extra = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy";
    assert!(!parse_with(extra, 1000, "GET", 100).unwrap().reusable);
}

#[test]
fn keep_alive_timeout_is_read() {
    let r = parse("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(r.keep_alive, Some(Duration::from_secs(5)));
}

#[test]
fn lenient_where_harmless() {
    // Bare LF line ends, no reason phrase, header without a space.
    let r = parse("HTTP/1.1 200\nContent-Length:2\n\nok").unwrap();
    assert_eq!(
        (r.response.status, r.response.body.as_slice()),
        (200, &b"ok"[..])
    );
    assert_eq!(r.response.header("CONTENT-LENGTH"), Some("2"));
}

#[test]
fn malformed_framing_is_refused() {
    for (data, why) in [
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx",
            "invalid Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "invalid Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "invalid Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "unsupported transfer coding",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx",
            "gzip-encoded",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "invalid chunk size",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokk\r\n0\r\n\r\n",
            "longer than its declared size",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
            "invalid chunk size",
        ),
        ("HTTP/1.1 200 OK\r\n folded\r\n\r\n", "folding"),
        (
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "malformed header line",
        ),
        (
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "malformed header line",
        ),
        ("HTTP/2 200\r\n\r\n", "unsupported HTTP version"),
        ("HTTP/1.1 20 OK\r\n\r\n", "malformed status line"),
        ("HTTP/1.1 099 OK\r\n\r\n", "malformed status line"),
        ("HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"),
        ("HTTP/1.1 200 OK\r\nContent-Le", "truncated"),
        ("", "closed the connection without answering"),
    ] {
        let err = error(data);
        assert!(err.contains(why), "{data:?}: {err}");
    }
    let long_line = format!("HTTP/1.1 200 OK\r\nX: {}", "y".repeat(70_000));
    assert!(error(&long_line).contains("header section is larger than 65536 bytes"));
    let long_chunk = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;{}",
        "e".repeat(5000)
    );
    assert!(error(&long_chunk).contains("chunk-size line is longer than 4096 bytes"));
    let interim = "HTTP/1.1 103 Early Hints\r\n\r\n".repeat(20) + "HTTP/1.1 200 OK\r\n\r\n";
    assert!(error(&interim).contains("too many interim"));
}

#[test]
fn until_close_body_over_the_limit() {
    let data = format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(5000));
    let err = parse_with(data.as_bytes(), 700, "GET", 1000)
        .err()
        .map(|e| e.kind());
    assert_eq!(err, Some("too_large"));
    assert!(parse_with(data.as_bytes(), 700, "GET", 5000).is_ok());
}

/// xorshift64*: a fixed-seed generator so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbage_never_panics() {
    let seeds: [&[u8]; 5] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nETag: x\r\n\r\nhello world",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\n\r\nuntil close",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ];
    let alphabet = b"HTTP/1.0 \r\n:;,0123456789abcdefABCDEF-xzchunkedContent-LengthTransfer-Encoding\t\x00\xff";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let mut data = seeds[round % seeds.len()].to_vec();
        for _ in 0..=rng.below(8) {
            let at = rng.below(data.len() + 1);
            match rng.below(4) {
                0 if at < data.len() => data[at] = alphabet[rng.below(alphabet.len())],
                1 if at < data.len() => {
                    data.remove(at);
                }
                2 => data.insert(at, alphabet[rng.below(alphabet.len())]),
                _ => data.truncate(at),
            }
        }
        if round % 7 == 0 {
            data = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        }
        let step = 1 + rng.below(64);
        let method = if round % 5 == 0 { "HEAD" } else { "GET" };
        // Any outcome but a panic (or a body over the limit) is fine.
        if let Ok(r) = parse_with(&data, step, method, 64) {
            assert!(r.response.body.len() <= 64);
        }
    }
}
