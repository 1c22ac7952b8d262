//! An in-memory store for unit tests and benchmarks; same contract, no disk.
//! It has a change feed too, so two directories sharing one `MemoryStore`
//! behave like two instances sharing PostgreSQL (the feed's unit tests).

use super::{Change, ChangeFeed, Store, StoreError, Write};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
    side: Mutex<BTreeMap<String, Vec<u8>>>,
    /// (sequence number, key) of every followed write, in commit order.
    log: Mutex<Vec<(u64, String)>>,
    signal: Arc<tokio::sync::Notify>,
}

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave a half-applied batch
        // (writes are applied after all are known), so poisoning is ignorable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn write_all(map: &mut BTreeMap<String, Vec<u8>>, writes: &[Write]) {
    for w in writes {
        match w {
            Write::Put(k, v) => {
                map.insert(k.clone(), v.clone());
            }
            Write::Delete(k) => {
                map.remove(k);
            }
        }
    }
}

impl MemoryStore {
    fn log(&self) -> std::sync::MutexGuard<'_, Vec<(u64, String)>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called with the map locked, so log order is commit order.
    fn log_writes(&self, writes: &[Write]) -> u64 {
        let mut log = self.log();
        let mut seq = log.last().map_or(0, |(s, _)| *s);
        for w in writes {
            let (Write::Put(k, _) | Write::Delete(k)) = w;
            if super::is_followed(k) {
                seq += 1;
                log.push((seq, k.clone()));
            }
        }
        self.signal.notify_waiters();
        seq
    }
}

impl ChangeFeed for MemoryStore {
    fn head(&self) -> Result<u64, StoreError> {
        Ok(self.log().last().map_or(0, |(s, _)| *s))
    }

    fn since(&self, seq: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let map = self.map();
        let log = self.log();
        let start = log.partition_point(|(s, _)| *s <= seq);
        Ok(log[start..]
            .iter()
            .take(limit)
            .map(|(s, k)| Change {
                seq: *s,
                key: k.clone(),
                value: map.get(k).cloned(),
            })
            .collect())
    }

    fn apply_after(&self, seen: u64, writes: &[Write]) -> Result<u64, StoreError> {
        let mut map = self.map();
        let conflict = {
            let log = self.log();
            let start = log.partition_point(|(s, _)| *s <= seen);
            log[start..].iter().any(|(_, k)| !super::is_independent(k))
        };
        if conflict {
            return Err(StoreError::Stale);
        }
        let seq = self.log_writes(writes).max(seen);
        write_all(&mut map, writes);
        Ok(seq)
    }

    fn signal(&self) -> Arc<tokio::sync::Notify> {
        self.signal.clone()
    }
}

impl Store for MemoryStore {
    fn feed(&self) -> Option<&dyn ChangeFeed> {
        Some(self)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map().get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .map()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put_side(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.side
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), bytes.to_vec());
        Ok(())
    }

    fn get_side(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.side.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned())
    }

    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut map = self.map();
        self.log_writes(writes);
        write_all(&mut map, writes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_scan_stops_at_the_prefix_boundary() {
        let s = MemoryStore::default();
        s.apply(&[
            Write::Put("app/1".into(), b"a".to_vec()),
            Write::Put("app/2".into(), b"b".to_vec()),
            Write::Put("apps".into(), b"x".to_vec()),
            Write::Put("rule/1".into(), b"c".to_vec()),
        ])
        .unwrap();
        let keys: Vec<_> = s.scan_prefix("app/").unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["app/1", "app/2"]);
        s.apply(&[Write::Delete("app/1".into())]).unwrap();
        assert_eq!(s.get("app/1").unwrap(), None);
    }
}
