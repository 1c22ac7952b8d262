//! Reading and purging the audit log, and recording refusals that reached
//! no write (DESIGN §4 "Audit log").

use super::*;

impl Directory {
    /// Records a refused admin request that reached no write (401, 403 on a
    /// read, 429). Appended without a flush: nothing acknowledged depends on it.
    pub async fn audit_refusal(
        &self,
        actor: AuditActor,
        request: &RequestInfo,
        action: &str,
        target: &Target,
        status: u16,
        summary: String,
    ) {
        let ev = AuditEvent::new(actor, request, action, target, Outcome::Refused, status, summary);
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || store.append(&[ev.write()])).await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::error!(action, "could not record a refused admin request in the audit log");
        }
    }

    /// Every audit record, oldest first (off the async runtime: it reads the store).
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>, StoreError> {
        self.store
            .scan_prefix(keys::AUDIT)?
            .iter()
            .map(|(k, v)| decode(k, v))
            .collect()
    }

    /// Deletes audit records older than `before_ms`; returns how many.
    pub async fn purge_audit(&self, before_ms: i64) -> Result<usize, StoreError> {
        let store = self.store.clone();
        let limit = keys::audit(before_ms, "");
        tokio::task::spawn_blocking(move || {
            let stale: Vec<Write> = store
                .scan_prefix(keys::AUDIT)?
                .into_iter()
                .map(|(k, _)| k)
                .take_while(|k| *k < limit)
                .map(Write::Delete)
                .collect();
            if !stale.is_empty() {
                store.apply(&stale)?;
            }
            Ok(stale.len())
        })
        .await
        .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
    }
}
