//! HTTPS with rustls when server.tls_cert and server.tls_key are set.

use crate::helpers::*;

#[tokio::test]
async fn the_server_speaks_https_with_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let extra = [
        format!("server.tls_cert={}", cert_path.display()),
        format!("server.tls_key={}", key_path.display()),
    ];
    let app = spawn_in(dir, &extra).await;
    assert!(app.base.starts_with("https://"), "the issuer URL follows the scheme");
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/oauth/token", app.port);
    let resp = client
        .post(&url)
        .header("Authorization", basic(&app.admin_id, &app.admin_secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let plain = http_client()
        .get(format!("http://127.0.0.1:{}/healthz", app.port))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP is not served"
    );
}
