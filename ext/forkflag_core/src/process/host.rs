//! This machine's host name, read once per process.

use std::sync::OnceLock;

/// This machine's host name as the applicationHostname strategy sees it
/// ($HOSTNAME, else gethostname(2), lowercased; "undefined" when neither
/// is available), read once per process.
pub fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        if let Ok(h) = std::env::var("HOSTNAME") {
            if !h.is_empty() {
                return h.to_lowercase();
            }
        }
        match nix::unistd::gethostname() {
            Ok(name) => name.to_string_lossy().to_lowercase(),
            Err(_) => "undefined".into(),
        }
    })
}
