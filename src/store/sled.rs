//! The sled backend: one tree, atomic batches, flushed before returning.
//!
//! A batch whose flush fails (disk full, I/O error) must not become durable
//! later, after its caller was told it failed. sled has already applied it
//! in memory and keeps failing every write on that handle after a failed
//! flush, so the batch is first undone (best effort: usually refused too)
//! and, what really discards it, the background probe (`probe_write`)
//! reopens the database from disk, which holds only what reached the file,
//! and tries a write; when the disk has room again, writes resume with no
//! restart. Every step of one write runs on one handle, and a reopen waits
//! for writes in progress (`with_db`). The limit: when the log bytes reached
//! the file but fsync failed (an I/O error rather than a full disk), the
//! reopen may read the refused batch back; a full disk fails before that.
//! Writes keep failing while the disk does; `healthy` says so (for
//! `/readyz`).
//!
//! sled keeps every page it has read resident (its `cache_capacity` does not
//! evict what the start-up scan loaded: ~55 MB at 100,000 applications), and
//! the directory keeps its own copy in memory anyway. So once the directory
//! is loaded, `release_cache` closes and reopens the database, which starts
//! with an empty cache; later reads are rare (admin writes read the keys they
//! replace). The memory only goes back to the OS because the start-up scan
//! ran on threads of its own (`directory::codec`), so no allocator page holds
//! both sled's pages and the catalogue.

use super::{Store, StoreError, Write};
use std::path::Path;

pub struct SledStore {
    /// Replaced when the database is reopened; `None` only between closing
    /// and a failed reopen, when every operation fails (never a stand-in
    /// database that would accept writes and lose them).
    db: std::sync::RwLock<Option<sled::Db>>,
    dir: std::path::PathBuf,
    /// False from a failed write until a later write or probe succeeds.
    healthy: std::sync::atomic::AtomicBool,
}

fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    sled::Config::new()
        .path(path)
        // Durability comes from the explicit flush in `apply`, so sled's
        // own periodic flush only adds background I/O.
        .flush_every_ms(None)
        // The store is read in full once at start and then only written:
        // sled's default 1 GiB page cache would just hold resident memory.
        .cache_capacity(16 * 1024 * 1024)
        .open()
        .map_err(|e| StoreError::Io(open_error(path, &e)))
}

/// Why a store would not open, in words an operator can act on (sled's
/// own text is `Os { code: 11, kind: WouldBlock, … }` for a held lock).
fn open_error(path: &Path, e: &sled::Error) -> String {
    match e {
        // sled wraps the lock's WouldBlock in an error of its own text.
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock") =>
        {
            format!(
                "the store at {} is in use by another process (a sled store has one owner at a time)",
                path.display()
            )
        }
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => format!(
            "cannot open the store at {}: permission denied; run appauth as the user that owns it",
            path.display()
        ),
        sled::Error::Io(io) => format!("cannot open the store at {}: {}", path.display(), plain_io(io)),
        other => format!("cannot open the store at {}: {other}", path.display()),
    }
}

/// An I/O error's text without Rust's `(os error N)` decoration.
pub fn plain_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Creates `path` (and missing parents) as 0700, whatever the umask: the
/// store holds the audit log, application records and secret hashes.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    // `mode` is filtered by the umask too; set it outright.
    set_mode(path, 0o700)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Makes a new store private: the directory and its subdirectories 0700,
/// its files 0600.
fn make_private(dir: &Path) -> std::io::Result<()> {
    set_mode(dir, 0o700)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_private(&entry.path())?;
        } else {
            set_mode(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

/// Paths in an existing store that users other than its owner may read.
pub fn readable_by_others(dir: &Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.permissions().mode() & 0o077 != 0 {
            out.push(p.clone());
        }
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&p)
        {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
    out.sort();
    out
}

impl SledStore {
    /// Opens (or creates) the store. A new one is made private (0700
    /// directory, 0600 files) whatever the umask; an existing one that
    /// others can read is reported with a warning, not changed (an
    /// operator may have chosen a group on purpose).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fresh = !path.join("conf").exists();
        create_private_dir(path)
            .map_err(|e| StoreError::Io(format!("cannot create store directory {}: {e}", path.display())))?;
        let db = open_db(path)?;
        if fresh {
            make_private(path)
                .map_err(|e| StoreError::Io(format!("cannot restrict permissions of {}: {e}", path.display())))?;
        } else {
            let exposed = readable_by_others(path);
            if !exposed.is_empty() {
                tracing::warn!(
                    store = %path.display(),
                    paths = ?exposed.iter().take(5).collect::<Vec<_>>(),
                    count = exposed.len(),
                    "the store is readable by other users (audit log, application records, secret hashes); restrict it: chmod -R go-rwx {}",
                    path.display()
                );
            }
        }
        Ok(Self {
            db: std::sync::RwLock::new(Some(db)),
            dir: path.to_owned(),
            healthy: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// A handle to the open database (sled handles are reference-counted).
    fn db(&self) -> Result<sled::Db, StoreError> {
        self.with_db(|db| Ok(db.clone()))
    }

    /// Runs `f` on the open database while holding it: a reopen (the
    /// background probe) waits until `f` is done, so every step of one write
    /// (read the undo, apply, flush, undo) happens on the same handle.
    fn with_db<T>(&self, f: impl FnOnce(&sled::Db) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(db) => f(db),
            None => Err(StoreError::Io(format!(
                "store at {} is not open (reopen failed)",
                self.dir.display()
            ))),
        }
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.with_db(|db| db.flush().map(|_| ()).map_err(io))
    }

    /// Closes the database and opens it again from disk. sled releases its
    /// file lock only when the last handle (an in-flight read, one of its
    /// I/O threads) is gone, so opening is retried for a few seconds.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        drop(db.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match open_db(&self.dir) {
                Ok(fresh) => {
                    *db = Some(fresh);
                    return Ok(());
                }
                Err(e) if std::time::Instant::now() >= deadline => {
                    // Closed: every operation fails and the probe retries.
                    self.healthy.store(false, std::sync::atomic::Ordering::Relaxed);
                    return Err(e);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl Store for SledStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db()?.get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.db()?
            .scan_prefix(prefix)
            .map(|r| {
                let (k, v) = r.map_err(io)?;
                let key = String::from_utf8(k.to_vec()).map_err(|_| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    reason: "key is not UTF-8".into(),
                })?;
                Ok((key, v.to_vec()))
            })
            .collect()
    }

    fn put_side(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(format!("side-{name}"));
        crate::token::keys::write_private(&path, bytes).map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))
    }

    fn get_side(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(self.dir.join(format!("side-{name}"))) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io(e.to_string())),
        }
    }

    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let result = self.with_db(|db| {
            // What each key held before, to undo the batch if it cannot be made durable.
            let mut undo = sled::Batch::default();
            for w in writes {
                let k = match w {
                    Write::Put(k, _) | Write::Delete(k) => k.as_bytes(),
                };
                match db.get(k).map_err(io)? {
                    Some(v) => undo.insert(k, v),
                    None => undo.remove(k),
                }
            }
            let result = db
                .apply_batch(batch_of(writes))
                .map_err(io)
                .and_then(|()| db.flush().map(|_| ()).map_err(io));
            if let Err(e) = &result {
                // Usually refused too (sled keeps failing after a failed
                // flush); what really discards the batch is the reopen by
                // the probe, which reads only what reached the file.
                if let Err(u) = db.apply_batch(undo) {
                    tracing::warn!(error = %u, "could not undo a store write that failed to flush; the reopen discards it");
                }
                tracing::error!(error = %e, "store write failed; admin writes answer 503 until the disk recovers");
            }
            // Set while the handle is held: a reopen cannot slip in between.
            self.healthy.store(result.is_ok(), Ordering::Relaxed);
            result
        });
        if matches!(&result, Err(StoreError::Io(m)) if m.contains("is not open")) {
            self.healthy.store(false, Ordering::Relaxed);
        }
        result
    }

    fn close(&self) -> Result<(), StoreError> {
        self.flush()
    }

    /// Drops sled's page cache by reopening the database (module docs).
    fn release_cache(&self) -> Result<(), StoreError> {
        self.reopen()
    }

    /// Holds the handle exclusively while it copies: a write runs whole
    /// under the shared hold (apply, flush), so the copy has every write
    /// acknowledged before it began and none half-applied. Token requests
    /// never touch the store and go on; writes wait for the copy.
    fn snapshot(&self) -> Result<Option<super::Snapshot>, StoreError> {
        let guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        let db = guard
            .as_ref()
            .ok_or_else(|| StoreError::Io(format!("store at {} is not open (reopen failed)", self.dir.display())))?;
        let records = db
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(io))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sides = Vec::new();
        for name in super::SIDES {
            if let Some(bytes) = self.get_side(name)? {
                sides.push(((*name).to_owned(), bytes));
            }
        }
        drop(guard);
        Ok(Some(super::Snapshot { records, sides }))
    }

    fn snapshots(&self) -> bool {
        true
    }

    fn healthy(&self) -> bool {
        self.healthy.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn probe_write(&self) -> Result<(), StoreError> {
        let write = || {
            self.with_db(|db| {
                db.insert(super::keys::PROBE, &crate::domain::now_ms().to_be_bytes()[..])
                    .map_err(io)?;
                db.flush().map(|_| ()).map_err(io)
            })
        };
        // A failed flush leaves sled failing; only a reopen clears it.
        let r = self.reopen().and_then(|()| write());
        self.healthy.store(r.is_ok(), std::sync::atomic::Ordering::Relaxed);
        r
    }

    fn append(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.with_db(|db| db.apply_batch(batch_of(writes)).map_err(io))
    }
}

fn batch_of(writes: &[Write]) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for w in writes {
        match w {
            Write::Put(k, v) => batch.insert(k.as_bytes(), v.as_slice()),
            Write::Delete(k) => batch.remove(k.as_bytes()),
        }
    }
    batch
}
