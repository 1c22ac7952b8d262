//! Applications: machine identities that exchange a client ID and secret for
//! tokens (RFC 6749 §2: confidential clients).

use super::secret::SecretHash;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An application name: `^[a-z][-_a-z0-9]*[a-z0-9]$`, at most 63 characters
/// (fits a DNS label, so names can be reused in hostnames and paths).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

pub const APP_NAME_RULE: &str = "a name is 2–63 characters of lowercase letters, digits, `-` and `_`, starting with a letter and ending with a letter or digit";

impl AppName {
    /// Whether a byte may appear in a name (anywhere: the first and last
    /// have narrower rules). The list query's name search relies on it.
    pub fn allows(c: u8) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let ok = (2..=63).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter().all(|&c| Self::allows(c))
            && b.last().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("invalid name {s:?}: {APP_NAME_RULE}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AppName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<AppName> for String {
    fn from(n: AppName) -> String {
        n.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The public half of an application's credentials (RFC 6749 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        Self(super::new_id())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stored application record. Timestamps are Unix milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: String,
    pub name: AppName,
    pub client_id: ClientId,
    #[serde(with = "hash_hex")]
    pub secret_hash: SecretHash,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Public keys for `private_key_jwt` (RFC 7523); absent: secret only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Box<super::client_keys::ClientKeys>>,
    /// When the current secret was made (Unix ms); absent on records
    /// written before rotation with overlap existed: then `created_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_created_at: Option<i64>,
    /// The secret a rotation with overlap replaced, while it still works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<Box<super::rotation::RetiringSecret>>,
    #[serde(flatten)]
    pub policy: TokenPolicy,
    /// External identities that may stand in for the secret (see
    /// `domain::federated`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_credentials: Vec<super::federated::FederatedCredential>,
    /// The client certificate that may stand in for the secret (RFC 8705).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth: Option<Box<super::tls_client::TlsClientAuth>>,
}

/// What tokens an application may get besides its rules: for which
/// audiences (Auth0's client grants, Hydra's per-client audience list) and
/// how long they live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPolicy {
    /// `None`: every audience the issuer serves — applications stored
    /// before audiences were per application keep what they could do, and
    /// so does the administrator `init` creates. New applications get an
    /// explicit list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_audiences: Option<Vec<String>>,
    /// `None`: `issuer.token_ttl_seconds`. Never longer than it at issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl_seconds: Option<i64>,
    /// Tokens only with a DPoP proof (RFC 9449 §5), bound to its key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
    /// Tokens only over mutual TLS, bound to the client certificate (RFC
    /// 8705 §3), whichever way the client authenticates.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub certificate_bound_access_tokens: bool,
}

/// A change to a [`TokenPolicy`]: each member left out stays as it is.
#[derive(Debug, Clone, Default)]
pub struct PolicyChange {
    pub allowed_audiences: Option<Vec<String>>,
    /// `Some(None)`: back to the issuer's default lifetime.
    pub token_ttl_seconds: Option<Option<i64>>,
    pub dpop_bound_access_tokens: Option<bool>,
    pub certificate_bound_access_tokens: Option<bool>,
}

impl PolicyChange {
    pub fn is_empty(&self) -> bool {
        self.allowed_audiences.is_none()
            && self.token_ttl_seconds.is_none()
            && self.dpop_bound_access_tokens.is_none()
            && self.certificate_bound_access_tokens.is_none()
    }

    pub fn apply_to(self, policy: &mut TokenPolicy) {
        if let Some(a) = self.allowed_audiences {
            policy.allowed_audiences = Some(a);
        }
        if let Some(t) = self.token_ttl_seconds {
            policy.token_ttl_seconds = t;
        }
        if let Some(d) = self.dpop_bound_access_tokens {
            policy.dpop_bound_access_tokens = d;
        }
        if let Some(c) = self.certificate_bound_access_tokens {
            policy.certificate_bound_access_tokens = c;
        }
    }
}

impl TokenPolicy {
    /// Whether tokens for `audience` may be issued.
    pub fn allows(&self, audience: &str) -> bool {
        self.allowed_audiences
            .as_ref()
            .is_none_or(|list| list.iter().any(|a| a == audience))
    }

    /// Whether every audience `other` allows, this one allows too.
    pub fn covers(&self, other: &TokenPolicy, served: &[String]) -> bool {
        match &other.allowed_audiences {
            Some(list) => list.iter().all(|a| self.allows(a)),
            None => served.iter().all(|a| self.allows(a)),
        }
    }

    /// For audit summaries.
    pub fn describe(&self) -> String {
        let audiences = match &self.allowed_audiences {
            None => "every audience".to_owned(),
            Some(list) => format!("[{}]", list.join(", ")),
        };
        let ttl = match self.token_ttl_seconds {
            None => "the issuer's default lifetime".to_owned(),
            Some(s) => format!("{s} s"),
        };
        let mut d = format!("audiences {audiences}, tokens for {ttl}");
        if self.dpop_bound_access_tokens {
            d.push_str(", DPoP-bound only");
        }
        if self.certificate_bound_access_tokens {
            d.push_str(", certificate-bound only");
        }
        d
    }
}

impl Application {
    pub fn secret_created_at(&self) -> i64 {
        self.secret_created_at.unwrap_or(self.created_at)
    }
}

pub(super) mod hash_hex {
    use super::SecretHash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &SecretHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretHash, D::Error> {
        let s = String::deserialize(d)?;
        SecretHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("bad secret hash"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_rule() {
        for ok in ["ci-pipeline-prod", "a1", "x_y", &"a".repeat(63)] {
            assert!(AppName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "A1", "1abc", "ab-", "a b", "héllo", &"a".repeat(64), "ab/../c"] {
            assert!(AppName::parse(bad).is_err(), "{bad}");
        }
    }
}
