//! Registering (or removing) the client certificate that authenticates an
//! application by mutual TLS (see `domain::tls_client`, RFC 8705 §2). A
//! certificate is a way in that outlives the rules of whoever registered
//! it, like a key: System administrators only (`apps:keys`), within the
//! ceiling, never on the caller's own application or one that created it.

use super::*;
use crate::domain::tls_client::TlsClientAuth;
use app_writes::restore_unless_indeterminate;

impl Directory {
    /// Replaces the application's mTLS registration; `None` removes it.
    pub async fn set_tls_client_auth(
        &self,
        id: &str,
        auth: Option<TlsClientAuth>,
        actor: &Actor,
    ) -> Result<Application, DirectoryError> {
        self.retry_stale(|| self.set_tls_client_auth_once(id, auth.clone(), actor))
            .await
    }

    async fn set_tls_client_auth_once(
        &self,
        id: &str,
        auth: Option<TlsClientAuth>,
        actor: &Actor,
    ) -> Result<Application, DirectoryError> {
        let _w = self.lock_for_write().await;
        let action = "app.mtls";
        let target = self.app_target(id);
        let checked = self.check_app_write(actor, id, perm::APPS_KEYS).and_then(|app| {
            self.read()
                .check_not_self(actor, id, "your own application's client certificate")?;
            Ok(app)
        });
        let mut app = match checked {
            Ok(app) => app,
            Err(e) => return Err(self.reject(actor, action, &target, e).await),
        };
        let describe = |a: &Option<TlsClientAuth>| a.as_ref().map_or("none".to_owned(), TlsClientAuth::describe);
        let summary = format!("mutual TLS: {} -> {}", describe(&app.tls_client_auth), describe(&auth));
        app.tls_client_auth = auth;
        app.updated_at = now_ms();
        // A request already checked against the replaced certificate must
        // not get its token after this answer (see `Credential`).
        let credential = self.read().apps.get(id).map(|r| r.credential.clone());
        if let Some(c) = &credential {
            c.retire();
        }
        let persisted = self
            .persist(vec![
                Write::Put(keys::app(&app.id), encode(&app)),
                Self::success(actor, action, &target, 200, summary),
            ])
            .await;
        if let Err(e) = persisted {
            restore_unless_indeterminate(credential.as_ref(), &e);
            return Err(e.into());
        }
        let mut cat = self.write_catalog();
        cat.apps.update(id, |row| {
            row.app = app.clone();
            row.credential = Arc::default();
        });
        self.refresh_hot(&cat, &[id]);
        Ok(app)
    }
}
