//! The hot-path index: what the token endpoint reads for a client (DESIGN §1:
//! no disk on `/oauth/token`), the client check in constant time (RFC 6749
//! §2.3.1), and forgetting entries after a write.
//!
//! The index is a cache of [`Catalog::hot_entry`], filled on a client's
//! first request: an entry is ~600 bytes (rules serialised, keys parsed),
//! and building one for each of 100,000 applications when most never ask
//! for a token cost ~55 MB. The invariant that makes a cache safe here:
//! an entry is built and inserted under the catalog's read lock, and every
//! write that changes what an entry says removes it under the catalog's
//! write lock, so an entry built from a catalog a write has since changed
//! can never be inserted after that write's removal.

use super::*;
use crate::domain::secret::Matched;

pub(super) type HotIndex = HashMap<Box<str>, Arc<HotEntry>>;

/// A client that proved who it is, and the latest `exp` its tokens may
/// carry when it used a secret a rotation is phasing out.
#[derive(Clone)]
pub struct Authenticated {
    pub entry: Arc<HotEntry>,
    pub not_after: Option<i64>,
    /// Set when a federated credential authenticated the client.
    pub federated: Option<crate::domain::federated::Provenance>,
    /// Set when the client authenticated with its TLS certificate (RFC
    /// 8705 §2): its tokens are then bound to that certificate.
    pub by_certificate: bool,
}

impl Authenticated {
    /// Key-based authentication: no secret, so no overlap applies.
    pub fn by_key(entry: Arc<HotEntry>) -> Self {
        Self {
            entry,
            not_after: None,
            federated: None,
            by_certificate: false,
        }
    }
}

impl std::ops::Deref for Authenticated {
    type Target = HotEntry;
    fn deref(&self) -> &HotEntry {
        &self.entry
    }
}

impl Directory {
    /// The token endpoint's client check (RFC 6749 §2.3.1). Unknown clients
    /// cost one HMAC against a dummy tag, like a known client with a wrong
    /// secret; disabled clients are checked only after the secret, so all
    /// three failures take the same path and time. During a rotation's
    /// overlap the previous secret works until the overlap's end (`now_s`
    /// before it), and the tokens it gets expire by then.
    pub fn authenticate(&self, client_id: &str, secret: &str, now_s: i64) -> Option<Authenticated> {
        let entry = self.entry(client_id);
        let previous = entry
            .as_ref()
            .and_then(|e| e.previous_secret.as_ref())
            .filter(|p| now_s < p.until);
        let matched = self.pepper.verify_either(
            secret,
            entry.as_ref().map(|e| &e.secret_hash),
            previous.map(|p| &p.hash),
        );
        let not_after = match matched {
            Matched::Current => None,
            Matched::Previous => previous.map(|p| p.until),
            Matched::None => return None,
        };
        entry.filter(|e| e.enabled).map(|entry| Authenticated {
            entry,
            not_after,
            federated: None,
            by_certificate: false,
        })
    }

    /// The hot entry for a client, if it exists (enabled or not).
    pub fn entry(&self, client_id: &str) -> Option<Arc<HotEntry>> {
        if let Some(entry) = self.hot.read().unwrap_or_else(|p| p.into_inner()).get(client_id) {
            return Some(entry.clone());
        }
        // Held until the entry is in the index (see the module's doc).
        let cat = self.read();
        let row = cat.apps.by_client(client_id)?;
        let entry = Arc::new(cat.hot_entry(row));
        self.hot
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(Box::from(client_id), entry.clone());
        Some(entry)
    }

    /// Drops the cached entries of these applications; called with the
    /// catalog's write guard, after the change, before the guard is released.
    pub(super) fn forget_hot(&self, cat: &Catalog, app_ids: &[&str]) {
        let mut hot = self.hot.write().unwrap_or_else(|p| p.into_inner());
        for id in app_ids {
            if let Some(row) = cat.apps.get(id) {
                hot.remove(row.app.client_id.as_str());
            }
        }
    }
}
