//! An in-memory store for unit tests and benchmarks; same contract, no disk.

use super::{Store, StoreError, Write};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
    side: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave a half-applied batch
        // (writes are applied after all are known), so poisoning is ignorable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
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
