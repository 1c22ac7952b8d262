//! The state every handler shares, cloned per request as one `Arc`.

use crate::config::Config;
use crate::directory::Directory;
use crate::oauth::grant::Grants;
use crate::telemetry::Metrics;
use crate::token::TokenIssuer;
use std::sync::Arc;

/// Everything a handler may need; cloned per request as one `Arc`.
pub struct AppState {
    pub config: Config,
    pub issuer_url: String,
    pub directory: Arc<Directory>,
    pub issuer: Arc<TokenIssuer>,
    pub grants: Grants,
    pub metrics: Arc<Metrics>,
    /// RFC 8414 document, rendered once.
    pub metadata_json: String,
    pub revocations: crate::revocation::Revocations,
    pub request_ids: crate::telemetry::RequestIds,
    pub access_log: crate::telemetry::AccessLog,
    /// The key-encryption key, when keys are shared through the store.
    pub vault: Option<Arc<crate::token::vault::Kek>>,
    /// Admin API requests per caller (DESIGN §4 "Admin authority").
    pub admin_limiter: crate::oauth::throttle::RequestLimiter,
    /// Admin requests without valid credentials, per address: a budget of
    /// its own, so that a misconfigured probe or scanner hitting the admin
    /// API cannot lock the token endpoint out for everyone at its address.
    pub admin_failures: crate::oauth::throttle::FailureThrottle,
    /// Runs list, search and CSV work at low priority (see `list_pool`).
    pub list_pool: crate::list_pool::ListPool,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// True when a token this server issued (already verified) is revoked.
    pub async fn is_revoked(&self, claims: &crate::token::AccessTokenClaims) -> bool {
        self.revocations
            .is_revoked(&claims.jti, &claims.client_id, claims.iat)
            .await
    }
}

impl crate::telemetry::Observed for AppState {
    fn request_ids(&self) -> &crate::telemetry::RequestIds {
        &self.request_ids
    }
    fn access_log(&self) -> &crate::telemetry::AccessLog {
        &self.access_log
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
