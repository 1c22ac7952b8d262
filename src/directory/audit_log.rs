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

    /// Records that a token was issued through a federated credential: who
    /// outside (`iss`, `sub`) obtained which application's token, through
    /// which credential and which way in. Never the external token.
    pub async fn audit_federated_token(
        &self,
        client_id: &str,
        request: &RequestInfo,
        provenance: &crate::domain::federated::Provenance,
        via: &str,
    ) {
        let app_id = self.entry(client_id).map(|e| e.app_id.clone());
        let (app_id, name) = {
            let cat = self.read();
            match app_id.as_deref().and_then(|id| cat.apps.get(id)) {
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
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || store.append(&[ev.write()])).await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::error!(client_id, "could not record a federated token in the audit log");
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
