//! Fetching an issuer's discovery document and key set: HTTPS only, bounded
//! in size and time, redirects only within the same host, the issuer's own
//! CA when configured (`ca_file`), else the public web PKI. The URLs come
//! from configuration (and the discovery document of a configured issuer),
//! never from a request.

use std::path::Path;
use std::time::Duration;

/// A whole fetch (connect, TLS, headers, body) ends within this.
const TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_REDIRECTS: usize = 3;

/// An HTTPS client for one issuer.
pub struct Fetcher {
    client: reqwest::Client,
}

/// A fetched JSON document and how long its server says it may be cached.
pub struct Fetched {
    pub json: serde_json::Value,
    pub max_age: Option<Duration>,
}

impl Fetcher {
    pub fn new(ca_file: Option<&Path>) -> Result<Self, String> {
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let first = attempt.previous().first().and_then(|u| u.host_str()).map(str::to_owned);
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if attempt.url().scheme() != "https" {
                attempt.error("a redirect to a URL that is not https")
            } else if first.as_deref() != attempt.url().host_str() {
                let to = attempt.url().host_str().unwrap_or("none").to_owned();
                attempt.error(format!("a redirect to another host ({to})"))
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(policy)
            .user_agent(concat!("appauth/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("ca_file {}: not PEM certificates: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("ca_file {}: no certificate in it", path.display()));
            }
            // Only this CA: a private issuer's keys must not be served by
            // whoever holds a public certificate for its name.
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder.build().map_err(|e| format!("HTTPS client: {e}"))?;
        Ok(Self { client })
    }

    /// GETs `url` as JSON, refusing a body over `limit` bytes.
    pub async fn json(&self, url: &str, limit: usize) -> Result<Fetched, String> {
        let mut resp = self
            .client
            .get(url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| describe(url, &e))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("{url} answered {}", resp.status()));
        }
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(format!("{url} is larger than {limit} bytes"));
        }
        let max_age = resp
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|d| {
                d.trim()
                    .strip_prefix("max-age=")
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .map(Duration::from_secs);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(url, &e))? {
            if body.len() + chunk.len() > limit {
                return Err(format!("{url} is larger than {limit} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let json = serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))?;
        Ok(Fetched { json, max_age })
    }
}

/// The error without the request's internals, with its cause chain (which
/// names a timeout, a refused redirect or a certificate problem).
fn describe(url: &str, e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        format!("{url}: no answer within {} s", TIMEOUT.as_secs())
    } else if e.is_redirect() {
        format!("{url}: redirect refused")
    } else {
        format!("{url}: {e}")
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
