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
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is a valid, writable buffer of the length passed.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return "undefined".into();
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).to_lowercase()
    })
}
