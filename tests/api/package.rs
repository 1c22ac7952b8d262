//! The Debian package as an operator meets it: built with cargo-deb
//! (scripts/deb.sh), installed with `dpkg -i` on this machine, `appauth
//! serve` run as the `appauth` user with the installed configuration, a
//! token obtained, and `dpkg --purge` leaving nothing behind. Needs root
//! (CI runs as root); it fails, never skips, without it.

use crate::helpers::*;
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Purges the package when the test ends, pass or fail.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "appauth"]).output();
    }
}

#[tokio::test]
async fn the_debian_package_installs_serves_a_token_as_appauth_and_purges_cleanly() {
    assert!(
        rustix::process::geteuid().is_root(),
        "installing a .deb needs root (run the suite as root, as CI does)"
    );
    let out = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let built = tokio::task::spawn_blocking({
        let out = out.path().to_owned();
        move || {
            run(Command::new(format!("{root}/scripts/deb.sh"))
                .env("BIN", env!("CARGO_BIN_EXE_appauth"))
                .env("OUT", &out))
        }
    })
    .await
    .unwrap();
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap_or_else(|| panic!("no .deb built: {built}"));
    let _installed = Installed;
    run(Command::new("dpkg").arg("-i").arg(&deb));

    for file in [
        "/usr/bin/appauth",
        "/etc/appauth/appauth.toml",
        "/lib/systemd/system/appauth.service",
        "/usr/share/man/man1/appauth.1.gz",
        "/usr/share/man/man1/appauth-apps-create.1.gz",
        "/usr/share/man/man1/appauth-restore.1.gz",
        "/usr/share/bash-completion/completions/appauth",
        "/usr/share/zsh/vendor-completions/_appauth",
        "/usr/share/fish/vendor_completions.d/appauth.fish",
        "/usr/share/doc/appauth/README.md",
    ] {
        assert!(Path::new(file).exists(), "{file} is installed");
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let state = std::fs::metadata("/var/lib/appauth").unwrap();
    assert_eq!(state.permissions().mode() & 0o777, 0o700, "/var/lib/appauth is 0700");
    let uid = run(Command::new("id").args(["-u", "appauth"]));
    assert_eq!(state.uid().to_string(), uid.trim(), "owned by the appauth user");
    let unit = std::fs::read_to_string("/lib/systemd/system/appauth.service").unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/appauth serve --config /etc/appauth/appauth.toml"),
        "{unit}"
    );
    assert!(!unit.contains("%i"), "{unit}");

    // As the service would: the appauth user, the installed configuration.
    // setpriv execs the server itself (runuser forks, and killing it would
    // leave the server running).
    let (server, base) = serve_command(
        Command::new("setpriv")
            .args(["--reuid=appauth", "--regid=appauth", "--init-groups", "--"])
            .args(["/usr/bin/appauth", "serve", "--config", "/etc/appauth/appauth.toml"])
            .args(["--listen", "127.0.0.1:0"])
            .current_dir("/"),
    );
    let creds: serde_json::Value =
        serde_json::from_slice(&std::fs::read("/var/lib/appauth/data/initial-admin.json").unwrap()).unwrap();
    let store = std::fs::metadata("/var/lib/appauth/data").unwrap();
    assert_eq!(store.uid().to_string(), uid.trim(), "the store belongs to appauth");
    let token = token_at(
        &base,
        creds["clientId"].as_str().unwrap(),
        creds["secret"].as_str().unwrap(),
    )
    .await;
    assert_eq!(token.split('.').count(), 3);
    drop(server);
    let left = Command::new("pgrep").args(["-a", "-u", "appauth"]).output().unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes of appauth left: {}",
        String::from_utf8_lossy(&left.stdout)
    );

    run(Command::new("dpkg").args(["--purge", "appauth"]));
    for gone in [
        "/usr/bin/appauth",
        "/etc/appauth",
        "/var/lib/appauth",
        "/lib/systemd/system/appauth.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is gone after purge");
    }
    let user = Command::new("id").arg("appauth").output().unwrap();
    assert!(!user.status.success(), "the appauth user is gone after purge");
}
