//! Compact JWS decoding and checking for access tokens (RFC 7515, RFC 9068
//! §4, RFC 8725). Shared by admin authentication, introspection and the
//! resource-server verifier so there is one implementation of the checks.
//!
//! The algorithm is pinned to the key (RFC 8725 §3.1): the header's `alg`
//! must be one this server signs with *and* equal to the key's own algorithm,
//! so `none`, HMAC-with-a-public-key and algorithm substitution all fail.

use crate::claims::AccessTokenClaims;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};

/// A JWS algorithm (RFC 7518 §3.1, RFC 8037). appauth signs with ES256
/// (default), EdDSA or RS256; PS256 is accepted from clients' own keys
/// (`private_key_jwt`, RFC 7523).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    ES256,
    EdDSA,
    RS256,
    PS256,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::ES256, Alg::EdDSA, Alg::RS256, Alg::PS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, Alg::RS256 | Alg::PS256)
    }
}

/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// A verification key pinned to one algorithm. `bytes` is the SEC1 point
/// (ES256), the raw key (EdDSA) or the DER `RSAPublicKey` (RS256, PS256),
/// as ring reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub alg: Alg,
    pub bytes: Vec<u8>,
}

impl PublicKey {
    /// An RSA key from its big-endian modulus and exponent (a JWK's `n`, `e`).
    pub fn rsa(alg: Alg, n: &[u8], e: &[u8]) -> Self {
        let body = [der_uint(n), der_uint(e)].concat();
        let mut bytes = vec![0x30];
        der_len(body.len(), &mut bytes);
        bytes.extend(body);
        PublicKey { alg, bytes }
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let alg: &'static dyn ring::signature::VerificationAlgorithm = match self.alg {
            Alg::ES256 => &ECDSA_P256_SHA256_FIXED,
            Alg::EdDSA => &ED25519,
            Alg::RS256 => &RSA_PKCS1_2048_8192_SHA256,
            Alg::PS256 => &RSA_PSS_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(alg, &self.bytes).verify(msg, sig).is_ok()
    }
}

/// A DER INTEGER holding the unsigned big-endian `v`.
fn der_uint(v: &[u8]) -> Vec<u8> {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len().saturating_sub(1));
    let v = &v[start.min(v.len())..];
    let mut out = vec![0x02];
    let pad = v.first().is_none_or(|b| b & 0x80 != 0);
    der_len(v.len() + usize::from(pad), &mut out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
    out
}

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("token is not a compact JWS: {0}")]
    Malformed(&'static str),
    #[error("token header is invalid: {0}")]
    Header(String),
    #[error("unsigned tokens (alg \"none\") are never accepted")]
    AlgNone,
    #[error("HMAC algorithm {0:?} is never accepted: keys are asymmetric (RFC 8725 section 2.1)")]
    HmacAlg(String),
    #[error("token algorithm {0:?} is not accepted")]
    UnsupportedAlg(String),
    #[error("token type must be at+jwt (RFC 9068)")]
    WrongType,
    #[error("token was signed with an unknown key")]
    UnknownKey,
    #[error("token algorithm does not match its key")]
    AlgMismatch,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token claims are invalid: {0}")]
    Claims(String),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token claims to be issued in the future")]
    IssuedInFuture,
    #[error("token header names critical extensions this server does not understand (RFC 7515 section 4.1.11)")]
    CriticalExtension,
    #[error("token issuer is not the expected one")]
    WrongIssuer,
    #[error("token audience is not the expected one")]
    WrongAudience,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    /// RFC 7515 §4.1.11: extensions the token says must be understood.
    /// This decoder understands none, so any `crit` refuses the token.
    crit: Option<serde_json::Value>,
}

/// What a valid token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    /// `None` accepts any audience (the issuer introspecting its own tokens).
    pub audience: Option<&'a str>,
    pub now: i64,
    pub leeway: i64,
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed(what))
}

/// The header's `kid` and `alg` without checking anything else, for callers
/// that must fetch the key before verifying.
pub fn peek_kid(token: &str) -> Result<String, JwtError> {
    let head = token.split('.').next().unwrap_or_default();
    let header: Header =
        serde_json::from_slice(&b64(head, "header is not base64url")?).map_err(|e| JwtError::Header(e.to_string()))?;
    header.kid.ok_or_else(|| JwtError::Header("missing kid".into()))
}

pub fn decode(
    token: &str,
    lookup: impl FnOnce(&str) -> Option<PublicKey>,
    expect: &Expectations<'_>,
) -> Result<AccessTokenClaims, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };
    let header: Header =
        serde_json::from_slice(&b64(h, "header is not base64url")?).map_err(|e| JwtError::Header(e.to_string()))?;
    if header.crit.is_some() {
        return Err(JwtError::CriticalExtension);
    }
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(JwtError::AlgNone);
    }
    if header.alg.starts_with("HS") {
        return Err(JwtError::HmacAlg(header.alg));
    }
    let typ_ok = header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typ_ok {
        return Err(JwtError::WrongType);
    }
    let kid = header.kid.ok_or_else(|| JwtError::Header("missing kid".into()))?;
    let key = lookup(&kid).ok_or(JwtError::UnknownKey)?;
    // Pinned to the key: the header may only name the key's own algorithm.
    if key.alg.as_str() != header.alg {
        return Err(match Alg::parse(&header.alg) {
            Some(_) => JwtError::AlgMismatch,
            None if header.alg.starts_with("RS") || header.alg.starts_with("PS") => JwtError::AlgMismatch,
            None => JwtError::UnsupportedAlg(header.alg),
        });
    }
    let sig = b64(s, "signature is not base64url")?;
    let signed_len = h.len() + 1 + p.len();
    if !key.verify(&token.as_bytes()[..signed_len], &sig) {
        return Err(JwtError::BadSignature);
    }
    let claims: AccessTokenClaims =
        serde_json::from_slice(&b64(p, "payload is not base64url")?).map_err(|e| JwtError::Claims(e.to_string()))?;
    if claims.iss != expect.issuer {
        return Err(JwtError::WrongIssuer);
    }
    if let Some(aud) = expect.audience
        && !claims.aud.contains(aud)
    {
        return Err(JwtError::WrongAudience);
    }
    // Saturating arithmetic: an `exp` near i64::MAX must not wrap into the
    // past, nor an `nbf`/`iat` near i64::MIN into the future.
    if claims.exp.saturating_add(expect.leeway) <= expect.now {
        return Err(JwtError::Expired);
    }
    if claims.nbf.saturating_sub(expect.leeway) > expect.now {
        return Err(JwtError::NotYetValid);
    }
    // A token "issued" later than now would escape every revocation
    // cut-off of its client ("tokens issued before T"): refuse it.
    if claims.iat.saturating_sub(expect.leeway) > expect.now {
        return Err(JwtError::IssuedInFuture);
    }
    Ok(claims)
}

/// A short digest of a token for use as a cache key (never the token itself).
pub fn cache_key(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()))
}
