//! Every example a `--help` shows is run, as written, so none can rot
//! (issue 26 item 5): the help of every command is read from the binary,
//! each `appauth …` line under "Examples:" (or after "Example:") is run by
//! bash against a real server, and must exit 0. A listing with `--filter`
//! must also find something: a filter that silently matches nothing is the
//! rot this test exists for.
//!
//! Only what cannot exist here is substituted, and the list is below:
//! placeholders for ids (`6f1c…`, `$APP_ID`, …) get real ids, `/etc/appauth`
//! and `/var/backups/appauth` paths get files in a temporary directory, and
//! `vault` is a shell function printing the admin credentials.

use crate::helpers::*;
use serde_json::Value;
use std::path::Path;

fn help(binary: &Path, path: &[String]) -> String {
    let out = std::process::Command::new(binary)
        .args(path)
        .arg("--help")
        .output()
        .expect("appauth runs");
    assert!(out.status.success(), "appauth {path:?} --help");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommand names of one help text ("Commands:" section).
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The example command lines of one help text, continuation lines joined.
fn examples(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("Example: ") {
            out.push(rest.to_owned());
            continue;
        }
        if trimmed == "Examples:" {
            in_block = true;
            continue;
        }
        if !in_block {
            continue;
        }
        if !line.starts_with("  ") || trimmed.is_empty() {
            in_block = false;
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(trimmed);
        out.push(std::mem::take(&mut pending));
    }
    out
}

/// Every example of every command, in the order `--help` lists them.
fn all_examples(binary: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![Vec::<String>::new()];
    while let Some(path) = stack.pop() {
        let text = help(binary, &path);
        for e in examples(&text) {
            if !found.iter().any(|(_, seen)| seen == &e) {
                found.push((path.join(" "), e));
            }
        }
        for sub in subcommands(&text).into_iter().rev() {
            let mut next = path.clone();
            next.push(sub);
            stack.push(next);
        }
    }
    found
}

#[tokio::test]
async fn every_help_example_runs_as_written_against_a_real_server() {
    let binary = Path::new(env!("CARGO_BIN_EXE_appauth"));
    let examples = all_examples(binary);
    assert!(examples.len() >= 20, "{examples:#?}");

    // The server's data and keys are where embedded defaults look (./data,
    // ./keys), so examples without --config act on it.
    let app = spawn_app_with(&[
        "issuer.audiences=urn:appauth:api,https://reports.example".into(),
        "federation.issuers=[{issuer = \"https://token.actions.githubusercontent.com\"}]".into(),
    ])
    .await;
    let work = app.dir.path().to_owned();
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "Cluster: Setup", &tenant).await;
    let cluster = cluster["id"].as_str().unwrap().to_owned();
    let target = api.create_app("ci-setup").await;
    let app_id = target["id"].as_str().unwrap().to_owned();
    let rule: Value = api
        .grant(&app_id, "l1-researcher", "cluster", &cluster)
        .await
        .json()
        .await
        .unwrap();
    let listed = std::process::Command::new(binary)
        .current_dir(&work)
        .args(["keys", "list"])
        .output()
        .unwrap();
    let kid = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a key is listed")
        .to_owned();
    let config = work.join("appauth.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n[keys]\ndir = \"{}\"\n",
            work.join("data").display(),
            work.join("keys").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(work.join("backups")).unwrap();
    let creds = app.data_dir().join("initial-admin.json");
    let base = app.base.clone();

    let prelude = "vault() { cat \"$APPAUTH_CREDENTIALS\"; }\nset -o pipefail\n";
    let substitute = |e: &str| {
        e.replace("6f1c…", "$APP_ID")
            .replace("3Nq0…Vw", "$KID")
            .replace("/var/backups/appauth/2026-12-01.backup", "$BACKUPS/$(date +%F).backup")
            .replace("restore 2026-12-01.backup", "restore $BACKUPS/$(date +%F).backup")
            .replace("/var/backups/appauth/", "$BACKUPS/")
            .replace("/etc/appauth/appauth.toml", "$CONFIG")
            .replace("/etc/appauth/1.toml", "$CONFIG")
    };
    let run = |example: &str| {
        tokio::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{prelude}{}", substitute(example)))
            .current_dir(&work)
            .env("PATH", path_with_appauth())
            .env("APPAUTH_URL", &base)
            .env("APPAUTH_CREDENTIALS", &creds)
            .env("APP_ID", &app_id)
            .env("CLUSTER_ID", &cluster)
            .env("TENANT_ID", &tenant)
            .env("RULE_ID", rule["id"].as_str().unwrap())
            .env("KID", &kid)
            .env("BACKUPS", work.join("backups"))
            .env("CONFIG", &config)
            .env_remove("RUST_LOG")
            .output()
    };
    // `serve`, `init` and `bench` examples would start what is running;
    // restores need the server stopped: they run last.
    let (later, now): (Vec<_>, Vec<_>) = examples.iter().partition(|(_, e)| e.starts_with("appauth restore"));
    let mut failures = Vec::new();
    let mut check = |command: &str, example: &str, out: std::process::Output| {
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            failures.push(format!(
                "[{command}] {example}\n  exit {:?}: {}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr),
                stdout
            ));
        } else if example.contains("--filter") && stdout.lines().filter(|l| !l.trim().is_empty()).count() < 2 {
            failures.push(format!("[{command}] {example}\n  matched nothing:\n{stdout}"));
        }
    };
    for (command, example) in &now {
        let out = run(example).await.unwrap();
        check(command, example, out);
    }
    let dir = app.stop().await;
    for (command, example) in &later {
        let out = run(example).await.unwrap();
        check(command, example, out);
    }
    assert!(
        failures.is_empty(),
        "help examples that do not run:\n{}",
        failures.join("\n")
    );
    let backups = std::fs::read_dir(dir.path().join("backups")).unwrap().count();
    assert_eq!(backups, 1, "the backup example wrote its file");
}
