//! DPoP proofs (RFC 9449): the checks of §4.3 that need no state, shared by
//! appauth's token endpoint and admin API and by resource servers. Single
//! use of `jti` (§11.1) and server nonces (§8, §9) need state: the caller
//! asks its own replay ledger and nonce source with what this returns.

use crate::jwk;
use crate::jws::{Alg, MAX_TOKEN_BYTES};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// A proof may be this old (`iat`), and this far in the future (clock skew).
pub const MAX_AGE_SECONDS: i64 = 60;
pub const LEEWAY_SECONDS: i64 = 30;

/// A proof that passed every stateless check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key: what `cnf.jkt` binds.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    /// The server nonce it carries, if any (the caller checks it).
    pub nonce: Option<String>,
}

/// Why a proof was refused: the `error_description` of `invalid_dpop_proof`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopError(pub String);

impl std::fmt::Display for DpopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the request the proof came with looks like.
pub struct Expected<'a> {
    /// The HTTP method (`htm`).
    pub method: &'a str,
    /// The request's URL (`htu`); query and fragment are ignored.
    pub url: &'a str,
    /// The access token presented with it (resource access: `ath`).
    pub access_token: Option<&'a str>,
    pub now: i64,
}

fn fail<T>(m: impl Into<String>) -> Result<T, DpopError> {
    Err(DpopError(m.into()))
}

/// Scheme, host and port (lower-cased, default port dropped) and path.
fn comparable(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("{}://{host}{port}{}", u.scheme(), u.path()))
}

/// The RFC 7638 thumbprint of a public JWK (EC, OKP or RSA).
pub fn thumbprint(jwk: &Value) -> Result<String, DpopError> {
    let s = |name: &str| -> Result<&str, DpopError> {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| DpopError(format!("the proof's jwk lacks \"{name}\"")))
    };
    let canonical = match s("kty")? {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv")?,
            s("x")?,
            s("y")?
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv")?, s("x")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?),
        other => return fail(format!("the proof's jwk has kty {other:?}; use EC, OKP or RSA")),
    };
    // The members are base64url; anything else could smuggle JSON in.
    if canonical.contains('\\') {
        return fail("the proof's jwk members must be base64url");
    }
    Ok(URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes())))
}

/// `ath`: the base64url SHA-256 of the access token.
pub fn token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes()))
}

/// Checks a proof per RFC 9449 §4.3, items 1 to 11 except `jti` single use
/// and the nonce's value (the caller's state).
pub fn check(proof: &str, expected: &Expected<'_>) -> Result<Proof, DpopError> {
    if proof.len() > MAX_TOKEN_BYTES {
        return fail(format!("the DPoP proof is larger than {MAX_TOKEN_BYTES} bytes"));
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return fail("the DPoP proof is not a compact JWS (three base64url parts)");
    };
    let json = |part: &str, what: &str| -> Result<Value, DpopError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| DpopError(format!("the DPoP proof's {what} is not base64url")))?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| DpopError(format!("the DPoP proof's {what} is not a JSON object")))
    };
    let header = json(h, "header")?;
    let claims = json(p, "payload")?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return fail("the DPoP proof's typ must be dpop+jwt (RFC 9449 section 4.2)");
    }
    if header.get("crit").is_some() {
        return fail("the DPoP proof names critical header extensions this server does not understand");
    }
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = Alg::parse(alg_name).ok_or_else(|| {
        DpopError(format!(
            "the DPoP proof's alg {alg_name:?} is not accepted; use ES256, EdDSA, RS256 or PS256 (never none or a MAC)"
        ))
    })?;
    let Some(mut key) = header.get("jwk").filter(|k| k.is_object()).cloned() else {
        return fail("the DPoP proof's header must carry its public key as jwk");
    };
    // The proof's key is its own: for RSA the header's alg says which
    // padding; a jwk that names another alg contradicts it.
    match key.get("alg").and_then(Value::as_str) {
        Some(a) if a != alg_name => return fail("the DPoP proof's jwk names another alg than its header"),
        Some(_) => {}
        None => {
            if let Some(o) = key.as_object_mut() {
                o.insert("alg".into(), alg_name.into());
            }
        }
    }
    let parsed = jwk::parse(&key).map_err(|e| DpopError(format!("the DPoP proof's jwk: {e}")))?;
    if parsed.key.alg != alg {
        return fail("the DPoP proof's jwk does not fit its alg");
    }
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| DpopError("the DPoP proof's signature is not base64url".into()))?;
    if !parsed.key.verify(&proof.as_bytes()[..h.len() + 1 + p.len()], &sig) {
        return fail("the DPoP proof's signature does not verify with its jwk");
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| DpopError("the DPoP proof needs a jti of 1 to 256 characters".into()))?;
    if text("htm") != Some(expected.method) {
        return fail(format!("the DPoP proof's htm must be {}", expected.method));
    }
    let htu_ok = match (text("htu").and_then(comparable), comparable(expected.url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    };
    if !htu_ok {
        return fail(format!("the DPoP proof's htu must be {}", expected.url));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| DpopError("the DPoP proof needs iat (whole seconds)".into()))?;
    if iat > expected.now + LEEWAY_SECONDS {
        return fail("the DPoP proof's iat is in the future");
    }
    if iat < expected.now - MAX_AGE_SECONDS - LEEWAY_SECONDS {
        return fail(format!(
            "the DPoP proof is older than {MAX_AGE_SECONDS} s; sign a fresh one per request"
        ));
    }
    match (expected.access_token, text("ath")) {
        (Some(token), Some(ath)) if ath == token_hash(token) => {}
        (Some(_), Some(_)) => return fail("the DPoP proof's ath is not the hash of this access token"),
        (Some(_), None) => return fail("the DPoP proof needs ath, the hash of the access token it comes with"),
        (None, _) => {}
    }
    Ok(Proof {
        jkt: thumbprint(&key)?,
        jti: jti.to_owned(),
        iat,
        nonce: text("nonce").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7638_example_thumbprint_is_reproduced() {
        // RFC 7638 section 3.1.
        let jwk = serde_json::json!({"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
