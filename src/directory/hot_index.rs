//! The hot-path index: what the token endpoint reads for a client (DESIGN §1:
//! no disk on `/oauth/token`), the client check (RFC 6749 §2.3.1), and
//! forgetting entries after a write.
//!
//! The index is a cache of [`Catalog::hot_entry`], filled on a client's
//! first request: an entry is ~600 bytes (rules serialised, keys parsed),
//! and building one for each of 100,000 applications when most never ask
//! for a token cost ~55 MB. The invariant that makes a cache safe here:
//! an entry is built and inserted under the catalog's read lock, and every
//! write that changes what an entry says removes it under the catalog's
//! write lock, so an entry built from a catalog a write has since changed
//! can never be inserted after that write's removal.
//!
//! A miss must not reach the catalog's lock for a client that does not
//! exist: a list query holds that lock for milliseconds, a write queued
//! behind it makes every new reader wait (the lock prefers writers), and
//! a flood of made-up client IDs, which needs no credential, would park
//! the runtime's threads there. So the index also keeps a keyed 64-bit
//! hash of every client ID in the catalog ([`KnownClients`], ~2 MB at
//! 100,000), and only an ID whose hash is present goes on to the catalog.

use super::*;
use crate::domain::secret::Matched;
use std::hash::BuildHasher;

/// The cached entries, and which client IDs exist.
#[derive(Default)]
pub(super) struct HotIndex {
    entries: HashMap<Box<str>, Arc<HotEntry>>,
    known: KnownClients,
}

impl HotIndex {
    /// An index that knows every client of `cat` and caches none.
    pub(super) fn of(cat: &Catalog) -> Self {
        let mut index = Self::default();
        for row in cat.apps.values() {
            index.known.add(row.app.client_id.as_str());
        }
        index
    }

    /// Drops one client's cached entry (its record changed).
    pub(super) fn remove(&mut self, client_id: &str) {
        self.entries.remove(client_id);
    }

    /// Drops every cached entry (a change that may touch them all).
    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }

    /// A client just added to the catalog (exactly once per addition).
    pub(super) fn learn(&mut self, client_id: &str) {
        self.entries.remove(client_id);
        self.known.add(client_id);
    }

    #[cfg(test)]
    pub(super) fn may_know(&self, client_id: &str) -> bool {
        self.known.may_contain(client_id)
    }

    /// A client just removed from the catalog (exactly once per removal).
    pub(super) fn forget_client(&mut self, client_id: &str) {
        self.entries.remove(client_id);
        self.known.remove(client_id);
    }
}

/// The catalog's client IDs, as keyed 64-bit hashes with how many IDs
/// share each (two may; removing one must not forget the other). Exact,
/// so an ID deleted long ago is as cheap to refuse as one never issued;
/// only a collision sends a made-up ID on to the catalog, which answers
/// exactly, and the key is random per process, so which IDs collide
/// cannot be chosen from outside.
#[derive(Default)]
struct KnownClients {
    counts: hashbrown::HashTable<(u64, u32)>,
    keys: std::hash::RandomState,
}

impl KnownClients {
    fn may_contain(&self, client_id: &str) -> bool {
        let h = self.keys.hash_one(client_id);
        self.counts.find(h, |e| e.0 == h).is_some()
    }

    fn add(&mut self, client_id: &str) {
        let h = self.keys.hash_one(client_id);
        match self.counts.find_mut(h, |e| e.0 == h) {
            Some(e) => e.1 += 1,
            None => {
                self.counts.insert_unique(h, (h, 1), |e| e.0);
            }
        }
    }

    fn remove(&mut self, client_id: &str) {
        let h = self.keys.hash_one(client_id);
        if let Ok(mut e) = self.counts.find_entry(h, |e| e.0 == h) {
            if e.get().1 > 1 {
                e.get_mut().1 -= 1;
            } else {
                e.remove();
            }
        }
    }
}

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
    /// secret, and disabled clients are checked only after the secret, so
    /// the three failures give the same answer. They may differ in time by
    /// the catalog lookup an unknown ID skips: that tells whether a client
    /// ID exists, which RFC 6749 §2.2 does not treat as a secret (it is
    /// sent in clear in every Basic header), and never anything about a
    /// secret. During a rotation's
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
        {
            let hot = self.hot.read().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = hot.entries.get(client_id) {
                return Some(entry.clone());
            }
            // Learnt and forgotten under the catalog's write lock, like entries.
            if !hot.known.may_contain(client_id) {
                return None;
            }
        }
        // Held until the entry is in the index (see the module's doc).
        let cat = self.read();
        let row = cat.apps.by_client(client_id)?;
        let entry = Arc::new(cat.hot_entry(row));
        self.hot
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entries
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

    /// Adds a new application to the catalog and its client to the known
    /// ones, under the catalog's write guard.
    pub(super) fn add_app(&self, cat: &mut Catalog, app: Application) {
        self.hot
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .learn(app.client_id.as_str());
        cat.apps.insert(app.id.clone(), AppRow::new(app, Arc::default()));
    }

    /// Forgets a deleted application's client; called like [`Self::forget_hot`].
    pub(super) fn forget_client(&self, client_id: &str) {
        self.hot
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .forget_client(client_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use std::sync::mpsc;
    use std::time::Duration;

    async fn directory_with(names: &[&str]) -> (Directory, Vec<Application>) {
        let dir = Directory::load(Arc::new(MemoryStore::default()), Pepper::from_bytes(&[7u8; 32]), 3600).unwrap();
        let mut apps = Vec::new();
        for name in names {
            let (app, _) = dir
                .create_app(
                    AppName::parse(name).unwrap(),
                    Default::default(),
                    Default::default(),
                    &Actor::system(),
                )
                .await
                .unwrap();
            apps.push(app);
        }
        (dir, apps)
    }

    #[tokio::test]
    async fn unknown_client_ids_are_answered_while_a_writer_waits_behind_a_long_reader() {
        let (dir, apps) = directory_with(&["known"]).await;
        let known = apps[0].client_id.as_str().to_owned();
        let (dir, known) = (&dir, &known);
        std::thread::scope(|s| {
            // A list query holding the catalog, and a write queued behind it.
            let reader = dir.read();
            let (queued_tx, queued_rx) = mpsc::channel();
            s.spawn(move || {
                queued_tx.send(()).unwrap();
                let _w = dir.write_catalog();
            });
            queued_rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(50));

            let (known_tx, known_rx) = mpsc::channel();
            s.spawn(move || known_tx.send(dir.entry(known).is_some()).unwrap());
            assert!(
                known_rx.recv_timeout(Duration::from_millis(200)).is_err(),
                "the set-up is wrong: a new reader of the catalog should wait behind the queued writer"
            );

            let (unknown_tx, unknown_rx) = mpsc::channel();
            s.spawn(move || {
                for i in 0..1000 {
                    assert!(dir.entry(&format!("made-up-{i}")).is_none());
                }
                unknown_tx.send(()).unwrap();
            });
            assert!(
                unknown_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
                "made-up client IDs waited for the catalog's lock"
            );
            drop(reader);
            assert_eq!(known_rx.recv_timeout(Duration::from_secs(5)), Ok(true));
        });
    }

    #[tokio::test]
    async fn created_clients_are_known_and_deleted_ones_are_forgotten() {
        let names: Vec<String> = (0..50).map(|i| format!("app-{i:02}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (dir, apps) = directory_with(&refs).await;
        let (gone, kept) = apps.split_at(30);
        for app in gone {
            dir.delete_app(&app.id, &Actor::system()).await.unwrap();
        }
        let hot = dir.hot.read().unwrap();
        for app in kept {
            assert!(hot.may_know(app.client_id.as_str()), "{} was kept", app.name.as_str());
        }
        for app in gone {
            assert!(
                !hot.may_know(app.client_id.as_str()),
                "{} was deleted",
                app.name.as_str()
            );
        }
        assert!(!hot.may_know("never-issued"));
        drop(hot);
        // And a reload knows the same.
        let reloaded = HotIndex::of(&dir.read());
        assert!(kept.iter().all(|a| reloaded.may_know(a.client_id.as_str())));
        assert!(!gone.iter().any(|a| reloaded.may_know(a.client_id.as_str())));
    }

    #[test]
    fn a_client_sharing_a_hash_with_a_deleted_one_stays_known() {
        // The same ID added twice stands for two IDs with one hash.
        let mut index = HotIndex::default();
        index.learn("c1");
        index.learn("c1");
        index.forget_client("c1");
        assert!(index.may_know("c1"));
        index.forget_client("c1");
        assert!(!index.may_know("c1"));
    }
}
