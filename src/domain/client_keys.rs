//! An application's registered public keys for `private_key_jwt` client
//! authentication (RFC 7523 §2.2, OIDC Core §9): a JWK Set (RFC 7517 §5) of
//! public keys only, each pinned to one algorithm (ES256, EdDSA, RS256 or
//! PS256). Parsed on the way in, so a stored set always verifies.

use appauth_verify::jwk::{self, ParsedJwk};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many keys per application: enough for a rotation overlap.
pub const MAX_KEYS: usize = 5;

/// The public members a key keeps; anything else is dropped on the way in.
const PUBLIC_MEMBERS: [&str; 9] = ["kty", "kid", "alg", "use", "crv", "x", "y", "n", "e"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct ClientKeys {
    /// The JWK Set as stored and shown: public members only.
    set: Vec<Value>,
}

impl ClientKeys {
    /// Parses a JWK Set `{"keys": [...]}`; the error names the key and member.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("jwks must be a JWK Set: {\"keys\": [ ...public keys... ]}")?;
        if value.as_object().is_some_and(|o| o.len() > 1) {
            return Err("jwks takes only the member \"keys\"".into());
        }
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(format!(
                "jwks must hold 1 to {MAX_KEYS} keys (send \"jwks\": null to remove them all)"
            ));
        }
        let mut set = Vec::with_capacity(keys.len());
        let mut kids: Vec<Option<String>> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let parsed = jwk::parse(key).map_err(|e| format!("jwks.keys[{i}]: {e}"))?;
            if keys.len() > 1 && parsed.kid.is_none() {
                return Err(format!(
                    "jwks.keys[{i}]: \"kid\" is required when several keys are registered"
                ));
            }
            if kids.contains(&parsed.kid) {
                return Err(format!(
                    "jwks.keys[{i}]: kid {:?} is used twice",
                    parsed.kid.unwrap_or_default()
                ));
            }
            kids.push(parsed.kid);
            let mut public = serde_json::Map::new();
            for m in PUBLIC_MEMBERS {
                if let Some(v) = key.get(m) {
                    public.insert(m.to_owned(), v.clone());
                }
            }
            set.push(Value::Object(public));
        }
        Ok(Self { set })
    }

    /// The verification keys (parsed once per write, for the hot index).
    pub fn verification_keys(&self) -> Vec<ParsedJwk> {
        self.set.iter().filter_map(|k| jwk::parse(k).ok()).collect()
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// `kid (alg)` of each key, for the audit log.
    pub fn describe(&self) -> String {
        self.verification_keys()
            .iter()
            .map(|k| format!("{} ({})", k.kid.as_deref().unwrap_or("no kid"), k.key.alg.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl TryFrom<Value> for ClientKeys {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        Self::parse(&v)
    }
}

impl From<ClientKeys> for Value {
    fn from(k: ClientKeys) -> Value {
        serde_json::json!({ "keys": k.set })
    }
}
