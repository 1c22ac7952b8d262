//! Reading and purging the audit log, and recording refusals that reached
//! no write (DESIGN §4 "Audit log").

use super::*;

/// Token records waiting for the store: past this many (a store that has
/// stopped taking writes), new ones are counted and dropped, not queued.
const MAX_QUEUED_TOKEN_AUDIT: usize = 100_000;

/// Token audit records waiting to be appended.
#[derive(Default)]
pub(super) struct TokenAudit {
    events: Vec<Write>,
    dropped: u64,
}

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

    /// Records that a token was issued through a federated credential: who
    /// outside (`iss`, `sub`) obtained which application's token, through
    /// which credential and which way in. Never the external token. Queued,
    /// not written: [`Directory::flush_token_audit`] appends the queue in
    /// one batch (every 250 ms and at shutdown), so a token costs no store
    /// write of its own (one append per token was ~0.3 ms of I/O and thread
    /// hand-offs, 10× the rest of the grant). A crash loses at most the last
    /// 250 ms of these records; the access log has the same `iss` and `sub`.
    pub fn audit_federated_token(
        &self,
        client_id: &str,
        request: &RequestInfo,
        provenance: &crate::domain::federated::Provenance,
        via: &str,
    ) {
        let (app_id, name) = {
            let cat = self.read();
            match cat.apps.by_client(client_id) {
                Some(r) => (r.app.id.clone(), r.app.name.as_str().to_owned()),
                None => ("-".to_owned(), "-".to_owned()),
            }
        };
        let ev = AuditEvent::new(
            AuditActor {
                client_id: client_id.to_owned(),
                name: name.clone(),
            },
            request,
            "token.federated",
            &Target::new("application", &app_id, &name),
            Outcome::Success,
            200,
            format!(
                "token issued by {via} to external iss {:?} sub {:?} (federated credential {})",
                provenance.iss, provenance.sub, provenance.credential_id
            ),
        );
        let mut queue = self.token_audit.lock().unwrap_or_else(|e| e.into_inner());
        if queue.events.len() >= MAX_QUEUED_TOKEN_AUDIT {
            queue.dropped += 1;
        } else {
            queue.events.push(ev.write());
        }
    }

    /// Appends the queued token records; returns how many.
    pub async fn flush_token_audit(&self) -> Result<usize, StoreError> {
        let (writes, dropped) = {
            let mut queue = self.token_audit.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut queue.events), std::mem::take(&mut queue.dropped))
        };
        if dropped > 0 {
            tracing::error!(
                dropped,
                "the store fell behind: federated-token audit records were dropped (the access log still has them)"
            );
        }
        if writes.is_empty() {
            return Ok(0);
        }
        let n = writes.len();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.append(&writes))
            .await
            .map_err(|e| StoreError::Io(format!("audit append task: {e}")))??;
        Ok(n)
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
