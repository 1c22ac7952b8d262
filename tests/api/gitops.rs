//! State as code: `appauth export` and `appauth apply` driven as
//! subprocesses against real servers, as an operator keeping the directory
//! in Git would (issue 26 item 2).

use crate::admin_cli::Cli;
use crate::helpers::*;
use crate::oidc_issuer::{ClientKey, Issuer};
use serde_json::{Value, json};

const REPORTS: &str = "https://reports.example";

fn settings(issuer: &Issuer) -> Vec<String> {
    vec![
        format!("issuer.audiences=urn:appauth:api,{REPORTS}"),
        issuer.setting(""),
    ]
}

/// A directory with something of everything: nested scopes, rules, a
/// disabled application, token policy, private_key_jwt keys, a federated
/// credential with conditions.
async fn populate(app: &TestApp, issuer: &Issuer) {
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "Cluster: A", &tenant).await;
    let cluster = cluster["id"].as_str().unwrap();
    let dept = api.create_scope("department", "Research / ML", cluster).await;
    let dept = dept["id"].as_str().unwrap();
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "ci-pipeline-prod", "allowedAudiences": ["urn:appauth:api", REPORTS], "tokenTtlSeconds": 600}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let ci: Value = resp.json().await.unwrap();
    let ci = ci["id"].as_str().unwrap();
    assert_eq!(api.grant(ci, "l1-researcher", "cluster", cluster).await.status(), 201);
    assert_eq!(api.grant(ci, "ml-engineer", "department", dept).await.status(), 201);
    let resp = api
        .post(
            &format!("/api/v1/apps/{ci}/federated-credentials"),
            json!({"issuer": issuer.url, "subjectPattern": "repo:acme/*:environment:prod",
                   "conditions": {"ref": "refs/heads/main"}, "description": "deploys"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let key = ClientKey::new("k1");
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "keyed-job", "jwks": key.jwks(), "dpopBoundAccessTokens": true}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let old = api.create_app("old-job").await;
    let resp = api
        .patch(
            &format!("/api/v1/apps/{}", old["id"].as_str().unwrap()),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(resp.status(), 200);
}

fn cli(app: &TestApp) -> Cli<'_> {
    Cli {
        app,
        creds: app.data_dir().join("initial-admin.json"),
    }
}

#[tokio::test]
async fn export_then_apply_on_an_empty_server_reproduces_the_directory_and_a_second_apply_changes_nothing() {
    let issuer = Issuer::start(ClientKey::new("issuer").jwks()).await;
    let source = spawn_app_with(&settings(&issuer)).await;
    populate(&source, &issuer).await;
    let exported = cli(&source).run(&["export"]).await;
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let text = exported.stdout;
    assert!(
        text.contains("apiVersion: appauth/v1") && text.contains("Research / ML") && text.contains("ml-engineer"),
        "{text}"
    );
    assert!(
        !text.contains("secret") && !text.contains("clientId"),
        "no secrets or server ids: {text}"
    );
    // The same directory as JSON reads back to the same thing.
    let as_json = cli(&source).run(&["export", "-o", "json"]).await;
    let as_json: Value = serde_json::from_str(&as_json.stdout).unwrap();
    let as_yaml: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(as_json, as_yaml);

    let target = spawn_app_with(&settings(&issuer)).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("directory.yaml");
    std::fs::write(&file, &text).unwrap();
    let secrets = work.path().join("secrets.jsonl");
    let target_cli = cli(&target);
    let applied = target_cli
        .run(&[
            "apply",
            "-f",
            file.to_str().unwrap(),
            "--secrets-out",
            secrets.to_str().unwrap(),
        ])
        .await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    for line in [
        "+ scope \"Tenant\" › \"Cluster: A\" (cluster)",
        "+ application \"old-job\" (disabled)",
        "+ rule \"ci-pipeline-prod\": ml-engineer on \"Tenant\" › \"Cluster: A\" › \"Research / ML\"",
        "+ federated credential \"ci-pipeline-prod\"",
        "applied",
    ] {
        assert!(applied.stdout.contains(line), "{line:?} in\n{}", applied.stdout);
    }
    // The secrets of the three created applications, once, in a private file; each works.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777, 0o600);
    let lines: Vec<Value> = std::fs::read_to_string(&secrets)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(!applied.stdout.contains(lines[0]["secret"].as_str().unwrap()));
    let ci = lines.iter().find(|l| l["name"] == "ci-pipeline-prod").unwrap();
    let token = target
        .token_for(ci["clientId"].as_str().unwrap(), ci["secret"].as_str().unwrap())
        .await;
    assert_eq!(
        claims_of(&token)["exp"].as_i64().unwrap() - claims_of(&token)["iat"].as_i64().unwrap(),
        600
    );

    let again = target_cli.run(&["export"]).await;
    assert_eq!(again.stdout, text, "the round trip is exact");
    let second = target_cli.run(&["apply", "-f", file.to_str().unwrap()]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("no changes"), "{}", second.stdout);
    assert_eq!(second.stdout.lines().count(), 1, "{}", second.stdout);
    // The audit log names the caller for every change apply made.
    let audit: Value = target
        .api()
        .await
        .get("/api/v1/audit?filterBy=action==app.create&limit=10")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["totalRecords"], 3, "{audit}");
    target.stop().await;
    source.stop().await;
}

#[tokio::test]
async fn apply_dry_run_changes_nothing_prune_deletes_what_the_file_omits_and_a_refusal_stops_the_rest() {
    let issuer = Issuer::start(ClientKey::new("issuer").jwks()).await;
    let app = spawn_app_with(&settings(&issuer)).await;
    populate(&app, &issuer).await;
    let admin = cli(&app);
    let before = admin.run(&["export"]).await.stdout;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("d.yaml");
    // The file: one application dropped, one changed, one scope dropped, one new.
    let mut doc: Value = serde_yaml_ng::from_str(&before).unwrap();
    doc["applications"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["name"] != "keyed-job");
    for a in doc["applications"].as_array_mut().unwrap() {
        if a["name"] == "old-job" {
            a["enabled"] = true.into();
            a["tokenTtlSeconds"] = 60.into();
        }
        if a["name"] == "ci-pipeline-prod" {
            a["rules"]
                .as_array_mut()
                .unwrap()
                .retain(|r| r["role"] != "ml-engineer");
            a["federatedCredentials"] = json!([]);
        }
    }
    doc["scopes"]["children"][0]["children"] = json!([{"name": "Cluster B dept", "type": "department"}]);
    std::fs::write(&file, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    let path = file.to_str().unwrap();

    let dry = admin.run(&["apply", "-f", path, "--dry-run", "--prune"]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    for line in [
        "~ application \"old-job\": enabled false → true; tokenTtlSeconds null → 60",
        "- rule \"ci-pipeline-prod\": ml-engineer",
        "- federated credential \"ci-pipeline-prod\"",
        "+ scope \"Tenant\" › \"Cluster: A\" › \"Cluster B dept\" (department)",
        "- application \"keyed-job\"",
        "- scope \"Tenant\" › \"Cluster: A\" › \"Research / ML\"",
        "dry run: 6 changes would be made; nothing was changed",
    ] {
        assert!(dry.stdout.contains(line), "{line:?} in\n{}", dry.stdout);
    }
    assert_eq!(admin.run(&["export"]).await.stdout, before, "a dry run changes nothing");

    // Without --prune what the file omits stays, and the output says so.
    let kept = admin.run(&["apply", "-f", path]).await;
    assert_eq!(kept.code, 0, "{}", kept.stderr);
    assert!(
        kept.stdout
            .contains("2 applications or scopes on the server are not in"),
        "{}",
        kept.stdout
    );
    assert!(!kept.stdout.contains("- application"), "{}", kept.stdout);
    let pruned = admin.run(&["apply", "-f", path, "--prune"]).await;
    assert_eq!(pruned.code, 0, "{}", pruned.stderr);
    assert!(pruned.stdout.contains("applied 2 changes"), "{}", pruned.stdout);
    let after: Value = serde_yaml_ng::from_str(&admin.run(&["export"]).await.stdout).unwrap();
    assert_eq!(after, doc, "the server now matches the file");

    // An Application administrator applies a file that grants more than it
    // holds: the refused change is named with the server's reason, exit 1,
    // and nothing after it is tried (the prune of "old-job" comes later).
    let (appadmin, _) = app
        .api()
        .await
        .app_with_tenant_role("app-admin", "application-administrator")
        .await;
    let creds = work.path().join("appadmin.json");
    std::fs::write(
        &creds,
        json!({"clientId": appadmin["clientId"], "secret": appadmin["secret"]}).to_string(),
    )
    .unwrap();
    let weaker = Cli { app: &app, creds };
    let mut greedy = doc.clone();
    let apps = greedy["applications"].as_array_mut().unwrap();
    apps.retain(|a| a["name"] != "old-job");
    apps.push(json!({"name": "greedy-job", "rules": [{"role": "system-administrator", "scope": ["Tenant"]}]}));
    std::fs::write(&file, serde_yaml_ng::to_string(&greedy).unwrap()).unwrap();
    let secrets = work.path().join("s.jsonl");
    let refused = weaker
        .run(&[
            "apply",
            "-f",
            path,
            "--prune",
            "--secrets-out",
            secrets.to_str().unwrap(),
        ])
        .await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("+ rule \"greedy-job\": system-administrator on \"Tenant\"")
            && refused.stderr.contains("403")
            && refused.stderr.contains("stopped after 1 of"),
        "{}",
        refused.stderr
    );
    let now: Value = serde_yaml_ng::from_str(&admin.run(&["export"]).await.stdout).unwrap();
    let names: Vec<&str> = now["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"old-job"),
        "the prune after the refusal was not made: {names:?}"
    );
    assert!(names.contains(&"greedy-job"), "the change before it was: {names:?}");
    // The application made before the refusal has its secret on record.
    assert!(std::fs::read_to_string(&secrets).unwrap().contains("greedy-job"));
    app.stop().await;
}

#[tokio::test]
async fn apply_refuses_a_malformed_file_with_exit_2_before_calling_the_server() {
    let app = spawn_app().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("d.yaml");
    for (text, says) in [
        (
            "apiVersion: appauth/v1\nkind: Directory\nscopes: {name: T, type: tenant}\napplications:\n- name: a\n  enabld: true\n",
            "unknown field `enabld`",
        ),
        (
            "apiVersion: appauth/v2\nkind: Directory\nscopes: {name: T, type: tenant}\n",
            "apiVersion",
        ),
        (
            "apiVersion: appauth/v1\nkind: Directory\nscopes: {name: T, type: tenant}\napplications:\n- name: a\n- name: a\n",
            "listed twice",
        ),
        ("{not yaml", "d.yaml"),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = cli(&app).run(&["apply", "-f", file.to_str().unwrap()]).await;
        assert_eq!(out.code, 2, "{text}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{says:?} in {}", out.stderr);
    }
    let audit: Value = app
        .api()
        .await
        .get("/api/v1/audit?limit=50")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !audit.to_string().contains("app.create"),
        "nothing reached the server: {audit}"
    );
    app.stop().await;
}
