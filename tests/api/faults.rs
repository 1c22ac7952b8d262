//! Fail safe under hostile input and faults (issue 12): hostile tokens
//! signed with the real key, query cost bounds, slow and silent clients,
//! Kubernetes service-link variables.

use crate::helpers::*;
use crate::verify::{kid, sign_raw, verifier};
use appauth::token::jwt::JwtError;
use appauth::verify::{RevocationMode, VerifyError};
use serde_json::{Value, json};
use std::time::Duration;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The admin's own claims, with `edit` applied, signed with the server's key.
fn hostile(app: &TestApp, admin_claims: &Value, crit: bool, edit: impl FnOnce(&mut Value)) -> String {
    let mut header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid(app)});
    if crit {
        header["crit"] = json!(["https://example.com/never-heard-of-it"]);
        header["https://example.com/never-heard-of-it"] = json!(true);
    }
    let mut claims = admin_claims.clone();
    claims["jti"] = json!(format!("hostile-{}", rand_suffix()));
    edit(&mut claims);
    sign_raw(app, &header, &claims)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

#[tokio::test]
async fn hostile_tokens_signed_with_the_real_key_are_refused_everywhere() {
    let app = spawn_app().await;
    let admin_claims = claims_of(&app.admin_token().await);
    let cases = [
        ("crit", hostile(&app, &admin_claims, true, |_| {})),
        (
            "iat ten years ahead",
            hostile(&app, &admin_claims, false, |c| {
                c["iat"] = json!(now() + 10 * 365 * 86_400)
            }),
        ),
    ];
    let v = verifier(&app, RevocationMode::None).await;
    for (what, token) in &cases {
        let resp = Api {
            app: &app,
            token: token.clone(),
        }
        .get("/api/v1/apps")
        .await;
        assert_api_error(resp, 401, "invalid bearer token").await;
        let bearer = format!("Bearer {}", app.admin_token().await);
        let resp = app
            .post_form("/oauth/introspect", &format!("token={token}"), Some(bearer))
            .await;
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"active": false}), "{what}: introspection");
        assert!(v.verify(token).await.is_err(), "{what}: the verifier accepted it");
    }
    let err = v.verify(&cases[0].1).await.unwrap_err();
    assert_eq!(err, VerifyError::Token(JwtError::CriticalExtension));
    let err = v.verify(&cases[1].1).await.unwrap_err();
    assert_eq!(err, VerifyError::Token(JwtError::IssuedInFuture));

    // An exp near i64::MAX neither wraps into the past ("expired") nor is
    // accepted: no token this issuer signs lives that long (issue 24).
    let forever = hostile(&app, &admin_claims, false, |c| c["exp"] = json!(i64::MAX - 1));
    assert_eq!(
        v.verify(&forever).await.unwrap_err(),
        VerifyError::Token(JwtError::LifetimeTooLong),
        "exp near i64::MAX must not wrap into the past, nor be accepted"
    );
    let resp = Api {
        app: &app,
        token: forever,
    }
    .get("/api/v1/apps")
    .await;
    assert_api_error(resp, 401, "lifetime").await;
}

#[tokio::test]
async fn a_list_query_with_a_thousand_filters_is_refused_at_once() {
    let app = spawn_app().await;
    let api = app.api().await;
    let query: Vec<String> = (0..1000).map(|i| format!("filterBy=name%3D%40x{i}")).collect();
    let started = std::time::Instant::now();
    let resp = api.get(&format!("/api/v1/apps?{}", query.join("&"))).await;
    assert_api_error(resp, 400, "at most 20 filterBy parameters").await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let long = "x".repeat(300);
    let resp = api.get(&format!("/api/v1/apps?search={long}")).await;
    assert_api_error(resp, 400, "limited to 256 characters").await;
    let resp = api.get(&format!("/api/v1/audit?filterBy=summary%3D%40{long}")).await;
    assert_api_error(resp, 400, "limited to 256 characters").await;
    // Characters, as the OpenAPI document's maxLength counts them, not bytes.
    let accented = "%C3%A9".repeat(250);
    assert_eq!(api.get(&format!("/api/v1/apps?search={accented}")).await.status(), 200);
    let twenty: Vec<String> = (0..20).map(|_| "filterBy=name%3D%40a".to_string()).collect();
    assert_eq!(
        api.get(&format!("/api/v1/apps?{}", twenty.join("&"))).await.status(),
        200
    );
}

#[tokio::test]
async fn half_open_and_silent_connections_are_closed_while_a_normal_client_is_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(&["server.header_read_timeout_seconds=1".into()]).await;
    let addr = format!("127.0.0.1:{}", app.port);
    let mut sockets = Vec::new();
    for i in 0..2000 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            // Half a request head, then nothing.
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
        }
        sockets.push(s);
    }
    // A normal client is served throughout.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        let resp = http_client().get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every slow socket has been closed by the server: reading gives EOF or a reset.
    let mut closed = 0;
    for mut s in sockets {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            // hyper may answer a timed-out head with a 408 before closing.
            Ok(Ok(_)) => {
                if matches!(
                    tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await,
                    Ok(Ok(0)) | Ok(Err(_))
                ) {
                    closed += 1;
                }
            }
            Err(_) => {}
        }
    }
    assert_eq!(closed, 2000, "every half-open or silent connection is closed");
}

#[test]
fn kubernetes_service_link_variables_do_not_stop_the_server() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_appauth"))
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("APPAUTH_PORT", "tcp://10.96.0.12:8080")
        .env("APPAUTH_PORT_8080_TCP", "tcp://10.96.0.12:8080")
        .env("APPAUTH_SERVICE_HOST", "10.96.0.12")
        .env("APPAUTH_SERVICE_PORT", "8080")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        log.push_str(&line);
        log.push('\n');
        if line.contains("address=") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("address="), "the server started:\n{log}");
    assert!(
        log.contains("ignoring environment variables") && log.contains("APPAUTH_SERVICE_HOST"),
        "{log}"
    );
    // An unknown key inside a known section stays an error, with a hint.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_appauth"))
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("APPAUTH_SERVER_LISTN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `server.listen`"), "{err}");
}

#[test]
fn a_wildcard_listen_address_without_an_issuer_url_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_appauth"))
        .current_dir(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("issuer.url"));
}

fn stop(mut served: Served) {
    assert!(send_sigterm(served.0.id()));
    served.0.wait().unwrap();
}

#[tokio::test]
async fn admin_recover_restores_an_administrator_when_every_admin_credential_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = serve_binary(dir.path());
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
    let app = TestApp::external(
        &base,
        creds["clientId"].as_str().unwrap(),
        creds["secret"].as_str().unwrap(),
    );
    let api = app.api().await;
    // Refused while the server holds the store.
    let busy = std::process::Command::new(env!("CARGO_BIN_EXE_appauth"))
        .current_dir(dir.path())
        .args(["admin", "recover"])
        .output()
        .unwrap();
    assert_eq!(busy.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("in use by another process"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    // The only administrator goes away (through a second one, whose credentials are then lost too).
    let (_, token) = api.app_with_tenant_role("second-admin", "system-administrator").await;
    let second = Api { app: &app, token };
    let admin_id = {
        let list: Value = api.get("/api/v1/apps?filterBy=name==admin").await.json().await.unwrap();
        list["applications"][0]["id"].as_str().unwrap().to_owned()
    };
    assert_eq!(second.delete(&format!("/api/v1/apps/{admin_id}")).await.status(), 204);
    stop(server);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_appauth"))
        .current_dir(dir.path())
        .args(["admin", "recover", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recovered: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (
        recovered["clientId"].as_str().unwrap(),
        recovered["secret"].as_str().unwrap(),
    );

    let (server, base) = serve_binary(dir.path());
    let app = TestApp::external(&base, id, secret);
    let api = app.api().await;
    assert_eq!(api.get("/api/v1/apps").await.status(), 200);
    let tenant = api.tenant_id().await;
    assert_eq!(
        api.post(
            "/api/v1/scopes",
            json!({"type": "cluster", "name": "after-recovery", "parentId": tenant})
        )
        .await
        .status(),
        201,
        "the recovered application is a full System administrator"
    );
    let log: Value = api
        .get("/api/v1/audit?filterBy=action==store.recover")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(log["totalRecords"], 1);
    stop(server);
}

#[tokio::test]
async fn a_key_retired_with_now_stops_verifying_within_one_refresh() {
    let app = spawn_app().await;
    let old_kid = kid(&app);
    let token = app.admin_token().await;
    let mut cfg = appauth::verify::VerifierConfig::new(&app.base, "urn:appauth:api");
    cfg.jwks_refresh_max = Duration::from_secs(1);
    cfg.min_refetch_interval = Duration::from_millis(200);
    let v = appauth::verify::Verifier::discover(cfg).await.unwrap();
    v.verify(&token).await.unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_appauth"))
        .args(["keys", "retire", &old_kid, "--now", "--set"])
        .arg(format!("keys.dir={}", app.dir.path().join("keys").display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("generated replacement key"));

    // The server drops it within its 1 s key rescan; the verifier within one refresh.
    let started = std::time::Instant::now();
    loop {
        let jwks: Value = app.get_json("/.well-known/jwks.json").await;
        let still = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == old_kid.as_str());
        let refused = matches!(v.verify(&token).await, Err(VerifyError::Token(JwtError::UnknownKey)));
        if !still && refused {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the withdrawn key still verifies"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_api_error(
        Api {
            app: &app,
            token: token.clone(),
        }
        .get("/api/v1/apps")
        .await,
        401,
        "unknown key",
    )
    .await;
    // New tokens come from the replacement and verify.
    let fresh = app.admin_token().await;
    assert_ne!(header_of(&fresh)["kid"], old_kid.as_str());
    v.verify(&fresh).await.unwrap();
}

/// A size-limited tmpfs, mounted for the test and unmounted on drop: a real
/// filesystem that really fills up (needs root, as the test suite runs in CI).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount(8) is needed for the full-disk test");
        assert!(
            out.status.success(),
            "the full-disk test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    /// Fills the filesystem; returns the filler's path. Called again, it
    /// takes whatever was freed meanwhile (sled gives back the blocks of
    /// an undone batch), smallest writes last so no byte is left.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        for size in [64 * 1024, 4096, 512, 1] {
            let chunk = vec![0u8; size];
            while f.write_all(&chunk).is_ok() {}
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_gets_503_loses_nothing_keeps_tokens_flowing_and_recovers_by_itself() {
    let disk = SmallDisk::mount(24);
    let store = disk.dir.path().join("data");
    let home = tempfile::tempdir().unwrap();
    let set = [format!("store.path={}", store.display())];
    let config = test_config(home.path(), &set);
    let app = appauth::App::build(config).await.expect("app builds on the small disk");
    let base = app.issuer_url().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stop_rx.await;
    }));
    let creds: Value = serde_json::from_slice(&std::fs::read(store.join("initial-admin.json")).unwrap()).unwrap();
    let t = TestApp::external(
        &base,
        creds["clientId"].as_str().unwrap(),
        creds["secret"].as_str().unwrap(),
    );
    let api = t.api().await;
    let before = api.create_app("before-full").await;

    // sled may still have room inside space it allocated earlier, so a write
    // or two can succeed on a full filesystem: those are durable and must
    // stay. Keep writing until the disk really refuses one.
    let filler = disk.fill();
    let mut acknowledged = vec!["before-full".to_owned()];
    let refused = loop {
        let name = format!("while-full-{}", acknowledged.len());
        let resp = api.post("/api/v1/apps", json!({ "name": name })).await;
        if resp.status() == 201 {
            assert!(acknowledged.len() < 2000, "the full disk never refused a write");
            acknowledged.push(name);
            disk.fill();
            continue;
        }
        assert_api_error(resp, 503, "nothing was changed").await;
        break name;
    };
    let ready = t.client.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    // "failing" while the probe's reopen of the database cannot open it
    // on the full disk either (it then holds no handle, and reads fail too).
    assert!(
        ["writes failing", "failing"].contains(&ready["checks"]["store"].as_str().unwrap_or_default()),
        "{ready}"
    );
    // Tokens keep flowing from memory.
    t.token_for(before["clientId"].as_str().unwrap(), before["secret"].as_str().unwrap())
        .await;
    // Memory agrees with the disk: the refused write is nowhere.
    let list: Value = api
        .get(&format!("/api/v1/apps?filterBy=name=={refused}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["totalRecords"], 0);
    // A refused regenerate leaves the last acknowledged secret working.
    let id = before["id"].as_str().unwrap();
    let mut secret = before["secret"].as_str().unwrap().to_owned();
    let mut replaced = Vec::new();
    for attempt in 0.. {
        disk.fill();
        let resp = api.post(&format!("/api/v1/apps/{id}/secret"), json!({})).await;
        if resp.status() == 503 {
            break;
        }
        assert_eq!(resp.status(), 200);
        assert!(attempt < 50, "the full disk never refused a regenerate");
        let body: Value = resp.json().await.unwrap();
        replaced.push(std::mem::replace(
            &mut secret,
            body["secret"].as_str().unwrap().to_owned(),
        ));
    }
    t.token_for(before["clientId"].as_str().unwrap(), &secret).await;
    // A regenerate acknowledged on the full disk did replace the secret.
    for old in &replaced {
        let resp = t.token_request(before["clientId"].as_str().unwrap(), old, "").await;
        assert_eq!(resp.status(), 401, "a replaced secret still works");
    }

    std::fs::remove_file(filler).unwrap();
    let started = std::time::Instant::now();
    while t.client.get(t.url("/readyz")).send().await.unwrap().status() != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = api.create_app("after-recovery").await;
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();

    // What was acknowledged is on disk; what was refused is not.
    let config = test_config(home.path(), &set);
    let app = appauth::App::build(config).await.expect("restarts on the same store");
    let base = app.issuer_url().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stop_rx.await;
    }));
    let t = TestApp::external(
        &base,
        creds["clientId"].as_str().unwrap(),
        creds["secret"].as_str().unwrap(),
    );
    let api = t.api().await;
    acknowledged.push("after-recovery".to_owned());
    let expected = acknowledged
        .iter()
        .map(|n| (n.as_str(), 1))
        .chain([(refused.as_str(), 0)]);
    for (name, present) in expected {
        let list: Value = api
            .get(&format!("/api/v1/apps?filterBy=name=={name}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["totalRecords"], present, "{name}");
    }
    t.token_for(before["clientId"].as_str().unwrap(), &secret).await;
    for old in &replaced {
        let resp = t.token_request(before["clientId"].as_str().unwrap(), old, "").await;
        assert_eq!(resp.status(), 401, "a replaced secret works again after a restart");
    }
    let _ = after;
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_ends() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(&[
        "server.max_connections=2".into(),
        "server.header_read_timeout_seconds=30".into(),
    ])
    .await;
    let addr = format!("127.0.0.1:{}", app.port);
    // Two connections hold both slots.
    let first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third one connects (the kernel's backlog) but is not served yet.
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let waited = tokio::time::timeout(Duration::from_millis(800), third.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond server.max_connections");
    // When one ends, it is served.
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

/// Sends `raw` on a fresh connection and reads until the server closes it
/// (or 5 s pass). Returns what it answered and whether it closed.
async fn raw_exchange(app: &TestApp, raw: &[u8]) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let _ = s.write_all(raw).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[tokio::test]
async fn ambiguous_transfer_encodings_get_400_and_the_connection_is_closed() {
    let app = spawn_app().await;
    let body = "grant_type=client_credentials";
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    for framing in [
        "Transfer-Encoding: chunked, chunked\r\n".to_string(),
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n".to_string(),
        "Transfer-Encoding: gzip, chunked\r\n".to_string(),
    ] {
        for path in ["/oauth/token", "/api/v1/apps"] {
            // A second, smuggled request follows in the same bytes: it must never be answered.
            let raw = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n{framing}\r\n{chunked}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                basic(&app.admin_id, &app.admin_secret)
            );
            let (answer, closed) = raw_exchange(&app, raw.as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 400"), "{framing:?} {path}: {answer}");
            assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
            assert!(answer.contains("Transfer-Encoding"), "the reason is given: {answer}");
            assert_eq!(
                answer.matches("HTTP/1.1").count(),
                1,
                "the smuggled request was answered: {answer}"
            );
            assert!(closed, "{framing:?}: connection kept open");
        }
    }
    // One plain chunked body is fine.
    let raw = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunked}",
        basic(&app.admin_id, &app.admin_secret)
    );
    let (answer, _) = raw_exchange(&app, raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_request_head_over_64_kib_gets_431() {
    let app = spawn_app().await;
    let big = "a".repeat(70 * 1024);
    let (answer, closed) = raw_exchange(
        &app,
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    assert!(closed);
    // Just under the bound is served.
    let fits = "a".repeat(60 * 1024);
    let (answer, _) = raw_exchange(
        &app,
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {fits}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(200)]
    );
}
