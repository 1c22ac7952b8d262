//! Two planes (issue 26 item 1): with `server.admin_listen`, the public
//! listener serves OAuth, discovery, JWKS and health only, and the admin
//! listener the admin API, console, OpenAPI document and metrics.

use crate::helpers::*;
use appauth::App;
use serde_json::Value;
use tokio::sync::oneshot;

/// A server with an admin listener: (the public plane, the admin plane).
/// Dropping the first stops the server.
pub async fn spawn_split(extra: &[&str]) -> (TestApp, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = vec!["server.admin_listen=127.0.0.1:0".to_string()];
    settings.extend(extra.iter().map(|s| s.to_string()));
    let app = App::build(test_config(dir.path(), &settings))
        .await
        .expect("app builds");
    let admin_base = format!("http://{}", app.admin_address().expect("an admin listener"));
    let (port, base) = (app.port(), app.issuer_url().to_owned());
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
    let (id, secret) = (creds["clientId"].as_str().unwrap(), creds["secret"].as_str().unwrap());
    let admin = TestApp::external(&admin_base, id, secret);
    let public = TestApp {
        base,
        port,
        client: http_client(),
        admin_id: id.to_owned(),
        admin_secret: secret.to_owned(),
        dir,
        stop: Some(tx),
        handle: Some(handle),
    };
    (public, admin)
}

async fn status(app: &TestApp, method: reqwest::Method, path: &str, token: Option<&str>) -> u16 {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn with_an_admin_listener_the_public_port_serves_oauth_only_and_the_admin_port_the_rest() {
    let (public, admin) = spawn_split(&[]).await;
    assert_ne!(public.base, admin.base);
    // Both planes issue tokens (the console and the CLI get theirs from the
    // admin plane); a token from either works on the admin API.
    let from_public = public.admin_token().await;
    let from_admin = admin.admin_token().await;
    use reqwest::Method as M;
    for token in [&from_public, &from_admin] {
        assert_eq!(status(&admin, M::GET, "/api/v1/apps", Some(token)).await, 200);
    }
    for path in ["/console", "/metrics", "/api/openapi.json", "/healthz", "/readyz"] {
        assert_eq!(status(&admin, M::GET, path, None).await, 200, "admin plane {path}");
    }
    // The public plane: OAuth, discovery, JWKS, health...
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/healthz",
        "/readyz",
    ] {
        assert_eq!(status(&public, M::GET, path, None).await, 200, "public plane {path}");
    }
    let introspected = public
        .post_form(
            "/oauth/introspect",
            &format!("token={from_admin}"),
            Some(basic(&public.admin_id, &public.admin_secret)),
        )
        .await;
    assert_eq!(introspected.status(), 200);
    assert_eq!(introspected.json::<Value>().await.unwrap()["active"], true);
    // ...and the compatibility token endpoint, which is an OAuth endpoint.
    let compat = public
        .client
        .post(public.url("/api/v1/token"))
        .json(&serde_json::json!({"grantType": "client_credentials", "clientId": public.admin_id, "clientSecret": public.admin_secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(compat.status(), 200);
    // Nothing of the admin plane, even with a valid token: 404, as for any
    // path that is not there.
    for (method, path) in [
        (M::GET, "/api/v1/apps"),
        (M::POST, "/api/v1/apps"),
        (M::GET, "/api/v1/audit"),
        (M::GET, "/api/v1/backup"),
        (M::GET, "/api/v1/scopes"),
        (M::GET, "/api/v1/authorization/roles"),
        (M::GET, "/api/openapi.json"),
        (M::GET, "/console"),
        (M::GET, "/console/app.js"),
        (M::GET, "/metrics"),
        (M::GET, "/"),
    ] {
        assert_eq!(
            status(&public, method.clone(), path, Some(&from_public)).await,
            404,
            "public plane {method} {path}"
        );
    }
    // The metadata names no documentation the public cannot reach.
    let meta: Value = public.get_json("/.well-known/oauth-authorization-server").await;
    assert!(meta.get("service_documentation").is_none(), "{meta}");
    // The admin plane does not serve what resource servers use.
    for (method, path) in [
        (M::POST, "/oauth/introspect"),
        (M::POST, "/oauth/revoke"),
        (M::GET, "/.well-known/jwks.json"),
    ] {
        assert_eq!(
            status(&admin, method.clone(), path, None).await,
            404,
            "admin plane {method} {path}"
        );
    }
    drop(admin);
    public.stop().await;
}

#[tokio::test]
async fn without_an_admin_listener_one_port_serves_both_planes() {
    let app = spawn_app().await;
    use reqwest::Method as M;
    let token = app.admin_token().await;
    for path in ["/api/v1/apps", "/metrics", "/console", "/.well-known/jwks.json"] {
        assert_eq!(status(&app, M::GET, path, Some(&token)).await, 200, "{path}");
    }
    let meta: Value = app.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        meta["service_documentation"],
        format!("{}/api/openapi.json", app.base).as_str()
    );
}

#[test]
fn admin_listener_settings_that_cannot_work_are_refused_naming_the_key() {
    let refused = |set: &[&str]| {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        appauth::config::Config::load(None, Vec::new(), &set).unwrap_err()
    };
    let e = refused(&["server.admin_tls_cert=/x.pem", "server.admin_tls_key=/y.pem"]);
    assert_eq!(e.key, "server.admin_tls_cert");
    assert!(e.message.contains("server.admin_listen"), "{e}");
    let e = refused(&["server.listen=127.0.0.1:8080", "server.admin_listen=127.0.0.1:8080"]);
    assert_eq!(e.key, "server.admin_listen");
    let e = refused(&["server.admin_listen=127.0.0.1:8081", "server.admin_tls_cert=/x.pem"]);
    assert_eq!(e.key, "server.admin_tls_cert");
    let e = refused(&["server.admin_listen=not-an-address"]);
    assert_eq!(e.key, "server.admin_listen");
}
