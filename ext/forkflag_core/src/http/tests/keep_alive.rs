//! Keep-alive over real sockets: reuse, stale connections, the one retry,
//! `Connection: close`, and the request head the server sees.

use std::sync::mpsc;
use std::time::Duration;

use super::*;

#[test]
fn keep_alive_reuses_one_connection() {
    let (addr, server) = serve_one(|mut conn| {
        assert!(
            answer_each(&mut conn, &["one", "two"]),
            "request on the same connection"
        );
        sees_eof(&mut conn)
    });
    let (mut http, sockets) = client(addr);
    assert_eq!(get_text(&mut http, "/a"), "one");
    assert_eq!(sockets.open_count(), 1);
    assert_eq!(get_text(&mut http, "/b"), "two");
    http.disconnect();
    assert_eq!(sockets.open_count(), 0);
    assert!(
        server.join().unwrap(),
        "the client closes its connection on disconnect"
    );
}

#[test]
fn a_keep_alive_connection_the_server_closed_is_replaced() {
    let (closed_tx, closed_rx) = mpsc::channel();
    let (addr, server) = serve(move |l| {
        let mut first = l.accept();
        respond(&mut first, ok("one").as_bytes());
        drop(first);
        closed_tx.send(()).unwrap();
        let mut second = l.accept();
        respond(&mut second, ok("two").as_bytes());
    });
    let (mut http, _) = client(addr);
    assert_eq!(get_text(&mut http, "/a"), "one");
    closed_rx.recv_timeout(LIMIT).unwrap();
    std::thread::sleep(Duration::from_millis(50)); // let the FIN arrive
    assert_eq!(get_text(&mut http, "/b"), "two");
    server.join().unwrap();
}

/// Answers "one" to the first request on a connection, reads the second
/// and closes it unanswered, as an idle-timed-out server would; returns the
/// next connection.
fn hang_up_on_the_second_request(l: &Listener) -> TcpStream {
    let mut first = l.accept();
    respond(&mut first, ok("one").as_bytes());
    read_request(&mut first).unwrap();
    drop(first);
    l.accept()
}

#[test]
fn a_reused_connection_closed_without_an_answer_is_retried_once() {
    let (addr, server) = serve(|l| {
        let mut second = hang_up_on_the_second_request(&l);
        respond(&mut second, ok("two").as_bytes())
    });
    let (mut http, _) = client(addr);
    assert_eq!(get_text(&mut http, "/a"), "one");
    let post = Request {
        method: "POST",
        path: "/client/metrics",
        headers: &[("Content-Type", "application/json")],
        body: Some(b"{}"),
    };
    assert_eq!(body(&http.request(&post).unwrap()), "two");
    let resent = server.join().unwrap();
    assert!(
        resent.starts_with("POST /api/client/metrics HTTP/1.1\r\n"),
        "{resent}"
    );
    assert!(resent.ends_with("\r\n\r\n{}"), "{resent}");
}

#[test]
fn the_retry_happens_once_and_never_on_a_fresh_connection() {
    let (addr, server) = serve(|l| {
        let mut second = hang_up_on_the_second_request(&l);
        read_request(&mut second).unwrap();
        drop(second);
        // A third connection would be a second retry.
        l.try_accept(Duration::from_millis(300)).is_none()
    });
    let (mut http, _) = client(addr);
    http.request(&get("/a")).unwrap();
    let err = http.request(&get("/b")).unwrap_err();
    assert_error(&err, "io", "closed the connection without answering");
    assert!(server.join().unwrap(), "no second retry");
}

#[test]
fn connection_close_is_honoured() {
    let (addr, server) = serve(|l| {
        let mut first = l.accept();
        respond(
            &mut first,
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\none",
        );
        // The server leaves it open: the client must close it by itself.
        let client_closed = sees_eof(&mut first);
        let mut second = l.accept();
        respond(&mut second, ok("two").as_bytes());
        client_closed
    });
    let (mut http, sockets) = client(addr);
    assert_eq!(get_text(&mut http, "/a"), "one");
    assert_eq!(sockets.open_count(), 0);
    assert_eq!(get_text(&mut http, "/b"), "two");
    assert!(server.join().unwrap());
}

#[test]
fn the_request_head_is_well_formed() {
    let (addr, server) = serve_one(|mut conn| {
        let first = respond(&mut conn, ok("").as_bytes());
        let second = respond(&mut conn, ok("").as_bytes());
        (first, second)
    });
    let (mut http, _) = client(addr);
    let headers = [
        ("Authorization", "secret-token"),
        ("Host", "evil"),
        ("Unleash-AppName", "app"),
    ];
    http.request(&Request {
        method: "GET",
        path: "/client/features?project=x",
        headers: &headers,
        body: None,
    })
    .unwrap();
    http.request(&Request {
        method: "POST",
        path: "/client/metrics",
        headers: &[("Content-Type", "application/json")],
        body: Some(b"{\"a\":1}"),
    })
    .unwrap();
    let (first, second) = server.join().unwrap();
    let host = format!("Host: {addr}\r\n");
    assert!(
        first.starts_with("GET /api/client/features?project=x HTTP/1.1\r\n"),
        "{first}"
    );
    for part in [
        host.as_str(),
        "Accept-Encoding: identity\r\n",
        "Authorization: secret-token\r\n",
        "Unleash-AppName: app\r\n",
    ] {
        assert!(first.contains(part), "{part:?} missing in {first}");
    }
    assert!(
        !first.contains("evil") && !first.contains("Content-Length"),
        "{first}"
    );
    assert!(
        second.starts_with("POST /api/client/metrics HTTP/1.1\r\n"),
        "{second}"
    );
    assert!(
        second.contains("Content-Length: 7\r\n") && second.ends_with("\r\n\r\n{\"a\":1}"),
        "{second}"
    );
}

#[test]
fn a_header_value_with_a_line_break_is_refused_without_being_shown() {
    let (mut http, _) = client(unused_addr());
    let err = http
        .request(&Request {
            method: "GET",
            path: "/a",
            headers: &[("Authorization", "token\r\nX-Injected: 1")],
            body: None,
        })
        .unwrap_err();
    assert_eq!(err.kind(), "request");
    assert!(
        err.to_string().contains("Authorization") && !err.to_string().contains("token"),
        "{err}"
    );
    let err = http.request(&get("/a b")).unwrap_err();
    assert_eq!(err.kind(), "request");
}

#[test]
fn a_request_prints_header_names_but_not_values() {
    let request = Request {
        headers: &[("Authorization", "s3cret")],
        ..get("/a")
    };
    let shown = format!("{request:?}");
    assert!(
        shown.contains("Authorization") && shown.contains("\"/a\""),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn a_keep_alive_time_out_past_what_the_clock_holds_keeps_the_connection() {
    let (addr, server) = serve_one(|mut conn| {
        for body in ["one", "two"] {
            read_request(&mut conn).expect("request on the same connection");
            let answer = format!(
                "HTTP/1.1 200 OK\r\nKeep-Alive: timeout={}\r\nContent-Length: {}\r\n\r\n{body}",
                u64::MAX,
                body.len()
            );
            write(&mut conn, answer.as_bytes());
        }
        sees_eof(&mut conn)
    });
    let (mut http, _) = client(addr);
    assert_eq!(get_text(&mut http, "/a"), "one");
    assert_eq!(get_text(&mut http, "/b"), "two");
    http.disconnect();
    assert!(server.join().unwrap());
}
