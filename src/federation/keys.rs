//! One trusted issuer's signing keys: discovered (OpenID Discovery 1.0 §4)
//! or configured, fetched over HTTPS, cached per `Cache-Control` within
//! bounds, refreshed when a token names an unknown `kid` (at most once per
//! [`REFRESH_EVERY`]), used stale for at most the issuer's `stale_seconds`
//! (an hour by default) while the issuer is unreachable, and then refused:
//! fail closed.

use super::fetch::Fetcher;
use crate::config::FederationIssuer;
use appauth_verify::jwk::{self, ParsedJwk};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keys are fresh at least the issuer's `min_cache_seconds` (60 by
/// default) and at most [`MAX_FRESH`], whatever `Cache-Control` says;
/// [`DEFAULT_FRESH`] when it says nothing.
const MAX_FRESH: Duration = Duration::from_secs(3600);
const DEFAULT_FRESH: Duration = Duration::from_secs(300);
/// An unknown `kid` triggers a fetch at most this often per issuer, so a
/// stream of forged `kid`s cannot make the server hammer the issuer.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);
const MAX_DISCOVERY_BYTES: usize = 64 * 1024;
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Keys kept per issuer (GitHub publishes 2-3; Kubernetes 1-2).
const MAX_KEYS: usize = 32;

struct Cached {
    keys: Arc<[ParsedJwk]>,
    fresh_until: Instant,
    usable_until: Instant,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

/// Why no key could be found.
#[derive(Debug)]
pub enum KeysError {
    /// The issuer's keys are known, and none has this `kid`.
    UnknownKey,
    /// The keys cannot be had (never fetched, or stale past the bound).
    Unavailable(String),
}

pub struct IssuerKeys {
    config: FederationIssuer,
    fetcher: Fetcher,
    state: std::sync::Mutex<State>,
    /// One fetch at a time per issuer; waiting requests use its result.
    fetching: tokio::sync::Mutex<()>,
}

impl IssuerKeys {
    pub fn new(config: FederationIssuer) -> Result<Self, String> {
        let fetcher =
            Fetcher::new(config.ca_file.as_deref()).map_err(|e| format!("federation issuer {}: {e}", config.issuer))?;
        Ok(Self {
            config,
            fetcher,
            state: std::sync::Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &FederationIssuer {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The keys a token with `kid` may be verified with.
    pub async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<[ParsedJwk]>, KeysError> {
        let has = |keys: &[ParsedJwk]| kid.is_none_or(|k| keys.iter().any(|x| x.kid.as_deref() == Some(k)));
        let now = Instant::now();
        {
            let st = self.state();
            if let Some(c) = &st.cached
                && now < c.fresh_until
                && has(&c.keys)
            {
                return Ok(c.keys.clone());
            }
        }
        let _one = self.fetching.lock().await;
        let now = Instant::now();
        let due = {
            let st = self.state();
            // Someone else may have fetched while this request waited.
            if let Some(c) = &st.cached
                && now < c.fresh_until
                && has(&c.keys)
            {
                return Ok(c.keys.clone());
            }
            // An unknown kid: at most once per REFRESH_EVERY. Keys past
            // their freshness: once a second at most, while requests wait.
            let stale = st.cached.as_ref().is_none_or(|c| now >= c.fresh_until);
            st.last_attempt.is_none_or(|t| {
                let since = now.duration_since(t);
                since >= REFRESH_EVERY || (stale && since >= Duration::from_secs(1))
            })
        };
        if due {
            self.state().last_attempt = Some(now);
            match self.fetch().await {
                Ok((keys, fresh)) => {
                    let now = Instant::now();
                    let mut st = self.state();
                    st.cached = Some(Cached {
                        keys: keys.clone(),
                        fresh_until: now + fresh,
                        usable_until: now + fresh + Duration::from_secs(self.config.stale_seconds),
                    });
                    st.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.config.issuer, error = %e, "cannot fetch a federation issuer's keys");
                    self.state().last_error = Some(e);
                }
            }
        }
        let st = self.state();
        match &st.cached {
            Some(c) if Instant::now() < c.usable_until => {
                if has(&c.keys) {
                    Ok(c.keys.clone())
                } else {
                    Err(KeysError::UnknownKey)
                }
            }
            Some(_) => Err(KeysError::Unavailable(format!(
                "the keys of {} are stale by more than {} s and cannot be fetched ({})",
                self.config.issuer,
                self.config.stale_seconds,
                st.last_error.as_deref().unwrap_or("unknown error")
            ))),
            None => Err(KeysError::Unavailable(format!(
                "the keys of {} cannot be fetched ({})",
                self.config.issuer,
                st.last_error.as_deref().unwrap_or("no attempt yet")
            ))),
        }
    }

    async fn fetch(&self) -> Result<(Arc<[ParsedJwk]>, Duration), String> {
        let jwks_uri = match &self.config.jwks_uri {
            Some(u) => u.clone(),
            None => self.discover().await?,
        };
        let fetched = self.fetcher.json(&jwks_uri, MAX_JWKS_BYTES).await?;
        let keys = fetched
            .json
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| format!("{jwks_uri} is not a JWK Set"))?;
        let mut parsed = Vec::new();
        let mut skipped = Vec::new();
        for key in keys.iter().take(MAX_KEYS) {
            let mut key = key.clone();
            // An RSA key without `alg` (some issuers omit it) is taken as
            // RS256, what every OIDC issuer signs with by default; it is
            // never left to the token's header to choose.
            if key.get("kty").and_then(|k| k.as_str()) == Some("RSA")
                && key.get("alg").is_none()
                && let Some(o) = key.as_object_mut()
            {
                o.insert("alg".into(), "RS256".into());
            }
            match jwk::parse(&key) {
                Ok(k) => parsed.push(k),
                Err(e) => skipped.push(e),
            }
        }
        if parsed.is_empty() {
            return Err(format!(
                "{jwks_uri} holds no usable signing key{}",
                skipped.first().map(|e| format!(" ({e})")).unwrap_or_default()
            ));
        }
        let min = Duration::from_secs(self.config.min_cache_seconds);
        let fresh = fetched.max_age.unwrap_or(DEFAULT_FRESH).clamp(min, MAX_FRESH.max(min));
        Ok((parsed.into(), fresh))
    }

    /// The `jwks_uri` of the issuer's discovery document, which must name
    /// the issuer itself (OpenID Discovery §4.3) and keep its keys on the
    /// issuer's host: elsewhere needs `jwks_uri` in the configuration, so a
    /// document can never point the server at an arbitrary host.
    async fn discover(&self) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let doc = self.fetcher.json(&url, MAX_DISCOVERY_BYTES).await?.json;
        if doc.get("issuer").and_then(|v| v.as_str()) != Some(self.config.issuer.as_str()) {
            return Err(format!("{url} names another issuer"));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{url} has no jwks_uri"))?;
        let (issuer_host, jwks) = (
            url::Url::parse(&self.config.issuer).map_err(|e| e.to_string())?,
            url::Url::parse(jwks_uri).map_err(|e| format!("{url}: jwks_uri is not a URL: {e}"))?,
        );
        if jwks.scheme() != "https" || jwks.host_str() != issuer_host.host_str() {
            return Err(format!(
                "{url}: jwks_uri {jwks_uri} is not https on the issuer's host; set jwks_uri for this issuer in federation.issuers if it is right"
            ));
        }
        Ok(jwks_uri.to_owned())
    }
}
