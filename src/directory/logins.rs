//! `lastLogin`: touched in memory per token, written back in batches (merged
//! with `GREATEST` on a shared store, and others' logins read back).

use super::*;

impl Directory {
    /// Writes changed `lastLogin` values to the store; returns how many.
    /// The whole last-login table is rewritten as one side record
    /// (`<app id> <unix ms>` lines) when anything changed: one file write
    /// per batch, however many applications logged in.
    pub async fn flush_logins(&self) -> Result<usize, StoreError> {
        let _w = self.lock_for_write().await;
        let changed: Vec<(String, Arc<LoginClock>, i64)> = self
            .read()
            .apps
            .values()
            .filter_map(|row| {
                let seen = row.login.seen.load(Ordering::Relaxed);
                (seen != row.login.saved.load(Ordering::Relaxed)).then(|| (row.app.id.clone(), row.login.clone(), seen))
            })
            .collect();
        if changed.is_empty() && self.store.feed().is_none() {
            return Ok(0);
        }
        let times: Vec<(String, i64)> = changed.iter().map(|(id, _, t)| (id.clone(), *t)).collect();
        let store = self.store.clone();
        let shared = tokio::task::spawn_blocking(move || -> Result<Vec<(String, i64)>, StoreError> {
            if !times.is_empty() {
                store.merge_logins(&times)?;
            }
            // Other instances' logins, so every instance shows the latest.
            match store.feed() {
                Some(_) => store.load_logins(),
                None => Ok(Vec::new()),
            }
        })
        .await
        .map_err(|e| StoreError::Io(format!("store task failed: {e}")))??;
        for (_, clock, seen) in &changed {
            clock.saved.store(*seen, Ordering::Relaxed);
        }
        if !shared.is_empty() {
            let cat = self.read();
            for (id, at) in shared {
                if let Some(row) = cat.apps.get(&id) {
                    row.login.seen.fetch_max(at, Ordering::Relaxed);
                    row.login.saved.fetch_max(at, Ordering::Relaxed);
                }
            }
        }
        Ok(changed.len())
    }
}
