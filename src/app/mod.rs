//! The server as a whole: `App::build(config)` → `.port()` →
//! `.run_until_stopped()` (DESIGN §Style). Each file owns one part:
//! `bootstrap` opens the store, keys and directory; `run` serves (through
//! `http::server`) and shuts down in order; `jobs` are the background tasks
//! (following other instances, flushing, purging, key rotation).

mod bootstrap;
mod jobs;
mod run;

pub use bootstrap::{Bootstrap, admin_credentials_json, bootstrap};
use jobs::{background_tasks, end_overlaps, follow_feed};

use crate::config::Config;
use crate::config::StoreBackend;
use crate::directory::Directory;
use crate::domain::application::Application;
use crate::domain::secret::ClientSecret;
use crate::http::router::{Plane, router};
use crate::http::server::Listener;
use crate::http::tls::tls_acceptor;
use crate::http::{AppState, SharedState};
use crate::oauth::grant::Grants;
use crate::oauth::throttle::{FailureThrottle, RequestLimiter};
use crate::revocation::memory::MemoryCache;
use crate::revocation::redis::RedisCache;
use crate::revocation::{RevocationCache, Revocations};
use crate::store::{PostgresStore, SledStore, Store};
use crate::telemetry::{self, Metrics, RequestIds};
use crate::token::TokenIssuer;
use crate::token::keys::{self, Alg, KeySet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    #[error("{0}")]
    Other(String),
}

pub struct App {
    listeners: Vec<Listener>,
    address: SocketAddr,
    admin_address: Option<SocketAddr>,
    state: SharedState,
    store: Arc<dyn Store>,
    initial_admin: Option<PathBuf>,
}

impl App {
    pub async fn build(config: Config) -> Result<App, StartupError> {
        // Bind (and read the TLS files) first: a start that cannot serve
        // must not initialise a store and write admin credentials.
        let (listener, address) = bind(config.server.listen, "server.listen").await?;
        let tls = match (&config.server.tls_cert, &config.server.tls_key) {
            (Some(cert), Some(key)) => Some(
                tls_acceptor(cert, key, ("server.tls_cert", "server.tls_key"), &config.server)
                    .map_err(StartupError::Other)?,
            ),
            _ => None,
        };
        let admin = match config.server.admin_listen {
            None => None,
            Some(at) => {
                let (admin_listener, admin_address) = bind(at, "server.admin_listen").await?;
                let admin_tls = match (&config.server.admin_tls_cert, &config.server.admin_tls_key) {
                    (Some(cert), Some(key)) => Some(
                        tls_acceptor(
                            cert,
                            key,
                            ("server.admin_tls_cert", "server.admin_tls_key"),
                            &config.server,
                        )
                        .map_err(StartupError::Other)?,
                    ),
                    _ => tls.clone(),
                };
                Some((admin_listener, admin_address, admin_tls))
            }
        };
        // The credentials file is written (and synced) before the store
        // commits the admin application, so a crash can never leave an
        // administrator whose secret nobody has.
        let path = config.store.path.join("initial-admin.json");
        let (file, written) = (path.clone(), path.clone());
        let boot = bootstrap(
            &config,
            true,
            move |app, secret| {
                keys::write_private(&file, admin_credentials_json(app, secret).as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", file.display()))
            },
            // These credentials were never committed: leave no file that looks valid.
            move || {
                let _ = std::fs::remove_file(&written);
            },
        )
        .await?;
        // Nothing can predate a store this start initialised (see oauth::replay).
        let fresh_store = boot.created_admin.is_some();
        let initial_admin = match &boot.created_admin {
            Some((app, _)) => {
                tracing::info!(path = %path.display(), client_id = %app.client_id, "initialised an empty store; the admin credentials are in this file (mode 0600)");
                Some(path)
            }
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer_url = config
            .issuer
            .url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("{scheme}://{address}"));
        let issuer = Arc::new(
            TokenIssuer::new(
                boot.keys,
                &issuer_url,
                &config.issuer.audiences,
                config.issuer.token_ttl_seconds,
            )
            .with_audience_algs(&config.issuer.audience_algs)
            .with_longest_ttl(boot.directory.longest_ttl()),
        );
        let role_ids: Vec<&str> = crate::domain::role::ROLES.iter().map(|r| r.id).collect();
        let metrics = Arc::new(Metrics::default());
        let cache: Arc<dyn RevocationCache> = match &config.redis.url {
            Some(url) => Arc::new(RedisCache::new(url).map_err(|e| StartupError::Other(e.to_string()))?),
            None => Arc::new(MemoryCache::default()),
        };
        let store_dyn = boot.store.clone();
        let revocations = Revocations::load(store_dyn, boot.directory.clone(), cache, metrics.clone())?;
        // Fill the cache before serving; with Redis down this only logs, and
        // lookups fall back to the store until the background loop succeeds.
        if let Err(e) = revocations.reconcile(crate::domain::now_ms() / 1000).await {
            tracing::warn!(cache = revocations.cache_name(), error = %e, "revocation cache not available at start; appauth answers from its store, and resource servers following Redis will catch up when it is back");
        }
        let ledger: Arc<dyn crate::oauth::replay::JtiLedger> = match &config.redis.url {
            Some(url) => {
                let ledger = crate::oauth::replay::RedisLedger::new(url).map_err(StartupError::Other)?;
                let policy = tokio::time::timeout(std::time::Duration::from_secs(2), ledger.evicting_policy()).await;
                if let Ok(Ok(Some(policy))) = policy {
                    tracing::error!(
                        maxmemory_policy = %policy,
                        "Redis may evict keys: private_key_jwt assertions will be refused (503) until it runs with maxmemory-policy noeviction, since an evicted jti would be accepted again; revocation keys it evicts are rewritten by reconciliation within a second"
                    );
                }
                if fresh_store {
                    let covered =
                        tokio::time::timeout(std::time::Duration::from_secs(2), ledger.cover_everything_before())
                            .await
                            .unwrap_or_else(|_| Err("timed out".to_owned()));
                    if let Err(e) = covered {
                        tracing::info!(error = %e, "cannot record in Redis that no assertion predates this new store; assertions issued in the second of the first one checked will be refused once");
                    }
                }
                Arc::new(ledger)
            }
            None => {
                if config.store.backend == crate::config::StoreBackend::Postgres {
                    tracing::warn!(
                        "redis.url is unset: private_key_jwt client assertions will be refused (503), because instances could not refuse each other's replays; set redis.url to accept them"
                    );
                    Arc::new(crate::oauth::replay::NoSharedLedger)
                } else {
                    Arc::new(crate::oauth::replay::MemoryLedger::new(if fresh_store {
                        i64::MIN
                    } else {
                        crate::domain::now_ms() / 1000
                    }))
                }
            }
        };
        let federation = Arc::new(
            crate::federation::Federation::new(&config.federation.issuers, &issuer_url).map_err(StartupError::Other)?,
        );
        let state = Arc::new(AppState {
            metadata_json: crate::http::public::metadata::render(
                &issuer_url,
                &role_ids,
                &crate::http::public::metadata::Served {
                    documented: admin.is_none(),
                    token_exchange: !config.federation.issuers.is_empty(),
                    tls_client_auth: config.server.client_ca_file.is_some(),
                    self_signed_tls_client_auth: config.server.self_signed_client_certs,
                },
            ),
            issuer_url,
            grants: Grants {
                directory: boot.directory.clone(),
                issuer: issuer.clone(),
                throttle: {
                    let t = FailureThrottle::new(
                        config.limits.auth_failures_per_minute,
                        config.limits.address_failures_per_minute,
                    );
                    match &config.redis.url {
                        Some(url) => t.with_shared(Arc::new(
                            crate::oauth::shared_failures::SharedFailures::new(url).map_err(StartupError::Other)?,
                        )),
                        None => t,
                    }
                },
                ledger: ledger.clone(),
                max_assertion_lifetime: config.oauth.max_assertion_lifetime_seconds,
                federation,
                dpop: crate::oauth::dpop::Dpop {
                    ledger,
                    nonces: config
                        .oauth
                        .dpop_nonce
                        .then(|| crate::oauth::dpop::Nonces::new(&boot.directory.derive_key(b"appauth dpop nonce"))),
                },
                mtls: crate::oauth::mtls::Mtls::new(&config.server).map_err(StartupError::Other)?,
            },
            request_ids: RequestIds::default(),
            access_log: telemetry::AccessLog::default(),
            vault: boot.vault.clone(),
            admin_limiter: RequestLimiter::new(config.limits.admin_requests_per_minute),
            admin_failures: FailureThrottle::new(
                config.limits.address_failures_per_minute,
                config.limits.address_failures_per_minute,
            ),
            list_pool: crate::list_pool::ListPool::start(
                (std::thread::available_parallelism().map_or(2, |n| n.get()) / 2).max(1),
            )
            .map_err(|e| StartupError::Other(format!("cannot start the list-query threads: {e}")))?,
            directory: boot.directory,
            issuer,
            metrics,
            revocations,
            config,
        });
        let mut listeners = Vec::with_capacity(2);
        let public_plane = if admin.is_some() { Plane::Public } else { Plane::Both };
        listeners.push(Listener {
            listener,
            plane: public_plane,
            router: router(state.clone(), public_plane),
            tls,
        });
        let mut admin_address = None;
        if let Some((listener, at, tls)) = admin {
            admin_address = Some(at);
            listeners.push(Listener {
                listener,
                plane: Plane::Admin,
                router: router(state.clone(), Plane::Admin),
                tls,
            });
        }
        for l in &listeners {
            let at = if l.plane == Plane::Admin {
                admin_address
            } else {
                Some(address)
            };
            tracing::info!(address = %at.unwrap_or(address), plane = l.plane.name(), issuer = %state.issuer_url, tls = l.tls.is_some(), "listening");
        }
        Ok(App {
            listeners,
            address,
            admin_address,
            state,
            store: boot.store,
            initial_admin,
        })
    }

    /// Connects the binary's log writer: access lines go to it (when
    /// `log.level` admits them) and its dropped-line count is exposed in
    /// `/metrics` (and warned about once when it first grows).
    pub fn log_to(&self, logging: &telemetry::Logging) {
        self.state.metrics.count_log_drops(logging.dropped.clone());
        if logging.access {
            self.state
                .access_log
                .enable(logging.access_writer.clone(), logging.format);
            self.state
                .access_log
                .sample_token_successes(self.state.config.log.token_success_sample);
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The admin listener's address, when `server.admin_listen` is set.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin_address
    }

    pub fn issuer_url(&self) -> &str {
        &self.state.issuer_url
    }

    /// Where this start wrote the admin credentials, when it initialised the store.
    pub fn initial_admin_path(&self) -> Option<&PathBuf> {
        self.initial_admin.as_ref()
    }
}

async fn bind(at: SocketAddr, key: &str) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(at).await.map_err(|e| {
        StartupError::Other(format!(
            "cannot listen on {at}: {}; check {key} (is another process listening there?)",
            crate::store::sled::plain_io(&e)
        ))
    })?;
    let address = listener
        .local_addr()
        .map_err(|e| StartupError::Other(format!("cannot read the bound address: {e}")))?;
    Ok((listener, address))
}
