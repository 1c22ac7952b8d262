//! PostgreSQL failover (issue 26 item 3): a primary and a synchronous
//! streaming standby, both started here (`initdb`, `pg_basebackup`), appauth
//! on a multi-host `store.postgres_url` with `target_session_attrs=read-write`;
//! the primary is killed under token and admin load and the standby
//! promoted. Tokens flow throughout, admin writes resume without a restart,
//! and no acknowledged write is lost.

use crate::helpers::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A PostgreSQL server of the test's own, run as `postgres` when the test
/// runs as root (PostgreSQL refuses root).
struct Server {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    running: bool,
}

fn pg_bin() -> PathBuf {
    let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/test.sh installs it)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    bins.sort();
    bins.pop().expect("an initdb under /usr/lib/postgresql")
}

fn as_postgres(program: &Path) -> std::process::Command {
    if rustix::process::getuid().is_root() {
        let mut cmd = std::process::Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        std::process::Command::new(program)
    }
}

fn must(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Server {
    fn start(&mut self, extra: &str) {
        let socket_dir = self.data.parent().unwrap().display().to_string();
        let options = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=on {extra}",
            self.port
        );
        must(
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.data.with_extension("log"))
                .args(["-w", "-o", &options, "start"]),
        );
        self.running = true;
    }

    /// A crash: no checkpoint, no goodbye to clients or the standby.
    fn kill(&mut self) {
        must(
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "stop"]),
        );
        self.running = false;
    }

    fn sql(&self, sql: &str) -> String {
        must(std::process::Command::new(self.bin.join("psql")).args([
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ]))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.running {
            let _ = as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "stop"])
                .output();
        }
    }
}

/// What the load saw.
#[derive(Default)]
struct Seen {
    tokens_ok: u64,
    tokens_failed: u64,
    /// Applications whose creation was acknowledged (201), and when.
    acked: Vec<(String, Instant)>,
    /// When admin writes failed.
    write_failures: Vec<Instant>,
    /// Their statuses (0: no answer).
    failure_statuses: std::collections::BTreeSet<u16>,
}

#[tokio::test]
async fn a_promoted_standby_takes_over_with_tokens_flowing_and_no_acknowledged_write_lost() {
    let bin = pg_bin();
    let root = tempfile::tempdir().unwrap();
    if rustix::process::getuid().is_root() {
        must(std::process::Command::new("chown").arg("postgres").arg(root.path()));
    }
    let mut primary = Server {
        bin: bin.clone(),
        data: root.path().join("primary"),
        port: free_port(),
        running: false,
    };
    must(as_postgres(&bin.join("initdb")).arg("-D").arg(&primary.data).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
    ]));
    // Synchronous: a commit is acknowledged once the standby has it on disk.
    primary
        .start("-c wal_level=replica -c max_wal_senders=4 -c synchronous_standby_names='*' -c synchronous_commit=on");
    let mut standby = Server {
        bin: bin.clone(),
        data: root.path().join("standby"),
        port: free_port(),
        running: false,
    };
    must(
        as_postgres(&bin.join("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
            ])
            .arg(&standby.data)
            .args(["-R", "-X", "stream"]),
    );
    standby.start("-c hot_standby=on");
    let deadline = Instant::now() + Duration::from_secs(30);
    while primary.sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") != "1" {
        assert!(Instant::now() < deadline, "the standby never became synchronous");
        std::thread::sleep(Duration::from_millis(100));
    }

    let kek = tempfile::tempdir().unwrap();
    let settings = vec![
        "store.backend=postgres".to_string(),
        format!(
            "store.postgres_url=postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
            primary.port, standby.port
        ),
        format!("keys.kek_file={}", kek.path().join("kek").display()),
    ];
    let app = spawn_instance(&settings, None).await;
    let api = app.api().await;
    let client_app = api.create_app("steady-client").await;
    let (cid, secret) = (
        client_app["clientId"].as_str().unwrap().to_owned(),
        client_app["secret"].as_str().unwrap().to_owned(),
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..2 {
        let (seen, stop, base, cid, secret) = (
            seen.clone(),
            stop.clone(),
            app.base.clone(),
            cid.clone(),
            secret.clone(),
        );
        load.push(tokio::spawn(async move {
            let client = http_client();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ok = client
                    .post(format!("{base}/oauth/token"))
                    .basic_auth(&cid, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                let mut s = seen.lock().unwrap();
                if ok { s.tokens_ok += 1 } else { s.tokens_failed += 1 }
            }
        }));
    }
    {
        let (seen, stop, base) = (seen.clone(), stop.clone(), app.base.clone());
        let token = app.admin_token().await;
        load.push(tokio::spawn(async move {
            let client = http_client();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let name = format!("write-{n}");
                let status = client
                    .post(format!("{base}/api/v1/apps"))
                    .bearer_auth(&token)
                    .json(&json!({"name": name}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                let failed = {
                    let mut s = seen.lock().unwrap();
                    if status == 201 {
                        s.acked.push((name, Instant::now()));
                    } else {
                        s.write_failures.push(Instant::now());
                        s.failure_statuses.insert(status);
                    }
                    status != 201
                };
                if failed {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = Instant::now();
    primary.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    must(
        as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&standby.data)
            .args(["-w", "promote"]),
    );
    let promoted = Instant::now();
    // Admin writes resume on the promoted standby without restarting appauth.
    let resumed = loop {
        let resumed = {
            let s = seen.lock().unwrap();
            let first_failure = s.write_failures.iter().find(|f| **f > killed).copied();
            first_failure.and_then(|f| s.acked.iter().find(|(_, at)| *at > f).map(|(_, at)| *at))
        };
        if let Some(at) = resumed {
            break at;
        }
        assert!(
            promoted.elapsed() < Duration::from_secs(30),
            "admin writes did not resume within 30 s of the promotion"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    let failures: Vec<&Instant> = seen.write_failures.iter().filter(|f| **f > killed).collect();
    let window = resumed.duration_since(killed);
    eprintln!(
        "failover: {} tokens, {} failed; {} admin writes acknowledged, {} refused during failover; admin writes unavailable for {:.2} s from the kill (promotion {:.2} s after the kill; resumed {:.2} s after it)",
        seen.tokens_ok,
        seen.tokens_failed,
        seen.acked.len(),
        failures.len(),
        window.as_secs_f64(),
        promoted.duration_since(killed).as_secs_f64(),
        resumed.duration_since(promoted).as_secs_f64()
    );
    assert_eq!(seen.tokens_failed, 0, "tokens kept flowing");
    assert!(seen.tokens_ok > 100);
    assert!(!failures.is_empty(), "the kill was felt by admin writes");
    // Refused while no primary answered: 503 (retry), never a 500 or a dropped connection.
    assert_eq!(
        seen.failure_statuses.iter().copied().collect::<Vec<_>>(),
        vec![503],
        "admin writes during the failover"
    );

    // Every acknowledged write is on the new primary: a fresh instance reads it from there.
    let admin = (app.admin_id.clone(), app.admin_secret.clone());
    app.stop().await;
    let fresh = spawn_instance(&settings, Some((&admin.0, &admin.1))).await;
    let api = fresh.api().await;
    let mut listed = Vec::new();
    loop {
        let page: Value = api
            .get(&format!("/api/v1/apps?limit=500&offset={}", listed.len()))
            .await
            .json()
            .await
            .unwrap();
        listed.extend(page["applications"].as_array().unwrap().iter().cloned());
        if listed.len() >= page["totalRecords"].as_u64().unwrap() as usize {
            break;
        }
    }
    let names: std::collections::HashSet<&str> = listed.iter().map(|a| a["name"].as_str().unwrap()).collect();
    let lost: Vec<&String> = seen
        .acked
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !names.contains(n.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged writes lost in the failover: {lost:?}");
    fresh.stop().await;
}
