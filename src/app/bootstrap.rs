//! Opening what the server runs on: the store (sled or PostgreSQL), the
//! keys and pepper (shared through the store in a cluster), the directory,
//! and `appauth init` on an empty store.

use super::*;
use crate::token::keys::Chain;

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
    // Name the setting to fix, not the OS's "Not a directory (os error 20)"
    // for a file further down.
    for (key, dir) in [("store.path", &config.store.path), ("keys.dir", &config.keys.dir)] {
        if dir.exists() && !dir.is_dir() {
            return Err(StartupError::Other(format!(
                "{key} is {}, which is a file, not a directory: set {key} to a directory (it is created when missing)",
                dir.display()
            )));
        }
    }
    crate::store::sled::create_private_dir(&config.store.path).map_err(|e| {
        StartupError::Other(format!(
            "cannot create store directory {}: {}; check store.path",
            config.store.path.display(),
            crate::store::sled::plain_io(&e)
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
                "{e}. Only one appauth may open a sled store: stop the other one (or run several instances on store.backend = \"postgres\")."
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
    if !keyset.has_chain(Chain::Default) {
        let kid = keys::generate(&config.keys.dir, Alg::ES256, crate::domain::now_ms() / 1000)?;
        tracing::info!(kid, dir = %config.keys.dir.display(), "generated the first signing key (ES256)");
        keyset = KeySet::load(&config.keys.dir, ttl)?;
    }
    // An audience that asks for RS256 needs an RSA key; the first one signs
    // at once, like the first key of all.
    if config.issuer.audience_algs.values().any(|a| a.is_rsa()) && !keyset.has_chain(Chain::Rsa) {
        let kid = keys::generate(&config.keys.dir, Alg::RS256, crate::domain::now_ms() / 1000)?;
        tracing::info!(kid, dir = %config.keys.dir.display(), "generated the first RS256 signing key (issuer.audience_algs asks for it)");
        keyset = KeySet::load(&config.keys.dir, ttl)?;
    }
    if let Some(kek) = &vault {
        crate::token::vault::push(store.as_ref(), kek, &config.keys.dir, None)?;
    }
    let directory = Arc::new(Directory::load(store.clone(), pepper, ttl)?.with_audiences(&config.issuer.audiences));
    let releasing = store.clone();
    // A memory saving, but a store it could not reopen is closed: start-up
    // stops then, saying so (nothing else holds the store at this point, so
    // this means another process took its lock or the disk failed).
    tokio::task::spawn_blocking(move || releasing.release_cache())
        .await
        .map_err(|e| crate::store::StoreError::Io(format!("store cache release failed: {e}")))?
        .map_err(|e| crate::store::StoreError::Io(format!("could not reopen the store after loading it: {e}")))?;
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
