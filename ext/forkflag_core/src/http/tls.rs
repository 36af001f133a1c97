//! TLS configuration (rustls with the ring provider) and readable TLS errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::endpoint::Endpoint;
use crate::CoreError;

/// How the client checks the server's certificate.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// A PEM file with one or more CA certificates, trusted in addition to
    /// the system store (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
    pub ca_file: Option<PathBuf>,
    /// Whether to verify the certificate at all. `false` is for testing
    /// only: anyone on the path can then read the token.
    pub verify: bool,
}

impl Default for TlsOptions {
    /// The system's roots, verification on.
    fn default() -> TlsOptions {
        TlsOptions {
            ca_file: None,
            verify: true,
        }
    }
}

/// What a client's connections trust, loaded once, in the process that
/// creates the client, by [`Tls::load`], and shared read-only by every
/// [`super::HttpClient`] made from it: the client's thread in that process
/// and, inherited through the fork, in every forked child. Loading the
/// system's store (reading and parsing some 150 certificates) costs a few
/// milliseconds of CPU and, in a forked child, hundreds of KiB of
/// copy-on-write pages; sharing it costs a child one reference count.
///
/// It holds no lock and nothing a thread could leave half-written: the
/// rustls configuration, whose session cache holds a mutex a parent's
/// thread may hold at the moment of a fork, is made per [`super::HttpClient`]
/// (see [`client_config`]).
#[derive(Clone)]
pub struct Tls(Trust);

#[derive(Clone)]
enum Trust {
    /// Nothing loaded: the server is reached over plain HTTP.
    Plain,
    /// Certificates are verified against these roots.
    Roots(Arc<RootCertStore>),
    /// `verify: false`.
    AnyCertificate,
}

impl Tls {
    /// What an HTTP client of `endpoint` needs under `options`: for an
    /// https endpoint with verification on, the system's roots (which
    /// honour `SSL_CERT_FILE` and `SSL_CERT_DIR`) and the certificates of
    /// `options.ca_file`, read now; nothing for an http endpoint.
    ///
    /// A CA file that cannot be read or holds no certificate is an
    /// `InvalidConfig` error naming the file.
    pub fn load(endpoint: &Endpoint, options: &TlsOptions) -> Result<Tls, CoreError> {
        if !endpoint.is_tls() {
            return Ok(Tls::plain());
        }
        warm_up();
        if !options.verify {
            return Ok(Tls(Trust::AnyCertificate));
        }
        let mut roots = RootCertStore::empty();
        // Unreadable entries of the system store are skipped: a missing
        // root shows up as "certificate not trusted" at the handshake.
        roots.add_parsable_certificates(load_system_store().certs);
        if let Some(path) = &options.ca_file {
            add_ca_file(&mut roots, path)?;
        }
        Ok(Tls(Trust::Roots(Arc::new(roots))))
    }

    /// For a client of an http endpoint only: nothing loaded.
    pub fn plain() -> Tls {
        Tls(Trust::Plain)
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Trust::Plain => f.write_str("Tls(plain)"),
            Trust::Roots(roots) => write!(f, "Tls({} roots)", roots.len()),
            Trust::AnyCertificate => f.write_str("Tls(any certificate)"),
        }
    }
}

/// The system's store, read and parsed (the expensive part of [`Tls::load`]).
fn load_system_store() -> rustls_native_certs::CertificateResult {
    #[cfg(test)]
    tests::SYSTEM_STORE_LOADS.with(|loads| loads.set(loads.get() + 1));
    rustls_native_certs::load_native_certs()
}

/// Runs, in the process that creates the client, the one-time initialiser
/// of the TLS library that a client's thread would otherwise run first, so
/// that a fork cannot catch it half-way in another thread: the source of
/// randomness. Where the kernel lacks getrandom(2), its first use opens
/// /dev/urandom under a process-wide lock, which a child forked at that
/// moment would wait for forever. (ring's CPU feature detection, the other
/// one, is lock-free and warmed by [`crate::process::fork::warm_up`]; rustls's
/// process-default provider is never used: every configuration names its
/// own.)
fn warm_up() {
    use ::ring::rand::SecureRandom;
    let mut byte = [0u8; 1];
    let _ = ::ring::rand::SystemRandom::new().fill(&mut byte);
}

/// Sessions kept for resumption per configuration: one server's worth
/// (rustls keeps up to 8 TLS 1.3 tickets per server name), as a client
/// talks to one server. rustls's default keeps room for 32 servers.
const RESUMPTION_SESSIONS: usize = 8;

/// Builds the configuration of one [`super::HttpClient`] (so of one
/// process's thread): HTTP/1.1 only (ALPN "http/1.1"), trusting `tls`. The
/// roots are shared, not copied; the rest is this configuration's own, its
/// session cache included. `None` for a [`Tls::plain`].
pub(super) fn client_config(tls: &Tls) -> Result<Option<Arc<ClientConfig>>, CoreError> {
    if let Trust::Plain = tls.0 {
        return Ok(None);
    }
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| CoreError::InvalidConfig(format!("cannot set up TLS: {e}")))?;
    let mut config = match &tls.0 {
        Trust::Plain => return Ok(None),
        Trust::Roots(roots) => builder
            .with_root_certificates(Arc::clone(roots))
            .with_no_client_auth(),
        Trust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::in_memory_sessions(RESUMPTION_SESSIONS);
    Ok(Some(Arc::new(config)))
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), CoreError> {
    let bad =
        |why: String| CoreError::InvalidConfig(format!("tls_ca_file {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not valid PEM: {e}")))?;
        roots.add(cert).map_err(|e| {
            bad(format!(
                "holds a certificate that cannot be used as a CA: {e}"
            ))
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(bad(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    Ok(())
}

/// The name the certificate must carry: a DNS name (sent as SNI) or an IP
/// address (no SNI; the certificate needs an IP subject alternative name).
pub(super) fn server_name(host: &str) -> Result<ServerName<'static>, CoreError> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| CoreError::InvalidConfig(format!("{host:?} is not a valid TLS server name")))
}

/// What went wrong, in words a user can act on.
pub(super) fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "certificate not trusted (UnknownIssuer); give the CA with tls_ca_file".to_owned()
            }
            CertificateError::NotValidForName => {
                "certificate not valid for this host name".to_owned()
            }
            // The expected name as the user wrote it in the URL ("127.0.0.1",
            // not `IpAddress(V4(Ipv4Addr([127, 0, 0, 1])))`), and the names
            // of the certificate the way openssl writes subjectAltName.
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => format!(
                "certificate not valid for {:?}; it names {}",
                expected.to_str(),
                presented_names(presented)
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet (check the clock)".to_owned()
            }
            CertificateError::Revoked => "certificate revoked".to_owned(),
            other => format!("invalid certificate ({other:?})"),
        },
        E::AlertReceived(alert) => format!("the server refused the handshake (alert {alert:?})"),
        E::NoApplicationProtocol => "the server does not speak HTTP/1.1 (ALPN)".to_owned(),
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            format!("{e} (is the server speaking TLS on this port?)")
        }
        other => other.to_string(),
    }
}

/// The certificate's names for a message: "DNS:localhost, IP:127.0.0.1".
/// webpki hands them over in its debug form (`DnsName("localhost")`,
/// `IpAddress(127.0.0.1)`); anything else is shown as it came.
fn presented_names(presented: &[String]) -> String {
    if presented.is_empty() {
        return "no name (its subjectAltName lists no DNS name or IP address)".to_owned();
    }
    let readable = |name: &String| {
        let dns = name
            .strip_prefix("DnsName(\"")
            .and_then(|rest| rest.strip_suffix("\")"))
            .map(|host| format!("DNS:{host}"));
        let ip = || {
            name.strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
                .map(|addr| format!("IP:{addr}"))
        };
        dns.or_else(ip).unwrap_or_else(|| name.clone())
    };
    presented
        .iter()
        .map(readable)
        .collect::<Vec<_>>()
        .join(", ")
}

/// For `verify: false` ONLY, which is for testing: accepts any certificate
/// for any name, but still checks that the handshake is signed by the key of
/// the certificate presented.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    thread_local! {
        /// How many times this thread read the system's store.
        pub(in crate::http) static SYSTEM_STORE_LOADS: std::cell::Cell<usize> =
            const { std::cell::Cell::new(0) };
    }

    #[test]
    fn a_name_mismatch_reads_like_the_url_and_the_certificate() {
        let error = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: server_name("127.0.0.1").unwrap(),
            presented: vec![
                "DnsName(\"localhost\")".to_owned(),
                "IpAddress(10.0.0.1)".to_owned(),
                "DirectoryName".to_owned(),
            ],
        });
        assert_eq!(
            describe(&error),
            "certificate not valid for \"127.0.0.1\"; it names DNS:localhost, IP:10.0.0.1, DirectoryName"
        );
        let none = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: server_name("flags.example.com").unwrap(),
            presented: vec![],
        });
        assert!(describe(&none)
            .starts_with("certificate not valid for \"flags.example.com\"; it names no name"));
    }
}
