//! Issuing access tokens (RFC 9068 §2): claims are written straight into a
//! buffer — issuer and audiences are JSON-escaped once at start-up and the
//! `access_rules` array is pre-serialised per application — then signed with
//! the active key, whose header is pre-encoded.

use super::claims::AccessTokenClaims;
use super::jwt::{self, Expectations, JwtError};
use super::keys::Alg;
use super::keys::KeySet;
use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt::Write as _;
use std::sync::Arc;

/// Clock leeway when this server checks its own tokens.
pub const OWN_LEEWAY: i64 = 1;

/// Random bytes for `jti`s, fetched from the OS 4 KiB at a time: one
/// `getrandom` per 256 tokens instead of one per token.
struct JtiPool {
    buf: [u8; 4096],
    pos: usize,
}

impl JtiPool {
    fn take(&mut self, rng: &SystemRandom, out: &mut [u8; 16]) -> Result<(), IssueError> {
        if self.pos + 16 > self.buf.len() {
            rng.fill(&mut self.buf).map_err(|_| IssueError::Sign)?;
            self.pos = 0;
        }
        out.copy_from_slice(&self.buf[self.pos..self.pos + 16]);
        // Never hand out the same bytes twice.
        self.buf[self.pos..self.pos + 16].fill(0);
        self.pos += 16;
        Ok(())
    }
}

pub struct TokenIssuer {
    keys: ArcSwap<KeySet>,
    rng: SystemRandom,
    jti_pool: std::sync::Mutex<JtiPool>,
    issuer: String,
    issuer_json: String,
    audiences: Vec<String>,
    audiences_json: Vec<String>,
    /// Per audience index: the algorithm it asks for (`issuer.audience_algs`);
    /// `None` takes the default key.
    audience_algs: Vec<Option<Alg>>,
    ttl: i64,
    /// The longest lifetime this issuer has ever given a token (its store
    /// remembers it): a token claiming a longer one is refused.
    longest_ttl: i64,
}

pub struct IssueRequest<'a> {
    pub client_id: &'a str,
    /// Index into the configured audiences.
    pub audience: usize,
    /// Space-separated role ids, already checked against the rules.
    pub scope: Option<&'a str>,
    /// The `access_rules` claim as a JSON array.
    pub access_rules_json: &'a str,
    /// Earliest allowed `iat` (see [`TokenIssuer::issue`]).
    pub min_iat: i64,
    /// The application's own token lifetime, when it has one; never longer
    /// than the issuer's.
    pub ttl: Option<i64>,
    /// Latest allowed `exp`: a secret in a rotation's overlap gets tokens
    /// that expire when the overlap ends.
    pub not_after: Option<i64>,
    /// The external identity that obtained the token through a federated
    /// credential: the `fed` claim `{"iss": …, "sub": …}`.
    pub federated: Option<(&'a str, &'a str)>,
    /// RFC 9449 §6: the thumbprint of the DPoP key the token is bound to.
    pub dpop_jkt: Option<&'a str>,
    /// RFC 8705 §3.1: the thumbprint of the client certificate it is bound to.
    pub x5t: Option<&'a str>,
}

#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: String,
    /// The `jti`: 16 random bytes in base64url.
    jti: [u8; 22],
    pub expires_in: i64,
}

impl IssuedToken {
    pub fn jti(&self) -> &str {
        // Base64url output is ASCII.
        std::str::from_utf8(&self.jti).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no signing key is active")]
    NoActiveKey,
    #[error("signing failed")]
    Sign,
}

impl TokenIssuer {
    pub fn new(keys: KeySet, issuer: &str, audiences: &[String], ttl: i64) -> Self {
        let json = |s: &str| serde_json::to_string(s).unwrap_or_default();
        Self {
            keys: ArcSwap::from_pointee(keys),
            rng: SystemRandom::new(),
            jti_pool: std::sync::Mutex::new(JtiPool {
                buf: [0; 4096],
                pos: 4096,
            }),
            issuer: issuer.to_owned(),
            issuer_json: json(issuer),
            audiences: audiences.to_vec(),
            audiences_json: audiences.iter().map(|a| json(a)).collect(),
            audience_algs: vec![None; audiences.len()],
            ttl,
            longest_ttl: ttl,
        }
    }

    /// The longest lifetime ever issued by this server (≥ the current one).
    pub fn with_longest_ttl(mut self, longest: i64) -> Self {
        self.longest_ttl = longest.max(self.ttl);
        self
    }

    /// Signs tokens for the listed audiences with their own algorithm.
    pub fn with_audience_algs(mut self, algs: &std::collections::BTreeMap<String, Alg>) -> Self {
        self.audience_algs = self.audiences.iter().map(|a| algs.get(a).copied()).collect();
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Swaps in a reloaded key set (rotation without restart).
    pub fn replace_keys(&self, keys: KeySet) {
        self.keys.store(Arc::new(keys));
    }

    /// Issues a token. `iat` is at least `min_iat`: when an application's
    /// earlier tokens were revoked "before T" within the current second, a
    /// token issued in that same second must not fall under the cut-off.
    pub fn issue(&self, req: &IssueRequest<'_>, now: i64) -> Result<IssuedToken, IssueError> {
        let keys = self.keys.load();
        let key = match self.audience_algs.get(req.audience).copied().flatten() {
            Some(alg) => keys.signing_key_for(alg, now),
            None => keys.signing_key(now),
        }
        .ok_or(IssueError::NoActiveKey)?;
        let iat = now.max(req.min_iat);
        let ttl = req.ttl.map_or(self.ttl, |t| t.min(self.ttl));
        let exp = req.not_after.map_or(iat + ttl, |n| n.min(iat + ttl));
        let mut jti_raw = [0u8; 16];
        self.jti_pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(&self.rng, &mut jti_raw)?;
        let mut jti = [0u8; 22];
        URL_SAFE_NO_PAD
            .encode_slice(jti_raw, &mut jti)
            .map_err(|_| IssueError::Sign)?;
        let jti_str = std::str::from_utf8(&jti).map_err(|_| IssueError::Sign)?;

        let aud = self.audiences_json.get(req.audience).map_or("\"\"", String::as_str);
        let fed_json = req.federated.map(|(iss, sub)| {
            // External values: escaped as JSON.
            let json = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
            (json(iss), json(sub))
        });
        let (mut iat_buf, mut exp_buf) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (iat_str, exp_str) = (iat_buf.format(iat), exp_buf.format(exp));
        // Sized once from its parts, so it never grows (this runs per token).
        let variable = self.issuer_json.len()
            + 2 * req.client_id.len()
            + aud.len()
            + 2 * iat_str.len()
            + exp_str.len()
            + req.scope.map_or(0, str::len)
            + fed_json.as_ref().map_or(0, |(i, s)| i.len() + s.len())
            + req.dpop_jkt.map_or(0, str::len)
            + req.x5t.map_or(0, str::len)
            + req.access_rules_json.len();
        let capacity = 224 + variable;
        let mut payload = String::with_capacity(capacity);
        // client IDs are server-generated UUIDs and scope values are role ids
        // (checked slugs), so neither needs escaping.
        for part in [
            r#"{"iss":"#,
            &self.issuer_json,
            r#","sub":""#,
            req.client_id,
            r#"","client_id":""#,
            req.client_id,
            r#"","aud":"#,
            aud,
            r#","iat":"#,
            iat_str,
            r#","nbf":"#,
            iat_str,
            r#","exp":"#,
            exp_str,
            r#","jti":""#,
            jti_str,
            "\"",
        ] {
            payload.push_str(part);
        }
        if let Some(scope) = req.scope {
            let _ = write!(payload, r#","scope":"{scope}""#);
        }
        if let Some((iss, sub)) = &fed_json {
            let _ = write!(payload, r#","fed":{{"iss":{iss},"sub":{sub}}}"#);
        }
        // Base64url thumbprints: nothing to escape.
        match (req.dpop_jkt, req.x5t) {
            (None, None) => {}
            (Some(jkt), None) => {
                let _ = write!(payload, r#","cnf":{{"jkt":"{jkt}"}}"#);
            }
            (None, Some(x5t)) => {
                let _ = write!(payload, r#","cnf":{{"x5t#S256":"{x5t}"}}"#);
            }
            (Some(jkt), Some(x5t)) => {
                let _ = write!(payload, r#","cnf":{{"jkt":"{jkt}","x5t#S256":"{x5t}"}}"#);
            }
        }
        payload.push_str(r#","access_rules":"#);
        payload.push_str(req.access_rules_json);
        payload.push('}');
        debug_assert!(payload.len() <= capacity, "the payload outgrew its estimate");

        // Header, payload and signature in base64url, and the two dots.
        let b64 = |n: usize| n.div_ceil(3) * 4;
        let mut token = String::with_capacity(key.header_b64.len() + b64(payload.len()) + b64(key.signature_len()) + 2);
        token.push_str(&key.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut token);
        let sig = key.sign(&self.rng, token.as_bytes()).map_err(|_| IssueError::Sign)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut token);
        Ok(IssuedToken {
            access_token: token,
            jti,
            expires_in: exp - now,
        })
    }

    /// Verifies a token this server issued, with any audience it serves.
    /// One second of leeway: `issue` may move `iat`/`nbf` up to one second
    /// ahead (see `min_iat`), and such a token must verify at once.
    pub fn verify_own(&self, token: &str, now: i64) -> Result<AccessTokenClaims, JwtError> {
        let keys = self.keys.load();
        let expect = Expectations {
            issuer: &self.issuer,
            audience: None,
            now,
            leeway: OWN_LEEWAY,
            max_lifetime: self.longest_ttl,
        };
        let claims = jwt::decode(
            token,
            |kid| keys.find_published(kid, now).map(|k| k.verifying_key()),
            &expect,
        )?;
        if !self.audiences.iter().any(|a| claims.aud.contains(a)) {
            return Err(JwtError::WrongAudience);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::keys::{Alg, generate};

    fn issuer(alg: Alg) -> (tempfile::TempDir, TokenIssuer) {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), alg, 0).unwrap();
        let keys = KeySet::load(dir.path(), 3600).unwrap();
        let iss = TokenIssuer::new(
            keys,
            "https://auth.example/\"x",
            &["urn:a".into(), "urn:b".into()],
            3600,
        );
        (dir, iss)
    }

    fn request<'a>(rules: &'a str) -> IssueRequest<'a> {
        IssueRequest {
            client_id: "c1",
            audience: 1,
            scope: Some("viewer"),
            access_rules_json: rules,
            min_iat: 0,
            not_after: None,
            ttl: None,
            federated: None,
            dpop_jkt: None,
            x5t: None,
        }
    }

    #[test]
    fn issued_tokens_verify_and_carry_every_claim() {
        for alg in [Alg::ES256, Alg::EdDSA] {
            let (_d, iss) = issuer(alg);
            let rules =
                r#"[{"role":"Viewer","role_id":"viewer","scope_type":"tenant","scope_id":"t","scope_name":"T"}]"#;
            let t = iss.issue(&request(rules), 1_000).unwrap();
            let c = iss.verify_own(&t.access_token, 1_001).unwrap();
            assert_eq!(c.iss, "https://auth.example/\"x");
            assert_eq!((c.sub.as_str(), c.client_id.as_str()), ("c1", "c1"));
            assert_eq!(c.aud, crate::token::claims::Audience::One("urn:b".into()));
            assert_eq!((c.iat, c.nbf, c.exp), (1_000, 1_000, 4_600));
            assert_eq!(c.jti, t.jti());
            assert_eq!(c.scope.as_deref(), Some("viewer"));
            assert_eq!(c.access_rules[0].scope_name, "T");
        }
    }

    #[test]
    fn min_iat_moves_issue_time_forward_and_not_after_caps_expiry() {
        let (_d, iss) = issuer(Alg::ES256);
        let mut req = request("[]");
        req.min_iat = 1_001;
        let t = iss.issue(&req, 1_000).unwrap();
        assert_eq!(t.expires_in, 3601);
        req.not_after = Some(1_500);
        let t = iss.issue(&req, 1_000).unwrap();
        assert_eq!(t.expires_in, 500, "a rotated-out secret's token ends with the overlap");
        let c = iss.verify_own(&t.access_token, 1_001).unwrap();
        assert_eq!((c.iat, c.exp), (1_001, 1_500));
        assert!(
            iss.verify_own(&t.access_token, 1_000).is_ok(),
            "a bumped iat verifies at once"
        );
        assert!(matches!(
            iss.verify_own(&t.access_token, 999),
            Err(JwtError::NotYetValid)
        ));
    }

    #[test]
    fn tampered_expired_and_foreign_tokens_are_rejected() {
        let (_d, iss) = issuer(Alg::ES256);
        let (_d2, other) = issuer(Alg::ES256);
        let t = iss.issue(&request("[]"), 1_000).unwrap().access_token;
        assert_eq!(iss.verify_own(&t, 4_601), Err(JwtError::Expired));
        assert!(iss.verify_own(&t, 4_599).is_ok());
        let foreign = other.issue(&request("[]"), 1_000).unwrap().access_token;
        assert_eq!(iss.verify_own(&foreign, 1_000), Err(JwtError::UnknownKey));
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
        parts[1] = &forged;
        assert_eq!(iss.verify_own(&parts.join("."), 1_000), Err(JwtError::BadSignature));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#),
            parts[1]
        );
        assert_eq!(iss.verify_own(&none, 1_000), Err(JwtError::AlgNone));
    }
}
