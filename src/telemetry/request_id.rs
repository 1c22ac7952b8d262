//! Request ids: one per request, in the `X-Request-Id` response header,
//! the access line and audit records, so an operator can join the three.

use std::sync::atomic::{AtomicU64, Ordering};

/// Request extension: this request's id, also in the `X-Request-Id`
/// response header, the access log line and audit records.
#[derive(Clone, Copy, Debug)]
pub struct RequestId(pub RequestIdValue);

/// A request id: a random per-process prefix and a counter, so making one
/// costs an atomic increment (the token endpoint pays it on every request).
#[derive(Clone, Copy, Debug)]
pub struct RequestIdValue {
    prefix: u32,
    n: u64,
}

pub(super) const X_REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

impl RequestIdValue {
    /// `pppppppp-nnnnnnnnnnnn` in lowercase hex, without the formatting machinery.
    pub(super) fn hex(&self) -> [u8; 21] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 21];
        for i in 0..8 {
            out[i] = HEX[((self.prefix >> (28 - 4 * i)) & 0xf) as usize];
        }
        for i in 0..12 {
            out[9 + i] = HEX[((self.n >> (44 - 4 * i)) & 0xf) as usize];
        }
        out
    }
}

impl std::fmt::Display for RequestIdValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.hex()).unwrap_or("-"))
    }
}

pub struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut b = [0u8; 4];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        Self {
            prefix: u32::from_be_bytes(b),
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    pub fn next(&self) -> RequestIdValue {
        RequestIdValue {
            prefix: self.prefix,
            n: self.next.fetch_add(1, Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_hex_prefix_and_counter() {
        let v = RequestIdValue {
            prefix: 0x7b84_8083,
            n: 0x21,
        };
        assert_eq!(v.to_string(), "7b848083-000000000021");
        assert_eq!(v.to_string(), format!("{:08x}-{:012x}", v.prefix, v.n));
    }
}
