//! What a background thread and the Ruby side of its process share: the
//! ready latch, the thread's sockets and the counters operators read.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64};
use std::sync::Arc;

use crate::process::SocketRegistry;
use crate::sync::Completion;

/// State shared between the thread and the Ruby side of one process.
#[derive(Debug)]
pub struct Shared {
    /// Set once the flags are current (first successful refresh).
    pub ready: Completion<()>,
    /// The sockets the thread has open.
    pub sockets: Arc<SocketRegistry>,
    /// Whether the thread is running.
    pub alive: AtomicBool,
    /// When the last successful refresh (200 or 304, or file read) ended,
    /// in milliseconds since the epoch (0: never).
    pub last_refresh_millis: AtomicI64,
    /// Successful refreshes by this process's threads: this one's, and
    /// those of the threads it restarted after (`park`).
    pub refreshes: AtomicU64,
    /// Failures of the poller since its last success.
    pub failures: AtomicU32,
    /// The poller's wait after its last attempt, in milliseconds: the
    /// refresh interval, stretched while it backs off (0: no attempt yet).
    pub refresh_delay_millis: AtomicU64,
    /// Polling stopped for good (401/403, or a bad configuration).
    pub polling_stopped: AtomicBool,
    /// Evaluations reported to the server.
    pub reported_evaluations: AtomicU64,
    /// Connection id of this process's thread.
    connection_id: ConnectionId,
}

impl Shared {
    /// The state of a thread about to start, counting on from `refreshes`
    /// made by this process's earlier threads.
    pub(crate) fn new(refreshes: u64) -> Shared {
        Shared {
            ready: Completion::new(),
            sockets: SocketRegistry::enlisted(),
            alive: AtomicBool::new(true),
            last_refresh_millis: AtomicI64::new(0),
            refreshes: AtomicU64::new(refreshes),
            failures: AtomicU32::new(0),
            refresh_delay_millis: AtomicU64::new(0),
            polling_stopped: AtomicBool::new(false),
            reported_evaluations: AtomicU64::new(0),
            connection_id: ConnectionId::random(),
        }
    }

    /// Connection id of this process's thread.
    pub fn connection_id(&self) -> &str {
        self.connection_id.as_str()
    }
}

/// The connection id of one process's thread: a random (version 4) UUID.
///
/// Made without the heap: a forked child makes one on its first
/// evaluation, when every heap page written costs a copy-on-write fault.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConnectionId([u8; 36]);

impl ConnectionId {
    fn random() -> ConnectionId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_mut(4) {
            chunk.copy_from_slice(&crate::process::random::random_u32().to_le_bytes());
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0x0f)];
            at += 2;
        }
        ConnectionId(text)
    }

    /// The id as text (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionId;

    #[test]
    fn a_connection_id_is_a_version_4_uuid_and_a_new_one_each_time() {
        let ids: Vec<ConnectionId> = (0..64).map(|_| ConnectionId::random()).collect();
        for id in &ids {
            let text = id.as_str();
            assert_eq!(text.len(), 36, "{text}");
            for (i, c) in text.char_indices() {
                match i {
                    8 | 13 | 18 | 23 => assert_eq!(c, '-', "{text}"),
                    14 => assert_eq!(c, '4', "{text}"),
                    19 => assert!(matches!(c, '8' | '9' | 'a' | 'b'), "{text}"),
                    _ => assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{text}"),
                }
            }
        }
        for (i, id) in ids.iter().enumerate() {
            assert!(!ids[i + 1..].contains(id), "{id:?} twice");
        }
    }
}
