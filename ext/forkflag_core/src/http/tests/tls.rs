//! TLS against a rustls server in a thread, with a CA and server
//! certificate made at test time.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::*;
use crate::CoreError;

/// A CA, and a server certificate it signed for `names`.
pub(super) struct Pki {
    pub ca_file: PathBuf,
    pub server: Arc<ServerConfig>,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// A file name no other test (or test run) uses.
pub(super) fn temp_path(what: &str) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("forkflag-http-{}-{n}-{what}", std::process::id()))
}

pub(super) fn pki(names: &[&str]) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "forkflag test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let ca_file = temp_path("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let server =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
    Pki {
        ca_file,
        server: Arc::new(server),
    }
}

/// A TLS stream on an accepted connection.
pub(super) type TlsStream = StreamOwned<ServerConnection, std::net::TcpStream>;

pub(super) fn accept_tls(l: &Listener, config: &Arc<ServerConfig>) -> TlsStream {
    StreamOwned::new(
        ServerConnection::new(Arc::clone(config)).unwrap(),
        l.accept(),
    )
}

/// Serves `bodies.len()` requests on one connection; returns whether the
/// handshake and all requests went through.
fn serve_tls(
    config: Arc<ServerConfig>,
    bodies: &'static [&'static str],
) -> (SocketAddr, JoinHandle<bool>) {
    serve(move |l| answer_each(&mut accept_tls(&l, &config), bodies))
}

pub(super) fn with_ca(pki: &Pki) -> TlsOptions {
    TlsOptions {
        ca_file: Some(pki.ca_file.clone()),
        verify: true,
    }
}

#[test]
fn trusted_with_the_ca_file_and_kept_alive() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let (addr, server) = serve_tls(Arc::clone(&pki.server), &["one", "two"]);
    let url = format!("https://localhost:{}/api", addr.port());
    let (mut http, sockets) = client_with(&url, &with_ca(&pki), TIMEOUT, LARGE);
    // localhost may resolve to ::1 first: refused there, then 127.0.0.1.
    assert_eq!(get_text(&mut http, "/a"), "one");
    assert_eq!(sockets.open_count(), 1);
    assert_eq!(get_text(&mut http, "/b"), "two");
    assert!(
        server.join().unwrap(),
        "both requests on one TLS connection"
    );
}

#[test]
fn an_ip_literal_is_verified_against_the_ip_san() {
    let pki = pki(&["127.0.0.1"]);
    let (addr, server) = serve_tls(Arc::clone(&pki.server), &["ip"]);
    let (mut http, _) = https_at(addr, &with_ca(&pki));
    assert_eq!(get_text(&mut http, "/a"), "ip");
    assert!(server.join().unwrap());
}

#[test]
fn untrusted_without_the_ca_file() {
    let pki = pki(&["127.0.0.1"]);
    let (addr, server) = serve_tls(Arc::clone(&pki.server), &["never"]);
    let (mut http, sockets) = https_at(addr, &TlsOptions::default());
    let err = http.request(&get("/a")).unwrap_err();
    assert_eq!(err.kind(), "tls", "{err}");
    let message = err.to_string();
    assert!(
        message.contains("certificate not trusted (UnknownIssuer)")
            && message.contains("tls_ca_file"),
        "{message}"
    );
    assert_eq!(sockets.open_count(), 0);
    assert!(!server.join().unwrap());
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let pki = pki(&["unleash.example.com"]);
    let (addr, server) = serve_tls(Arc::clone(&pki.server), &["never"]);
    let (mut http, _) = https_at(addr, &with_ca(&pki));
    let err = http.request(&get("/a")).unwrap_err();
    assert_error(&err, "tls", "certificate not valid for");
    assert!(!server.join().unwrap());
}

#[test]
fn verify_false_accepts_any_certificate() {
    let pki = pki(&["unleash.example.com"]);
    let (addr, server) = serve_tls(Arc::clone(&pki.server), &["insecure"]);
    let insecure = TlsOptions {
        ca_file: None,
        verify: false,
    };
    let (mut http, _) = https_at(addr, &insecure);
    assert_eq!(get_text(&mut http, "/a"), "insecure");
    assert!(server.join().unwrap());
}

#[test]
fn a_plain_http_server_on_an_https_url_is_a_tls_error() {
    let (addr, server) = serve_one(|mut conn| {
        write(
            &mut conn,
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        );
        // Read all the client sends (no reset that could beat our answer).
        let _ = std::io::copy(&mut conn, &mut std::io::sink());
    });
    let (mut http, _) = https_at(addr, &TlsOptions::default());
    let err = http.request(&get("/a")).unwrap_err();
    assert_error(&err, "tls", "speaking TLS");
    server.join().unwrap();
}

#[test]
fn a_tls_connection_the_server_closed_is_replaced() {
    let pki = pki(&["127.0.0.1"]);
    let config = Arc::clone(&pki.server);
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    let (addr, server) = serve(move |l| {
        let mut first = accept_tls(&l, &config);
        respond(&mut first, ok("one").as_bytes());
        first.conn.send_close_notify();
        write(&mut first, b"");
        drop(first);
        closed_tx.send(()).unwrap();
        let mut second = accept_tls(&l, &config);
        respond(&mut second, ok("two").as_bytes());
    });
    let (mut http, _) = https_at(addr, &with_ca(&pki));
    assert_eq!(get_text(&mut http, "/a"), "one");
    closed_rx.recv_timeout(LIMIT).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(get_text(&mut http, "/b"), "two");
    server.join().unwrap();
}

#[test]
fn a_bad_ca_file_is_a_configuration_error_naming_it() {
    let endpoint = Endpoint::parse("https://127.0.0.1:1/api").unwrap();
    let load = |path: PathBuf| {
        let options = TlsOptions {
            ca_file: Some(path),
            verify: true,
        };
        Tls::load(&endpoint, &options).map(|_| ())
    };
    let missing = temp_path("missing.pem");
    assert_invalid_config(
        load(missing.clone()),
        &missing.display().to_string(),
        "cannot read",
    );
    let junk = temp_path("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let result = load(junk.clone());
    let _ = std::fs::remove_file(&junk);
    assert_invalid_config(result, &junk.display().to_string(), "no PEM certificate");
}

/// Asserts that `result` is a configuration error whose message contains
/// both parts.
#[track_caller]
fn assert_invalid_config<T: std::fmt::Debug>(result: Result<T, CoreError>, one: &str, two: &str) {
    match result {
        Err(CoreError::InvalidConfig(m)) => {
            assert!(m.contains(one) && m.contains(two), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nothing_is_read_for_an_http_endpoint_even_with_a_bad_ca_file() {
    let options = TlsOptions {
        ca_file: Some(temp_path("never-read.pem")),
        verify: true,
    };
    let before = system_store_loads();
    let tls = Tls::load(
        &Endpoint::parse("http://127.0.0.1:1/api").unwrap(),
        &options,
    )
    .unwrap();
    assert_eq!(system_store_loads(), before);
    assert_eq!(format!("{tls:?}"), "Tls(plain)");
}

#[test]
fn an_https_client_without_loaded_roots_is_a_configuration_error() {
    let endpoint = Endpoint::parse("https://127.0.0.1:1/api").unwrap();
    let result = HttpClient::new(
        endpoint,
        &Tls::plain(),
        TIMEOUT,
        LARGE,
        Arc::new(SocketRegistry::new()),
    );
    assert_invalid_config(result, "https://127.0.0.1:1/api", "no TLS roots");
}

/// How many times this thread read the system's store.
/// A client of `endpoint` with the loaded roots, the test timeout and its
/// own socket registry.
pub(super) fn https_client(endpoint: &Endpoint, tls: &Tls) -> Result<HttpClient, CoreError> {
    HttpClient::new(
        endpoint.clone(),
        tls,
        TIMEOUT,
        LARGE,
        Arc::new(SocketRegistry::new()),
    )
}

pub(super) fn system_store_loads() -> usize {
    super::super::tls::tests::SYSTEM_STORE_LOADS.with(std::cell::Cell::get)
}

/// Serves one request on each of `count` TLS connections; returns how
/// many went through.
pub(super) fn serve_tls_connections(
    config: Arc<ServerConfig>,
    count: usize,
) -> (SocketAddr, JoinHandle<usize>) {
    serve(move |l| {
        (0..count)
            .filter(|_| {
                let mut tls = accept_tls(&l, &config);
                let served = read_request(&mut tls).is_some();
                write(&mut tls, ok("roots").as_bytes());
                served
            })
            .count()
    })
}

#[test]
fn the_roots_are_read_once_per_client_not_per_connection_or_thread_start() {
    let pki = pki(&["127.0.0.1"]);
    let (addr, server) = serve_tls_connections(Arc::clone(&pki.server), 3);
    let endpoint = Endpoint::parse(&format!("https://{addr}/api")).unwrap();
    let before = system_store_loads();
    let tls = Tls::load(&endpoint, &with_ca(&pki)).unwrap();
    assert_eq!(system_store_loads() - before, 1, "read at creation");
    // Neither the CA file nor the system's store is read again: each
    // thread start (a new HttpClient) and each connection uses the roots
    // loaded above.
    std::fs::remove_file(&pki.ca_file).unwrap();
    for _ in 0..3 {
        let mut http = https_client(&endpoint, &tls).unwrap();
        assert_eq!(get_text(&mut http, "/a"), "roots");
    }
    assert_eq!(system_store_loads() - before, 1, "read once in all");
    assert_eq!(server.join().unwrap(), 3);
}
