//! The admin CLI (`appauth apps|rules|scopes|roles|audit`) driven as a
//! subprocess against a spawned server: credentials from a file or standard
//! input, table and JSON output, exit codes 0 / 1 (refused) / 2 (usage).

use crate::helpers::*;
use serde_json::Value;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

pub struct Cli<'a> {
    pub app: &'a TestApp,
    pub creds: std::path::PathBuf,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Cli<'_> {
    pub async fn run(&self, args: &[&str]) -> Out {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
        cmd.args(args)
            .arg("--url")
            .arg(&self.app.base)
            .arg("--credentials")
            .arg(&self.creds);
        output(cmd, None).await
    }

    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.run(&all).await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", out.stdout))
    }
}

async fn output(mut cmd: tokio::process::Command, stdin: Option<&str>) -> Out {
    cmd.env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("appauth runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        // A usage error exits before reading its input: a broken pipe then is expected.
        if let Err(e) = input.write_all(s.as_bytes()).await {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing the CLI's input: {e}");
        }
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn the_admin_cli_creates_lists_grants_disables_regenerates_and_deletes_through_the_api() {
    let app = spawn_app().await;
    let cli = Cli {
        app: &app,
        creds: app.data_dir().join("initial-admin.json"),
    };
    // Create: the secret is printed once and works.
    let created = cli.json(&["apps", "create", "ci-pipeline-prod"]).await;
    let (id, cid) = (created["id"].as_str().unwrap(), created["clientId"].as_str().unwrap());
    let secret = created["secret"].as_str().unwrap();
    app.token_for(cid, secret).await;
    let table = cli.run(&["apps", "create", "nightly-build"]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("secret") && table.stdout.contains("shown only now"),
        "{}",
        table.stdout
    );

    // List with the console's filters, as a table and as JSON.
    let listed = cli
        .json(&["apps", "list", "--filter", "name=@ci-", "--sort", "name"])
        .await;
    assert_eq!(listed["totalRecords"], 1);
    assert_eq!(listed["applications"][0]["clientId"], cid);
    let out = cli.run(&["apps", "list", "--sort", "name", "--desc"]).await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("id") && lines[0].contains("clientId"),
        "{}",
        out.stdout
    );
    let order: Vec<usize> = ["nightly-build", "ci-pipeline-prod", "admin"]
        .iter()
        .map(|n| {
            lines
                .iter()
                .position(|l| l.split_whitespace().nth(1) == Some(n))
                .unwrap()
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "sorted by name, descending: {}",
        out.stdout
    );

    // Scopes, roles, a rule; the rule is in the next token.
    let scopes = cli.json(&["scopes", "list"]).await;
    let tenant = scopes["scopes"][0]["id"].as_str().unwrap().to_owned();
    let cluster = cli
        .json(&[
            "scopes",
            "create",
            "--type",
            "cluster",
            "--name",
            "Cluster: A",
            "--parent",
            &tenant,
        ])
        .await;
    let roles = cli.run(&["roles", "list"]).await;
    assert!(roles.stdout.contains("l1-researcher"), "{}", roles.stdout);
    let rule = cli
        .json(&[
            "rules",
            "create",
            "--app",
            id,
            "--role",
            "l1-researcher",
            "--scope-type",
            "cluster",
            "--scope",
            cluster["id"].as_str().unwrap(),
        ])
        .await;
    let token = app.token_for(cid, secret).await;
    assert_eq!(claims_of(&token)["access_rules"][0]["role_id"], "l1-researcher");
    let rules = cli
        .json(&["rules", "list", "--filter", &format!("subjectId=={id}")])
        .await;
    assert_eq!(rules["totalRecords"], 1);

    // Disable, enable, regenerate: the old secret stops working.
    assert_eq!(cli.json(&["apps", "disable", id]).await["enabled"], false);
    assert_eq!(app.token_request(cid, secret, "").await.status(), 401);
    assert_eq!(cli.json(&["apps", "enable", id]).await["enabled"], true);
    let regenerated = cli.json(&["apps", "regenerate", id]).await;
    assert_eq!(app.token_request(cid, secret, "").await.status(), 401);
    app.token_for(cid, regenerated["secret"].as_str().unwrap()).await;

    // The audit log saw it all; delete the rule and the app.
    let audit = cli
        .run(&["audit", "list", "--filter", "action==app.regenerate-secret"])
        .await;
    assert!(
        audit.stdout.contains("app.regenerate-secret") && audit.stdout.contains("admin"),
        "{}",
        audit.stdout
    );
    assert_eq!(
        cli.run(&["rules", "delete", rule["id"].as_str().unwrap()]).await.code,
        0
    );
    let deleted = cli.run(&["apps", "delete", id]).await;
    assert_eq!((deleted.code, deleted.stdout.trim()), (0, "done"));
    assert_eq!(
        app.token_request(cid, regenerated["secret"].as_str().unwrap(), "")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn the_admin_cli_reads_credentials_from_stdin_and_exits_1_on_refusal_and_2_on_usage() {
    let app = spawn_app().await;
    let creds = std::fs::read_to_string(app.data_dir().join("initial-admin.json")).unwrap();
    let stdin_call = |args: Vec<String>, input: String| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
        cmd.args(args);
        async move { output(cmd, Some(&input)).await }
    };
    let base = app.base.clone();
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        a.extend(["--url".into(), base.clone(), "--credentials".into(), "-".into()]);
        a
    };
    let out = stdin_call(args(&["apps", "list"]), creds.clone()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("admin"));
    assert!(!out.stdout.contains(&app.admin_secret) && !out.stderr.contains(&app.admin_secret));

    // Refused by the server: exit 1 with its message.
    let out = stdin_call(args(&["apps", "create", "A"]), creds.clone()).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("400") && out.stderr.contains("invalid name"),
        "{}",
        out.stderr
    );
    let out = stdin_call(
        args(&["apps", "show", "00000000-0000-4000-8000-000000000000"]),
        creds.clone(),
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no application has the id, client ID or name"),
        "{}",
        out.stderr
    );
    // A weaker caller is refused with 403, exit 1.
    let api = app.api().await;
    let viewer = api.create_app("viewer-cli").await;
    let tenant = api.tenant_id().await;
    api.grant(viewer["id"].as_str().unwrap(), "viewer", "tenant", &tenant)
        .await;
    let viewer_creds = serde_json::json!({"clientId": viewer["clientId"], "secret": viewer["secret"]}).to_string();
    let out = stdin_call(args(&["apps", "create", "by-viewer"]), viewer_creds.clone()).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("403"), "{}", out.stderr);
    let out = stdin_call(args(&["apps", "list"]), viewer_creds).await;
    assert_eq!(out.code, 0, "a viewer may read");
    // Wrong secret: the token endpoint's refusal, exit 1.
    let wrong = serde_json::json!({"clientId": app.admin_id, "secret": "aas_wrong"}).to_string();
    let out = stdin_call(args(&["apps", "list"]), wrong).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("401"), "{}", out.stderr);

    // Usage: exit 2.
    let out = stdin_call(args(&["apps", "list"]), "not json".into()).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("clientId"), "{}", out.stderr);
    let out = stdin_call(args(&["apps", "frobnicate"]), creds.clone()).await;
    assert_eq!(out.code, 2);
    let out = stdin_call(args(&["apps", "list", "--output", "xml"]), creds.clone()).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("table, json, yaml"), "{}", out.stderr);
    // YAML is the API's answer too, for `-o yaml`.
    let out = stdin_call(args(&["apps", "list", "-o", "yaml"]), creds.clone()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed: serde_json::Value = serde_yaml_ng::from_str(&out.stdout).unwrap();
    // Listed in `id` order (random UUIDs): find the administrator by its client ID.
    let names: Vec<&str> = listed["applications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["clientId"] == app.admin_id.as_str())
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["admin"], "{}", out.stdout);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
    cmd.args([
        "apps",
        "list",
        "--url",
        &app.base,
        "--credentials",
        "/nonexistent/creds.json",
    ]);
    let out = output(cmd, None).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("/nonexistent/creds.json"), "{}", out.stderr);
    // --help has examples.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
    cmd.args(["apps", "--help"]);
    let out = output(cmd, None).await;
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("Examples:") && out.stdout.contains("--credentials -"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn the_admin_cli_sets_audiences_and_lifetimes_with_human_durations() {
    let app = spawn_app_with(&["issuer.audiences=urn:appauth:api,https://reports.example".into()]).await;
    let cli = Cli {
        app: &app,
        creds: app.data_dir().join("initial-admin.json"),
    };
    let created = cli
        .json(&[
            "apps",
            "create",
            "reports-job",
            "--audience",
            "https://reports.example",
            "--token-ttl",
            "10m",
        ])
        .await;
    assert_eq!(
        created["allowedAudiences"],
        serde_json::json!(["https://reports.example"])
    );
    assert_eq!(created["tokenTtlSeconds"], 600);
    let id = created["id"].as_str().unwrap();
    let changed = cli
        .json(&[
            "apps",
            "policy",
            id,
            "--audience",
            "urn:appauth:api",
            "--default-token-ttl",
        ])
        .await;
    assert_eq!(changed["allowedAudiences"], serde_json::json!(["urn:appauth:api"]));
    assert_eq!(changed["tokenTtlSeconds"], Value::Null);
    let shown = cli.run(&["apps", "show", id]).await;
    assert!(
        shown.stdout.contains("allowedAudiences") && shown.stdout.contains("urn:appauth:api"),
        "{}",
        shown.stdout
    );
    // --grace takes 1h as well as 3600; a bad duration is a usage error (2).
    let rotated = cli.json(&["apps", "regenerate", id, "--grace", "1h"]).await;
    assert!(rotated["secret"].as_str().unwrap().starts_with("aas_"));
    let view: Value = app
        .api()
        .await
        .get(&format!("/api/v1/apps/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        view["secrets"].as_array().unwrap().len(),
        2,
        "the previous secret overlaps for an hour: {view}"
    );
    let bad = cli.run(&["apps", "regenerate", id, "--grace", "1h30m"]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("not a duration"), "{}", bad.stderr);
}

#[tokio::test]
async fn the_admin_cli_reads_its_server_and_credentials_from_the_environment_and_has_no_default_credentials() {
    let app = spawn_app().await;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
    cmd.args(["apps", "list", "--output", "json"])
        .env("APPAUTH_URL", &app.base)
        .env("APPAUTH_CREDENTIALS", app.data_dir().join("initial-admin.json"));
    let out = output(cmd, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"totalRecords\""), "{}", out.stdout);
    // In a directory that holds data/initial-admin.json, still no implicit use of it.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
    cmd.current_dir(app.dir.path())
        .args(["apps", "list"])
        .env("APPAUTH_URL", &app.base)
        .env_remove("APPAUTH_CREDENTIALS");
    let out = output(cmd, None).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.contains("APPAUTH_CREDENTIALS") && out.stderr.contains("--credentials"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn the_admin_cli_adds_lists_and_removes_federated_credentials() {
    let app =
        spawn_app_with(&["federation.issuers=[{issuer = \"https://token.actions.githubusercontent.com\"}]".into()])
            .await;
    let cli = Cli {
        app: &app,
        creds: app.data_dir().join("initial-admin.json"),
    };
    let created = cli.json(&["apps", "create", "deployer"]).await;
    let id = created["id"].as_str().unwrap();
    let added = cli
        .json(&[
            "apps",
            "federated",
            "add",
            id,
            "--issuer",
            "https://token.actions.githubusercontent.com",
            "--subject-pattern",
            "repo:acme/*:environment:prod",
            "--condition",
            "ref=refs/heads/main",
        ])
        .await;
    assert_eq!(added["subjectPattern"], "repo:acme/*:environment:prod");
    assert_eq!(added["conditions"]["ref"], "refs/heads/main");
    let table = cli.run(&["apps", "federated", "list", id]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table
            .stdout
            .contains("trusted issuers: https://token.actions.githubusercontent.com")
            && table.stdout.contains("repo:acme/*:environment:prod"),
        "{}",
        table.stdout
    );
    // An untrusted issuer is refused by the server (exit 1), naming the trusted ones.
    let refused = cli
        .run(&[
            "apps",
            "federated",
            "add",
            id,
            "--issuer",
            "https://evil.example",
            "--subject",
            "x",
        ])
        .await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("not trusted"), "{}", refused.stderr);
    // Usage errors exit 2: no subject at all, or both.
    for args in [
        vec![
            "apps",
            "federated",
            "add",
            id,
            "--issuer",
            "https://token.actions.githubusercontent.com",
        ],
        vec![
            "apps",
            "federated",
            "add",
            id,
            "--issuer",
            "i",
            "--subject",
            "a",
            "--subject-pattern",
            "b*",
        ],
        vec![
            "apps",
            "federated",
            "add",
            id,
            "--issuer",
            "i",
            "--subject",
            "a",
            "--condition",
            "no-equals",
        ],
    ] {
        assert_eq!(cli.run(&args).await.code, 2, "{args:?}");
    }
    let removed = cli
        .run(&["apps", "federated", "remove", id, added["id"].as_str().unwrap()])
        .await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    let listed = cli.json(&["apps", "federated", "list", id]).await;
    assert_eq!(listed["federatedCredentials"], serde_json::json!([]));
}

#[tokio::test]
async fn the_cli_names_applications_by_id_client_id_or_name_and_trusts_a_private_ca_with_cacert() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut app = spawn_in(
        dir,
        &[
            format!("server.tls_cert={}", cert_path.display()),
            format!("server.tls_key={}", key_path.display()),
        ],
    )
    .await;
    app.client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let creds = app.dir.path().join("data/initial-admin.json");
    let ca = app.dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    // Without the CA: the real cause, not just "error sending request".
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
    cmd.args(["apps", "list", "--url", &app.base, "--credentials"])
        .arg(&creds);
    let out = output(cmd, None).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.to_lowercase().contains("certificate") && out.stderr.contains("UnknownIssuer"),
        "{}",
        out.stderr
    );
    let run = |args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
        cmd.args(&args)
            .args(["--url", &app.base, "--output", "json", "--credentials"])
            .arg(&creds)
            .env("APPAUTH_CACERT", &ca);
        output(cmd, None)
    };
    let created = app.api().await.create_app("nightly-report").await;
    let (id, client_id) = (created["id"].as_str().unwrap(), created["clientId"].as_str().unwrap());
    for reference in [id, client_id, "nightly-report"] {
        let out = run(vec!["apps".into(), "show".into(), reference.into()]).await;
        assert_eq!(out.code, 0, "{reference}: {}", out.stderr);
        let shown: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(shown["id"], id, "{reference}");
    }
    let out = run(vec!["apps".into(), "disable".into(), "nightly-report".into()]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap()["enabled"], false);
    // A rule for an application named by name, the scope's type read from the tree.
    let tenant = app.api().await.tenant_id().await;
    let out = run([
        "rules",
        "create",
        "--app",
        "nightly-report",
        "--role",
        "viewer",
        "--scope-type",
        "tenant",
        "--scope",
        &tenant,
    ]
    .map(String::from)
    .to_vec())
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rule: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (&rule["subjectId"], &rule["scopeType"]),
        (&Value::from(id), &Value::from("tenant"))
    );
    // --all pages through more than one page (500 rows each).
    let api = app.api().await;
    let creates = (0..505).map(|i| {
        let api = &api;
        async move {
            api.post("/api/v1/apps", serde_json::json!({"name": format!("bulk-{i:03}")}))
                .await
        }
    });
    for resp in futures_util::future::join_all(creates).await {
        assert_eq!(resp.status(), 201);
    }
    let out = run(["apps", "list", "--filter", "name=@bulk-", "--all"]
        .map(String::from)
        .to_vec())
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    let names: std::collections::BTreeSet<&str> = listed["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!((names.len(), listed["totalRecords"].as_u64()), (505, Some(505)));
    let out = run(["apps", "list", "--all", "--limit", "5"].map(String::from).to_vec()).await;
    assert_eq!(out.code, 2, "--all and --limit conflict: {}", out.stderr);
    let out = run(vec!["apps".into(), "show".into(), "no-such-app".into()]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("no application has the id, client ID or name \"no-such-app\""),
        "{}",
        out.stderr
    );
}
