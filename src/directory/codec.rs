//! Records to and from their stored JSON, and reading the whole store into
//! a fresh catalog (at start and on a full reload).

use super::*;

/// Reads a prefix on a thread of its own. The allocator gives each thread
/// its own pages, so what the backend allocates while reading (sled's page
/// cache, the copies) never shares a page with the long-lived catalogue
/// decoded here, and goes back to the OS once the backend lets go of it
/// (`Store::release_cache`) instead of being pinned by a few live objects.
fn scan_apart(store: &dyn Store, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    std::thread::scope(|s| {
        s.spawn(|| store.scan_prefix(prefix))
            .join()
            .unwrap_or_else(|_| Err(StoreError::Io(format!("reading {prefix} panicked"))))
    })
}

/// Reads every record into a fresh catalog (the hot index fills itself
/// from it on demand).
pub(super) fn read_catalog(store: &dyn Store) -> Result<Catalog, StoreError> {
    let mut cat = Catalog::default();
    for (k, v) in scan_apart(store, keys::SCOPE)? {
        let s: Scope = decode(&k, &v)?;
        if s.scope_type == ScopeType::Tenant {
            cat.tenant_id = Some(s.id.clone());
        }
        cat.scopes.insert(s.id.clone(), s);
    }
    let mut logins: HashMap<String, i64> = HashMap::new();
    // Per-key records from earlier versions, then the side file.
    for (k, v) in scan_apart(store, keys::LAST_LOGIN)? {
        logins.insert(k[keys::LAST_LOGIN.len()..].to_owned(), decode(&k, &v)?);
    }
    for (id, at) in store.load_logins()? {
        let t = logins.entry(id).or_insert(at);
        *t = (*t).max(at);
    }
    for (k, v) in scan_apart(store, keys::APP)? {
        let app: Application = decode(&k, &v)?;
        let login = Arc::new(LoginClock::default());
        if let Some(&t) = logins.get(&app.id) {
            login.seen.store(t, Ordering::Relaxed);
            login.saved.store(t, Ordering::Relaxed);
        }
        cat.apps.insert(app.id.clone(), AppRow::new(app, login));
    }
    for (k, v) in scan_apart(store, keys::RULE)? {
        cat.insert_rule(decode(&k, &v)?);
    }
    cat.sort_rules();
    cat.find_creators();
    for (k, v) in scan_apart(store, keys::CUTOFF)? {
        cat.cutoffs.insert(k[keys::CUTOFF.len()..].to_owned(), decode(&k, &v)?);
    }
    cat.apps.build_order();
    Ok(cat)
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

pub(super) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising plain records to JSON cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}
