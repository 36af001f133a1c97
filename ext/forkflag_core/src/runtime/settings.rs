//! What a client's background thread is given at creation: where flags
//! come from and how to talk to the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::http::{Endpoint, Tls};

/// Where flags come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An Unleash server.
    Server {
        /// The API base (`https://unleash.example.com/api`).
        endpoint: Arc<Endpoint>,
        /// The client token, sent as `Authorization`.
        token: Secret,
    },
    /// A client-features JSON file, re-read when it changes.
    File(PathBuf),
    /// Only the bootstrap given at creation: no thread.
    Static,
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret]")
    }
}

/// Everything the background thread needs to know, fixed at creation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Id of the client in log records.
    pub client_id: u64,
    /// Where flags come from.
    pub source: Source,
    /// `appName`.
    pub app_name: String,
    /// `instanceId`.
    pub instance_id: String,
    /// Environment the client declares in metrics.
    pub environment: Option<String>,
    /// Only flags of this project.
    pub project: Option<String>,
    /// Only flags whose names start with this.
    pub name_prefix: Option<String>,
    /// Time between refreshes.
    pub refresh_interval: Duration,
    /// Time between metrics reports.
    pub metrics_interval: Duration,
    /// Bound on each request (and on waiting for the thread at close).
    pub timeout: Duration,
    /// Extra request headers.
    pub custom_headers: Vec<(String, String)>,
    /// Whether the application gives the extra headers per request (a
    /// Proc): each request asks for them first
    /// ([`crate::logging::fetch_headers`]), and `custom_headers` are the
    /// ones to send until an answer came.
    pub header_hook: bool,
    /// Where the last good payload is kept: the file, or (ending in `/`) a
    /// directory where forkflag keeps it in a private folder (see
    /// [`BackupLocation`](super::BackupLocation)).
    pub backup_path: Option<PathBuf>,
    /// Whether to register and send metrics.
    pub metrics_enabled: bool,
    /// What the server's TLS connections trust, loaded when the client was
    /// created ([`Tls::load`]) and inherited by forked children.
    pub tls: Tls,
    /// Largest accepted response body.
    pub max_payload_bytes: usize,
    /// `forkflag:<version>`.
    pub sdk: String,
    /// User-Agent header.
    pub user_agent: String,
    /// Ruby engine name.
    pub platform_name: String,
    /// Ruby version.
    pub platform_version: String,
}

impl Settings {
    /// Largest accepted payload by default (documented in the README).
    pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;
}

#[cfg(test)]
impl Settings {
    /// Settings for tests: `source`, the application "shop", metrics on,
    /// no backup.
    pub(crate) fn for_test(source: Source) -> Settings {
        Settings {
            client_id: 1,
            source,
            app_name: "shop".into(),
            instance_id: "shop-1".into(),
            environment: None,
            project: None,
            name_prefix: None,
            refresh_interval: Duration::from_secs(15),
            metrics_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            custom_headers: Vec::new(),
            header_hook: false,
            backup_path: None,
            metrics_enabled: true,
            tls: Tls::plain(),
            max_payload_bytes: Settings::DEFAULT_MAX_PAYLOAD_BYTES,
            sdk: "forkflag:test".into(),
            user_agent: "forkflag/test".into(),
            platform_name: "ruby".into(),
            platform_version: "3.1.2".into(),
        }
    }
}
