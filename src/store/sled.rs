//! The sled backend: one tree, atomic batches, flushed before returning.

use super::{Store, StoreError, Write};
use std::path::Path;

pub struct SledStore {
    db: sled::Db,
    dir: std::path::PathBuf,
}

impl SledStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            // Durability comes from the explicit flush in `apply`, so sled's
            // own periodic flush only adds background I/O.
            .flush_every_ms(None)
            // The store is read in full once at start and then only written:
            // sled's default 1 GiB page cache would just hold resident memory.
            .cache_capacity(16 * 1024 * 1024)
            .open()
            .map_err(|e| StoreError::Io(format!("cannot open store at {}: {e}", path.display())))?;
        Ok(Self {
            db,
            dir: path.to_owned(),
        })
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(io)
    }
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl Store for SledStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.db
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
        self.append(writes)?;
        self.flush()
    }

    fn append(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for w in writes {
            match w {
                Write::Put(k, v) => batch.insert(k.as_bytes(), v.as_slice()),
                Write::Delete(k) => batch.remove(k.as_bytes()),
            }
        }
        self.db.apply_batch(batch).map_err(io)
    }
}
