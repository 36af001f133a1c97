//! A read buffer over the connection, counting what it received.
//!
//! It works on any `Read`, so the framing rules are tested (and fed garbage)
//! without sockets.

use std::io::{self, Read};
use std::time::Duration;

use super::error::HttpError;

const READ_SIZE: usize = 16 * 1024;

/// A buffer over the connection that counts what it received.
pub(super) struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    received: u64,
    timeout: Duration,
}

impl<R: Read> Input<R> {
    /// `timeout` only names the limit in time-out errors.
    pub fn new(inner: R, timeout: Duration) -> Input<R> {
        Input {
            inner,
            buf: vec![0; READ_SIZE],
            start: 0,
            end: 0,
            received: 0,
            timeout,
        }
    }

    /// Bytes received from the connection so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes received but not consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Reads more; Ok(0) at the end of the stream.
    pub(super) fn fill(&mut self, during: &'static str) -> Result<usize, HttpError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    self.received += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(HttpError::from_io(e, during, self.timeout)),
            }
        }
    }

    /// The next line (without its line end); `too_long` once more than
    /// `max` bytes came without a line end. Ok(None) at the end of the
    /// stream before any byte of the line.
    pub(super) fn line(
        &mut self,
        max: usize,
        during: &'static str,
        too_long: fn() -> HttpError,
    ) -> Result<Option<Vec<u8>>, HttpError> {
        let mut scanned = 0;
        loop {
            let data = self.buffered();
            if let Some(i) = data[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                let mut line = data[..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(end + 1);
                return Ok(Some(line));
            }
            scanned = data.len();
            if scanned > max {
                return Err(too_long());
            }
            if self.fill(during)? == 0 {
                return match scanned {
                    0 => Ok(None),
                    _ => Err(HttpError::Protocol(
                        "response truncated in the middle of a line".to_owned(),
                    )),
                };
            }
        }
    }
}
