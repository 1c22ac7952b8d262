//! The revocation records appauth publishes (DESIGN §1, RFC 7009 for single
//! tokens) and the Redis names they travel under, shared by the issuer that
//! writes them and the verifiers that follow them.

use serde::{Deserialize, Serialize};

/// The Redis pub/sub channel carrying one message per revocation.
pub const CHANNEL: &str = "appauth:revocations";
/// The Redis key whose change tells followers to re-read the whole set.
pub const GENERATION_KEY: &str = "appauth:revocations:generation";

/// Verifiers may accept a token this long after `exp` (clock leeway), so
/// revocation records outlive the token by as much.
pub const LEEWAY_SECONDS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Revocation {
    /// One token. `exp` in Unix seconds.
    Token {
        jti: String,
        #[serde(rename = "clientId")]
        client_id: String,
        exp: i64,
    },
    /// Tokens of `client_id` with `iat < before`; the record lapses at `expires`.
    Client {
        #[serde(rename = "clientId")]
        client_id: String,
        before: i64,
        expires: i64,
    },
}

impl Revocation {
    /// Unix seconds after which the record no longer matters.
    pub fn lapses_at(&self) -> i64 {
        match self {
            Revocation::Token { exp, .. } => exp + LEEWAY_SECONDS,
            Revocation::Client { expires, .. } => *expires,
        }
    }
}
