//! A small API protected by appauth tokens: `GET /workloads` requires the
//! role `REQUIRED_ROLE` (default `l1-researcher`) on the scope whose ids
//! from the tenant down are `SCOPE_PATH` (comma-separated), or on an
//! ancestor of it. The decision needs nothing but the token: each rule claim
//! carries its own `scope_path` (DESIGN §5). See README "Verify tokens in
//! your API".
//!
//! Environment: `ISSUER_URL` (default `http://127.0.0.1:8080`),
//! `AUDIENCE` (default `urn:appauth:api`), `SCOPE_PATH` (required),
//! `REQUIRED_ROLE`, `LISTEN` (default `127.0.0.1:9090`), and `REDIS_URL`
//! (when set, revocations are followed through Redis).

use appauth_verify::{BearerError, RevocationMode, Verified, Verifier, VerifierConfig};
use axum::Json;
use axum::extract::{FromRef, State};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    verifier: Arc<Verifier>,
    scope_path: Arc<[String]>,
    role: String,
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

async fn workloads(State(s): State<AppState>, caller: Verified) -> Result<Json<Value>, BearerError> {
    let claims = caller.require_role_on_path(&s.role, &s.scope_path)?;
    let scope = s.scope_path.last().cloned().unwrap_or_default();
    Ok(Json(
        json!({"caller": claims.client_id, "scope": scope, "workloads": []}),
    ))
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scope_path: Arc<[String]> = std::env::var("SCOPE_PATH")
        .map_err(|_| "set SCOPE_PATH to the scope ids from the tenant down, comma-separated")?
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let mut config = VerifierConfig::new(
        env("ISSUER_URL", "http://127.0.0.1:8080"),
        env("AUDIENCE", "urn:appauth:api"),
    );
    if let Ok(url) = std::env::var("REDIS_URL") {
        config.revocation = RevocationMode::Redis { url };
    }
    let state = AppState {
        verifier: Verifier::discover(config).await?,
        scope_path,
        role: env("REQUIRED_ROLE", "l1-researcher"),
    };
    let app = axum::Router::new()
        .route("/workloads", get(workloads))
        .with_state(state);
    let listen = env("LISTEN", "127.0.0.1:9090");
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("resource server on http://{listen}/workloads");
    axum::serve(listener, app).await?;
    Ok(())
}
