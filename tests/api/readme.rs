//! The README's walk-through, run as written (issue 26, "Done means"): the
//! shell blocks from "Walk-through with curl" through "Managing
//! applications" run, in order, in one bash against a real server. The only
//! change is the address (`http://127.0.0.1:8080` → the test server's); a
//! request the server refuses fails the run (`curl --fail-with-body`).

use crate::helpers::*;

/// The ```bash blocks between two headings of the README.
fn blocks(readme: &str, from: &str, to: &str) -> Vec<String> {
    let start = readme.find(from).unwrap_or_else(|| panic!("README has {from:?}"));
    let end = start
        + from.len()
        + readme[start + from.len()..]
            .find(to)
            .unwrap_or_else(|| panic!("README has {to:?}"));
    let mut out = Vec::new();
    let mut rest = &readme[start..end];
    while let Some(open) = rest.find("```bash\n") {
        let body = &rest[open + 8..];
        let close = body.find("\n```").expect("a closed block");
        out.push(body[..close].to_owned());
        rest = &body[close + 4..];
    }
    out
}

#[tokio::test]
async fn the_readme_walk_through_runs_as_written() {
    let readme = include_str!("../../README.md");
    let mut script = blocks(readme, "## Walk-through with curl", "\n## ");
    script.extend(blocks(
        readme,
        "## Managing applications",
        "### Listing, filtering, sorting, CSV",
    ));
    assert!(script.len() >= 4, "{script:#?}");
    let app = spawn_app_with(&["issuer.audiences=urn:appauth:api,https://reports.example".into()]).await;
    let prelude =
        "set -e\ncurl() { command curl --fail-with-body \"$@\" || { echo \"FAILED: curl $*\" >&2; return 22; }; }\n";
    let body = script.join("\n").replace("http://127.0.0.1:8080", &app.base);
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!("{prelude}{body}\necho WALK-THROUGH-DONE"))
        .current_dir(app.dir.path())
        .env("PATH", path_with_appauth())
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("WALK-THROUGH-DONE") && !stderr.contains("FAILED"),
        "the README's walk-through stopped (exit {:?}):\n{stderr}\n--- stdout ---\n{stdout}",
        out.status.code()
    );
    // It did what it says: the token's claims were decoded, the application
    // and its rule were made and are gone again.
    assert!(stdout.contains("\"access_rules\""), "{stdout}");
    let apps: serde_json::Value = app
        .api()
        .await
        .get("/api/v1/apps?filterBy=name==ci-pipeline-prod")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(apps["totalRecords"], 0, "{apps}");
    app.stop().await;
}
