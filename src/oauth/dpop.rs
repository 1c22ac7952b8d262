//! DPoP at this server (RFC 9449): a proof's stateless checks are
//! `appauth_verify::dpop` (shared with resource servers); here are the
//! stateful ones: single use of its `jti` across instances (§11.1, through
//! the same ledger as client assertions) and server nonces (§8), which
//! change every minute and are derived from the store's pepper, so every
//! instance issues and accepts the same ones without sharing state.

use super::replay::{JtiLedger, Use};
use crate::error::OAuthError;
use appauth_verify::dpop::{self, Expected, Proof};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;

/// A nonce is good in its minute and the next.
const NONCE_WINDOW_SECONDS: i64 = 60;

/// Server nonces (RFC 9449 §8).
pub struct Nonces {
    key: ring::hmac::Key,
}

impl Nonces {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        }
    }

    fn for_window(&self, window: i64) -> String {
        let mut raw = window.to_be_bytes().to_vec();
        raw.extend_from_slice(&ring::hmac::sign(&self.key, &window.to_be_bytes()).as_ref()[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The nonce to hand out now.
    pub fn current(&self, now: i64) -> String {
        self.for_window(now.div_euclid(NONCE_WINDOW_SECONDS))
    }

    /// Whether `nonce` is this minute's or the last one's.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        use subtle::ConstantTimeEq;
        let w = now.div_euclid(NONCE_WINDOW_SECONDS);
        [w, w - 1]
            .iter()
            .any(|&x| bool::from(self.for_window(x).as_bytes().ct_eq(nonce.as_bytes())))
    }
}

/// The checks of a DPoP proof that need state.
pub struct Dpop {
    pub ledger: Arc<dyn JtiLedger>,
    /// Present when `oauth.dpop_nonce` requires nonces.
    pub nonces: Option<Nonces>,
}

impl Dpop {
    /// Checks `proof` for a request by `client_id` (RFC 9449 §4.3):
    /// stateless checks, then the nonce, then single use. Returns the proof
    /// (its `jkt`). Used `jti`s are counted per client, not per key: a
    /// client minting keys cannot take more than its share of the ledger.
    pub async fn check(&self, proof: &str, expected: &Expected<'_>, client_id: &str) -> Result<Proof, OAuthError> {
        let checked = dpop::check(proof, expected).map_err(|e| OAuthError::InvalidDpopProof(e.0))?;
        if let Some(nonces) = &self.nonces
            && !checked
                .nonce
                .as_deref()
                .is_some_and(|n| nonces.accepts(n, expected.now))
        {
            return Err(OAuthError::UseDpopNonce {
                nonce: nonces.current(expected.now),
            });
        }
        // The stateless check allows 30 s of clock skew ahead; single use
        // across restarts needs less: a proof may have been used from
        // `iat - FUTURE_SECONDS`, and the ledger refuses what may have been
        // used before its record began.
        if checked.iat > expected.now + FUTURE_SECONDS {
            return Err(OAuthError::InvalidDpopProof(format!(
                "the DPoP proof's iat is more than {FUTURE_SECONDS} s ahead of this server's clock; sync the client's clock"
            )));
        }
        let keep_until = checked.iat + dpop::MAX_AGE_SECONDS + dpop::LEEWAY_SECONDS;
        let scope = format!("dpop:{client_id}");
        let earliest_use = checked.iat - FUTURE_SECONDS;
        match self.ledger.first_use(&scope, &checked.jti, earliest_use, keep_until).await {
            Ok(Use::First) => Ok(checked),
            Ok(Use::Replay) => Err(OAuthError::InvalidDpopProof(
                "the DPoP proof's jti was already used; sign a fresh proof per request (RFC 9449 section 11.1)".into(),
            )),
            Ok(Use::BeforeCoverage { .. }) => Err(OAuthError::InvalidDpopProof(
                "the DPoP proof was made before this server's record of used proofs begins (a restart, or Redis lost its data); sign a fresh one".into(),
            )),
            Ok(Use::ClientFull { max }) => Err(OAuthError::InvalidDpopProof(format!(
                "this DPoP key has {max} unexpired proofs on record, the most it may"
            ))),
            Err(e) => {
                tracing::warn!(error = %e, "DPoP replay ledger unavailable; refusing the proof");
                Err(OAuthError::TemporarilyUnavailable(
                    "DPoP proofs cannot be checked for replay right now; retry shortly".into(),
                ))
            }
        }
    }
}

/// How far ahead of this server's clock a proof's `iat` may be.
pub const FUTURE_SECONDS: i64 = 5;

/// The request's single `DPoP` header, if any (RFC 9449 §4.3 item 1).
pub fn proof_header(headers: &axum::http::HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::InvalidDpopProof("send one DPoP header, not several".into()));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| OAuthError::InvalidDpopProof("the DPoP header is not ASCII".into()))
}
