//! `appauth backup FILE`: a consistent online backup of a running server's
//! sled store, taken by the server (`GET /api/v1/backup`, System
//! administrators only) and written here whole or not at all: to
//! `FILE.partial` (mode 0600), checked, flushed, then renamed.

use super::Connection;
use super::session::{Failure, Session, block_on};
use crate::store::backup::decode;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  appauth backup /var/backups/appauth/$(date +%F).backup
  appauth restore /var/backups/appauth/2026-12-01.backup --config /etc/appauth/appauth.toml   # server stopped")]
pub struct BackupArgs {
    /// Where to write the backup (refused if it exists)
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn backup(conn: &Connection, args: BackupArgs) -> Result<(), Failure> {
    if args.file.exists() {
        return Err(Failure::Usage(format!(
            "{} exists: a backup never overwrites a file",
            args.file.display()
        )));
    }
    let bytes = block_on(async {
        let session = Session::open(conn).await?;
        session.download("/api/v1/backup").await
    })?;
    let (header, _) = decode(&bytes).map_err(|e| Failure::Refused(format!("the server sent a bad backup: {e}")))?;
    write_new(&args.file, &bytes)
        .map_err(|e| Failure::Refused(format!("cannot write {}: {e}", args.file.display())))?;
    println!(
        "backed up {} records ({} bytes) to {}",
        header.records,
        bytes.len(),
        args.file.display()
    );
    println!(
        "it holds every secret hash and the audit log: keep it like the store. Signing keys and the pepper are not in it (only sealed copies, with keys.kek_file): back up keys.dir too"
    );
    Ok(())
}

/// Writes `bytes` to a new file at `path`, durably, or leaves nothing there.
fn write_new(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    // A link, not a rename: never replaces a file that appeared meanwhile.
    std::fs::hard_link(&partial, path)?;
    std::fs::remove_file(&partial)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
