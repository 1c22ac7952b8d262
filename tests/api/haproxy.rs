//! The shipped `deploy/haproxy.cfg`, run by a real HAProxy in front of a
//! real appauth with a private admin plane (issue 26 items 1 and 3): the
//! public frontend reaches OAuth only, the admin frontend the admin API,
//! and neither lets a client name a certificate in the proxy's header.

use crate::helpers::*;
use crate::mtls::ClientCa;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// HAProxy running `deploy/haproxy.cfg`; stopped when dropped, pass or fail.
struct Haproxy(std::process::Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn haproxy_binary() -> String {
    for p in ["/usr/sbin/haproxy", "/usr/bin/haproxy"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("haproxy is not installed: run the suite through scripts/test.sh, which installs it")
}

#[tokio::test]
async fn behind_the_shipped_haproxy_config_the_public_frontend_serves_oauth_only_and_no_client_names_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClientCa::new("lb client CA");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.pem).unwrap();
    let settings = [
        format!("server.client_ca_file={}", ca_path.display()),
        "server.client_cert_header=X-SSL-Client-Cert".into(),
        "server.trusted_proxies=127.0.0.1".into(),
        // appauth's own guard off, so that what is tested is HAProxy's:
        // the admin frontend must strip the header too.
        "server.client_cert_header_on_admin=true".into(),
    ];
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let (public, admin) = crate::planes::spawn_split(&settings).await;
    let (lb, lb_admin, stats) = (free_port(), free_port(), free_port());
    let public_addr = format!("127.0.0.1:{}", public.port);
    let admin_addr = admin.base.trim_start_matches("http://").to_owned();
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy.cfg");
    let check = std::process::Command::new(haproxy_binary())
        .args(["-c", "-f", cfg])
        .envs(env(&public_addr, &admin_addr, lb, lb_admin, stats))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "haproxy -c: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let child = std::process::Command::new(haproxy_binary())
        .args(["-db", "-f", cfg])
        .envs(env(&public_addr, &admin_addr, lb, lb_admin, stats))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _haproxy = Haproxy(child);
    let (lb_url, lb_admin_url) = (format!("http://127.0.0.1:{lb}"), format!("http://127.0.0.1:{lb_admin}"));
    // Ready once both backends passed their /readyz checks.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = reqwest::get(format!("{lb_url}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
            && reqwest::get(format!("{lb_admin_url}/readyz"))
                .await
                .is_ok_and(|r| r.status() == 200);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "HAProxy never passed traffic");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let through_admin = TestApp::external(&lb_admin_url, &admin.admin_id, &admin.admin_secret);
    let api = through_admin.api().await;
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "mtls-job", "tlsClientAuth": {"subjectDn": "CN=mtls-job,O=Acme"}}),
        )
        .await;
    assert_eq!(resp.status(), 201, "the admin API through the admin frontend");
    let created: Value = resp.json().await.unwrap();
    let client_id = created["clientId"].as_str().unwrap().to_owned();
    let plain = api.create_app("plain-job").await;

    // The public frontend: tokens yes, the admin API no.
    let through_public = TestApp::external(&lb_url, &admin.admin_id, &admin.admin_secret);
    through_public
        .token_for(plain["clientId"].as_str().unwrap(), plain["secret"].as_str().unwrap())
        .await;
    let resp = http_client().get(format!("{lb_url}/api/v1/apps")).send().await.unwrap();
    assert_eq!(resp.status(), 404, "no admin API on the public frontend");
    let resp = http_client().get(format!("{lb_url}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    // A client naming a certificate in the proxy's header: stripped on both
    // frontends. The same request straight from the trusted address works,
    // so the header would authenticate if it got through.
    use base64::Engine;
    let forged = base64::engine::general_purpose::STANDARD.encode(ca.issue("mtls-job", &[]).der);
    let ask = |base: String| {
        let (forged, client_id) = (forged.clone(), client_id.clone());
        async move {
            http_client()
                .post(format!("{base}/oauth/token"))
                .header("X-SSL-Client-Cert", forged)
                .form(&[("grant_type", "client_credentials"), ("client_id", client_id.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        ask(format!("http://{public_addr}")).await.status(),
        200,
        "the header itself is valid"
    );
    assert_oauth_error(ask(lb_url.clone()).await, 401, "invalid_client").await;
    assert_oauth_error(ask(lb_admin_url.clone()).await, 401, "invalid_client").await;
    public.stop().await;
}

fn env(public: &str, admin: &str, lb: u16, lb_admin: u16, stats: u16) -> Vec<(String, String)> {
    let mut vars = vec![
        ("APPAUTH_LB_BIND".to_string(), format!("127.0.0.1:{lb}")),
        ("APPAUTH_LB_ADMIN_BIND".to_string(), format!("127.0.0.1:{lb_admin}")),
        ("APPAUTH_LB_STATS".to_string(), format!("127.0.0.1:{stats}")),
    ];
    for i in 1..=3 {
        vars.push((format!("APPAUTH_{i}"), public.to_owned()));
        vars.push((format!("APPAUTH_ADMIN_{i}"), admin.to_owned()));
    }
    vars
}
