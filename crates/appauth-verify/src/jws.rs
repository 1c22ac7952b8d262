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

    /// Verifies an access token's signature: as [`verify`](Self::verify),
    /// and an ES256 signature must be in its canonical low-S form. ECDSA
    /// signatures are malleable (`(r, n − s)` verifies as well as `(r, s)`),
    /// and a second valid encoding of the same token would dodge anything
    /// keyed on the token's bytes (caches, deny lists). appauth signs low-S
    /// only, so a high-S signature is a forgery of form.
    pub fn verify_canonical(&self, msg: &[u8], sig: &[u8]) -> bool {
        if self.alg == Alg::ES256 && !(sig.len() == 64 && is_low_s(&sig[32..])) {
            return false;
        }
        self.verify(msg, sig)
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

/// The order n of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
    0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// ⌊n / 2⌋: a signature's `s` at most this is the canonical (low-S) one.
const P256_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d,
    0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether the 32-byte big-endian `s` of a P-256 signature is ≤ n/2.
pub fn is_low_s(s: &[u8]) -> bool {
    s.len() == 32 && s <= &P256_HALF_N[..]
}

/// Rewrites a fixed-length (r ‖ s) P-256 signature into its low-S form
/// (s ↦ n − s when s > n/2); both verify, only the low-S one is accepted.
pub fn normalize_s(sig: &mut [u8]) {
    if sig.len() != 64 || is_low_s(&sig[32..]) {
        return;
    }
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(P256_N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        sig[32 + i] = d.rem_euclid(256) as u8;
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
    #[error("token lifetime (exp minus iat or nbf) is longer than any this issuer grants")]
    LifetimeTooLong,
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
    /// The longest lifetime (`exp` − `iat`, and `exp` − `nbf`) a genuine
    /// token can have: longer ones are refused, so a token minted with a
    /// stolen key (or a bug) cannot be made to last forever.
    pub max_lifetime: i64,
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
    if !key.verify_canonical(&token.as_bytes()[..signed_len], &sig) {
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
    let longest = expect.max_lifetime.saturating_add(expect.leeway);
    if claims.exp.saturating_sub(claims.iat.min(claims.nbf)) > longest {
        return Err(JwtError::LifetimeTooLong);
    }
    Ok(claims)
}

/// A short digest of a token for use as a cache key (never the token itself).
pub fn cache_key(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()))
}
