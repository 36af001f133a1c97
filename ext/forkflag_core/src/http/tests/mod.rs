//! Tests of the HTTP client against real sockets: servers on 127.0.0.1:0 in
//! threads, every blocking step bounded in time.

mod bodies;
mod failures;
mod fork;
mod framing;
mod keep_alive;
mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Endpoint, HttpClient, HttpError, Request, Tls, TlsOptions};
use crate::process::forked::in_forked_child;
use crate::process::inherited::close_every_inherited;
use crate::process::SocketRegistry;

/// Bound on every wait of a test server (accept, read).
const LIMIT: Duration = Duration::from_secs(5);
/// The client's timeout where the test is not about time-outs.
const TIMEOUT: Duration = Duration::from_secs(5);
const LARGE: usize = 1 << 20;

/// A listening socket that accepts within [`LIMIT`].
struct Listener(TcpListener);

impl Listener {
    /// The next connection, with reads bounded by [`LIMIT`].
    fn accept(&self) -> TcpStream {
        self.try_accept(LIMIT)
            .expect("no connection within the limit")
    }

    /// The next connection if one arrives within `wait`.
    fn try_accept(&self, wait: Duration) -> Option<TcpStream> {
        let until = Instant::now() + wait;
        loop {
            match self.0.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking");
                    stream.set_read_timeout(Some(LIMIT)).expect("read timeout");
                    stream
                        .set_write_timeout(Some(LIMIT))
                        .expect("write timeout");
                    return Some(stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= until {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// Runs `serve` in a thread with a listener on 127.0.0.1:0.
fn serve<T: Send + 'static>(
    serve: impl FnOnce(Listener) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let addr = listener.local_addr().expect("local addr");
    (addr, std::thread::spawn(move || serve(Listener(listener))))
}

/// Runs `serve` in a thread on the one connection a listener on
/// 127.0.0.1:0 accepts.
fn serve_one<T: Send + 'static>(
    serve: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    self::serve(move |l| serve(l.accept()))
}

/// Reads one request (head and Content-Length body); None at the end of
/// the stream or on an error.
fn read_request(stream: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let length = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .map_or(0, |v| v.parse::<usize>().expect("content-length"));
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    Some(text + &String::from_utf8_lossy(&body))
}

/// Reads one request on `conn` (it must come), answers `response` and
/// returns the request.
fn respond<S: Read + Write>(conn: &mut S, response: &[u8]) -> String {
    let request = read_request(conn).expect("a request");
    write(conn, response);
    request
}

/// Whether the peer closed the stream (a read returns 0) within [`LIMIT`].
fn sees_eof(stream: &mut impl Read) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0))
}

fn write(stream: &mut impl Write, bytes: &[u8]) {
    // The client may have gone already (tests of refused bodies).
    let _ = stream.write_all(bytes).and_then(|()| stream.flush());
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn client_with(
    url: &str,
    tls: &TlsOptions,
    timeout: Duration,
    max_body: usize,
) -> (HttpClient, Arc<SocketRegistry>) {
    client_in(Arc::new(SocketRegistry::new()), url, tls, timeout, max_body)
}

fn client_in(
    sockets: Arc<SocketRegistry>,
    url: &str,
    tls: &TlsOptions,
    timeout: Duration,
    max_body: usize,
) -> (HttpClient, Arc<SocketRegistry>) {
    let endpoint = Endpoint::parse(url).expect("endpoint");
    let tls = Tls::load(&endpoint, tls).expect("tls");
    let client =
        HttpClient::new(endpoint, &tls, timeout, max_body, Arc::clone(&sockets)).expect("client");
    (client, sockets)
}

fn client(addr: SocketAddr) -> (HttpClient, Arc<SocketRegistry>) {
    client_at(addr, TIMEOUT, LARGE)
}

/// A client of `http://{addr}/api` with this time-out and body limit.
fn client_at(
    addr: SocketAddr,
    timeout: Duration,
    max_body: usize,
) -> (HttpClient, Arc<SocketRegistry>) {
    client_with(
        &format!("http://{addr}/api"),
        &TlsOptions::default(),
        timeout,
        max_body,
    )
}

/// A client of `https://{addr}/api` with these TLS options.
fn https_at(addr: SocketAddr, tls: &TlsOptions) -> (HttpClient, Arc<SocketRegistry>) {
    client_with(&format!("https://{addr}/api"), tls, TIMEOUT, LARGE)
}

/// An address on 127.0.0.1 that nothing listens on.
fn unused_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Answers `ok(body)` to one request per body on `conn`; returns whether
/// every request came on it.
fn answer_each<S: Read + Write>(conn: &mut S, bodies: &[&str]) -> bool {
    for body in bodies {
        if read_request(conn).is_none() {
            return false;
        }
        write(conn, ok(body).as_bytes());
    }
    true
}

/// Asserts that `err` is of `kind` and that its message contains `part`.
#[track_caller]
fn assert_error(err: &HttpError, kind: &str, part: &str) {
    assert_eq!(err.kind(), kind, "{err}");
    assert!(err.to_string().contains(part), "{err}");
}

/// Asserts that a request started at `start` returned within three times
/// `timeout`.
#[track_caller]
fn assert_returned_in_time(start: Instant, timeout: Duration) {
    assert!(
        start.elapsed() < timeout * 3,
        "returned after {:?}",
        start.elapsed()
    );
}

fn get(path: &str) -> Request<'_> {
    Request {
        method: "GET",
        path,
        headers: &[],
        body: None,
    }
}

/// The body of the answer to a GET of `path`, which must succeed.
fn get_text(http: &mut HttpClient, path: &str) -> String {
    body(&http.request(&get(path)).unwrap()).to_owned()
}

fn body(response: &super::Response) -> &str {
    std::str::from_utf8(&response.body).expect("utf-8 body")
}
