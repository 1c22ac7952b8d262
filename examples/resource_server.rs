//! A small API protected by appauth tokens: `GET /workloads` requires the
//! role `REQUIRED_ROLE` (default `l1-researcher`) on scope `SCOPE_ID` or an
//! ancestor of it. See README "Verify tokens in your API".
//!
//! Environment: `ISSUER_URL` (default `http://127.0.0.1:8080`),
//! `AUDIENCE` (default `urn:appauth:api`), `SCOPE_ID` (required),
//! `REQUIRED_ROLE`, `LISTEN` (default `127.0.0.1:9090`), `REDIS_URL` (when
//! set, revocations are followed through Redis), and
//! `ADMIN_CREDENTIALS` (default `data/initial-admin.json`): used once
//! at start to read the scope tree from the admin API.

use appauth::verify::{BearerError, RevocationMode, ScopeTree, Verified, Verifier, VerifierConfig};
use axum::Json;
use axum::extract::{FromRef, State};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    verifier: Arc<Verifier>,
    tree: Arc<ScopeTree>,
    scope_id: String,
    role: String,
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

async fn workloads(State(s): State<AppState>, caller: Verified) -> Result<Json<Value>, BearerError> {
    let claims = caller.require_role(&s.role, &s.scope_id, &s.tree)?;
    Ok(Json(
        json!({"caller": claims.client_id, "scope": s.scope_id, "workloads": []}),
    ))
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = env("ISSUER_URL", "http://127.0.0.1:8080");
    let scope_id = std::env::var("SCOPE_ID").map_err(|_| "set SCOPE_ID to the id of the scope to protect")?;
    let mut config = VerifierConfig::new(&issuer, env("AUDIENCE", "urn:appauth:api"));
    if let Ok(url) = std::env::var("REDIS_URL") {
        config.revocation = RevocationMode::Redis { url };
    }
    let verifier = Verifier::discover(config).await?;

    // The scope tree changes rarely; read it once with the admin credentials.
    let creds: Value = serde_json::from_slice(&std::fs::read(env("ADMIN_CREDENTIALS", "data/initial-admin.json"))?)?;
    let token: Value = reqwest::Client::new()
        .post(format!("{issuer}/oauth/token"))
        .basic_auth(creds["clientId"].as_str().unwrap_or_default(), creds["secret"].as_str())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .json()
        .await?;
    let tree = ScopeTree::fetch(&issuer, token["access_token"].as_str().unwrap_or_default()).await?;

    let state = AppState {
        verifier,
        tree: Arc::new(tree),
        scope_id,
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
