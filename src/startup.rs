//! Building and running the server: `App::build(config)` → `.port()` →
//! `.run_until_stopped()`, the router, TLS, background tasks and graceful
//! shutdown (stop accepting, finish in-flight requests, flush the store).

use crate::config::Config;
use crate::config::StoreBackend;
use crate::connection::{self, Activity, Watched};
use crate::directory::Directory;
use crate::domain::application::Application;
use crate::domain::secret::ClientSecret;
use crate::oauth::grant::Grants;
use crate::oauth::throttle::{FailureThrottle, RequestLimiter};
use crate::revocation::memory::MemoryCache;
use crate::revocation::redis::RedisCache;
use crate::revocation::{RevocationCache, Revocations};
use crate::routes::{self, AppState, SharedState};
use crate::store::{PostgresStore, SledStore, Store};
use crate::telemetry::{self, Metrics, PeerAddr, RequestIds};
use crate::token::TokenIssuer;
use crate::token::keys::{self, Alg, KeySet};
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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

/// The store, pepper and keys, opened (and created when missing).
pub struct Bootstrap {
    pub directory: Arc<Directory>,
    pub keys: KeySet,
    pub store: Arc<dyn Store>,
    /// The key-encryption key, with a shared store.
    pub vault: Option<Arc<crate::token::vault::Kek>>,
    /// Set when this run initialised an empty store.
    pub created_admin: Option<(Application, ClientSecret)>,
}

/// Opens the store and key directory, creating the pepper and a first
/// ES256 key when missing; initialises an empty store when `initialize`.
/// `hand_over` gets new admin credentials before they are committed (see
/// [`Directory::initialize`]).
pub async fn bootstrap(
    config: &Config,
    initialize: bool,
    hand_over: impl FnOnce(&Application, &ClientSecret) -> Result<(), String>,
    withdraw: impl FnOnce(),
) -> Result<Bootstrap, StartupError> {
    std::fs::create_dir_all(&config.store.path).map_err(|e| {
        StartupError::Other(format!(
            "cannot create store directory {}: {e}",
            config.store.path.display()
        ))
    })?;
    let store: Arc<dyn Store> = match (config.store.backend, &config.store.postgres_url) {
        (StoreBackend::Postgres, Some(url)) => {
            let url = url.clone();
            let opened = tokio::task::spawn_blocking(move || PostgresStore::open(&url))
                .await
                .map_err(|e| StartupError::Other(format!("PostgreSQL start-up task failed: {e}")))?;
            Arc::new(opened.map_err(|e| {
                StartupError::Other(format!(
                    "{e}. Check store.postgres_url ({}) and that the database is reachable.",
                    crate::config::redact_url(config.store.postgres_url.as_deref().unwrap_or_default())
                ))
            })?)
        }
        _ => Arc::new(SledStore::open(&config.store.path).map_err(|e| {
            StartupError::Other(format!(
                "{e}. Is another appauth process using {}? Only one may open a sled store; stop it first.",
                config.store.path.display()
            ))
        })?),
    };
    // A shared store holds the cluster's pepper and keys, sealed: bring
    // `keys.dir` up to date with them before anything reads it.
    let vault = match config.store.backend {
        StoreBackend::Postgres => {
            // Only the first instance of a cluster may create the KEK; a
            // later one without the file (say, a mistyped path) must stop.
            let first = !crate::token::vault::cluster_exists(store.as_ref())?;
            let kek = crate::token::vault::Kek::load(&config.keys.kek_path(), first)?;
            crate::token::vault::share_pepper(store.as_ref(), &kek, &config.keys.dir)?;
            crate::token::vault::pull(store.as_ref(), &kek, &config.keys.dir)?;
            Some(Arc::new(kek))
        }
        StoreBackend::Sled => None,
    };
    let initialized = store.get(crate::store::keys::INITIALIZED)?.is_some();
    let pepper = match keys::load_pepper(&config.keys.dir)? {
        Some(p) => p,
        None if initialized => {
            return Err(StartupError::Other(format!(
                "the store at {} is initialised but {} has no pepper file: every stored secret hash is unusable without it. Restore keys/pepper from backup.",
                config.store.path.display(),
                config.keys.dir.display()
            )));
        }
        None => keys::create_pepper(&config.keys.dir)?,
    };
    let ttl = config.issuer.token_ttl_seconds;
    let mut keyset = KeySet::load(&config.keys.dir, ttl)?;
    if keyset.is_empty() {
        let kid = keys::generate(&config.keys.dir, Alg::ES256, crate::domain::now_ms() / 1000)?;
        tracing::info!(kid, dir = %config.keys.dir.display(), "generated the first signing key (ES256)");
        keyset = KeySet::load(&config.keys.dir, ttl)?;
    }
    if let Some(kek) = &vault {
        crate::token::vault::push(store.as_ref(), kek, &config.keys.dir, None)?;
    }
    let directory = Arc::new(Directory::load(store.clone(), pepper, ttl)?);
    let created_admin = if initialize {
        directory.initialize(hand_over, withdraw).await?
    } else {
        None
    };
    Ok(Bootstrap {
        directory,
        keys: keyset,
        store,
        vault,
        created_admin,
    })
}

/// `{"clientId": …, "secret": …}`, the form of `initial-admin.json` and `init --json`.
pub fn admin_credentials_json(app: &Application, secret: &ClientSecret) -> String {
    serde_json::json!({"clientId": app.client_id.as_str(), "secret": secret.expose()}).to_string()
}

pub struct App {
    listener: TcpListener,
    address: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    state: SharedState,
    store: Arc<dyn Store>,
    initial_admin: Option<PathBuf>,
}

impl App {
    pub async fn build(config: Config) -> Result<App, StartupError> {
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
        let initial_admin = match &boot.created_admin {
            Some((app, _)) => {
                tracing::info!(path = %path.display(), client_id = %app.client_id, "initialised an empty store; the admin credentials are in this file (mode 0600)");
                Some(path)
            }
            None => None,
        };
        let listener = TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| StartupError::Other(format!("cannot listen on {}: {e}", config.server.listen)))?;
        let address = listener
            .local_addr()
            .map_err(|e| StartupError::Other(format!("cannot read the bound address: {e}")))?;
        let tls = match (&config.server.tls_cert, &config.server.tls_key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer_url = config
            .issuer
            .url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("{scheme}://{address}"));
        let issuer = Arc::new(TokenIssuer::new(
            boot.keys,
            &issuer_url,
            &config.issuer.audiences,
            config.issuer.token_ttl_seconds,
        ));
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
        let state = Arc::new(AppState {
            metadata_json: routes::metadata::render(&issuer_url, &role_ids),
            issuer_url,
            grants: Grants {
                directory: boot.directory.clone(),
                issuer: issuer.clone(),
                throttle: FailureThrottle::new(
                    config.limits.auth_failures_per_minute,
                    config.limits.address_failures_per_minute,
                ),
            },
            request_ids: RequestIds::default(),
            access_log: telemetry::AccessLog::default(),
            vault: boot.vault.clone(),
            admin_limiter: RequestLimiter::new(config.limits.admin_requests_per_minute),
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
        let router = router(state.clone());
        tracing::info!(address = %address, issuer = %state.issuer_url, tls = state.config.tls_enabled(), "listening");
        Ok(App {
            listener,
            address,
            router,
            tls,
            state,
            store: boot.store,
            initial_admin,
        })
    }

    /// Connects the binary's log writer: access lines go to it (when
    /// `log.level` admits them) and its dropped-line count is exposed in
    /// `/metrics` (and warned about once when it first grows).
    pub fn log_to(&self, logging: &telemetry::Logging) {
        let _ = self.state.metrics.log_dropped.set(logging.dropped.clone());
        if logging.access {
            self.state.access_log.enable(logging.writer.clone(), logging.format);
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The assembled router, for driving requests in-process (benchmarks).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub fn issuer_url(&self) -> &str {
        &self.state.issuer_url
    }

    /// Where this start wrote the admin credentials, when it initialised the store.
    pub fn initial_admin_path(&self) -> Option<&PathBuf> {
        self.initial_admin.as_ref()
    }

    /// Runs until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `shutdown` completes, then drains connections and flushes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let background = tokio::spawn(background_tasks(self.state.clone(), stop_rx.clone()));
        let follower = tokio::spawn(follow_feed(self.state.clone(), stop_rx));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let limits = self.state.config.server.clone();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        let workers = ConnectionWorkers::start()?;
        let mut next_worker = 0usize;
        tokio::pin!(shutdown);
        loop {
            // Beyond `server.max_connections`, new connections wait in the
            // kernel's listen backlog until one ends: the ones being served
            // are not harmed, and nothing is accepted only to be dropped.
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(s) => s,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let Ok(stream) = stream.into_std() else { continue };
                    let router = self.router.clone();
                    // The peer address rides on every request of the
                    // connection (abuse limits and the audit log need it).
                    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(PeerAddr(peer));
                        // A Router is always ready, so `call` needs no `poll_ready`.
                        tower::Service::call(&mut router.clone(), req)
                    });
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    let tls = self.tls.clone();
                    let (first_byte, idle) = (limits.header_read_timeout, limits.idle_timeout);
                    next_worker = next_worker.wrapping_add(1);
                    workers.handle(next_worker).spawn(async move {
                        let _slot = slot;
                        // Re-registered with this worker's reactor, so all of
                        // the connection's wake-ups stay on one thread.
                        let Ok(stream) = tokio::net::TcpStream::from_std(stream) else { return };
                        let activity = Activity::new();
                        let stream = Watched::new(stream, activity.clone());
                        let serve = async {
                            match tls {
                                None => {
                                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                                    let _ = watcher.watch(conn.into_owned()).await;
                                }
                                Some(acceptor) => {
                                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                                    let Ok(Ok(tls)) = handshake else { return };
                                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                                    let _ = watcher.watch(conn.into_owned()).await;
                                }
                            }
                        };
                        // Whichever ends first; dropping the connection closes it.
                        tokio::select! {
                            () = serve => {}
                            () = connection::watchdog(activity, first_byte, idle) => {}
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(self.listener);
        tracing::info!("shutting down: finishing in-flight requests");
        if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 30 s; closing them");
        }
        workers.stop();
        let _ = stop_tx.send(true);
        let _ = background.await;
        let _ = follower.await;
        self.state.access_log.flush();
        if let Err(e) = self.state.directory.flush_logins().await {
            tracing::error!(error = %e, "could not save last-login times at shutdown");
        }
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// One single-threaded runtime per core for connections. The multi-thread
/// scheduler moved connection tasks between workers, and the cross-thread
/// wake-ups cost more than the work on a 2-core machine; a connection here
/// lives on one thread from accept to close.
struct ConnectionWorkers {
    handles: Vec<tokio::runtime::Handle>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ConnectionWorkers {
    fn start() -> std::io::Result<Self> {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut w = ConnectionWorkers {
            handles: Vec::with_capacity(n),
            stops: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            w.handles.push(rt.handle().clone());
            w.stops.push(tx);
            w.threads.push(
                std::thread::Builder::new()
                    .name(format!("appauth-conn-{i}"))
                    .spawn(move || {
                        rt.block_on(async {
                            let _ = rx.await;
                        });
                    })?,
            );
        }
        Ok(w)
    }

    fn handle(&self, i: usize) -> &tokio::runtime::Handle {
        &self.handles[i % self.handles.len()]
    }

    /// Called after the graceful drain: ends the worker threads.
    fn stop(self) {
        for s in self.stops {
            let _ = s.send(());
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Rotation without restart: a new key in `keys/` (from `appauth keys
/// generate`) is picked up within a second, or at once on SIGHUP. A key set
/// that fails to load leaves the current one in place.
fn reload_keys(state: &SharedState, seen: &mut Vec<(String, u64, Option<std::time::SystemTime>)>, forced: bool) {
    let now = keys::dir_fingerprint(&state.config.keys.dir);
    if !forced && now == *seen {
        return;
    }
    match KeySet::load(&state.config.keys.dir, state.config.issuer.token_ttl_seconds) {
        Ok(set) if !set.is_empty() => {
            tracing::info!(keys = set.all().len(), "signing keys reloaded");
            state.issuer.replace_keys(set);
            *seen = now;
        }
        Ok(_) => tracing::error!("keys directory has no key any more; keeping the loaded keys"),
        Err(e) => tracing::error!(error = %e, "could not reload signing keys; keeping the loaded ones"),
    }
}

/// Follows the other instances sharing the store (a task of its own, so
/// no other periodic work delays it): woken by the store's notifications,
/// and polling too, so one lost notification costs at most one poll.
/// Revocations and key material learned here go to their owners; what
/// failed is retried on the next round.
async fn follow_feed(state: SharedState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(signal) = state.directory.store().feed().map(|f| f.signal()) else {
        return;
    };
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut down = false;
    // The first round pulls keys too: one may have been stored between
    // start-up's pull and the directory's first sequence number.
    let mut keys_dirty = true;
    let mut keys_seen = Vec::new();
    loop {
        tokio::select! {
            () = signal.notified() => {}
            _ = poll.tick() => {}
            _ = stop.changed() => return,
        }
        match state.directory.catch_up().await {
            Ok(others) => {
                if down {
                    down = false;
                    tracing::info!("following the shared store's changes again");
                }
                if state.directory.take_reloaded() {
                    keys_dirty = true;
                    if let Err(e) = state.revocations.reload().await {
                        tracing::error!(error = %e, "could not reload revocations after a full reload");
                    }
                }
                state.revocations.follow(&others);
                keys_dirty |= others.iter().any(|c| c.key.starts_with(crate::token::vault::SEALED));
            }
            Err(e) if !down => {
                down = true;
                tracing::warn!(error = %e, "cannot read the shared store's changes; tokens are issued from memory, and changes made elsewhere are caught up when it answers again");
                continue;
            }
            Err(_) => continue,
        }
        if let (true, Some(kek)) = (keys_dirty, state.vault.clone()) {
            let (store, dir) = (state.directory.store().clone(), state.config.keys.dir.clone());
            match tokio::task::spawn_blocking(move || crate::token::vault::pull(store.as_ref(), &kek, &dir)).await {
                Ok(Ok(written)) => {
                    keys_dirty = false;
                    if written > 0 {
                        reload_keys(&state, &mut keys_seen, true);
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "could not take the cluster's new key material; retrying"),
                Err(e) => tracing::error!(error = %e, "key material task failed; retrying"),
            }
        }
    }
}

/// Periodic work: last-login write-back, purging lapsed revocation records,
/// refilling the revocation cache when it lost its contents, key rescans.
async fn background_tasks(state: SharedState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut logins = tokio::time::interval(Duration::from_secs(5));
    let mut purge = tokio::time::interval(Duration::from_secs(30));
    // Retention is in days: scanning the log every 10 minutes is plenty.
    let mut audit_purge = tokio::time::interval(Duration::from_secs(600));
    let mut store_probe = tokio::time::interval(Duration::from_secs(1));
    let mut log_check = tokio::time::interval(Duration::from_secs(5));
    let mut access_flush = tokio::time::interval(Duration::from_millis(100));
    let mut warned_log_drops = false;
    // Twice a second: Redis is whole again within 2 s of any state loss.
    let mut reconcile = tokio::time::interval(Duration::from_millis(500));
    reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cache_down = false;
    let mut rescan = tokio::time::interval(Duration::from_secs(1));
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut keys_seen = keys::dir_fingerprint(&state.config.keys.dir);
    loop {
        let sighup = async {
            match hangup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = rescan.tick() => reload_keys(&state, &mut keys_seen, false),
            _ = sighup => reload_keys(&state, &mut keys_seen, true),
            _ = logins.tick() => {
                if let Err(e) = state.directory.flush_logins().await {
                    tracing::error!(error = %e, "could not save last-login times");
                }
            }
            _ = purge.tick() => {
                let now = crate::domain::now_ms() / 1000;
                if let Err(e) = state.directory.purge_cutoffs(now).await {
                    tracing::error!(error = %e, "could not purge lapsed client revocations");
                }
                if let Err(e) = state.revocations.purge_expired(now).await {
                    tracing::error!(error = %e, "could not purge lapsed token revocations");
                }
                state.grants.throttle.sweep(now * 1000);
                state.admin_limiter.sweep(now * 1000);
            }
            _ = access_flush.tick() => state.access_log.flush(),
            _ = log_check.tick() => {
                let dropped = state.metrics.log_lines_dropped();
                if dropped > 0 && !warned_log_drops {
                    warned_log_drops = true;
                    tracing::warn!(dropped, "the log writer fell behind and dropped lines (requests were not slowed); see appauth_log_lines_dropped_total, and consider log.level=warn or a faster log sink");
                }
            }
            _ = store_probe.tick() => {
                // While writes fail, probe every second so recovery is seen
                // without waiting for the next admin write.
                if !state.directory.store().healthy() {
                    let store = state.directory.store().clone();
                    if let Ok(Ok(())) = tokio::task::spawn_blocking(move || store.probe_write()).await {
                        tracing::info!("store writes work again");
                    }
                }
            }
            _ = audit_purge.tick() => {
                let keep_ms = state.config.audit.retention_days * 86_400_000;
                if let Err(e) = state.directory.purge_audit(crate::domain::now_ms() - keep_ms).await {
                    tracing::error!(error = %e, "could not purge old audit records");
                }
            }
            _ = reconcile.tick() => {
                match state.revocations.reconcile(crate::domain::now_ms() / 1000).await {
                    Ok(_) if cache_down => {
                        cache_down = false;
                        tracing::info!(cache = state.revocations.cache_name(), "revocation cache reachable again");
                    }
                    Ok(_) => {}
                    Err(e) if !cache_down => {
                        cache_down = true;
                        state.metrics.redis_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(cache = state.revocations.cache_name(), error = %e, "revocation cache unreachable; appauth answers from its store");
                    }
                    Err(_) => {
                        state.metrics.redis_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

pub fn router(state: SharedState) -> Router {
    let admin = Router::new()
        .merge(routes::apps::router())
        .merge(routes::access_rules::router())
        .merge(routes::scopes::router())
        .merge(routes::audit::router());
    Router::new()
        .merge(admin)
        .merge(routes::token::router())
        .merge(routes::revoke::router())
        .merge(routes::introspect::router())
        .merge(routes::metadata::router())
        .merge(routes::openapi::router())
        .merge(routes::console::router())
        .merge(routes::health::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::access_log,
        ))
        .with_state(state)
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    let body =
        serde_json::json!({"code": 404, "message": format!("no route for {method} {}", uri.path()), "details": null});
    (StatusCode::NOT_FOUND, axum::Json(body))
}

fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<TlsAcceptor, StartupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| StartupError::Other(format!("server.tls_cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartupError::Other(format!(
            "server.tls_cert {}: no certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartupError::Other(format!("server.tls_key {}: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StartupError::Other(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            StartupError::Other(format!(
                "server.tls_cert/server.tls_key do not match or are unusable: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
