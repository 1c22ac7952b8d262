//! Registering (or removing) the client certificate that authenticates an
//! application by mutual TLS (see `domain::tls_client`, RFC 8705 §2). A
//! certificate is a way in that outlives the rules of whoever registered
//! it, like a key: System administrators only (`apps:keys`), within the
//! ceiling, never on the caller's own application or one that created it.

use super::*;
use crate::domain::tls_client::TlsClientAuth;

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
        let change = |app: &mut Application| {
            let describe = |a: Option<&TlsClientAuth>| a.map_or("none".to_owned(), TlsClientAuth::describe);
            let summary = format!(
                "mutual TLS: {} -> {}",
                describe(app.tls_client_auth.as_deref()),
                describe(auth.as_ref())
            );
            app.tls_client_auth = auth.map(Box::new);
            summary
        };
        self.replace_key_credential(
            id,
            actor,
            "app.mtls",
            "your own application's client certificate",
            change,
        )
        .await
    }
}
