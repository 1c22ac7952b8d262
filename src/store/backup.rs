//! Backups of a sled store (`appauth backup`, `appauth restore`): the file
//! format and the offline restore.
//!
//! A backup is one [`Snapshot`] of the running store, taken by the server
//! (so it is consistent: every write acknowledged before it began, none
//! half-applied) and sent to the CLI over the admin API. The file:
//!
//! ```text
//! appauth-backup\n
//! {"format":1,"schema":"1","createdAt":…,"records":N,"sides":M,"pepper":"…"}\n
//! N × (u32 key length, key, u32 value length, value)        big-endian lengths
//! M × (u32 name length, name, u32 value length, value)      side records
//! SHA-256 of everything above (32 bytes)
//! ```
//!
//! It holds what the store holds: secret *hashes* (keyed with the pepper),
//! the audit log, revocations, and, when keys are shared through the store
//! (`keys.kek_file`), signing keys and the pepper **sealed** with the KEK.
//! It never holds a plain private key or the pepper: those live in
//! `keys.dir` and are backed up with it. `pepper` in the header is a
//! fingerprint (an HMAC of a fixed label under the pepper, 8 bytes), so a
//! restore can tell whether `keys.dir` holds the pepper these hashes need.

use super::{SledStore, Snapshot, Store, StoreError, Write, keys};
use ring::digest;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"appauth-backup\n";
const FORMAT: u32 = 1;

/// What a backup says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub format: u32,
    /// The store schema version the records are in.
    pub schema: String,
    /// Unix ms.
    pub created_at: i64,
    pub records: usize,
    pub sides: usize,
    /// Fingerprint of the pepper the secret hashes were made with.
    pub pepper: String,
}

/// The fingerprint a backup records of a pepper (see the module docs).
pub fn pepper_fingerprint(derived: [u8; 32]) -> String {
    derived[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The label the fingerprint is derived with.
pub const PEPPER_LABEL: &[u8] = b"appauth backup pepper fingerprint";

fn frame(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    for part in [key, value] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
}

/// The backup file of `snapshot`.
pub fn encode(snapshot: &Snapshot, pepper: String, created_at: i64) -> Vec<u8> {
    let schema = snapshot
        .records
        .iter()
        .find(|(k, _)| k == keys::SCHEMA_VERSION.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let header = Header {
        format: FORMAT,
        schema,
        created_at,
        records: snapshot.records.len(),
        sides: snapshot.sides.len(),
        pepper,
    };
    let size: usize = snapshot.records.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
    let mut out = Vec::with_capacity(size + 256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(serde_json::to_string(&header).unwrap_or_default().as_bytes());
    out.push(b'\n');
    for (k, v) in &snapshot.records {
        frame(&mut out, k, v);
    }
    for (name, v) in &snapshot.sides {
        frame(&mut out, name.as_bytes(), v);
    }
    let sum = digest::digest(&digest::SHA256, &out);
    out.extend_from_slice(sum.as_ref());
    out
}

/// Reads a backup file back, refusing anything truncated, altered or of
/// another format, with what is wrong.
pub fn decode(bytes: &[u8]) -> Result<(Header, Snapshot), String> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or("not an appauth backup (it does not start with \"appauth-backup\")")?;
    if bytes.len() < MAGIC.len() + 32 {
        return Err("the backup is truncated".into());
    }
    let (content, sum) = bytes.split_at(bytes.len() - 32);
    if digest::digest(&digest::SHA256, content).as_ref() != sum {
        return Err("the backup is damaged or truncated (its SHA-256 does not match)".into());
    }
    let body = &body[..body.len() - 32];
    let newline = body
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("the backup has no header")?;
    let header: Header =
        serde_json::from_slice(&body[..newline]).map_err(|e| format!("the backup's header is not readable: {e}"))?;
    if header.format != FORMAT {
        return Err(format!(
            "the backup is in format {}, this build reads format {FORMAT}",
            header.format
        ));
    }
    let mut rest = &body[newline + 1..];
    let mut take = || -> Result<Vec<u8>, String> {
        let len: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or("the backup ends inside a record")?;
        let len = u32::from_be_bytes(len) as usize;
        let part = rest.get(4..4 + len).ok_or("the backup ends inside a record")?.to_vec();
        rest = &rest[4 + len..];
        Ok(part)
    };
    let mut snapshot = Snapshot::default();
    for _ in 0..header.records {
        let k = take()?;
        snapshot.records.push((k, take()?));
    }
    for _ in 0..header.sides {
        let name = String::from_utf8(take()?).map_err(|_| "a side record's name is not UTF-8")?;
        snapshot.sides.push((name, take()?));
    }
    if !rest.is_empty() {
        return Err("the backup has bytes after its last record".into());
    }
    Ok((header, snapshot))
}

/// Replaces the store at `path` with `snapshot`. The store must not be in
/// use (its lock is held for the whole swap, so a server cannot start on
/// it meanwhile); the previous store is kept beside it, renamed, and its
/// new name returned. The snapshot is written to a new directory first and
/// flushed, so a failure half-way leaves the previous store in place.
pub fn restore(snapshot: &Snapshot, path: &Path) -> Result<Option<PathBuf>, String> {
    let existing = path.join("conf").exists();
    // Held to the end: proves no server runs on the store, and keeps one
    // from starting until the new store is in place.
    let held = if existing { Some(open_when_free(path)?) } else { None };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = crate::domain::now_ms() / 1000;
    let staging = unused(path, &format!("{name}.restoring-{stamp}"));
    {
        let fresh = SledStore::open(&staging).map_err(|e| e.to_string())?;
        for chunk in snapshot.records.chunks(10_000) {
            let writes: Vec<Write> = chunk
                .iter()
                .map(|(k, v)| {
                    String::from_utf8(k.clone())
                        .map(|k| Write::Put(k, v.clone()))
                        .map_err(|_| "a record's key is not UTF-8".to_owned())
                })
                .collect::<Result<_, _>>()?;
            fresh.apply(&writes).map_err(|e| e.to_string())?;
        }
        for (side, bytes) in &snapshot.sides {
            fresh.put_side(side, bytes).map_err(|e: StoreError| e.to_string())?;
        }
        fresh.close().map_err(|e| e.to_string())?;
    }
    let kept = if existing {
        let kept = unused(path, &format!("{name}.before-restore-{stamp}"));
        std::fs::rename(path, &kept).map_err(|e| format!("cannot move {} aside: {e}", path.display()))?;
        Some(kept)
    } else {
        if path.exists() {
            // An empty directory left by a store that never started.
            let _ = std::fs::remove_dir(path);
        }
        None
    };
    std::fs::rename(&staging, path).map_err(|e| format!("cannot move the restored store into place: {e}"))?;
    drop(held);
    Ok(kept)
}

/// A sibling of `path` named `base`, or `base-2`, `base-3`… when taken
/// (two restores in one second must not meet).
fn unused(path: &Path, base: &str) -> PathBuf {
    let mut candidate = path.with_file_name(base);
    let mut n = 2;
    while candidate.exists() {
        candidate = path.with_file_name(format!("{base}-{n}"));
        n += 1;
    }
    candidate
}

/// Why `appauth restore` did not restore, and whether the fix is in its
/// arguments (exit 2) or in the world (exit 1).
pub enum RestoreRefused {
    Usage(String),
    Other(String),
}

/// `appauth restore FILE`: checks the file, that the store is sled, that
/// `keys.dir` holds the pepper the backup's secret hashes were made with
/// (unless `force`), then [`restore`]s. Returns what to tell the operator.
pub fn restore_file(config: &crate::config::Config, file: &Path, force: bool) -> Result<String, RestoreRefused> {
    use RestoreRefused::{Other, Usage};
    if config.store.backend != crate::config::StoreBackend::Sled {
        return Err(Usage(
            "store.backend is postgres: restore a PostgreSQL store with pg_restore (README, \"Backups\")".into(),
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| Usage(format!("cannot read {}: {e}", file.display())))?;
    let (header, snapshot) = decode(&bytes).map_err(|e| Other(format!("{}: {e}", file.display())))?;
    if header.schema != keys::CURRENT_SCHEMA {
        return Err(Other(format!(
            "{} holds store schema {:?}; this build runs schema {:?}",
            file.display(),
            header.schema,
            keys::CURRENT_SCHEMA
        )));
    }
    let pepper = crate::token::keys::load_pepper(&config.keys.dir).map_err(|e| Other(e.to_string()))?;
    let fingerprint = pepper.map(|p| pepper_fingerprint(p.derive(PEPPER_LABEL)));
    if fingerprint.as_deref() != Some(header.pepper.as_str()) && !force {
        let found = match fingerprint {
            None => "has no pepper",
            Some(_) => "holds another pepper than the one this backup's secret hashes were made with",
        };
        return Err(Other(format!(
            "keys.dir ({}) {found}: every client secret would be refused. Put the pepper file that belongs with this store into keys.dir (from your backup of keys.dir), or pass --force to restore anyway and regenerate every secret",
            config.keys.dir.display()
        )));
    }
    let kept = restore(&snapshot, &config.store.path).map_err(Other)?;
    let mut told = format!(
        "restored {} records taken at {} into {}",
        header.records,
        crate::domain::format_ms(header.created_at),
        config.store.path.display()
    );
    if let Some(kept) = kept {
        told.push_str(&format!("; the previous store is kept at {}", kept.display()));
    }
    Ok(told)
}

/// Opens a store, waiting up to 2 s for a process that just stopped to
/// let go of its lock (sled releases it when its last thread ends).
fn open_when_free(path: &Path) -> Result<SledStore, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match SledStore::open(path) {
            Ok(s) => return Ok(s),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e.to_string()),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            records: vec![
                (b"app/1".to_vec(), b"{}".to_vec()),
                (keys::SCHEMA_VERSION.as_bytes().to_vec(), b"1".to_vec()),
            ],
            sides: vec![("last-login".into(), b"1 2\n".to_vec())],
        }
    }

    #[test]
    fn a_backup_reads_back_and_any_changed_byte_is_refused() {
        let bytes = encode(&sample(), "00ff".into(), 5);
        let (header, back) = decode(&bytes).unwrap();
        assert_eq!(back, sample());
        assert_eq!((header.records, header.sides, header.schema.as_str()), (2, 1, "1"));
        for i in [0, MAGIC.len() + 3, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(decode(&bad).is_err(), "byte {i}");
        }
        assert!(decode(&bytes[..bytes.len() - 10]).is_err());
    }

    #[test]
    fn restore_keeps_the_previous_store_and_refuses_one_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        {
            let before = SledStore::open(&path).unwrap();
            before.apply(&[Write::Put("app/old".into(), b"x".to_vec())]).unwrap();
            let refused = restore(&sample(), &path).unwrap_err();
            assert!(refused.contains("in use by another process"), "{refused}");
        }
        let kept = restore(&sample(), &path).unwrap().unwrap();
        let restored = SledStore::open(&path).unwrap();
        assert_eq!(restored.get("app/1").unwrap(), Some(b"{}".to_vec()));
        assert_eq!(restored.get("app/old").unwrap(), None);
        assert_eq!(restored.get_side("last-login").unwrap(), Some(b"1 2\n".to_vec()));
        assert_eq!(
            SledStore::open(&kept).unwrap().get("app/old").unwrap(),
            Some(b"x".to_vec())
        );
    }
}
