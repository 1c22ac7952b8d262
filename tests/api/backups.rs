//! Backups (issue 26 item 2): `appauth backup` of a running sled store
//! under write load and `appauth restore` into place, as subprocesses; a
//! PostgreSQL store restored from a `pg_dump` taken before later changes,
//! with running instances noticing the rewind.

use crate::admin_cli::{Cli, Out};
use crate::helpers::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn appauth(args: &[&str]) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_appauth"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("appauth runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_backup_under_write_load_restores_every_write_acknowledged_before_it_began() {
    let app = spawn_app().await;
    let root = app.dir.path().to_owned();
    let (data, keys) = (root.join("data"), root.join("keys"));
    let first = app.api().await.create_app("before-load").await;

    // Writes acknowledged one after another, each with the moment it was.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let api_base = app.base.clone();
        let token = app.admin_token().await;
        tokio::spawn(async move {
            let client = http_client();
            let mut acked: Vec<(String, Instant)> = Vec::new();
            for n in 0.. {
                if stopped.try_recv().is_ok() {
                    break;
                }
                let name = format!("load-{n}");
                let resp = client
                    .post(format!("{api_base}/api/v1/apps"))
                    .bearer_auth(&token)
                    .json(&json!({"name": name}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201);
                acked.push((name, Instant::now()));
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let began = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("store.backup");
    let cli = Cli {
        app: &app,
        creds: app.data_dir().join("initial-admin.json"),
    };
    let backup = cli.run(&["backup", file.to_str().unwrap()]).await;
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    assert!(backup.stdout.contains("back up keys.dir too"), "{}", backup.stdout);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let acked = writer.await.unwrap();
    let before: Vec<&String> = acked.iter().filter(|(_, at)| *at < began).map(|(n, _)| n).collect();
    let after = acked.len() - before.len();
    assert!(
        before.len() >= 5 && after >= 1,
        "writes went on around the backup: {} before, {after} after",
        before.len()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // A backup never overwrites.
    let again = cli.run(&["backup", file.to_str().unwrap()]).await;
    assert_eq!(again.code, 2, "{}", again.stderr);

    // Restore refuses while a server holds the store.
    let set_store = format!("store.path={}", data.display());
    let set_keys = format!("keys.dir={}", keys.display());
    let restore = || async {
        appauth(&[
            "restore",
            file.to_str().unwrap(),
            "--set",
            &set_store,
            "--set",
            &set_keys,
        ])
        .await
    };
    let busy = restore().await;
    assert_eq!(busy.code, 1, "{}", busy.stderr);
    assert!(busy.stderr.contains("in use by another process"), "{}", busy.stderr);

    let creds = std::fs::read(data.join("initial-admin.json")).unwrap();
    let dir = app.stop().await;
    let restored = restore().await;
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert!(
        restored.stdout.contains("the previous store is kept at"),
        "{}",
        restored.stdout
    );
    std::fs::write(data.join("initial-admin.json"), creds).unwrap();
    let app = spawn_in(dir, &[]).await;
    let api = app.api().await;
    let listed: Value = api.get("/api/v1/apps?limit=500").await.json().await.unwrap();
    let names: Vec<&str> = listed["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for name in &before {
        assert!(
            names.contains(&name.as_str()),
            "{name} was acknowledged before the backup began: {names:?}"
        );
    }
    // Writes are whole: every load-N present is a prefix of what was acknowledged.
    let present = names.iter().filter(|n| n.starts_with("load-")).count();
    assert!(present <= acked.len());
    for (name, _) in &acked[..present] {
        assert!(names.contains(&name.as_str()), "{name}");
    }
    // Secrets still verify (the pepper in keys.dir is the one the hashes need),
    // and the backup recorded itself in the audit log it holds.
    app.token_for(first["clientId"].as_str().unwrap(), first["secret"].as_str().unwrap())
        .await;
    let audit: Value = api
        .get("/api/v1/audit?filterBy=action==store.backup")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["totalRecords"], 1, "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn only_a_system_administrator_takes_a_backup_and_restore_refuses_another_pepper() {
    let app = spawn_app().await;
    let api = app.api().await;
    for role in ["application-administrator", "viewer"] {
        let (_, token) = api.app_with_tenant_role(&format!("{role}-app"), role).await;
        let resp = http_client()
            .get(app.url("/api/v1/backup"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_api_error(resp, 403, "store:backup").await;
    }
    let resp = http_client().get(app.url("/api/v1/backup")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("b");
    let cli = Cli {
        app: &app,
        creds: app.data_dir().join("initial-admin.json"),
    };
    assert_eq!(cli.run(&["backup", file.to_str().unwrap()]).await.code, 0);
    // Into a new place whose keys.dir holds another pepper: refused, nothing written.
    let elsewhere = tempfile::tempdir().unwrap();
    let (store, keys) = (elsewhere.path().join("data"), elsewhere.path().join("keys"));
    std::fs::create_dir(&keys).unwrap();
    appauth::token::keys::create_pepper(&keys).unwrap();
    let set = [
        format!("store.path={}", store.display()),
        format!("keys.dir={}", keys.display()),
    ];
    let args = ["restore", file.to_str().unwrap(), "--set", &set[0], "--set", &set[1]];
    let refused = appauth(&args).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("holds another pepper"), "{}", refused.stderr);
    assert!(!store.exists());
    // A damaged file is refused with why.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let damaged = work.path().join("damaged");
    std::fs::write(&damaged, bytes).unwrap();
    let bad = appauth(&["restore", damaged.to_str().unwrap(), "--set", &set[0], "--set", &set[1]]).await;
    assert!(
        bad.code == 1 && bad.stderr.contains("SHA-256 does not match"),
        "{}",
        bad.stderr
    );
    // --force restores anyway (the operator will regenerate every secret).
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = appauth(&forced).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(store.join("conf").exists());
    app.stop().await;
}

/// A PostgreSQL client program (pg_dump, pg_restore) of the newest installed version.
fn pg_program(name: &str) -> String {
    let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/test.sh installs it)")
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    bins.sort();
    bins.pop()
        .unwrap_or_else(|| panic!("no {name} under /usr/lib/postgresql"))
        .display()
        .to_string()
}

fn run(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls until every instance answers `want` for `path`, or fails after 5 s.
async fn every_instance_says(instances: &[TestApp], path: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for app in instances {
        loop {
            let status = app.api().await.get(path).await.status().as_u16();
            if status == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} answered {status} for {path}, not {want}",
                app.base
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Two instances on one database, dumped with one application ("kept-job")
/// and changed after the dump ("later-job", seen by both instances).
struct Dumped {
    db: PostgresDb,
    _kek: tempfile::TempDir,
    instances: Vec<TestApp>,
    kept: Value,
    later: Value,
    later_path: String,
    work: tempfile::TempDir,
    dump: std::path::PathBuf,
}

async fn dumped_cluster() -> Dumped {
    let (db, kek, instances) = crate::cluster::cluster(2).await;
    let api = instances[0].api().await;
    let kept = api.create_app("kept-job").await;
    let work = tempfile::tempdir().unwrap();
    let dump = work.path().join("appauth.dump");
    run(
        &pg_program("pg_dump"),
        &["--format=custom", "--file", dump.to_str().unwrap(), &db.url],
    );
    let later = api.create_app("later-job").await;
    let later_path = format!("/api/v1/apps/{}", later["id"].as_str().unwrap());
    every_instance_says(&instances, &later_path, 200).await;
    drop(api);
    Dumped {
        db,
        _kek: kek,
        instances,
        kept,
        later,
        later_path,
        work,
        dump,
    }
}

#[tokio::test]
async fn instances_notice_a_postgres_restore_to_an_earlier_dump_and_reload() {
    let Dumped {
        db,
        instances,
        kept,
        later,
        later_path,
        work: _work,
        dump,
        ..
    } = dumped_cluster().await;
    let api = instances[0].api().await;
    let resp = api
        .patch(
            &format!("/api/v1/apps/{}", kept["id"].as_str().unwrap()),
            json!({"tokenTtlSeconds": 60}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // The sled-only backup endpoint says what to use instead.
    let resp = api.get("/api/v1/backup").await;
    assert_api_error(resp, 409, "pg_dump").await;

    run(
        &pg_program("pg_restore"),
        &[
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--dbname",
            &db.url,
            dump.to_str().unwrap(),
        ],
    );
    // Every instance finds the change log behind what it has seen and reloads:
    // the application made after the dump is gone everywhere, with its tokens.
    every_instance_says(&instances, &later_path, 404).await;
    for app in &instances {
        let resp = app
            .token_request(
                later["clientId"].as_str().unwrap(),
                later["secret"].as_str().unwrap(),
                "",
            )
            .await;
        assert_eq!(resp.status(), 401, "{}", app.base);
        let token = app
            .token_for(kept["clientId"].as_str().unwrap(), kept["secret"].as_str().unwrap())
            .await;
        let claims = claims_of(&token);
        assert_ne!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            60,
            "the policy change after the dump is undone on {}",
            app.base
        );
    }
    // And writes go on from the restored state.
    let again = api.create_app("later-job").await;
    every_instance_says(
        &instances,
        &format!("/api/v1/apps/{}", again["id"].as_str().unwrap()),
        200,
    )
    .await;
    for app in instances {
        app.stop().await;
    }
}

/// psql's answer to one query, trimmed.
fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new(pg_program("psql"))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn a_restore_followed_at_once_by_more_changes_than_were_rewound_is_still_noticed() {
    // The restore and the writes that follow it land in one transaction, so
    // no instance polls in between: the change log's head is then past what
    // every instance has seen again, and only the changes' identity shows
    // that the log it saw is gone.
    let Dumped {
        db,
        instances,
        kept,
        later_path,
        work,
        dump,
        ..
    } = dumped_cluster().await;
    let seen: i64 = psql(&db.url, "SELECT max(seq) FROM appauth_changes").parse().unwrap();

    let script = work.path().join("restore.sql");
    run(
        &pg_program("pg_restore"),
        &[
            "--clean",
            "--if-exists",
            "--file",
            script.to_str().unwrap(),
            dump.to_str().unwrap(),
        ],
    );
    let mut sql = std::fs::read_to_string(&script).unwrap();
    // Another writer's changes after the restore, up to past `seen`.
    sql.push_str(&format!(
        "\nINSERT INTO public.appauth_changes (seq, key) SELECT s, 'app/{}' FROM generate_series((SELECT max(seq) FROM public.appauth_changes) + 1, {}) s;\n",
        kept["id"].as_str().unwrap(),
        seen + 3
    ));
    std::fs::write(&script, sql).unwrap();
    run(
        &pg_program("psql"),
        &[
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-d",
            &db.url,
            "-f",
            script.to_str().unwrap(),
        ],
    );
    every_instance_says(&instances, &later_path, 404).await;
    for app in instances {
        app.stop().await;
    }
}
