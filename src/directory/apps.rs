//! The applications of the catalog, stored densely for the list query.
//!
//! A list query over 100,000 applications (filter + sort + page, DESIGN §4)
//! reads one or two columns of every row. Kept in a `HashMap<String,
//! AppRow>`, each row's name sat in its own heap allocation: one cache miss
//! per row, most of the query's time. Here rows live in one `Vec` (a slab:
//! freed slots are reused), and every name is copied into one contiguous
//! byte arena in slot order, so a scan reads memory sequentially. The id
//! index maps an application id to its slot.
//!
//! Names change only through [`Apps::insert`], [`Apps::update`] and
//! [`Apps::remove`], which keep the arena in step; the arena is compacted
//! when more than half of it is names no longer in use.

use super::catalog::AppRow;
use std::collections::HashMap;

#[derive(Default)]
pub struct Apps {
    slots: Vec<Option<AppRow>>,
    free: Vec<u32>,
    by_id: HashMap<String, u32>,
    /// Names of occupied slots, back to back; `spans[slot]` locates one.
    arena: String,
    spans: Vec<(u32, u32)>,
    /// Bytes of `arena` no slot points at any more.
    garbage: usize,
}

impl Apps {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&AppRow> {
        let slot = *self.by_id.get(id)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Every application, in slot order (not a meaningful order).
    pub fn values(&self) -> impl Iterator<Item = &AppRow> {
        self.slots.iter().flatten()
    }

    /// Every application with its name read from the dense arena: what a
    /// list query scans.
    pub fn rows(&self) -> impl Iterator<Item = (&str, &AppRow)> {
        self.slots.iter().zip(&self.spans).filter_map(|(row, &(start, len))| {
            let name = self.arena.get(start as usize..(start + len) as usize)?;
            Some((name, row.as_ref()?))
        })
    }

    /// Adds or replaces the application with this id.
    pub fn insert(&mut self, id: String, row: AppRow) {
        if let Some(&slot) = self.by_id.get(&id) {
            self.set(slot, row);
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.spans.push((0, 0));
                // 4 billion applications would exhaust memory long before.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.set(slot, row);
        self.by_id.insert(id, slot);
    }

    /// Changes one application in place; a changed name is re-indexed.
    pub fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut AppRow) -> R) -> Option<R> {
        let slot = *self.by_id.get(id)?;
        let row = self.slots.get_mut(slot as usize)?.as_mut()?;
        let before = row.app.name.clone();
        let out = change(row);
        if row.app.name != before {
            let name = row.app.name.as_str().to_owned();
            self.place_name(slot, &name);
        }
        Some(out)
    }

    pub fn remove(&mut self, id: &str) -> Option<AppRow> {
        let slot = self.by_id.remove(id)?;
        let row = self.slots.get_mut(slot as usize)?.take();
        self.garbage += self.spans.get(slot as usize).map_or(0, |s| s.1 as usize);
        if let Some(span) = self.spans.get_mut(slot as usize) {
            *span = (0, 0);
        }
        self.free.push(slot);
        self.compact_if_needed();
        row
    }

    fn set(&mut self, slot: u32, row: AppRow) {
        let name = row.app.name.as_str().to_owned();
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Some(row);
        }
        self.place_name(slot, &name);
    }

    fn place_name(&mut self, slot: u32, name: &str) {
        let Some(span) = self.spans.get_mut(slot as usize) else {
            return;
        };
        self.garbage += span.1 as usize;
        // Names are at most a few hundred bytes and the arena stays far
        // below 4 GiB (100,000 applications: ~2 MB).
        *span = (self.arena.len() as u32, name.len() as u32);
        self.arena.push_str(name);
        self.compact_if_needed();
    }

    fn compact_if_needed(&mut self) {
        if self.garbage <= 4096 || self.garbage * 2 <= self.arena.len() {
            return;
        }
        let mut arena = String::with_capacity(self.arena.len() - self.garbage);
        for (span, row) in self.spans.iter_mut().zip(&self.slots) {
            let Some(row) = row else { continue };
            let name = row.app.name.as_str();
            *span = (arena.len() as u32, name.len() as u32);
            arena.push_str(name);
        }
        self.arena = arena;
        self.garbage = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::catalog::LoginClock;
    use crate::domain::application::{AppName, Application, ClientId};
    use std::sync::Arc;

    fn row(id: &str, name: &str) -> AppRow {
        let app = Application {
            id: id.into(),
            name: AppName::parse(name).unwrap(),
            client_id: ClientId::generate(),
            secret_hash: crate::domain::secret::SecretHash([0; 32]),
            enabled: true,
            created_by: "t".into(),
            created_at: 0,
            updated_at: 0,
            jwks: None,
            secret_created_at: None,
            previous_secret: None,
            policy: Default::default(),
            federated_credentials: Vec::new(),
            tls_client_auth: None,
        };
        AppRow::new(app, Arc::new(LoginClock::default()))
    }

    fn names(apps: &Apps) -> Vec<(String, String)> {
        let mut v: Vec<_> = apps.rows().map(|(n, r)| (n.to_owned(), r.app.id.clone())).collect();
        v.sort();
        v
    }

    #[test]
    fn the_arena_follows_every_insert_rename_and_removal_through_compactions() {
        let mut apps = Apps::default();
        let mut model: std::collections::BTreeMap<String, String> = Default::default();
        for round in 0..40 {
            for i in 0..200 {
                let id = format!("id-{i}");
                match (round + i) % 3 {
                    0 => {
                        let name = format!("app-{round}-{i}");
                        apps.insert(id.clone(), row(&id, &name));
                        model.insert(id, name);
                    }
                    1 if model.contains_key(&id) => {
                        let name = format!("renamed-{round}-{i}");
                        let n = AppName::parse(&name).unwrap();
                        apps.update(&id, |r| r.app.name = n).unwrap();
                        model.insert(id, name);
                    }
                    _ => {
                        assert_eq!(apps.remove(&id).is_some(), model.remove(&id).is_some());
                    }
                }
            }
            let want: Vec<(String, String)> = {
                let mut v: Vec<_> = model.iter().map(|(id, n)| (n.clone(), id.clone())).collect();
                v.sort();
                v
            };
            assert_eq!(names(&apps), want, "round {round}");
            assert_eq!(apps.len(), model.len());
            assert!(apps.garbage <= 4096 || apps.garbage * 2 <= apps.arena.len());
        }
        for (id, name) in &model {
            assert_eq!(apps.get(id).map(|r| r.app.name.as_str()), Some(name.as_str()));
        }
    }
}
