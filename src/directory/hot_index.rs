//! The hot-path index: what the token endpoint reads for a client (DESIGN §1:
//! no disk on `/oauth/token`), the client check in constant time (RFC 6749
//! §2.3.1), and refreshing entries after a write.

use super::*;

pub(super) type HotIndex = HashMap<Box<str>, Arc<HotEntry>>;

impl Directory {
    /// The token endpoint's client check (RFC 6749 §2.3.1). Unknown clients
    /// cost one HMAC against a dummy tag, like a known client with a wrong
    /// secret; disabled clients are checked only after the secret, so all
    /// three failures take the same path and time.
    pub fn authenticate(&self, client_id: &str, secret: &str) -> Option<Arc<HotEntry>> {
        let entry = self
            .hot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            .cloned();
        let ok = self.pepper.verify(secret, entry.as_ref().map(|e| &e.secret_hash));
        entry.filter(|e| ok && e.enabled)
    }

    /// The hot entry for a client, if it exists (enabled or not).
    pub fn entry(&self, client_id: &str) -> Option<Arc<HotEntry>> {
        self.hot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            .cloned()
    }

    pub(super) fn refresh_hot(&self, cat: &Catalog, app_ids: &[&str]) {
        let mut hot = self.hot.write().unwrap_or_else(|p| p.into_inner());
        for id in app_ids {
            if let Some(row) = cat.apps.get(id) {
                hot.insert(Box::from(row.app.client_id.as_str()), Arc::new(cat.hot_entry(row)));
            }
        }
    }
}
