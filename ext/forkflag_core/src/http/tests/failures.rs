//! Failures over real sockets: time-outs, refused connections,
//! unresolvable names.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn a_silent_server_times_out() {
    let timeout = Duration::from_millis(400);
    let (addr, server) = serve_one(|mut conn| {
        read_request(&mut conn).unwrap();
        sees_eof(&mut conn) // never answers; waits for the client to give up
    });
    let (mut http, sockets) = client_at(addr, timeout, LARGE);
    let start = Instant::now();
    let err = http.request(&get("/a")).unwrap_err();
    assert_error(
        &err,
        "timeout",
        "timed out after 400 ms while waiting for the response",
    );
    assert_returned_in_time(start, timeout);
    assert_eq!(
        sockets.open_count(),
        0,
        "a timed-out connection is discarded"
    );
    assert!(server.join().unwrap());
}

#[test]
fn a_trickling_server_hits_the_overall_deadline() {
    let timeout = Duration::from_millis(500);
    let (addr, server) = serve_one(|mut conn| {
        respond(&mut conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        // One byte per 100 ms: each read is quick, the whole is not.
        for _ in 0..100 {
            if std::io::Write::write_all(&mut conn, b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (mut http, _) = client_at(addr, timeout, LARGE);
    let start = Instant::now();
    let err = http.request(&get("/a")).unwrap_err();
    assert_eq!(err.kind(), "timeout", "{err}");
    assert_returned_in_time(start, timeout);
    drop(http);
    server.join().unwrap();
}

#[test]
fn connection_refused_is_a_connect_error() {
    let addr = unused_addr();
    let (mut http, sockets) = client(addr);
    let err = http.request(&get("/a")).unwrap_err();
    assert_error(&err, "connect", &format!("cannot connect to {addr}"));
    assert_eq!(sockets.open_count(), 0);
}

#[test]
fn an_unresolvable_host_is_a_resolve_error() {
    let (mut http, _) = client_with(
        "http://nonexistent.invalid:4242/api",
        &TlsOptions::default(),
        TIMEOUT,
        LARGE,
    );
    let err = http.request(&get("/a")).unwrap_err();
    assert_error(
        &err,
        "resolve",
        "cannot resolve host \"nonexistent.invalid\"",
    );
}

#[test]
fn a_host_name_is_resolved_and_connected() {
    let (addr, server) = serve_one(|mut conn| read_request(&mut conn).unwrap());
    let (mut http, _) = client_with(
        &format!("http://localhost:{}/api", addr.port()),
        &TlsOptions::default(),
        TIMEOUT,
        LARGE,
    );
    // The server hangs up without answering: what matters is the request
    // reached it through the resolved name (localhost may be ::1 first).
    let _ = http.request(&get("/a"));
    assert!(server
        .join()
        .unwrap()
        .contains(&format!("Host: localhost:{}\r\n", addr.port())));
}
