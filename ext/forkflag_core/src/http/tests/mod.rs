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

use super::{Endpoint, HttpClient, Request, Tls, TlsOptions};
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
    client_with(
        &format!("http://{addr}/api"),
        &TlsOptions::default(),
        TIMEOUT,
        LARGE,
    )
}

fn get(path: &str) -> Request<'_> {
    Request {
        method: "GET",
        path,
        headers: &[],
        body: None,
    }
}

fn body(response: &super::Response) -> &str {
    std::str::from_utf8(&response.body).expect("utf-8 body")
}
