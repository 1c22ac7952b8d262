//! A consistent backup of the store, taken by the running server for
//! `appauth backup` (the file format and restore are `store::backup`).

use super::*;

impl Directory {
    /// A backup of the whole store for `appauth backup` (see
    /// `store::backup`), with its own audit record written first, so the
    /// backup holds the record of itself. `None`: the backend is backed up
    /// with its own tools. Blocking: call it off the connection runtimes.
    pub fn backup(&self, actor: &Actor) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.store.snapshots() {
            return Ok(None);
        }
        let record = Self::success(
            actor,
            "store.backup",
            &Target::new("store", "-", "store"),
            200,
            "took a backup of the store".into(),
        );
        self.store.apply(&[record])?;
        let started = std::time::Instant::now();
        let Some(snapshot) = self.store.snapshot()? else {
            return Ok(None);
        };
        // How long writes waited: the copy is taken under the store's lock.
        tracing::info!(
            records = snapshot.records.len(),
            held_ms = started.elapsed().as_millis() as u64,
            "took a snapshot of the store for a backup"
        );
        let pepper = crate::store::backup::pepper_fingerprint(self.derive_key(crate::store::backup::PEPPER_LABEL));
        Ok(Some(crate::store::backup::encode(
            &snapshot,
            pepper,
            crate::domain::now_ms(),
        )))
    }
}
