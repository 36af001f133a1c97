//! Response bodies over real sockets: framing, limits, truncation,
//! garbage.

use std::time::Duration;

use super::super::{HttpError, Response};
use super::*;

/// Serves `response` (written in `pieces`, 20 ms apart) to one request and
/// returns what the client got.
fn fetch(
    pieces: &[&[u8]],
    method: &'static str,
    max_body: usize,
) -> (Result<Response, HttpError>, usize) {
    let pieces: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
    let (addr, server) = serve_one(move |mut conn| {
        read_request(&mut conn).unwrap();
        for piece in pieces {
            write(&mut conn, &piece);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let (mut http, sockets) = client_at(addr, TIMEOUT, max_body);
    let request = Request {
        method,
        path: "/x",
        headers: &[],
        body: None,
    };
    let result = http.request(&request);
    let open = sockets.open_count();
    drop(http);
    server.join().unwrap();
    (result, open)
}

#[test]
fn content_length_body() {
    let (r, open) = fetch(
        &[
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"ngth: 11\r\nETag: \"e1\"\r\n\r\nhello",
            b" world",
        ],
        "GET",
        LARGE,
    );
    let r = r.unwrap();
    assert_eq!(
        (r.status, body(&r), r.header("etag")),
        (200, "hello world", Some("\"e1\""))
    );
    assert_eq!(open, 1, "kept alive");
}

#[test]
fn chunked_body_with_trailers() {
    let (r, open) = fetch(
        &[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n",
            b"5\r\n worl\r\n1\r",
            b"\nd\r\n0\r\nX-Checksum: 1\r\n\r\n",
        ],
        "GET",
        LARGE,
    );
    assert_eq!(body(&r.unwrap()), "hello world");
    assert_eq!(open, 1, "kept alive");
}

#[test]
fn read_until_close_body() {
    let (r, open) = fetch(&[b"HTTP/1.1 200 OK\r\n\r\nhello", b" world"], "GET", LARGE);
    assert_eq!(body(&r.unwrap()), "hello world");
    assert_eq!(
        open, 0,
        "a body delimited by the close cannot be followed by another response"
    );
}

#[test]
fn not_modified_and_head_have_no_body_and_keep_the_connection() {
    let (addr, server) = serve_one(|mut conn| {
        respond(
            &mut conn,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
        );
        respond(&mut conn, b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n");
        respond(&mut conn, b"HTTP/1.1 204 No Content\r\n\r\n");
        respond(&mut conn, ok("last").as_bytes());
    });
    let (mut http, _) = client(addr);
    let r = http.request(&get("/a")).unwrap();
    assert_eq!((r.status, r.body.len()), (304, 0));
    let head = Request {
        method: "HEAD",
        ..get("/a")
    };
    let r = http.request(&head).unwrap();
    assert_eq!(
        (r.status, r.body.len(), r.header("Content-Length")),
        (200, 0, Some("7"))
    );
    assert_eq!(http.request(&get("/a")).unwrap().status, 204);
    assert_eq!(get_text(&mut http, "/a"), "last");
    server.join().unwrap();
}

#[test]
fn continue_is_skipped() {
    let (r, _) = fetch(
        &[
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ],
        "GET",
        LARGE,
    );
    let r = r.unwrap();
    assert_eq!((r.status, body(&r)), (200, "ok"));
}

#[test]
fn a_body_over_the_limit_is_refused_and_the_connection_discarded() {
    let (r, open) = fetch(
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"],
        "GET",
        100,
    );
    assert_error(&r.unwrap_err(), "too_large", "limit of 100 bytes");
    assert_eq!(open, 0);
    let chunk = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n{}\r\n40\r\n",
        "x".repeat(64)
    );
    let (r, open) = fetch(&[chunk.as_bytes()], "GET", 100);
    assert_eq!(r.unwrap_err().kind(), "too_large");
    assert_eq!(open, 0);
}

#[test]
fn a_truncated_body_is_an_error() {
    let (r, open) = fetch(
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"],
        "GET",
        LARGE,
    );
    assert_error(
        &r.unwrap_err(),
        "protocol",
        "response truncated after 5 of 10 bytes",
    );
    assert_eq!(open, 0);
    let (r, _) = fetch(
        &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello"],
        "GET",
        LARGE,
    );
    let err = r.unwrap_err();
    assert!(err.to_string().contains("truncated after 5 bytes"), "{err}");
}

#[test]
fn garbage_and_oversized_headers_are_protocol_errors() {
    let (r, _) = fetch(&[b"SSH-2.0-OpenSSH_9.2\r\n\r\n"], "GET", LARGE);
    assert_error(
        &r.unwrap_err(),
        "protocol",
        "malformed status line \"SSH-2.0-OpenSSH_9.2\"",
    );
    let huge = format!(
        "HTTP/1.1 200 OK\r\n{}\r\n",
        "X-Filler: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n".repeat(2000)
    );
    let (r, open) = fetch(&[huge.as_bytes()], "GET", LARGE);
    assert_error(
        &r.unwrap_err(),
        "protocol",
        "header section is larger than 65536 bytes",
    );
    assert_eq!(open, 0);
}
