//! Typed settings and their layered loading (DESIGN §3).
//!
//! Precedence: defaults < config file < `APPAUTH_<SECTION>_<KEY>` environment
//! < command-line `--set section.key=value`. Every key is parsed by hand so an
//! error names the key and where the bad value came from; unknown keys are
//! errors, never ignored. Secret-valued keys accept a `*_file` variant.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use toml::Value;

#[derive(Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub issuer: IssuerConfig,
    pub store: StoreConfig,
    pub keys: KeysConfig,
    pub redis: RedisConfig,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    pub audit: AuditConfig,
    pub oauth: OAuthConfig,
    pub federation: FederationConfig,
    /// Things the loader noticed but did not refuse (ignored environment
    /// variables); the caller logs them once logging is set up.
    pub warnings: Vec<String>,
}

/// Abuse limits (DESIGN §4 "Admin authority"), per minute.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Failed client authentications per (client ID, source address).
    pub auth_failures_per_minute: u32,
    /// Failed client authentications per source address, whatever the client ID.
    pub address_failures_per_minute: u32,
    /// Admin API requests per authenticated caller (client ID).
    pub admin_requests_per_minute: u32,
}

/// Client authentication details (RFC 7523).
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Longest `exp − now` a client assertion may have; its `jti` is
    /// remembered that long (plus leeway).
    pub max_assertion_lifetime_seconds: i64,
    /// Require server nonces in DPoP proofs (RFC 9449 §8).
    pub dpop_nonce: bool,
}

/// Workload identity federation: the external issuers whose tokens may
/// stand in for an application's secret. Configuration only, never API
/// input, so no administrator can make the server fetch a URL of their
/// choosing.
#[derive(Debug, Clone, Default)]
pub struct FederationConfig {
    pub issuers: Vec<FederationIssuer>,
}

/// One trusted external issuer (`[[federation.issuers]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct FederationIssuer {
    /// The `iss` its tokens carry, exactly; an `https://` URL.
    pub issuer: String,
    /// Where its keys are; unset: OpenID discovery at
    /// `{issuer}/.well-known/openid-configuration`.
    pub jwks_uri: Option<String>,
    /// PEM CA certificate(s) to trust instead of the public web PKI (e.g. a
    /// Kubernetes API server's CA).
    pub ca_file: Option<PathBuf>,
    /// The `aud` its tokens must carry; unset: this server's issuer URL.
    pub audience: Option<String>,
    /// The longest `exp − iat` accepted.
    pub max_token_lifetime_seconds: i64,
    /// Keys are cached for the issuer's `Cache-Control: max-age`, but at
    /// least this long (so tokens cannot make the server hammer it)...
    pub min_cache_seconds: u64,
    /// ...and used this much longer while the issuer cannot be reached;
    /// after that, its tokens are refused (fail closed).
    pub stale_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub retention_days: i64,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The admin plane's own address; unset: `listen` serves both planes.
    pub admin_listen: Option<SocketAddr>,
    /// The admin plane's URL as its callers address it (DPoP proofs'
    /// `htu` on the admin API); unset: only `issuer.url` is accepted.
    pub admin_url: Option<String>,
    /// The admin listener's certificate and key; unset: the public ones.
    pub admin_tls_cert: Option<PathBuf>,
    pub admin_tls_key: Option<PathBuf>,
    pub max_body_bytes: usize,
    /// A connection must deliver a whole request head within this long of
    /// starting to wait for one (hyper starts the clock whenever an HTTP/1
    /// connection waits for a request, so it also bounds keep-alive idling).
    pub header_read_timeout: std::time::Duration,
    /// A connection that moves no bytes either way for this long is closed.
    pub idle_timeout: std::time::Duration,
    /// A request body must arrive within this long (408 otherwise).
    pub body_read_timeout: std::time::Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Load balancers whose `X-Forwarded-For` names the client (its last
    /// entry, the one the balancer appended); from anyone else it is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Trust anchors for `tls_client_auth` (RFC 8705 §2.1), PEM.
    pub client_ca_file: Option<PathBuf>,
    /// Accept `self_signed_tls_client_auth` (RFC 8705 §2.2).
    pub self_signed_client_certs: bool,
    /// The header in which a trusted proxy passes the client certificate it
    /// verified the possession of (lower case); from anyone else it is ignored.
    pub client_cert_header: Option<axum::http::HeaderName>,
    /// Whether a separate admin listener (`admin_listen`) reads
    /// `client_cert_header` too. Off by default: a proxy in front of the
    /// admin plane that does not strip the header would let anyone name
    /// any certificate (certificates are public).
    pub client_cert_header_on_admin: bool,
}

impl ServerConfig {
    /// Whether clients may authenticate with (and bind tokens to) a
    /// certificate: the TLS listeners then ask for one.
    pub fn mtls_enabled(&self) -> bool {
        self.client_ca_file.is_some() || self.self_signed_client_certs
    }
}

#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// `None`: `http(s)://<bound address>`, known once the port is bound.
    pub url: Option<String>,
    pub audiences: Vec<String>,
    pub token_ttl_seconds: i64,
    /// The only `aud` the admin API and bearer introspection accept;
    /// `None`: the first of `audiences`.
    pub admin_audience: Option<String>,
    /// Audiences whose tokens are signed with another algorithm than the
    /// default key's (RS256 for RSA-only verifiers such as AWS API Gateway).
    pub audience_algs: std::collections::BTreeMap<String, crate::token::Alg>,
}

impl IssuerConfig {
    pub fn admin_audience(&self) -> &str {
        self.admin_audience
            .as_deref()
            .or(self.audiences.first().map(String::as_str))
            .unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub backend: StoreBackend,
    /// May carry a password, so `Debug` shows only scheme and host.
    pub postgres_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBackend {
    /// Embedded, one instance (the default).
    Sled,
    /// Shared by many instances (DESIGN §1 "Scale-out").
    Postgres,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("path", &self.path)
            .field("backend", &self.backend)
            .field("postgres_url", &self.postgres_url.as_deref().map(redact_url))
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct KeysConfig {
    pub dir: PathBuf,
    pub publish_ahead_seconds: i64,
    /// The key-encryption key sealing signing keys and the pepper in a
    /// shared store; `None` = `<dir>/kek`.
    pub kek_file: Option<PathBuf>,
}

impl KeysConfig {
    pub fn kek_path(&self) -> PathBuf {
        self.kek_file.clone().unwrap_or_else(|| self.dir.join("kek"))
    }
}

#[derive(Clone, Default)]
pub struct RedisConfig {
    /// May carry a password, so `Debug` shows only scheme and host.
    pub url: Option<String>,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.url.as_deref().map(redact_url);
        f.debug_struct("RedisConfig").field("url", &shown).finish()
    }
}

/// `redis://user:pw@host:6379/0` → `redis://***@host:6379/0`.
pub fn redact_url(url: &str) -> String {
    // Query parameters may carry a password too (`?password=…`).
    let url = match url.split_once('?') {
        Some((base, _)) => return format!("{}?***", redact_url(base)),
        None => url,
    };
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => "***".into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
    /// Write an access line for one in this many successful token
    /// requests (1: every one). Failures and every other request are
    /// always logged.
    pub token_success_sample: u32,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("issuer", &self.issuer)
            .field("store", &self.store)
            .field("keys", &self.keys)
            .field("redis", &self.redis)
            .field("log", &self.log)
            .field("limits", &self.limits)
            .field("audit", &self.audit)
            .field("oauth", &self.oauth)
            .field("federation", &self.federation)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                tls_cert: None,
                tls_key: None,
                admin_listen: None,
                admin_url: None,
                admin_tls_cert: None,
                admin_tls_key: None,
                max_body_bytes: 16384,
                header_read_timeout: std::time::Duration::from_secs(10),
                idle_timeout: std::time::Duration::from_secs(60),
                body_read_timeout: std::time::Duration::from_secs(10),
                max_connections: 10_000,
                trusted_proxies: Vec::new(),
                client_ca_file: None,
                self_signed_client_certs: false,
                client_cert_header: None,
                client_cert_header_on_admin: false,
            },
            issuer: IssuerConfig {
                url: None,
                audiences: vec!["urn:appauth:api".into()],
                token_ttl_seconds: 3600,
                admin_audience: None,
                audience_algs: Default::default(),
            },
            store: StoreConfig {
                path: "data".into(),
                backend: StoreBackend::Sled,
                postgres_url: None,
            },
            keys: KeysConfig {
                dir: "keys".into(),
                publish_ahead_seconds: 600,
                kek_file: None,
            },
            redis: RedisConfig::default(),
            log: LogConfig {
                level: "info".into(),
                format: LogFormat::Text,
                token_success_sample: 1,
            },
            limits: LimitsConfig {
                auth_failures_per_minute: 30,
                address_failures_per_minute: 300,
                admin_requests_per_minute: 1200,
            },
            audit: AuditConfig { retention_days: 90 },
            oauth: OAuthConfig {
                max_assertion_lifetime_seconds: 3600,
                dpop_nonce: false,
            },
            federation: FederationConfig::default(),
            warnings: Vec::new(),
        }
    }
}

/// A configuration error: which key, from where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error in `{key}` (from {origin}): {message}")]
pub struct ConfigError {
    pub key: String,
    pub origin: String,
    pub message: String,
}

/// Every key the file, environment and flags may set.
pub const KEYS: &[&str] = &[
    "server.listen",
    "server.tls_cert",
    "server.tls_key",
    "server.admin_listen",
    "server.admin_url",
    "server.admin_tls_cert",
    "server.admin_tls_key",
    "server.max_body_bytes",
    "server.header_read_timeout_seconds",
    "server.idle_timeout_seconds",
    "server.body_read_timeout_seconds",
    "server.max_connections",
    "server.trusted_proxies",
    "server.client_ca_file",
    "server.self_signed_client_certs",
    "server.client_cert_header",
    "server.client_cert_header_on_admin",
    "issuer.url",
    "issuer.audiences",
    "issuer.token_ttl_seconds",
    "issuer.admin_audience",
    "issuer.audience_algs",
    "store.path",
    "store.backend",
    "store.postgres_url",
    "store.postgres_url_file",
    "keys.dir",
    "keys.kek_file",
    "keys.publish_ahead_seconds",
    "redis.url",
    "redis.url_file",
    "log.level",
    "log.token_success_sample",
    "log.format",
    "limits.auth_failures_per_minute",
    "limits.address_failures_per_minute",
    "limits.admin_requests_per_minute",
    "audit.retention_days",
    "oauth.max_assertion_lifetime_seconds",
    "oauth.dpop_nonce",
    "federation.issuers",
];

/// Secret-valued keys that may be read from a file instead: (file key, key).
const SECRET_FILES: &[(&str, &str)] = &[
    ("redis.url_file", "redis.url"),
    ("store.postgres_url_file", "store.postgres_url"),
];

/// The configuration sections; environment variables name one first.
pub const SECTIONS: &[&str] = &[
    "server",
    "issuer",
    "store",
    "keys",
    "redis",
    "log",
    "limits",
    "audit",
    "oauth",
    "federation",
];

/// The known key closest to `key` (edit distance ≤ 3), for error messages.
fn did_you_mean(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    KEYS.iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

struct Setting {
    key: String,
    origin: String,
    value: Value,
}

impl Config {
    /// Loads the layered configuration. `env` is the process environment (or
    /// a test's stand-in); `overrides` are `section.key=value` flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let mut settings = Vec::new();
        if let Some(path) = file {
            settings.extend(file_settings(path)?);
        }
        let mut env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("APPAUTH_")).collect();
        env.sort();
        let mut ignored = Vec::new();
        for (name, value) in env {
            let rest = &name["APPAUTH_".len()..];
            // Only APPAUTH_<SECTION>_<KEY> with a section appauth has is
            // configuration. Kubernetes injects APPAUTH_PORT=tcp://…,
            // APPAUTH_SERVICE_HOST=… for a Service named `appauth`: those
            // are someone else's variables, not typos of ours.
            let Some((section, key)) = rest
                .split_once('_')
                .map(|(s, k)| (s.to_ascii_lowercase(), k.to_ascii_lowercase()))
                .filter(|(s, _)| SECTIONS.contains(&s.as_str()))
            else {
                ignored.push(name);
                continue;
            };
            let key = format!("{section}.{key}");
            settings.push(Setting {
                key,
                origin: format!("environment variable {name}"),
                value: Value::String(value),
            });
        }
        for o in overrides {
            let (key, value) = o.split_once('=').ok_or_else(|| ConfigError {
                key: o.clone(),
                origin: "--set".into(),
                message: "expected section.key=value".into(),
            })?;
            settings.push(Setting {
                key: key.trim().to_owned(),
                origin: "--set".into(),
                value: Value::String(value.to_owned()),
            });
        }
        let mut config = Config::default();
        // `*_file` variants of secret-valued keys: the later of the pair wins.
        let mut from_file: Vec<(&'static str, PathBuf, String)> = Vec::new();
        for s in &settings {
            if let Some(&(_, key)) = SECRET_FILES.iter().find(|(f, _)| *f == s.key) {
                from_file.retain(|(k, _, _)| *k != key);
                from_file.push((key, PathBuf::from(string(s)?), s.origin.clone()));
            } else {
                from_file.retain(|(k, _, _)| *k != s.key);
                config.set(s)?;
            }
        }
        for (key, path, origin) in from_file {
            let value = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                key: format!("{key}_file"),
                origin,
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            let value = Some(value.trim().to_owned());
            match key {
                "redis.url" => config.redis.url = value,
                _ => config.store.postgres_url = value,
            }
        }
        if !ignored.is_empty() {
            config.warnings.push(format!(
                "ignoring environment variables that are not appauth settings (no such section; e.g. Kubernetes service links): {}",
                ignored.join(", ")
            ));
        }
        config.validate()?;
        Ok(config)
    }

    fn set(&mut self, s: &Setting) -> Result<(), ConfigError> {
        match s.key.as_str() {
            "server.listen" => {
                self.server.listen = string(s)?
                    .parse()
                    .map_err(|_| err(s, "expected an address like 127.0.0.1:8080"))?
            }
            "server.tls_cert" => self.server.tls_cert = optional_path(s)?,
            "server.tls_key" => self.server.tls_key = optional_path(s)?,
            "server.admin_listen" => {
                let v = string(s)?;
                self.server.admin_listen = if v.is_empty() {
                    None
                } else {
                    Some(
                        v.parse()
                            .map_err(|_| err(s, "expected an address like 127.0.0.1:8081"))?,
                    )
                }
            }
            "server.admin_url" => {
                let v = string(s)?;
                self.server.admin_url = if v.is_empty() {
                    None
                } else {
                    let url = url::Url::parse(&v)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none())
                        .ok_or_else(|| err(s, "expected an http(s) URL like https://appauth-admin.internal:9081"))?;
                    Some(url.as_str().trim_end_matches('/').to_owned())
                }
            }
            "server.admin_tls_cert" => self.server.admin_tls_cert = optional_path(s)?,
            "server.admin_tls_key" => self.server.admin_tls_key = optional_path(s)?,
            "server.max_body_bytes" => self.server.max_body_bytes = integer(s, 1024, 1 << 20)? as usize,
            "server.header_read_timeout_seconds" => {
                self.server.header_read_timeout = std::time::Duration::from_secs(integer(s, 1, 3600)? as u64)
            }
            "server.idle_timeout_seconds" => {
                self.server.idle_timeout = std::time::Duration::from_secs(integer(s, 1, 86_400)? as u64)
            }
            "server.body_read_timeout_seconds" => {
                self.server.body_read_timeout = std::time::Duration::from_secs(integer(s, 1, 3600)? as u64)
            }
            "server.max_connections" => self.server.max_connections = integer(s, 1, 1_000_000)? as usize,
            "server.client_ca_file" => self.server.client_ca_file = optional_path(s)?,
            "server.self_signed_client_certs" => self.server.self_signed_client_certs = boolean(s)?,
            "server.client_cert_header_on_admin" => self.server.client_cert_header_on_admin = boolean(s)?,
            "server.client_cert_header" => {
                let v = string(s)?;
                self.server.client_cert_header = if v.is_empty() {
                    None
                } else {
                    Some(
                        axum::http::HeaderName::from_bytes(v.to_ascii_lowercase().as_bytes())
                            .map_err(|_| err(s, "expected a header name like x-ssl-client-cert"))?,
                    )
                }
            }
            "server.trusted_proxies" => {
                self.server.trusted_proxies = list(s)?
                    .iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.parse().map_err(|_| {
                            err(
                                s,
                                &format!("{p:?} is not an IP address (one address per load balancer, no ranges)"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            "issuer.url" => {
                let u = string(s)?;
                self.issuer.url = if u.is_empty() { None } else { Some(u) }
            }
            "issuer.audiences" => self.issuer.audiences = list(s)?,
            "issuer.token_ttl_seconds" => self.issuer.token_ttl_seconds = integer(s, 5, 86_400)?,
            "issuer.admin_audience" => {
                let a = string(s)?;
                self.issuer.admin_audience = if a.is_empty() { None } else { Some(a) }
            }
            "issuer.audience_algs" => self.issuer.audience_algs = audience_algs(s)?,
            "limits.auth_failures_per_minute" => {
                self.limits.auth_failures_per_minute = integer(s, 1, 1_000_000)? as u32
            }
            "limits.address_failures_per_minute" => {
                self.limits.address_failures_per_minute = integer(s, 1, 1_000_000)? as u32
            }
            "limits.admin_requests_per_minute" => {
                self.limits.admin_requests_per_minute = integer(s, 1, 1_000_000)? as u32
            }
            "audit.retention_days" => self.audit.retention_days = integer(s, 1, 36_500)?,
            "oauth.max_assertion_lifetime_seconds" => {
                self.oauth.max_assertion_lifetime_seconds = integer(s, 10, 86_400)?
            }
            "federation.issuers" => self.federation.issuers = federation_issuers(s)?,
            "oauth.dpop_nonce" => self.oauth.dpop_nonce = boolean(s)?,
            "store.path" => self.store.path = PathBuf::from(string(s)?),
            "store.backend" => {
                self.store.backend = match string(s)?.as_str() {
                    "sled" => StoreBackend::Sled,
                    "postgres" => StoreBackend::Postgres,
                    other => {
                        return Err(ConfigError {
                            key: s.key.clone(),
                            origin: s.origin.clone(),
                            message: format!(
                                "{other:?} is not a backend; use \"sled\" (one instance) or \"postgres\" (many)"
                            ),
                        });
                    }
                }
            }
            "store.postgres_url" => {
                let u = string(s)?;
                self.store.postgres_url = if u.is_empty() { None } else { Some(u) }
            }
            "keys.kek_file" => self.keys.kek_file = Some(PathBuf::from(string(s)?)),
            "keys.dir" => self.keys.dir = PathBuf::from(string(s)?),
            "keys.publish_ahead_seconds" => self.keys.publish_ahead_seconds = integer(s, 0, 30 * 86_400)?,
            "redis.url" => {
                let u = string(s)?;
                self.redis.url = if u.is_empty() { None } else { Some(u) }
            }
            "log.level" => {
                let l = string(s)?.to_ascii_lowercase();
                if !["trace", "debug", "info", "warn", "error"].contains(&l.as_str()) {
                    return Err(err(s, "expected one of trace, debug, info, warn, error"));
                }
                self.log.level = l;
            }
            "log.token_success_sample" => self.log.token_success_sample = integer(s, 1, 1_000_000)? as u32,
            "log.format" => {
                self.log.format = match string(s)?.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err(err(s, "expected `text` or `json`")),
                }
            }
            _ => {
                let hint = did_you_mean(&s.key)
                    .map(|k| format!("did you mean `{k}`? "))
                    .unwrap_or_default();
                return Err(err(s, &format!("unknown key; {hint}known keys: {}", KEYS.join(", "))));
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, message: &str| ConfigError {
            key: key.into(),
            origin: "validation".into(),
            message: message.into(),
        };
        if self.store.backend == StoreBackend::Postgres && self.store.postgres_url.is_none() {
            return Err(fail(
                "store.postgres_url",
                "store.backend = \"postgres\" needs store.postgres_url (or store.postgres_url_file), e.g. postgres://appauth@db.example/appauth",
            ));
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(fail(
                "server.tls_cert",
                "server.tls_cert and server.tls_key must be set together",
            ));
        }
        if self.server.admin_tls_cert.is_some() != self.server.admin_tls_key.is_some() {
            return Err(fail(
                "server.admin_tls_cert",
                "server.admin_tls_cert and server.admin_tls_key must be set together",
            ));
        }
        if self.server.admin_tls_cert.is_some() && self.server.admin_listen.is_none() {
            return Err(fail(
                "server.admin_tls_cert",
                "server.admin_tls_cert is for the admin listener: set server.admin_listen too",
            ));
        }
        if self.server.client_cert_header.is_some() && self.server.trusted_proxies.is_empty() {
            return Err(fail(
                "server.client_cert_header",
                "server.client_cert_header is read only from server.trusted_proxies: list the proxies that set it",
            ));
        }
        if self.server.client_cert_header.is_some() && !self.server.mtls_enabled() {
            return Err(fail(
                "server.client_cert_header",
                "server.client_cert_header needs server.client_ca_file or server.self_signed_client_certs = true",
            ));
        }
        if self.server.mtls_enabled() && self.server.tls_cert.is_none() && self.server.client_cert_header.is_none() {
            return Err(fail(
                if self.server.client_ca_file.is_some() {
                    "server.client_ca_file"
                } else {
                    "server.self_signed_client_certs"
                },
                "mutual TLS needs TLS: set server.tls_cert and server.tls_key, or server.client_cert_header behind a TLS-terminating proxy",
            ));
        }
        if let Some(admin) = self.server.admin_listen
            && admin == self.server.listen
            && admin.port() != 0
        {
            return Err(fail(
                "server.admin_listen",
                "server.admin_listen must differ from server.listen: the point is a second, private address",
            ));
        }
        if self.issuer.audiences.is_empty() || self.issuer.audiences.iter().any(|a| a.is_empty()) {
            return Err(fail("issuer.audiences", "at least one non-empty audience is required"));
        }
        if self
            .issuer
            .audiences
            .iter()
            .any(|a| a.chars().any(|c| c.is_control() || c == ' '))
        {
            return Err(fail(
                "issuer.audiences",
                "audiences must not contain spaces or control characters",
            ));
        }
        if self.server.listen.ip().is_unspecified() && self.issuer.url.is_none() {
            return Err(fail(
                "issuer.url",
                &format!(
                    "must be set when server.listen is a wildcard address ({}): tokens would name {} as their issuer, which no client can reach; set it to the URL clients use, e.g. https://auth.example.com",
                    self.server.listen, self.server.listen
                ),
            ));
        }
        if let Some(aud) = self
            .issuer
            .audience_algs
            .keys()
            .find(|a| !self.issuer.audiences.contains(a))
        {
            return Err(fail(
                "issuer.audience_algs",
                &format!(
                    "{aud:?} is not one of issuer.audiences ({})",
                    self.issuer.audiences.join(", ")
                ),
            ));
        }
        if let Some(a) = &self.issuer.admin_audience
            && !self.issuer.audiences.contains(a)
        {
            return Err(fail(
                "issuer.admin_audience",
                &format!(
                    "{a:?} is not one of issuer.audiences ({}); the admin audience must be an audience this server issues tokens for",
                    self.issuer.audiences.join(", ")
                ),
            ));
        }
        if self.limits.address_failures_per_minute < self.limits.auth_failures_per_minute {
            return Err(fail(
                "limits.address_failures_per_minute",
                "must be at least limits.auth_failures_per_minute (an address's budget covers all of its client IDs)",
            ));
        }
        if let Some(u) = &self.issuer.url {
            let parsed = url::Url::parse(u).map_err(|e| fail("issuer.url", &format!("not an absolute URL: {e}")))?;
            if !["http", "https"].contains(&parsed.scheme()) || parsed.query().is_some() || parsed.fragment().is_some()
            {
                return Err(fail(
                    "issuer.url",
                    "must be an http(s) URL without query or fragment (RFC 8414 §2)",
                ));
            }
        }
        if let Some(u) = &self.redis.url {
            let parsed = url::Url::parse(u).map_err(|_| fail("redis.url", "not a URL (expected redis://host:port)"))?;
            if !["redis", "rediss"].contains(&parsed.scheme()) {
                return Err(fail("redis.url", "scheme must be redis:// or rediss://"));
            }
        }
        Ok(())
    }

    pub fn tls_enabled(&self) -> bool {
        self.server.tls_cert.is_some()
    }
}

fn file_settings(path: &Path) -> Result<Vec<Setting>, ConfigError> {
    let origin = format!("file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        key: "--config".into(),
        origin: origin.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
        key: "--config".into(),
        origin: origin.clone(),
        message: format!("not valid TOML: {}", e.message()),
    })?;
    let mut out = Vec::new();
    for (section, body) in table {
        let Value::Table(body) = body else {
            return Err(ConfigError {
                key: section,
                origin,
                message: "expected a [section] table".into(),
            });
        };
        for (key, value) in body {
            out.push(Setting {
                key: format!("{section}.{key}"),
                origin: origin.clone(),
                value,
            });
        }
    }
    Ok(out)
}

fn err(s: &Setting, message: &str) -> ConfigError {
    ConfigError {
        key: s.key.clone(),
        origin: s.origin.clone(),
        message: message.into(),
    }
}

fn string(s: &Setting) -> Result<String, ConfigError> {
    match &s.value {
        Value::String(v) => Ok(v.clone()),
        _ => Err(err(s, "expected a string")),
    }
}

fn optional_path(s: &Setting) -> Result<Option<PathBuf>, ConfigError> {
    let v = string(s)?;
    Ok(if v.is_empty() { None } else { Some(PathBuf::from(v)) })
}

fn integer(s: &Setting, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n = match &s.value {
        Value::Integer(n) => *n,
        Value::String(v) => v.trim().parse().map_err(|_| err(s, "expected an integer"))?,
        _ => return Err(err(s, "expected an integer")),
    };
    if !(min..=max).contains(&n) {
        return Err(err(s, &format!("must be between {min} and {max}")));
    }
    Ok(n)
}

/// A TOML table `{ "aud" = "RS256" }`, or (from the environment or
/// `--set`) `aud=RS256,aud2=RS256`. Only RS256 can be chosen: ES256 and
/// EdDSA tokens come from the default key, whichever of the two it is.
fn audience_algs(s: &Setting) -> Result<std::collections::BTreeMap<String, crate::token::Alg>, ConfigError> {
    let pairs: Vec<(String, String)> = match &s.value {
        Value::Table(t) => t
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.clone(), v.to_owned()))
                    .ok_or_else(|| err(s, &format!("the algorithm for {k:?} must be a string")))
            })
            .collect::<Result<_, _>>()?,
        Value::String(v) => v
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.rsplit_once('=')
                    .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
                    .ok_or_else(|| err(s, &format!("{p:?} is not audience=ALG")))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(err(s, "expected a table of audience = \"RS256\"")),
    };
    pairs
        .into_iter()
        .map(|(aud, alg)| match crate::token::Alg::parse(&alg) {
            Some(crate::token::Alg::RS256) => Ok((aud, crate::token::Alg::RS256)),
            _ => Err(err(
                s,
                &format!(
                    "{alg:?} for {aud:?}: only \"RS256\" can be chosen per audience (the others use the default key)"
                ),
            )),
        })
        .collect()
}

/// A TOML array of strings, or (from the environment) a comma-separated list.
/// `[[federation.issuers]]` tables in the file; from the environment or
/// `--set`, the same as a TOML inline array:
/// `[{issuer = "https://…", audience = "…"}]`.
fn federation_issuers(s: &Setting) -> Result<Vec<FederationIssuer>, ConfigError> {
    let parsed;
    let items = match &s.value {
        Value::Array(items) => items,
        Value::String(text) => {
            let doc: toml::Table = format!("v = {text}")
                .parse()
                .map_err(|e: toml::de::Error| err(s, &format!("expected a TOML array of tables: {}", e.message())))?;
            parsed = doc.get("v").and_then(Value::as_array).cloned().unwrap_or_default();
            &parsed
        }
        _ => return Err(err(s, "expected an array of tables ([[federation.issuers]])")),
    };
    let mut out: Vec<FederationIssuer> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |m: &str| err(s, &format!("issuer #{}: {m}", i + 1));
        let table = item.as_table().ok_or_else(|| at("expected a table"))?;
        const FIELDS: [&str; 7] = [
            "issuer",
            "jwks_uri",
            "ca_file",
            "audience",
            "max_token_lifetime_seconds",
            "min_cache_seconds",
            "stale_seconds",
        ];
        if let Some(unknown) = table.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(at(&format!("unknown key {unknown:?}; known: {}", FIELDS.join(", "))));
        }
        let text = |name: &str| -> Result<Option<String>, ConfigError> {
            match table.get(name) {
                None => Ok(None),
                Some(Value::String(v)) if !v.is_empty() => Ok(Some(v.clone())),
                Some(_) => Err(at(&format!("{name} must be a non-empty string"))),
            }
        };
        let https = |name: &str, v: &str| -> Result<(), ConfigError> {
            let u = url::Url::parse(v).map_err(|e| at(&format!("{name} {v:?} is not a URL: {e}")))?;
            if u.scheme() != "https" || u.host_str().is_none() || u.fragment().is_some() || u.query().is_some() {
                return Err(at(&format!(
                    "{name} {v:?} must be an https:// URL without query or fragment (keys are fetched over HTTPS only)"
                )));
            }
            Ok(())
        };
        let issuer = text("issuer")?.ok_or_else(|| at("issuer is required"))?;
        https("issuer", &issuer)?;
        let jwks_uri = text("jwks_uri")?;
        if let Some(u) = &jwks_uri {
            https("jwks_uri", u)?;
        }
        let max = match table.get("max_token_lifetime_seconds") {
            None => 3600,
            Some(Value::Integer(n)) if (60..=86_400).contains(n) => *n,
            Some(_) => return Err(at("max_token_lifetime_seconds must be an integer from 60 to 86400")),
        };
        let seconds = |name: &str, default: u64, max: i64| -> Result<u64, ConfigError> {
            match table.get(name) {
                None => Ok(default),
                Some(Value::Integer(n)) if (0..=max).contains(n) => Ok(*n as u64),
                Some(_) => Err(at(&format!("{name} must be an integer from 0 to {max}"))),
            }
        };
        let min_cache_seconds = seconds("min_cache_seconds", 60, 3600)?.max(1);
        let stale_seconds = seconds("stale_seconds", 3600, 86_400)?;
        if out.iter().any(|o| o.issuer == issuer) {
            return Err(at(&format!("issuer {issuer:?} is listed twice")));
        }
        out.push(FederationIssuer {
            issuer,
            jwks_uri,
            ca_file: text("ca_file")?.map(PathBuf::from),
            audience: text("audience")?,
            max_token_lifetime_seconds: max,
            min_cache_seconds,
            stale_seconds,
        });
    }
    if out.len() > 32 {
        return Err(err(s, "at most 32 federation issuers"));
    }
    Ok(out)
}

fn boolean(s: &Setting) -> Result<bool, ConfigError> {
    match &s.value {
        Value::Boolean(b) => Ok(*b),
        Value::String(v) if v == "true" => Ok(true),
        Value::String(v) if v == "false" => Ok(false),
        _ => Err(err(s, "expected true or false")),
    }
}

fn list(s: &Setting) -> Result<Vec<String>, ConfigError> {
    match &s.value {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| err(s, "expected an array of strings"))
            })
            .collect(),
        Value::String(v) => Ok(v
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()),
        _ => Err(err(s, "expected an array of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let c = Config::load(None, env(&[]), &[]).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.max_body_bytes, 16384);
        assert_eq!(c.issuer.audiences, ["urn:appauth:api"]);
        assert_eq!(c.issuer.token_ttl_seconds, 3600);
        assert_eq!(c.store.path, PathBuf::from("data"));
        assert!(c.redis.url.is_none());
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:1\"\nmax_body_bytes = 2048\n[log]\nlevel = \"warn\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("APPAUTH_SERVER_LISTEN", "127.0.0.1:2"),
                ("APPAUTH_ISSUER_AUDIENCES", "a, b"),
            ]),
            &["server.listen=127.0.0.1:3".into()],
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 3);
        assert_eq!(c.server.max_body_bytes, 2048);
        assert_eq!(c.log.level, "warn");
        assert_eq!(c.issuer.audiences, ["a", "b"]);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_origin() {
        let e = Config::load(None, env(&[("APPAUTH_SERVER_LISTN", "x")]), &[]).unwrap_err();
        assert_eq!(e.key, "server.listn");
        assert!(e.origin.contains("APPAUTH_SERVER_LISTN"));
        let e = Config::load(None, env(&[("APPAUTH_SERVER_MAX_BODY_BYTES", "lots")]), &[]).unwrap_err();
        assert_eq!(e.key, "server.max_body_bytes");
        let e = Config::load(None, env(&[("APPAUTH_REDIS_URL", "http://x")]), &[]).unwrap_err();
        assert_eq!(e.key, "redis.url");
        let e = Config::load(None, env(&[("APPAUTH_SERVER_TLS_CERT", "c.pem")]), &[]).unwrap_err();
        assert_eq!(e.key, "server.tls_cert");
    }

    #[test]
    fn mutual_tls_needs_tls_or_a_trusted_proxy_that_passes_the_certificate() {
        let load = |set: &[&str]| {
            let set: Vec<String> = set.iter().map(|s| (*s).to_owned()).collect();
            Config::load(None, env(&[]), &set)
        };
        let e = load(&["server.self_signed_client_certs=true"]).unwrap_err();
        assert_eq!(e.key, "server.self_signed_client_certs");
        assert!(e.message.contains("needs TLS"), "{}", e.message);
        let e = load(&["server.client_ca_file=ca.pem"]).unwrap_err();
        assert_eq!(e.key, "server.client_ca_file");
        let e = load(&[
            "server.client_cert_header=x-client-cert",
            "server.self_signed_client_certs=true",
        ])
        .unwrap_err();
        assert_eq!(e.key, "server.client_cert_header");
        assert!(e.message.contains("trusted_proxies"), "{}", e.message);
        let e = load(&[
            "server.client_cert_header=x-client-cert",
            "server.trusted_proxies=10.0.0.5",
        ])
        .unwrap_err();
        assert!(e.message.contains("client_ca_file"), "{}", e.message);
        let e = load(&["server.client_cert_header=bad header"]).unwrap_err();
        assert_eq!(e.key, "server.client_cert_header");
        let ok = load(&[
            "server.client_cert_header=X-SSL-Client-Cert",
            "server.trusted_proxies=10.0.0.5",
            "server.self_signed_client_certs=true",
        ])
        .unwrap();
        assert_eq!(ok.server.client_cert_header.unwrap().as_str(), "x-ssl-client-cert");
    }

    #[test]
    fn kubernetes_service_links_are_ignored_with_a_warning_but_typos_in_known_sections_are_errors() {
        let c = Config::load(
            None,
            env(&[
                ("APPAUTH_PORT", "tcp://10.0.0.1:8080"),
                ("APPAUTH_PORT_8080_TCP_ADDR", "10.0.0.1"),
                ("APPAUTH_SERVICE_HOST", "10.0.0.1"),
                ("APPAUTH_LOG_LEVEL", "warn"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(c.log.level, "warn");
        assert_eq!(c.warnings.len(), 1, "one warning line");
        assert!(c.warnings[0].contains("APPAUTH_PORT") && c.warnings[0].contains("APPAUTH_SERVICE_HOST"));
        let e = Config::load(None, env(&[("APPAUTH_SERVER_LISTN", "x")]), &[]).unwrap_err();
        assert!(e.message.contains("did you mean `server.listen`"), "{}", e.message);
    }

    #[test]
    fn a_wildcard_listen_address_needs_an_explicit_issuer_url() {
        let e = Config::load(None, env(&[]), &["server.listen=0.0.0.0:8080".into()]).unwrap_err();
        assert_eq!(e.key, "issuer.url");
        let c = Config::load(
            None,
            env(&[]),
            &[
                "server.listen=[::]:8080".into(),
                "issuer.url=https://auth.example".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.issuer.url.as_deref(), Some("https://auth.example"));
    }

    #[test]
    fn urls_are_redacted_in_the_userinfo_and_the_query() {
        assert_eq!(redact_url("postgres://u:pw@db/x"), "postgres://***@db/x");
        assert_eq!(
            redact_url("postgres://db/x?password=pw&sslmode=require"),
            "postgres://db/x?***"
        );
    }

    #[test]
    fn redis_url_file_is_read_and_never_debug_printed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("url");
        std::fs::write(&f, "redis://:hunter2@127.0.0.1:6379\n").unwrap();
        let c = Config::load(None, env(&[("APPAUTH_REDIS_URL_FILE", f.to_str().unwrap())]), &[]).unwrap();
        assert_eq!(c.redis.url.as_deref(), Some("redis://:hunter2@127.0.0.1:6379"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
