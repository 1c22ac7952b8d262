//! The resource-server verifier: trust appauth's tokens with a few lines.
//!
//! Built from the issuer URL and the expected audience, it discovers the
//! RFC 8414 metadata, fetches the JWKS and caches keys by `kid`; an unknown
//! `kid` triggers one refetch (single-flight, at most one per
//! `min_refetch_interval`). Tokens are checked by the same code as appauth's
//! own (RFC 9068 §4, RFC 8725): `typ` `at+jwt`, algorithm pinned to the
//! key, signature, `iss`, `aud`, `exp`/`nbf` with a small leeway. There is
//! no network call per request unless revocation by introspection is chosen.
//!
//! Revocation, three modes: [`RevocationMode::None`] (pure offline),
//! [`RevocationMode::Redis`] (a local set loaded from Redis and kept current
//! through pub/sub), [`RevocationMode::Introspection`] (answers cached
//! briefly). When the chosen source has been unreachable for longer than
//! `fail_closed_after`, every token is refused.

#![forbid(unsafe_code)]
#![cfg_attr(feature = "axum", doc = include_str!("../README.md"))]

pub mod claims;
pub mod dpop;
#[cfg(feature = "axum")]
pub mod extract;
pub mod jwk;
pub mod jws;
pub mod mtls;
#[cfg(feature = "redis")]
mod redis_set;
pub mod revocation;
pub mod roles;
pub mod rules;

pub use self::claims::{AccessTokenClaims, Audience, Confirmation, RuleClaim, ScopeType};
#[cfg(feature = "axum")]
pub use self::extract::{BearerError, Verified, require_bearer};
pub use self::jws::{Alg, JwtError};
pub use self::mtls::ClientCertificate;
pub use self::rules::ScopeTree;

use self::jws::{Expectations, PublicKey};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum RevocationMode {
    /// Signature and claims only; a revoked token stays valid until `exp`.
    None,
    /// A local set loaded from appauth's Redis and kept current by pub/sub
    /// (feature `redis`).
    #[cfg(feature = "redis")]
    Redis { url: String },
    /// Ask appauth (RFC 7662) and cache each answer for `cache_for`.
    Introspection {
        client_id: String,
        client_secret: String,
        cache_for: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The `issuer` of the appauth server, e.g. `http://127.0.0.1:8080`.
    pub issuer: String,
    /// The audience this resource server answers to.
    pub audience: String,
    /// Clock leeway for `exp` / `nbf`, in seconds.
    pub leeway_seconds: i64,
    pub revocation: RevocationMode,
    /// Unknown `kid`s refetch the JWKS at most this often.
    pub min_refetch_interval: Duration,
    /// Refuse every token when the revocation source has been unreachable this long.
    pub fail_closed_after: Duration,
    /// The JWKS is re-fetched on a schedule — as often as its
    /// `Cache-Control: max-age` says, else every `jwks_refresh` — so a key
    /// the issuer withdrew (`keys retire --now`) stops verifying within one
    /// refresh. The interval is kept within `min_refetch_interval ..= jwks_refresh_max`.
    pub jwks_refresh: Duration,
    pub jwks_refresh_max: Duration,
    /// The longest lifetime (`exp` − `iat`) a token may have; longer ones
    /// are refused whatever their signature says. Default 86,400 s, the
    /// most `issuer.token_ttl_seconds` allows; set it to your issuer's
    /// `token_ttl_seconds` to refuse anything it would never have issued.
    pub max_token_lifetime: Duration,
    /// This resource server's base URL as clients address it, for DPoP
    /// proofs' `htu` (RFC 9449 §4.3); unset: the request's `Host` over
    /// https or http.
    pub public_url: Option<String>,
    /// PEM certificates of a private CA the issuer's HTTPS certificate
    /// chains to (trusted besides the public roots), e.g. an internal PKI.
    pub issuer_ca_pem: Option<String>,
}

impl VerifierConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            audience: audience.into(),
            leeway_seconds: 5,
            revocation: RevocationMode::None,
            min_refetch_interval: Duration::from_secs(5),
            fail_closed_after: Duration::from_secs(10),
            jwks_refresh: Duration::from_secs(300),
            jwks_refresh_max: Duration::from_secs(3600),
            max_token_lifetime: Duration::from_secs(86_400),
            public_url: None,
            issuer_ca_pem: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Token(#[from] JwtError),
    #[error("token has been revoked")]
    Revoked,
    #[error("revocation status is unknown: {0}")]
    RevocationUnavailable(String),
    #[error("could not reach the issuer: {0}")]
    Discovery(String),
    /// A DPoP-bound token without a valid proof of its key (RFC 9449 §7).
    #[error("{0}")]
    Dpop(String),
    /// A certificate-bound token without its certificate (RFC 8705 §3).
    #[error(transparent)]
    Certificate(#[from] mtls::CertificateMismatch),
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
    introspection_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

/// A published key the verifier can use; keys without `kid`, of other
/// types, or whose `alg` contradicts the key are skipped.
fn public_key(jwk: &serde_json::Value) -> Option<(String, PublicKey)> {
    let parsed = jwk::parse(jwk).ok()?;
    Some((parsed.kid?, parsed.key))
}

struct IntrospectionCache {
    answers: HashMap<String, (bool, Instant)>,
}

pub struct Verifier {
    cfg: VerifierConfig,
    http: reqwest::Client,
    jwks_uri: String,
    introspection_endpoint: Option<String>,
    keys: RwLock<HashMap<String, PublicKey>>,
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    #[cfg(feature = "redis")]
    redis: Option<Arc<redis_set::RevocationSet>>,
    introspected: Mutex<IntrospectionCache>,
    last_introspection_ok: Mutex<Instant>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// DPoP proofs seen (`jkt` + `jti` → when they may be forgotten), so
    /// each is accepted once by this process (RFC 9449 §11.1).
    dpop_seen: Mutex<HashMap<String, i64>>,
}

/// DPoP proofs remembered at once; past it, proofs are refused until some
/// expire (they are forgotten 90 s after their `iat`).
pub const MAX_DPOP_PROOFS: usize = 100_000;

impl Drop for Verifier {
    fn drop(&mut self) {
        for t in &self.background {
            t.abort();
        }
    }
}

impl Verifier {
    /// Discovers the issuer's metadata and keys (and, in Redis mode, starts
    /// following revocations).
    pub async fn discover(cfg: VerifierConfig) -> Result<Arc<Verifier>, VerifyError> {
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(5));
        if let Some(pem) = &cfg.issuer_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| VerifyError::Discovery(format!("issuer_ca_pem: {e}")))?;
            for c in certs {
                http = http.add_root_certificate(c);
            }
        }
        let http = http.build().map_err(|e| VerifyError::Discovery(e.to_string()))?;
        let url = format!("{}/.well-known/oauth-authorization-server", cfg.issuer);
        let meta: Metadata = fetch_json(&http, &url).await?;
        if meta.issuer != cfg.issuer {
            return Err(VerifyError::Discovery(format!(
                "metadata names issuer {:?}, expected {:?} (RFC 8414 §3.3)",
                meta.issuer, cfg.issuer
            )));
        }
        #[cfg(feature = "redis")]
        let (redis, background) = match &cfg.revocation {
            RevocationMode::Redis { url } => {
                let (set, task) = redis_set::RevocationSet::follow(url).map_err(VerifyError::RevocationUnavailable)?;
                (Some(set), vec![task])
            }
            _ => (None, Vec::new()),
        };
        #[cfg(not(feature = "redis"))]
        let background = Vec::new();
        let v = Arc::new_cyclic(|me: &std::sync::Weak<Verifier>| {
            let mut background = background;
            background.push(tokio::spawn(refresh_jwks_periodically(me.clone())));
            Verifier {
                http,
                jwks_uri: meta.jwks_uri,
                introspection_endpoint: meta.introspection_endpoint,
                keys: RwLock::new(HashMap::new()),
                last_refetch: tokio::sync::Mutex::new(None),
                #[cfg(feature = "redis")]
                redis,
                introspected: Mutex::new(IntrospectionCache {
                    answers: HashMap::new(),
                }),
                last_introspection_ok: Mutex::new(Instant::now()),
                background,
                dpop_seen: Mutex::new(HashMap::new()),
                cfg,
            }
        });
        v.refresh_keys().await?;
        Ok(v)
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.cfg
    }

    /// False until the Redis revocation set has been loaded (other modes: true).
    pub fn revocation_ready(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.redis.as_ref().is_none_or(|s| s.is_ready());
        #[cfg(not(feature = "redis"))]
        true
    }

    /// Replaces the key set with the issuer's current JWKS (so removed keys
    /// go away); returns the response's `max-age`, if any.
    async fn refresh_keys(&self) -> Result<Option<Duration>, VerifyError> {
        let resp = self
            .http
            .get(&self.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| VerifyError::Discovery(format!("{}: {e}", self.jwks_uri)))?;
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .filter_map(|d| d.trim().strip_prefix("max-age="))
                    .find_map(|n| n.parse::<u64>().ok())
            })
            .map(Duration::from_secs);
        let jwks: Jwks = resp
            .json()
            .await
            .map_err(|e| VerifyError::Discovery(format!("{}: {e}", self.jwks_uri)))?;
        let keys: HashMap<String, PublicKey> = jwks.keys.iter().filter_map(public_key).collect();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(max_age)
    }

    fn refresh_interval(&self, max_age: Option<Duration>) -> Duration {
        let floor = self.cfg.min_refetch_interval.min(self.cfg.jwks_refresh_max);
        max_age
            .unwrap_or(self.cfg.jwks_refresh)
            .clamp(floor, self.cfg.jwks_refresh_max)
    }

    fn key(&self, kid: &str) -> Option<PublicKey> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).get(kid).cloned()
    }

    /// Makes sure `kid` is known if the issuer publishes it: one refetch,
    /// shared by concurrent callers, at most once per `min_refetch_interval`.
    async fn ensure_key(&self, kid: &str) {
        if self.key(kid).is_some() {
            return;
        }
        let mut last = self.last_refetch.lock().await;
        if self.key(kid).is_some() {
            return;
        }
        if last.is_some_and(|t| t.elapsed() < self.cfg.min_refetch_interval) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.refresh_keys().await {
            tracing::warn!(error = %e, "JWKS refetch failed");
        }
    }

    /// Verifies a bearer token; returns its claims.
    /// The sender constraint of a verified token (RFC 9449 §7.1): a token
    /// bound to a DPoP key (`cnf.jkt`) must come as `Authorization: DPoP`
    /// with `proof`, a proof by that key for this request (`method`, one of
    /// `urls` — the URL the client addressed —, `ath`), used once; an
    /// unbound token must not claim to be DPoP. `dpop_scheme`: it came as
    /// `DPoP`, not `Bearer`.
    pub fn check_sender(
        &self,
        token: &str,
        claims: &AccessTokenClaims,
        dpop_scheme: bool,
        proof: Option<&str>,
        method: &str,
        urls: &[String],
    ) -> Result<(), VerifyError> {
        let refuse = |m: &str| Err(VerifyError::Dpop(m.to_owned()));
        let jkt = match (claims.dpop_jkt(), dpop_scheme) {
            (None, false) => return Ok(()),
            (Some(_), false) => {
                return refuse("the token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof of its key");
            }
            (None, true) => return refuse("the token is not DPoP-bound: send it as Authorization: Bearer"),
            (Some(jkt), true) => jkt,
        };
        let Some(proof) = proof else {
            return refuse("a DPoP-bound token needs a DPoP proof header");
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut last = String::from("the DPoP proof's htu does not name this request");
        for url in urls {
            let expected = dpop::Expected {
                method,
                url,
                access_token: Some(token),
                now,
            };
            match dpop::check(proof, &expected) {
                Ok(p) if p.jkt != jkt => return refuse("the DPoP proof is signed by another key than the token's"),
                Ok(p) => {
                    let mut seen = self.dpop_seen.lock().unwrap_or_else(|e| e.into_inner());
                    if seen.len() >= MAX_DPOP_PROOFS {
                        seen.retain(|_, until| *until >= now);
                    }
                    if seen.len() >= MAX_DPOP_PROOFS {
                        return refuse("too many DPoP proofs in flight; retry shortly");
                    }
                    let key = format!("{}.{}", p.jkt, p.jti);
                    if seen.contains_key(&key) {
                        return refuse("the DPoP proof was already used; sign a fresh one per request");
                    }
                    seen.insert(key, p.iat + dpop::MAX_AGE_SECONDS + dpop::LEEWAY_SECONDS);
                    return Ok(());
                }
                Err(e) if e.0.contains("htu") => last = e.0,
                Err(e) => return Err(VerifyError::Dpop(e.0)),
            }
        }
        Err(VerifyError::Dpop(last))
    }

    /// The certificate binding of a verified token (RFC 8705 §3): a token
    /// with `cnf.x5t#S256` is accepted only with that certificate, the DER
    /// of the client certificate on the request's connection (`None`: no
    /// certificate). Like [`Verifier::check_sender`], a resource server that
    /// does not use the axum extractor calls it after [`Verifier::verify`].
    pub fn check_certificate(&self, claims: &AccessTokenClaims, presented: Option<&[u8]>) -> Result<(), VerifyError> {
        mtls::check(claims.certificate_thumbprint(), presented).map_err(Into::into)
    }

    pub async fn verify(&self, token: &str) -> Result<AccessTokenClaims, VerifyError> {
        if token.len() > jws::MAX_TOKEN_BYTES {
            return Err(JwtError::TooLarge.into());
        }
        if let Ok(kid) = jws::peek_kid(token) {
            self.ensure_key(&kid).await;
        }
        let expect = Expectations {
            issuer: &self.cfg.issuer,
            audience: Some(&self.cfg.audience),
            now: now_seconds(),
            leeway: self.cfg.leeway_seconds,
            max_lifetime: i64::try_from(self.cfg.max_token_lifetime.as_secs()).unwrap_or(i64::MAX),
        };
        let claims = jws::decode(token, |kid| self.key(kid), &expect)?;
        self.check_revocation(token, &claims).await?;
        Ok(claims)
    }

    async fn check_revocation(&self, token: &str, claims: &AccessTokenClaims) -> Result<(), VerifyError> {
        #[cfg(not(feature = "redis"))]
        let _ = claims;
        match &self.cfg.revocation {
            RevocationMode::None => Ok(()),
            #[cfg(feature = "redis")]
            RevocationMode::Redis { .. } => {
                let set = self
                    .redis
                    .as_ref()
                    .ok_or_else(|| VerifyError::RevocationUnavailable("not started".into()))?;
                set.check(claims, self.cfg.fail_closed_after)
            }
            RevocationMode::Introspection {
                client_id,
                client_secret,
                cache_for,
            } => self.introspect(token, client_id, client_secret, *cache_for).await,
        }
    }

    async fn introspect(&self, token: &str, id: &str, secret: &str, cache_for: Duration) -> Result<(), VerifyError> {
        let cache_key = jws::cache_key(token);
        let cached = {
            let mut c = self.introspected.lock().unwrap_or_else(|p| p.into_inner());
            c.answers.retain(|_, (_, at)| at.elapsed() < cache_for);
            c.answers.get(&cache_key).map(|(active, _)| *active)
        };
        let active = match cached {
            Some(a) => a,
            None => {
                let endpoint = self
                    .introspection_endpoint
                    .as_deref()
                    .ok_or_else(|| VerifyError::RevocationUnavailable("issuer has no introspection endpoint".into()))?;
                let answer = self
                    .http
                    .post(endpoint)
                    .basic_auth(form_encode(id), Some(form_encode(secret)))
                    .form(&[("token", token)])
                    .send()
                    .await;
                let active = match answer {
                    Ok(r) if r.status().is_success() => r
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v["active"].as_bool()),
                    // This resource server's own credentials are refused:
                    // nothing will get better by waiting, and a token
                    // accepted meanwhile might be revoked. Fail closed now.
                    Ok(r) if matches!(r.status().as_u16(), 400 | 401 | 403) => {
                        let status = r.status().as_u16();
                        tracing::error!(
                            status,
                            "introspection refused this verifier's credentials; refusing every token until they are fixed"
                        );
                        return Err(VerifyError::RevocationUnavailable(format!(
                            "introspection refused this resource server's credentials ({status}); check the client ID and secret"
                        )));
                    }
                    // 429, 5xx and network errors are passing faults: the
                    // signature and claims stand for `fail_closed_after`.
                    _ => None,
                };
                match active {
                    Some(a) => {
                        *self.last_introspection_ok.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                        self.introspected
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .answers
                            .insert(cache_key, (a, Instant::now()));
                        a
                    }
                    None => {
                        let since = self
                            .last_introspection_ok
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .elapsed();
                        if since > self.cfg.fail_closed_after {
                            return Err(VerifyError::RevocationUnavailable(format!(
                                "introspection has failed for {} s",
                                since.as_secs()
                            )));
                        }
                        // Within the bound: the signature and claims stand.
                        true
                    }
                }
            }
        };
        if active { Ok(()) } else { Err(VerifyError::Revoked) }
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn fetch_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, VerifyError> {
    let resp = http
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| VerifyError::Discovery(format!("{url}: {e}")))?;
    resp.json()
        .await
        .map_err(|e| VerifyError::Discovery(format!("{url}: {e}")))
}

/// The scheduled JWKS refresh; ends when the verifier is dropped. A failed
/// fetch keeps the current keys and retries at the shortest interval.
async fn refresh_jwks_periodically(me: std::sync::Weak<Verifier>) {
    let mut wait = match me.upgrade() {
        Some(v) => v.refresh_interval(None),
        None => return,
    };
    loop {
        tokio::time::sleep(wait).await;
        let Some(v) = me.upgrade() else { return };
        wait = match v.refresh_keys().await {
            Ok(max_age) => v.refresh_interval(max_age),
            Err(e) => {
                tracing::warn!(error = %e, "scheduled JWKS refresh failed; keeping the current keys");
                v.refresh_interval(Some(v.cfg.min_refetch_interval))
            }
        };
    }
}

/// Unix seconds now; a clock before 1970 reads as 0 and fails every `exp`.
pub(crate) fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
