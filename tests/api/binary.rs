//! The `appauth` binary itself: CLI, exit codes, logs.

use crate::helpers::http_client;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn appauth(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_appauth"));
    c.current_dir(dir);
    c.env_remove("RUST_LOG");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("APPAUTH_")) {
        c.env_remove(k);
    }
    c
}

#[tokio::test]
async fn serve_on_embedded_defaults_initialises_itself_and_never_logs_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = appauth(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    let address = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server logs that it listens");
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let creds_path = dir.path().join("data/initial-admin.json");
    assert_eq!(
        std::fs::metadata(&creds_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let creds: Value = serde_json::from_slice(&std::fs::read(&creds_path).unwrap()).unwrap();
    let (id, secret) = (creds["clientId"].as_str().unwrap(), creds["secret"].as_str().unwrap());
    assert!(log.contains("initial-admin.json"), "the log names the credentials file");

    let client = http_client();
    let url = format!("http://{address}/oauth/token");
    let token = crate::helpers::token_at(&format!("http://{address}"), id, secret).await;
    let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}x");
    let refused = client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let metrics = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("appauth_log_lines_dropped_total 0"),
        "the binary counts dropped log lines:\n{metrics}"
    );

    assert!(crate::helpers::send_sigterm(child.id()));
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}");
    reader.join().unwrap();
    log.extend(rx.try_iter().map(|l| l + "\n"));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    log.push_str(&stderr);

    assert!(
        log.contains("path=/oauth/token status=200"),
        "one access line per request:\n{log}"
    );
    assert!(
        log.contains(&format!("client_id=\"{id}\"")) || log.contains(&format!("client_id={id}")),
        "{log}"
    );
    assert!(log.contains("stopped"), "graceful shutdown is logged:\n{log}");
    assert!(!log.contains(&secret[4..]), "the secret reached the log:\n{log}");
    assert!(!log.contains(&token[..40]), "a token reached the log");
    assert!(!log.contains("Basic "), "an Authorization header reached the log");
}

#[test]
fn init_prints_the_admin_credentials_once_and_then_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let out = appauth(dir.path()).args(["init", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let creds: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(creds["clientId"].is_string() && creds["secret"].as_str().unwrap().starts_with("aas_"));
    let again = appauth(dir.path()).args(["init"]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));
    assert!(!String::from_utf8_lossy(&again.stdout).contains("aas_"));
}

#[test]
fn a_bad_configuration_value_exits_with_2_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = appauth(dir.path())
        .args(["serve"])
        .env("APPAUTH_SERVER_MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.max_body_bytes") && err.contains("APPAUTH_SERVER_MAX_BODY_BYTES"),
        "{err}"
    );

    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[server]\nlisen = \"127.0.0.1:1\"\n").unwrap();
    let out = appauth(dir.path())
        .args(["serve", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.lisen"));
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created on a configuration error"
    );
}

#[test]
fn the_shipped_config_file_documents_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/appauth.toml");
    let config = appauth::Config::load(Some(std::path::Path::new(shipped)), Vec::new(), &[]).unwrap();
    assert_eq!(config.server.max_body_bytes, 16384);
    let text = std::fs::read_to_string(shipped).unwrap();
    for key in appauth::config::KEYS {
        let name = key.split('.').nth(1).unwrap();
        assert!(text.contains(name), "config/appauth.toml does not document {key}");
    }
    let _ = dir;
}

#[test]
fn keys_generate_adds_a_next_key_and_keys_list_shows_states() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        appauth(dir.path())
            .args(["init", "--json"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = appauth(dir.path())
        .args(["keys", "generate", "--alg", "EdDSA"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_kid = String::from_utf8_lossy(&out.stdout)
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let list = appauth(dir.path()).args(["keys", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    let line = text.lines().find(|l| l.starts_with(&new_kid)).expect("new key listed");
    assert!(line.contains("EdDSA") && line.contains("next"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("ES256") && l.contains("active")),
        "{text}"
    );
    // An RSA key is the first of its chain: it signs at once (for the
    // audiences that ask for RS256) and the ES256 key stays active.
    let out = appauth(dir.path())
        .args(["keys", "generate", "--alg", "RS256", "--bits", "3072"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rsa_kid = String::from_utf8_lossy(&out.stdout)
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let list = appauth(dir.path()).args(["keys", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    let line = text.lines().find(|l| l.starts_with(&rsa_kid)).expect("RSA key listed");
    assert!(line.contains("RS256") && line.contains("active"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("ES256") && l.contains("active")),
        "{text}"
    );
    let pem = std::fs::read_to_string(dir.path().join(format!("keys/{rsa_kid}.pem"))).unwrap();
    let der = pem::parse(pem).unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(der.contents()).unwrap();
    assert_eq!(pair.public().modulus_len() * 8, 3072);
    for bad in [&["--alg", "PS256"][..], &["--alg", "RS256", "--bits", "1024"]] {
        let out = appauth(dir.path())
            .args(["keys", "generate"])
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn bench_refuses_a_non_loopback_target() {
    let dir = tempfile::tempdir().unwrap();
    let out = appauth(dir.path())
        .args([
            "bench",
            "--url",
            "http://192.0.2.1:8080",
            "--admin-credentials",
            "x.json",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}

#[tokio::test]
async fn bench_provisions_applications_and_reports_throughput_as_json() {
    let app = crate::helpers::spawn_app().await;
    let creds = app.data_dir().join("initial-admin.json");
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_appauth"))
            .args(["bench", "--url", &base, "--admin-credentials", creds.to_str().unwrap()])
            .args([
                "--apps",
                "3",
                "--concurrency",
                "2",
                "--duration",
                "1",
                "--warmup",
                "0",
                "--json",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["requests"].as_u64().unwrap() > 10, "{report}");
    assert_eq!(report["errors_by_status"], serde_json::json!({}));
    assert!(report["latency_ms"]["p99"].as_f64().unwrap() >= report["latency_ms"]["p50"].as_f64().unwrap());
    let api = app.api().await;
    let listed: Value = api.get("/api/v1/apps?search=bench-").await.json().await.unwrap();
    assert_eq!(
        listed["totalRecords"], 3,
        "the bench provisioned its applications through the admin API"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("requests"),
        "live progress on stderr"
    );
}

#[tokio::test]
async fn json_log_format_writes_one_parseable_object_per_line_including_access_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = appauth(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("APPAUTH_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let port: u16 = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server logs that it listens");
        let parsed: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        lines.push(line);
        if let Some(address) = parsed["address"].as_str() {
            break address.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let (id, secret) = (creds["clientId"].as_str().unwrap(), creds["secret"].as_str().unwrap());
    let issued = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 200);
    let issued_id = issued.headers()["x-request-id"].to_str().unwrap().to_owned();
    // Health probes that succeed leave no line (a balancer sends two a second).
    for _ in 0..5 {
        for probe in ["/healthz", "/readyz"] {
            let resp = reqwest::get(format!("{base}{probe}")).await.unwrap();
            assert_eq!(resp.status(), 200);
        }
    }
    // Raw bytes, so no client library tidies the path up first.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut raw,
        b"GET /no\"such\\path{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut raw, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    assert!(crate::helpers::send_sigterm(child.id()));
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let objects: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = objects.iter().filter(|o| o["target"] == "appauth::access").collect();
    let token = access
        .iter()
        .find(|o| o["path"] == "/oauth/token")
        .unwrap_or_else(|| panic!("no access line for the token request: {lines:?}"));
    assert_eq!(token["status"], 200);
    assert_eq!(token["client_id"], id);
    assert_eq!(token["method"], "POST");
    assert!(token["timestamp"].as_str().unwrap().ends_with('Z'));
    let request_id = token["request_id"].as_str().unwrap();
    assert_eq!(request_id.len(), 21, "{request_id}");
    assert_eq!(request_id, issued_id, "the answer's X-Request-Id names its access line");
    assert!(
        !access.iter().any(|o| o["path"] == "/healthz" || o["path"] == "/readyz"),
        "successful health probes are not access-logged: {access:?}"
    );
    let refused = access
        .iter()
        .find(|o| o["status"] == 404)
        .expect("an access line for the 404");
    assert_eq!(
        refused["path"], "/no%22such%5Cpath{}",
        "a path can neither break a line nor forge a field"
    );
    assert!(
        !lines.iter().any(|l| l.contains(&secret[4..])),
        "the secret reached the log"
    );
}

fn modes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p).unwrap();
        out.push((p.clone(), meta.permissions().mode() & 0o777));
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

#[test]
fn a_new_store_is_private_whatever_the_umask_and_an_exposed_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // The most permissive umask: without care, files would be 0666 and directories 0777.
    let out = Command::new("sh")
        .current_dir(dir.path())
        .env("APPAUTH_BIN", env!("CARGO_BIN_EXE_appauth"))
        .args(["-c", "umask 000; exec \"$APPAUTH_BIN\" init --json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let data = dir.path().join("data");
    let found = modes(&data);
    assert!(found.len() > 2, "{found:?}");
    for (path, mode) in &found {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} is {mode:o}", path.display());
    }
    // An existing store someone opened up is reported at start (not changed).
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = appauth(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("address=") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("readable by other users"), "{seen}");
    assert!(seen.contains("chmod -R go-rwx"), "{seen}");
    assert_eq!(modes(&data)[0].1, 0o755, "an operator's choice is left alone");
}

#[test]
fn start_up_errors_name_what_to_fix_not_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-dir"), b"x").unwrap();
    let out = appauth(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--set", "keys.dir=not-a-dir"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keys.dir is not-a-dir, which is a file, not a directory"),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");

    // A store another process holds.
    let mut first = appauth(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for line in BufReader::new(first.stdout.take().unwrap()).lines() {
        if line.unwrap().contains("address=") {
            break;
        }
    }
    let out = appauth(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("is in use by another process"), "{err}");
    assert!(!err.contains("WouldBlock") && !err.contains("Os {"), "{err}");
}

#[test]
fn serve_binds_before_it_initialises_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = appauth(dir.path())
        .args(["serve", "--listen", &address])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {address}")) && err.contains("server.listen"),
        "{err}"
    );
    assert!(
        !dir.path().join("data/initial-admin.json").exists(),
        "credentials written for a server that never ran"
    );
    assert!(
        !dir.path().join("data/conf").exists(),
        "a store initialised for a server that never ran"
    );
}

#[test]
fn config_check_validates_without_starting_and_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = appauth(dir.path())
        .args([
            "config",
            "check",
            "--set",
            "redis.url=redis://appauth:hunter2-secret@127.0.0.1:6379/0",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("configuration is valid") && stdout.contains("max_body_bytes: 16384"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"), "{stdout}");
    assert!(!dir.path().join("data").exists(), "a check creates nothing");
    // Each kind of error exits 2 and names the key.
    for (set, key) in [
        ("server.lisen=127.0.0.1:1", "server.lisen"),
        ("server.tls_cert=/nonexistent/cert.pem", "server.tls_cert"),
        (
            "federation.issuers=[{issuer = \"http://plain.example\"}]",
            "federation.issuers",
        ),
    ] {
        let mut cmd = appauth(dir.path());
        cmd.args(["config", "check", "--set", set]);
        if key == "server.tls_cert" {
            cmd.args(["--set", "server.tls_key=/nonexistent/key.pem"]);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{set}: {stderr}");
        assert!(stderr.contains(key), "{set}: {stderr}");
    }
}

#[test]
fn shell_completions_are_generated_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, needle) in [
        ("bash", "_appauth()"),
        ("zsh", "#compdef appauth"),
        ("fish", "complete -c appauth"),
    ] {
        let out = appauth(dir.path()).args(["completion", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains(needle) && script.contains("federated"),
            "{shell}: {script:.200}"
        );
    }
}

#[tokio::test]
async fn sampled_token_successes_keep_one_line_in_n_and_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = appauth(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--set",
            "log.token_success_sample=5",
        ])
        .env("APPAUTH_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let port: u16 = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server logs that it listens");
        let parsed: Value = serde_json::from_str(&line).unwrap();
        if let Some(address) = parsed["address"].as_str() {
            break address.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
    let (id, secret) = (creds["clientId"].as_str().unwrap(), creds["secret"].as_str().unwrap());
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/oauth/token");
    for (n, pw) in [(10, secret.to_owned()), (3, format!("{secret}x"))] {
        for _ in 0..n {
            client
                .post(&url)
                .basic_auth(id, Some(&pw))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
        }
    }
    assert!(crate::helpers::send_sigterm(child.id()));
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    let token_lines: Vec<Value> = rx
        .try_iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(|o| o["target"] == "appauth::access" && o["path"] == "/oauth/token")
        .collect();
    let ok = token_lines.iter().filter(|o| o["status"] == 200).count();
    let failed = token_lines.iter().filter(|o| o["status"] == 401).count();
    assert_eq!(
        (ok, failed),
        (2, 3),
        "1 in 5 of 10 successes, all 3 failures: {token_lines:?}"
    );
}

#[tokio::test]
async fn the_systemd_unit_scores_at_most_2_in_the_offline_security_analysis() {
    // An instance of the template, as systemctl would load it.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("appauth@1.service");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/appauth@.service"), &unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze is installed (scripts/test.sh installs systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("appauth@1.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no overall exposure level in: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
    // It still has what it needs: its state directory writable, /etc/appauth readable.
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for needed in [
        "StateDirectory=appauth/%i",
        "ReadWritePaths=/var/lib/appauth/%i",
        "ConfigurationDirectory=appauth",
        "AF_UNIX",
    ] {
        assert!(unit_text.contains(needed), "{needed}");
    }
}
