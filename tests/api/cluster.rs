//! Several instances on one PostgreSQL (DESIGN §1 "Scale-out"): a change
//! acknowledged by one instance holds on the others within 1 s; racing
//! instances initialise an empty database once; a database outage keeps
//! tokens flowing and admin writes refused, until it is back.

use crate::helpers::{PostgresDb, TestApp, assert_api_error, basic, spawn_instance};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The propagation bound the issue sets.
const WITHIN: Duration = Duration::from_secs(1);

/// The settings every instance of a test cluster shares: the database, one
/// issuer (as behind a load balancer: a token from any instance is valid at
/// every other) and the key-encryption key file. Nothing else is shared:
/// each instance has its own store and keys directories.
pub fn cluster_settings(db: &PostgresDb, kek: &std::path::Path) -> Vec<String> {
    let mut settings = db.settings();
    settings.push("issuer.url=http://auth.cluster.test".into());
    settings.push(format!("keys.kek_file={}", kek.join("kek").display()));
    settings
}

pub async fn cluster(n: usize) -> (PostgresDb, tempfile::TempDir, Vec<TestApp>) {
    let db = PostgresDb::create();
    let kek = tempfile::tempdir().unwrap();
    let settings = cluster_settings(&db, kek.path());
    let first = spawn_instance(&settings, None).await;
    let mut all = vec![];
    for _ in 1..n {
        let (id, secret) = (first.admin_id.clone(), first.admin_secret.clone());
        all.push(spawn_instance(&settings, Some((&id, &secret))).await);
    }
    all.insert(0, first);
    (db, kek, all)
}

/// Polls `check` until it holds, failing when it did not within `WITHIN`.
async fn within_a_second<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < WITHIN, "{what}: not seen within {WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn token_status(app: &TestApp, id: &str, secret: &str) -> u16 {
    app.token_request(id, secret, "").await.status().as_u16()
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    app.post_form(
        "/oauth/introspect",
        &format!("token={token}"),
        Some(basic(&app.admin_id, &app.admin_secret)),
    )
    .await
    .json()
    .await
    .unwrap()
}

#[tokio::test]
async fn an_application_created_on_one_instance_gets_tokens_from_another_within_a_second() {
    let (_db, _keys, apps) = cluster(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let created = a.api().await.create_app("made-on-a").await;
    let (id, secret) = (
        created["clientId"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    within_a_second("the new application on B", || {
        token_status(b, &id, &secret).then_some(200)
    })
    .await;
}

trait ThenSome {
    fn then_some(self, want: u16) -> impl std::future::Future<Output = bool>;
}

impl<F: std::future::Future<Output = u16>> ThenSome for F {
    async fn then_some(self, want: u16) -> bool {
        self.await == want
    }
}

#[tokio::test]
async fn a_secret_regenerated_on_one_instance_is_refused_by_another_and_its_tokens_revoked() {
    let (_db, _keys, apps) = cluster(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let created = a.api().await.create_app("rotated").await;
    let (app_id, id, old) = (
        created["id"].as_str().unwrap().to_owned(),
        created["clientId"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    within_a_second("the application on B", || token_status(b, &id, &old).then_some(200)).await;
    let old_token = b.token_for(&id, &old).await;
    assert_eq!(introspect(b, &old_token).await["active"], true);

    let regenerated: Value = a
        .api()
        .await
        .post(&format!("/api/v1/apps/{app_id}/secret"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let new = regenerated["secret"].as_str().unwrap().to_owned();
    within_a_second("the old secret refused by B", || {
        token_status(b, &id, &old).then_some(401)
    })
    .await;
    assert_eq!(
        introspect(b, &old_token).await["active"],
        false,
        "B revoked the earlier token"
    );
    assert_eq!(token_status(b, &id, &new).await, 200, "B accepts the new secret");
}

#[tokio::test]
async fn a_rule_added_on_one_instance_is_in_the_next_token_from_another() {
    let (_db, _keys, apps) = cluster(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let api_b = b.api().await;
    let created = api_b.create_app("gets-a-rule").await;
    let (app_id, id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["clientId"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    let tenant = api_b.tenant_id().await;
    let granted = api_b.grant(&app_id, "viewer", "tenant", &tenant).await;
    assert_eq!(granted.status(), 201);
    within_a_second("the rule in A's token", || async {
        let resp = a.token_request(&id, &secret, "").await;
        if resp.status() != 200 {
            return false;
        }
        let body: Value = resp.json().await.unwrap();
        let claims = crate::helpers::claims_of(body["access_token"].as_str().unwrap());
        claims["access_rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["role_id"] == "viewer"))
    })
    .await;
}

#[tokio::test]
async fn deleting_on_one_instance_stops_tokens_on_another_and_a_revoked_token_is_inactive_everywhere() {
    let (_db, _keys, apps) = cluster(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let created = a.api().await.create_app("short-lived").await;
    let (app_id, id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["clientId"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    within_a_second("the application on B", || token_status(b, &id, &secret).then_some(200)).await;
    let token = b.token_for(&id, &secret).await;
    let revoked = a
        .post_form("/oauth/revoke", &format!("token={token}"), Some(basic(&id, &secret)))
        .await;
    assert_eq!(revoked.status(), 200);
    within_a_second("the revocation on B", || async {
        introspect(b, &token).await["active"] == false
    })
    .await;

    let deleted = b.api().await.delete(&format!("/api/v1/apps/{app_id}")).await;
    assert_eq!(deleted.status(), 204);
    within_a_second("the deletion on A", || token_status(a, &id, &secret).then_some(401)).await;
}

#[tokio::test]
async fn the_same_name_created_on_two_instances_at_once_is_taken_once() {
    let (_db, _keys, apps) = cluster(2).await;
    let (api_a, api_b) = (apps[0].api().await, apps[1].api().await);
    for round in 0..5 {
        let name = format!("contested-{round}");
        let (ra, rb) = tokio::join!(
            api_a.post("/api/v1/apps", json!({"name": name})),
            api_b.post("/api/v1/apps", json!({"name": name}))
        );
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [201, 409],
            "round {round}: exactly one instance creates {name:?}"
        );
    }
    tokio::time::sleep(WITHIN).await;
    for app in &apps {
        let listed: Value = app
            .api()
            .await
            .get("/api/v1/apps?search=contested&limit=100")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["totalRecords"], 5, "{listed}");
    }
}

#[tokio::test]
async fn concurrent_creates_of_different_names_on_two_instances_all_succeed() {
    // What a load balancer does to a deploy script creating applications in
    // parallel: the instances collide on the change log, and retry inside.
    let (_db, _keys, apps) = cluster(2).await;
    let (api_a, api_b) = (apps[0].api().await, apps[1].api().await);
    let creates = (0..24).map(|i| {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        async move {
            api.post("/api/v1/apps", json!({"name": format!("parallel-{i}")}))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(creates).await;
    assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
    tokio::time::sleep(WITHIN).await;
    for app in &apps {
        let listed: Value = app
            .api()
            .await
            .get("/api/v1/apps?search=parallel-&limit=100")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["totalRecords"], 24, "{listed}");
    }
}

#[tokio::test]
async fn two_instances_starting_on_an_empty_database_initialise_it_once() {
    let db = PostgresDb::create();
    let kek = tempfile::tempdir().unwrap();
    // The KEK file is made by an operator (or `init`) before a cluster starts.
    appauth::token::vault::Kek::load(&kek.path().join("kek"), true).unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let settings = cluster_settings(&db, kek.path());
    let (c1, c2) = (
        crate::helpers::test_config(d1.path(), &settings),
        crate::helpers::test_config(d2.path(), &settings),
    );
    let (r1, r2) = tokio::join!(appauth::App::build(c1), appauth::App::build(c2));
    let (a1, a2) = (r1.expect("first builds"), r2.expect("second builds"));
    let initialised: Vec<_> = [&a1, &a2]
        .iter()
        .filter_map(|a| a.initial_admin_path().cloned())
        .collect();
    assert_eq!(initialised.len(), 1, "exactly one instance initialised the database");
    let files = [d1.path(), d2.path()]
        .iter()
        .filter(|d| d.join("data/initial-admin.json").exists())
        .count();
    assert_eq!(files, 1, "admin credentials were handed out once");
    let creds: Value = serde_json::from_slice(&std::fs::read(&initialised[0]).unwrap()).unwrap();
    let base = format!("http://{}", a2.address());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(a2.run_until(async {
        let _ = rx.await;
    }));
    let token = crate::helpers::token_at(
        &base,
        creds["clientId"].as_str().unwrap(),
        creds["secret"].as_str().unwrap(),
    )
    .await;
    let listed: Value = crate::helpers::http_client()
        .get(format!("{base}/api/v1/apps?limit=100"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["totalRecords"], 1, "one admin application: {listed}");
    let pepper = |d: &std::path::Path| std::fs::read(d.join("keys/pepper")).unwrap();
    assert_eq!(pepper(d1.path()), pepper(d2.path()), "one pepper for the cluster");
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn with_the_database_down_tokens_are_issued_admin_writes_answer_503_and_all_resumes_when_it_is_back() {
    let (db, _keys, apps) = cluster(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let created = a.api().await.create_app("keeps-working").await;
    let (id, secret) = (
        created["clientId"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    within_a_second("the application on B", || token_status(b, &id, &secret).then_some(200)).await;
    let api_a = a.api().await;

    db.go_down();
    assert_eq!(token_status(a, &id, &secret).await, 200, "A issues from memory");
    assert_eq!(token_status(b, &id, &secret).await, 200, "B issues from memory");
    let refused = api_a.post("/api/v1/apps", json!({"name": "while-down"})).await;
    assert_api_error(refused, 503, "nothing was changed").await;
    let ready = a.client.get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz says the store is down");

    db.come_back();
    let start = Instant::now();
    let made = loop {
        let resp = api_a.post("/api/v1/apps", json!({"name": "after-outage"})).await;
        if resp.status() == 201 {
            break resp.json::<Value>().await.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "writes never resumed: {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (new_id, new_secret) = (
        made["clientId"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    );
    within_a_second("B catching up after the outage", || {
        token_status(b, &new_id, &new_secret).then_some(200)
    })
    .await;
    let ready = a.client.get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_key_generated_once_is_published_by_every_instance_and_sealed_in_the_database() {
    let (db, kek, apps) = cluster(2).await;
    let kids = |jwks: &Value| -> Vec<String> {
        let mut k: Vec<String> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        k.sort();
        k
    };
    let before: Value = apps[0].get_json("/.well-known/jwks.json").await;
    assert_eq!(
        kids(&before),
        kids(&apps[1].get_json::<Value>("/.well-known/jwks.json").await),
        "one key set"
    );

    // `appauth keys generate` from a third machine: its own empty keys dir.
    let cli_dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
    cmd.current_dir(cli_dir.path()).env_remove("RUST_LOG");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("APPAUTH_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(["keys", "generate"])
        .env("APPAUTH_STORE_BACKEND", "postgres")
        .env("APPAUTH_STORE_POSTGRES_URL", &db.url)
        .env("APPAUTH_KEYS_KEK_FILE", kek.path().join("kek"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let kid = String::from_utf8_lossy(&out.stdout)
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    for app in &apps {
        within_a_second("the new key in every JWKS", || async {
            kids(&app.get_json::<Value>("/.well-known/jwks.json").await).contains(&kid)
        })
        .await;
    }
    // What the database holds is sealed: no PEM, no pepper in the clear.
    let url = db.url.clone();
    let rows = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query("SELECT key, value FROM appauth_kv WHERE key LIKE 'sealed/%'", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, Vec<u8>>(1)))
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert!(rows.iter().any(|(k, _)| k == &format!("sealed/{kid}.pem")));
    assert!(rows.iter().any(|(k, _)| k == "sealed/pepper"));
    let pem = std::fs::read(cli_dir.path().join(format!("keys/{kid}.pem"))).unwrap();
    for (key, value) in &rows {
        assert!(!value.windows(11).any(|w| w == b"PRIVATE KEY"), "{key} is in the clear");
        assert!(!value.windows(pem.len().min(40)).any(|w| w == &pem[..pem.len().min(40)]));
    }
}

#[tokio::test]
async fn an_instance_killed_right_after_acknowledging_a_write_loses_nothing() {
    let db = PostgresDb::create();
    let kek = tempfile::tempdir().unwrap();
    let settings = cluster_settings(&db, kek.path());
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_appauth"));
    cmd.current_dir(dir.path()).env_remove("RUST_LOG");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("APPAUTH_")) {
        cmd.env_remove(k);
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    for s in &settings {
        cmd.args(["--set", s]);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let address = loop {
        let line = lines.next().expect("the instance exited before listening").unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
    let (admin_id, admin_secret) = (creds["clientId"].as_str().unwrap(), creds["secret"].as_str().unwrap());
    let victim = TestApp::external(&format!("http://{address}"), admin_id, admin_secret);
    let created = victim.api().await.create_app("acknowledged").await;
    child.kill().unwrap(); // SIGKILL, right after the 201
    child.wait().unwrap();

    let survivor = spawn_instance(&settings, Some((admin_id, admin_secret))).await;
    let id = created["clientId"].as_str().unwrap();
    assert_eq!(
        token_status(&survivor, id, created["secret"].as_str().unwrap()).await,
        200,
        "the acknowledged application is in the database"
    );
}

/// Two instances on one PostgreSQL and one Redis (`a` initialised the
/// store), and an application with a registered key, created through `a`
/// (`through_first`) or `b`.
async fn keyed_cluster(
    through_first: bool,
) -> (
    crate::helpers::RedisServer,
    PostgresDb,
    tempfile::TempDir,
    TestApp,
    TestApp,
    crate::private_key_jwt::ClientKey,
    Value,
) {
    let redis = crate::helpers::RedisServer::start();
    let db = PostgresDb::create();
    let kek = tempfile::tempdir().unwrap();
    let mut settings = cluster_settings(&db, kek.path());
    settings.push(format!("redis.url={}", redis.url()));
    let a = spawn_instance(&settings, None).await;
    let b = spawn_instance(&settings, Some((&a.admin_id.clone(), &a.admin_secret.clone()))).await;
    let key = crate::private_key_jwt::ClientKey::new("k");
    let creator = if through_first { &a } else { &b };
    let created: Value = creator
        .api()
        .await
        .post("/api/v1/apps", json!({"name": "keyed", "jwks": key.jwks()}))
        .await
        .json()
        .await
        .unwrap();
    (redis, db, kek, a, b, key, created)
}

#[tokio::test]
async fn an_assertion_accepted_by_one_instance_is_a_replay_on_another() {
    use crate::private_key_jwt::{claims, token_with};
    let (_redis, _db, _kek, a, b, key, created) = keyed_cluster(true).await;
    let cid = created["clientId"].as_str().unwrap().to_owned();
    let aud = "http://auth.cluster.test/oauth/token";
    within_a_second("the keys on the other instance", || {
        let assertion = key.sign(json!({}), &claims(&cid, aud));
        let b = &b;
        async move { token_with(b, &assertion).await.status() == 200 }
    })
    .await;
    let assertion = key.sign(json!({}), &claims(&cid, aud));
    assert_eq!(token_with(&a, &assertion).await.status(), 200);
    let resp = token_with(&b, &assertion).await;
    assert_eq!(resp.status(), 401, "the same jti on another instance is a replay");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error_description"].as_str().unwrap().contains("already used"),
        "{body}"
    );
}

#[tokio::test]
async fn after_redis_loses_the_ledger_the_instance_that_initialised_the_store_refuses_a_used_assertion() {
    use crate::private_key_jwt::{claims, token_with};
    // `a` initialised the store; it has not checked an assertion yet. The
    // application is created through `b`.
    let (redis, _db, _kek, a, b, key, created) = keyed_cluster(false).await;
    let (app_id, cid) = (
        created["id"].as_str().unwrap().to_owned(),
        created["clientId"].as_str().unwrap().to_owned(),
    );
    let aud = "http://auth.cluster.test/oauth/token";
    let used = loop {
        let assertion = key.sign(json!({}), &claims(&cid, aud));
        if token_with(&b, &assertion).await.status() == 200 {
            break assertion;
        }
        // Refused while B's coverage is younger than a second.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    within_a_second("the application on A", || {
        let path = format!("/api/v1/apps/{app_id}");
        let a = &a;
        async move { a.api().await.get(&path).await.status() == 200 }
    })
    .await;

    // Redis restarts empty: the used jti is gone. The first assertion A ever
    // checks is that one.
    let redis = redis.restart_empty();
    let mut refused = false;
    for _ in 0..30 {
        let resp = token_with(&a, &used).await;
        match resp.status().as_u16() {
            401 => {
                refused = true;
                break;
            }
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            s => panic!("the instance that initialised the store accepted a used assertion: {s}"),
        }
    }
    assert!(refused, "never refused");
    drop(redis);
}

#[tokio::test]
async fn a_rotation_with_overlap_on_one_instance_keeps_the_old_secret_working_on_another_until_its_end() {
    let (_db, _keys, apps) = cluster(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let created = a.api().await.create_app("rolling-cluster").await;
    let (app_id, id, old) = (
        created["id"].as_str().unwrap().to_owned(),
        created["clientId"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    within_a_second("the application on B", || token_status(b, &id, &old).then_some(200)).await;
    let old_token = b.token_for(&id, &old).await;
    let rotated: Value = a
        .api()
        .await
        .post(&format!("/api/v1/apps/{app_id}/secret"), json!({"graceSeconds": 3}))
        .await
        .json()
        .await
        .unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    within_a_second("the new secret on B", || token_status(b, &id, &new).then_some(200)).await;
    assert_eq!(
        token_status(b, &id, &old).await,
        200,
        "B keeps the old secret during the overlap"
    );
    assert_eq!(introspect(b, &old_token).await["active"], true);
    // Past the overlap's end (3 s, plus up to a second for B to follow A).
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    within_a_second("the old secret refused by B", || {
        token_status(b, &id, &old).then_some(401)
    })
    .await;
    assert_eq!(
        introspect(b, &old_token).await["active"],
        false,
        "B revoked the pre-rotation token"
    );
    assert_eq!(token_status(b, &id, &new).await, 200);
}
