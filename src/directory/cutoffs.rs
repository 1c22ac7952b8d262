//! Per-client revocation cut-offs (`iat` below them is revoked): the one
//! in force for a client, the next one a write sets, and purging expired ones.

use super::*;

impl Directory {
    /// Tokens of `client_id` with `iat` before the returned instant are revoked.
    pub fn cutoff(&self, client_id: &str) -> Option<Cutoff> {
        self.read().cutoffs.get(client_id).copied()
    }

    /// The cut-off for "every token issued until now", read *after* the
    /// credential was retired (see [`Credential`]). `iat` has one-second
    /// resolution, so the cut-off is the next whole second; and it must be
    /// later than the client's previous cut-off (tokens issued after that one
    /// carry `iat` ≥ it), so a second cut-off within the same second waits
    /// for the clock — at most a second, and only for the one client. A
    /// rotation's pending cut-off counts as a previous one (tokens issued
    /// since carry `iat` ≥ it too).
    pub(super) async fn next_cutoff(&self, app: &Application) -> Cutoff {
        let previous = self
            .cutoff(app.client_id.as_str())
            .map(|c| c.before)
            .into_iter()
            .chain(app.previous_secret.as_ref().map(|p| p.before))
            .max();
        loop {
            let now = now_ms();
            let before = now.div_euclid(1000) + 1;
            if previous.is_none_or(|p| before > p) {
                return Cutoff {
                    before,
                    expires: before + self.cutoff_ttl,
                };
            }
            let wait = 1000 - now.rem_euclid(1000) + 1;
            tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
        }
    }

    /// The cut-off a rotation's overlap leaves behind when it ends: tokens
    /// issued before the rotation (by the previous secret) are revoked.
    pub(super) fn overlap_cutoff(&self, before: i64) -> Cutoff {
        Cutoff {
            before,
            expires: before + self.cutoff_ttl,
        }
    }

    /// Removes cut-off records that no longer revoke any unexpired token.
    pub async fn purge_cutoffs(&self, now_s: i64) -> Result<usize, StoreError> {
        let _w = self.lock_for_write().await;
        let stale: Vec<(String, Cutoff)> = self
            .read()
            .cutoffs
            .iter()
            .filter(|(_, c)| c.expires <= now_s)
            .map(|(k, c)| (k.clone(), *c))
            .collect();
        if stale.is_empty() {
            return Ok(0);
        }
        self.persist(stale.iter().map(|(k, _)| Write::Delete(keys::cutoff(k))).collect())
            .await?;
        let mut cat = self.write_catalog();
        for (k, _) in &stale {
            cat.cutoffs.remove(k);
        }
        Ok(stale.len())
    }
}
