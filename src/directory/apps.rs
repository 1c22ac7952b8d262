//! The applications of the catalog, stored densely for the list query.
//!
//! A list query over 100,000 applications (filter + sort + page, DESIGN §4)
//! reads one or two columns of every row. Kept in a `HashMap<String,
//! AppRow>`, each row's name sat in its own heap allocation: one cache miss
//! per row, most of the query's time. Here rows live in one `Vec` (a slab:
//! freed slots are reused), and every name is copied into one contiguous
//! byte arena in slot order, so a scan reads memory sequentially.
//!
//! The indexes by application id, client ID and name hold slot numbers
//! only and read the key from the row itself: a `HashMap<String, _>` kept
//! a second copy of every key (~90 bytes an application with the map's own
//! overhead, ~9 MB per index at 100,000); these cost ~5 bytes each.
//!
//! The slots in name order (then id, as a list sorts ties) and in id order
//! (a list's default) are kept too, once [`Apps::build_order`] has made
//! them after loading: a list sorted either way then marks its matches in
//! one sequential pass and walks the order only as far as its page, where
//! sorting the matches cost most of a query over 100,000 rows. A write
//! moves one entry in each (a binary search and a 400 KB `memmove` at
//! 100,000); the two cost 800 KB at 100,000.
//!
//! Names change only through [`Apps::insert`], [`Apps::update`] and
//! [`Apps::remove`], which keep the arena and the order in step; the arena
//! is compacted when more than half of it is names no longer in use.
//!
//! Each name in the arena is followed by its slot number, written in bytes
//! below 0x20 that no name (`[a-z0-9_-]`, DESIGN §4) contains: a filter
//! `name=@…` is then one SIMD substring search over the whole arena
//! ([`Apps::names_containing`]), each hit naming its slot by the bytes
//! after it, where testing 100,000 names one by one took most of a list
//! query's time.

use super::catalog::AppRow;
use crate::domain::application::AppName;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Bytes after each name in the arena: its slot, 5 bits a byte, least
/// significant first, each below 0x20.
const SLOT_CODE: usize = 7;

fn push_name(arena: &mut String, name: &str, slot: u32) {
    arena.push_str(name);
    for i in 0..SLOT_CODE {
        arena.push(char::from(((u64::from(slot) >> (5 * i)) & 31) as u8));
    }
}

fn read_slot(code: &[u8]) -> u32 {
    let v = code.iter().rev().fold(0u64, |v, &b| (v << 5) | u64::from(b & 31));
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Whether `name` contains `needle`, compared as bytes (names are lowercase).
fn holds(name: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let Some(last_start) = name.len().checked_sub(needle.len()) else {
        return false;
    };
    (0..=last_start).any(|i| name[i] == first && name[i + 1..i + needle.len()].iter().zip(rest).all(|(a, b)| a == b))
}

#[derive(Default)]
pub struct Apps {
    slots: Vec<Option<AppRow>>,
    free: Vec<u32>,
    hasher: std::collections::hash_map::RandomState,
    /// Slots by `app.id`.
    by_id: HashTable<u32>,
    /// Slots by `app.client_id` (the token endpoint's key).
    by_client: HashTable<u32>,
    /// Slots by `app.name` (names are unique: DESIGN §4).
    by_name: HashTable<u32>,
    /// Names of occupied slots, back to back; `spans[slot]` locates one.
    arena: String,
    spans: Vec<(u32, u32)>,
    /// Bytes of `arena` no slot points at any more.
    garbage: usize,
    /// Occupied slots by (name, id) and by id; `None` until
    /// [`Apps::build_order`].
    orders: Option<[Vec<u32>; 2]>,
    /// Slots whose row is in a secret rotation's overlap: the job that ends
    /// overlaps runs four times a second, and a scan of every row there
    /// read a cache line of each (6 MB at 100,000 applications) each time,
    /// on a runtime thread that also serves tokens.
    overlapping: std::collections::HashSet<u32>,
}

/// Which key of a row an index reads.
#[derive(Clone, Copy)]
enum Key {
    Id,
    Client,
    Name,
}

impl Key {
    fn of(self, row: &AppRow) -> &str {
        match self {
            Key::Id => &row.app.id,
            Key::Client => row.app.client_id.as_str(),
            Key::Name => row.app.name.as_str(),
        }
    }
}

fn row_at(slots: &[Option<AppRow>], slot: u32) -> Option<&AppRow> {
    slots.get(slot as usize)?.as_ref()
}

/// An order the table keeps its slots in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum By {
    /// (name, id), as a list sorts by name.
    Name,
    /// id, a list's order when it names none.
    Id,
}

impl By {
    const ALL: [By; 2] = [By::Name, By::Id];

    fn key(self, row: &AppRow) -> (&str, &str) {
        match self {
            By::Name => (row.app.name.as_str(), row.app.id.as_str()),
            By::Id => (row.app.id.as_str(), ""),
        }
    }
}

impl Apps {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn index(&self, key: Key) -> &HashTable<u32> {
        match key {
            Key::Id => &self.by_id,
            Key::Client => &self.by_client,
            Key::Name => &self.by_name,
        }
    }

    fn slot_of(&self, key: Key, value: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(value);
        let slots = &self.slots;
        self.index(key)
            .find(hash, |&s| row_at(slots, s).is_some_and(|r| key.of(r) == value))
            .copied()
    }

    /// Adds `slot` (already holding its row) to an index.
    fn link(&mut self, key: Key, slot: u32) {
        let Some(value) = row_at(&self.slots, slot).map(|r| key.of(r)) else {
            return;
        };
        let hash = self.hasher.hash_one(value);
        let (slots, hasher) = (&self.slots, &self.hasher);
        let rehash = |&s: &u32| row_at(slots, s).map_or(0, |r| hasher.hash_one(key.of(r)));
        match key {
            Key::Id => self.by_id.insert_unique(hash, slot, rehash),
            Key::Client => self.by_client.insert_unique(hash, slot, rehash),
            Key::Name => self.by_name.insert_unique(hash, slot, rehash),
        };
    }

    /// Removes `slot` from an index while its row is still in place.
    fn unlink(&mut self, key: Key, slot: u32) {
        let Some(value) = row_at(&self.slots, slot).map(|r| key.of(r)) else {
            return;
        };
        let hash = self.hasher.hash_one(value);
        let table = match key {
            Key::Id => &mut self.by_id,
            Key::Client => &mut self.by_client,
            Key::Name => &mut self.by_name,
        };
        if let Ok(entry) = table.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
    }

    pub fn get(&self, id: &str) -> Option<&AppRow> {
        row_at(&self.slots, self.slot_of(Key::Id, id)?)
    }

    /// The application whose client ID is `client_id`.
    pub fn by_client(&self, client_id: &str) -> Option<&AppRow> {
        row_at(&self.slots, self.slot_of(Key::Client, client_id)?)
    }

    /// The application named `name` (exact).
    pub fn by_name(&self, name: &str) -> Option<&AppRow> {
        row_at(&self.slots, self.slot_of(Key::Name, name)?)
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.slot_of(Key::Id, id).is_some()
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

    /// The applications in a rotation's overlap (any order).
    pub fn overlapping(&self) -> impl Iterator<Item = &AppRow> {
        self.overlapping.iter().filter_map(|&s| row_at(&self.slots, s))
    }

    fn track_overlap(&mut self, slot: u32) {
        if row_at(&self.slots, slot).is_some_and(|r| r.app.previous_secret.is_some()) {
            self.overlapping.insert(slot);
        } else {
            self.overlapping.remove(&slot);
        }
    }

    /// Every application with its slot and name, in slot order.
    pub fn slotted_rows(&self) -> impl Iterator<Item = (u32, &str, &AppRow)> {
        self.slots
            .iter()
            .zip(&self.spans)
            .enumerate()
            .filter_map(|(slot, (row, &(start, len)))| {
                let name = self.arena.get(start as usize..(start + len) as usize)?;
                Some((u32::try_from(slot).ok()?, name, row.as_ref()?))
            })
    }

    /// Every occupied slot's name, read from the arena alone (a name is
    /// never empty, so an empty span is a free slot): a list filtering on
    /// names only scans 2 MB of sequential memory at 100,000, where
    /// touching every row read a cache line per 280-byte row.
    pub fn names(&self) -> impl Iterator<Item = (u32, &str)> {
        self.spans.iter().enumerate().filter_map(|(slot, &(start, len))| {
            let name = self.arena.get(start as usize..(start + len) as usize)?;
            Some((u32::try_from(slot).ok()?, name)).filter(|_| len > 0)
        })
    }

    /// Whether at most half the names contain `needle` (judged from the
    /// first 512), so that searching the arena is the faster way to find
    /// them: the search skips the names without a hit but costs more a hit
    /// than testing a name. In-process at 100,000 (criterion
    /// `admin_list_query`): a third of the names match, 1.3 ms searched
    /// against 3.2 tested one by one; all of them, 3.1 against 1.1.
    fn rarely_named(&self, needle: &str) -> bool {
        let (mut seen, mut hits) = (0, 0);
        for (_, name) in self.names().take(512) {
            seen += 1;
            hits += usize::from(holds(name.as_bytes(), needle.as_bytes()));
        }
        hits * 2 <= seen
    }

    /// The occupied slots whose name contains `needle` (exactly, as names
    /// are lowercase: the list's case-insensitive `=@` against its
    /// lowercased value), in arena order. A needle with a byte no name has
    /// matches none; an empty one matches every name.
    pub fn names_containing<'a>(&'a self, needle: &'a str) -> Box<dyn Iterator<Item = (u32, &'a str)> + 'a> {
        if needle.is_empty() {
            return Box::new(self.names());
        }
        if !needle.bytes().all(AppName::allows) {
            return Box::new(std::iter::empty());
        }
        if !self.rarely_named(needle) {
            // Most names match: test each in place (a searcher's set-up or
            // a `memcmp` call per name costs more than these short loops).
            return Box::new(
                self.names()
                    .filter(move |(_, name)| holds(name.as_bytes(), needle.as_bytes())),
            );
        }
        let hay = self.arena.as_bytes();
        let mut from = 0;
        // One searcher over the whole arena: set up per hit, it cost more
        // than the search when most names match.
        Box::new(
            memchr::memmem::find_iter(hay, needle.as_bytes()).filter_map(move |hit| {
                if hit < from {
                    return None; // a second hit in a name already taken
                }
                // A hit lies inside one name: the needle has no byte below 0x20.
                let end = hit + hay.get(hit..)?.iter().position(|&b| b < 0x20)?;
                let slot = read_slot(hay.get(end..end + SLOT_CODE)?);
                from = end + SLOT_CODE;
                // A name no slot points at any more (renamed, removed) is skipped.
                let &(start, len) = self.spans.get(slot as usize)?;
                let live = len > 0 && (start + len) as usize == end;
                live.then(|| Some((slot, self.arena.get(start as usize..end)?)))?
            }),
        )
    }

    /// The application in `slot`, with its name from the arena.
    pub fn at(&self, slot: u32) -> Option<(&str, &AppRow)> {
        let &(start, len) = self.spans.get(slot as usize)?;
        let name = self.arena.get(start as usize..(start + len) as usize)?;
        Some((name, row_at(&self.slots, slot)?))
    }

    /// Occupied slots in that order, once built.
    pub fn order(&self, by: By) -> Option<&[u32]> {
        Some(&self.orders.as_ref()?[by as usize])
    }

    /// Sorts the slots both ways; from then on every write keeps them.
    pub fn build_order(&mut self) {
        let slots = &self.slots;
        let occupied: Vec<u32> = self.slotted_rows().map(|(slot, _, _)| slot).collect();
        self.orders = Some(By::ALL.map(|by| {
            let mut order = occupied.clone();
            order.sort_unstable_by(|&a, &b| {
                row_at(slots, a)
                    .map(|r| by.key(r))
                    .cmp(&row_at(slots, b).map(|r| by.key(r)))
            });
            order
        }));
    }

    /// Where `slot` (holding its row) goes in, or is in, one order.
    fn order_position(&self, by: By, slot: u32) -> Option<Result<usize, usize>> {
        let order = &self.orders.as_ref()?[by as usize];
        let key = row_at(&self.slots, slot).map(|r| by.key(r))?;
        Some(order.binary_search_by(|&s| row_at(&self.slots, s).map(|r| by.key(r)).cmp(&Some(key))))
    }

    fn order_add(&mut self, slot: u32) {
        for by in By::ALL {
            if let Some(Err(at)) = self.order_position(by, slot)
                && let Some(orders) = self.orders.as_mut()
            {
                orders[by as usize].insert(at, slot);
            }
        }
    }

    fn order_drop(&mut self, slot: u32) {
        for by in By::ALL {
            if let Some(Ok(at)) = self.order_position(by, slot)
                && let Some(orders) = self.orders.as_mut()
            {
                orders[by as usize].remove(at);
            }
        }
    }

    /// Adds or replaces the application with this id.
    pub fn insert(&mut self, id: String, row: AppRow) {
        debug_assert_eq!(id, row.app.id);
        if let Some(slot) = self.slot_of(Key::Id, &id) {
            self.unlink(Key::Client, slot);
            self.unlink(Key::Name, slot);
            self.order_drop(slot);
            self.set(slot, row);
            self.link(Key::Client, slot);
            self.link(Key::Name, slot);
            self.order_add(slot);
            self.track_overlap(slot);
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
        self.link(Key::Id, slot);
        self.link(Key::Client, slot);
        self.link(Key::Name, slot);
        self.order_add(slot);
        self.track_overlap(slot);
    }

    /// Changes one application in place; a changed name or client ID is
    /// re-indexed (the id is the record's key and never changes).
    pub fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut AppRow) -> R) -> Option<R> {
        let slot = self.slot_of(Key::Id, id)?;
        self.unlink(Key::Client, slot);
        self.unlink(Key::Name, slot);
        self.order_drop(slot);
        let row = self.slots.get_mut(slot as usize)?.as_mut()?;
        let before = row.app.name.clone();
        let out = change(row);
        let renamed = (row.app.name != before).then(|| row.app.name.as_str().to_owned());
        self.link(Key::Client, slot);
        self.link(Key::Name, slot);
        self.order_add(slot);
        self.track_overlap(slot);
        if let Some(name) = renamed {
            self.place_name(slot, &name);
        }
        Some(out)
    }

    pub fn remove(&mut self, id: &str) -> Option<AppRow> {
        let slot = self.slot_of(Key::Id, id)?;
        self.unlink(Key::Id, slot);
        self.unlink(Key::Client, slot);
        self.unlink(Key::Name, slot);
        self.order_drop(slot);
        self.overlapping.remove(&slot);
        let row = self.slots.get_mut(slot as usize)?.take();
        self.garbage += self.spans.get(slot as usize).map_or(0, |s| s.1 as usize + SLOT_CODE);
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
        if span.1 > 0 {
            self.garbage += span.1 as usize + SLOT_CODE;
        }
        // Names are at most 63 bytes and the arena stays far below 4 GiB
        // (100,000 applications: ~2 MB).
        *span = (self.arena.len() as u32, name.len() as u32);
        push_name(&mut self.arena, name, slot);
        self.compact_if_needed();
    }

    fn compact_if_needed(&mut self) {
        if self.garbage <= 4096 || self.garbage * 2 <= self.arena.len() {
            return;
        }
        let mut arena = String::with_capacity(self.arena.len() - self.garbage);
        for (slot, (span, row)) in self.spans.iter_mut().zip(&self.slots).enumerate() {
            let Some(row) = row else { continue };
            let name = row.app.name.as_str();
            *span = (arena.len() as u32, name.len() as u32);
            push_name(&mut arena, name, u32::try_from(slot).unwrap_or(u32::MAX));
        }
        self.arena = arena;
        self.garbage = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::catalog::LoginClock;
    use crate::domain::application::{Application, ClientId};
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
    fn a_slot_written_after_a_name_reads_back_and_never_looks_like_a_name() {
        for slot in [0, 1, 31, 32, 1 << 20, u32::MAX - 1, u32::MAX] {
            let mut arena = String::new();
            push_name(&mut arena, "ab", slot);
            let code = &arena.as_bytes()[2..];
            assert_eq!(code.len(), SLOT_CODE);
            assert!(code.iter().all(|&b| b < 0x20 && !AppName::allows(b)));
            assert_eq!(read_slot(code), slot);
        }
    }

    #[test]
    fn the_arena_the_indexes_and_the_name_order_follow_every_insert_rename_and_removal() {
        let mut apps = Apps::default();
        apps.insert("id-seed".into(), row("id-seed", "zz-seed"));
        apps.build_order();
        apps.remove("id-seed");
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
                        let overlap = (i % 2 == 0).then(|| {
                            Box::new(crate::domain::rotation::RetiringSecret {
                                hash: crate::domain::secret::SecretHash([1; 32]),
                                created_at: 0,
                                before: 0,
                                until: 0,
                            })
                        });
                        apps.update(&id, |r| {
                            r.app.name = n;
                            r.app.previous_secret = overlap;
                        })
                        .unwrap();
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
            // "a" and "-" are in most names: the name-by-name path.
            for needle in [
                "",
                "a",
                "-",
                "app-1",
                "-1",
                "renamed-3",
                "9",
                "d-1",
                "zz",
                "app-1-1x",
                "A",
                "é",
            ] {
                let mut got: Vec<(u32, &str)> = apps.names_containing(needle).collect();
                got.sort_unstable();
                let want: Vec<(u32, &str)> = apps.names().filter(|(_, n)| n.contains(needle)).collect();
                assert_eq!(got, want, "round {round}, names containing {needle:?}");
            }
            assert_eq!(apps.len(), model.len());
            assert!(apps.garbage <= 4096 || apps.garbage * 2 <= apps.arena.len());
        }
        for (id, name) in &model {
            let row = apps.get(id).expect("every live id is indexed");
            assert_eq!(row.app.name.as_str(), name);
            let by_client = apps.by_client(row.app.client_id.as_str()).map(|r| r.app.id.as_str());
            assert_eq!(by_client, Some(id.as_str()), "the client ID leads to the same row");
            assert_eq!(apps.by_name(name).map(|r| r.app.id.as_str()), Some(id.as_str()));
        }
        assert_eq!(apps.by_id.len(), model.len());
        assert_eq!(apps.by_client.len(), model.len());
        assert_eq!(apps.by_name.len(), model.len());
        let from_arena: Vec<(u32, &str)> = apps.names().collect();
        let from_rows: Vec<(u32, &str)> = apps.slotted_rows().map(|(s, n, _)| (s, n)).collect();
        assert_eq!(
            from_arena, from_rows,
            "the arena alone names exactly the occupied slots"
        );
        let mut overlapping: Vec<&str> = apps.overlapping().map(|r| r.app.id.as_str()).collect();
        overlapping.sort_unstable();
        let mut want_overlapping: Vec<&str> = apps
            .values()
            .filter(|r| r.app.previous_secret.is_some())
            .map(|r| r.app.id.as_str())
            .collect();
        want_overlapping.sort_unstable();
        assert_eq!(
            overlapping, want_overlapping,
            "exactly the rows in an overlap are tracked"
        );
        let ordered: Vec<(String, String)> = apps
            .order(By::Name)
            .expect("built")
            .iter()
            .filter_map(|&s| apps.at(s))
            .map(|(n, r)| (n.to_owned(), r.app.id.clone()))
            .collect();
        let mut sorted: Vec<(String, String)> = model.iter().map(|(id, n)| (n.clone(), id.clone())).collect();
        sorted.sort();
        assert_eq!(ordered, sorted, "the name order holds every row once, sorted");
        let ids: Vec<&str> = apps
            .order(By::Id)
            .expect("built")
            .iter()
            .filter_map(|&s| apps.at(s))
            .map(|(_, r)| r.app.id.as_str())
            .collect();
        let model_ids: Vec<&str> = model.keys().map(String::as_str).collect();
        assert_eq!(ids, model_ids, "the id order holds every row once, sorted");
        assert!(apps.by_name("renamed-0-1").is_none() || model.values().any(|n| n == "renamed-0-1"));
    }
}
