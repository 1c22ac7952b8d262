//! Key material shared by a cluster (DESIGN §1 "Scale-out", §3 `keys.kek_file`).
//!
//! With a shared store the signing keys and the pepper live in the
//! database, each file of `keys/` as one record `sealed/<file name>`,
//! sealed with AES-256-GCM (ring) under the key-encryption key (KEK) every
//! instance is given; the record's name is the associated data, so a
//! sealed record cannot be passed off as another. The database never sees
//! key material in the clear, and a database backup is useless without the
//! KEK file.
//!
//! Each instance materialises the records into its own `keys.dir` (mode
//! 0600, as on a single instance): the code that parses, rotates and
//! publishes keys stays one, and a running server picks up a key another
//! instance or `appauth keys …` stored within a second (the change feed
//! calls [`pull`], the key rescan sees the new file).

use super::keys::{KeyError, write_private};
use crate::store::{Store, StoreError, Write};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::fs;
use std::path::Path;

/// Prefix of sealed records in the store.
pub const SEALED: &str = "sealed/";
const PEPPER: &str = "pepper";

/// The key-encryption key. No `Debug` and no accessor: it never leaves here.
pub struct Kek(LessSafeKey);

fn key_err(path: &Path, reason: impl std::fmt::Display) -> KeyError {
    KeyError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn store_err(e: StoreError) -> KeyError {
    KeyError::File {
        path: "the shared store".into(),
        reason: e.to_string(),
    }
}

impl Kek {
    /// Reads the KEK file (32 random bytes, base64), creating it when
    /// missing and `create` (the first instance of a cluster, or `init`).
    pub fn load(path: &Path, create: bool) -> Result<Self, KeyError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut bytes = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| key_err(path, "random source failed"))?;
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir).map_err(|e| key_err(dir, e))?;
                }
                let text = STANDARD.encode(bytes);
                write_private(path, text.as_bytes()).map_err(|e| key_err(path, e))?;
                tracing::info!(path = %path.display(), "created the key-encryption key; give every instance of the cluster this same file");
                text
            }
            Err(e) => {
                return Err(key_err(
                    path,
                    format!("{e}; every instance of a cluster needs the same key-encryption key file (keys.kek_file)"),
                ));
            }
        };
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| key_err(path, "the key-encryption key is not base64"))?;
        if bytes.len() != 32 {
            return Err(key_err(path, "the key-encryption key must be exactly 32 bytes"));
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| key_err(path, "unusable key-encryption key"))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// `nonce || ciphertext || tag`, bound to `name`.
    fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| key_err(Path::new(name), "random source failed"))?;
        let mut body = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut body,
            )
            .map_err(|_| key_err(Path::new(name), "sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let fail = || {
            key_err(
                Path::new(name),
                "cannot unseal this record: the key-encryption key differs from the one that sealed it (every instance needs the same keys.kek_file), or the record was altered",
            )
        };
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut body)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

/// Files of `keys/` that are key material (keys, their metadata, the pepper).
fn is_material(name: &str) -> bool {
    name == PEPPER || name.ends_with(".pem") || name.ends_with(".json")
}

/// Writes every sealed record into `dir` where the file is missing or
/// differs. Returns how many files it wrote.
pub fn pull(store: &dyn Store, kek: &Kek, dir: &Path) -> Result<usize, KeyError> {
    fs::create_dir_all(dir).map_err(|e| key_err(dir, e))?;
    let mut written = 0;
    for (key, sealed) in store.scan_prefix(SEALED).map_err(store_err)? {
        let name = &key[SEALED.len()..];
        // A name with a path in it cannot come from `push`. One bad record
        // must not keep every other key from this instance.
        if name.contains('/') || name.starts_with('.') || !is_material(name) {
            tracing::error!(record = %key, "ignoring a sealed record that is not key material");
            continue;
        }
        let plain = match kek.open(name, &sealed) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "ignoring a sealed record");
                continue;
            }
        };
        let path = dir.join(name);
        let local = fs::read(&path).ok();
        let plain = match (&local, name.ends_with(".json")) {
            (Some(local), true) => merge_meta(local, &plain).unwrap_or(plain),
            _ => plain,
        };
        if local.as_deref() != Some(plain.as_slice()) {
            write_private(&path, &plain).map_err(|e| key_err(&path, e))?;
            written += 1;
        }
    }
    Ok(written)
}

/// Key metadata only ever moves towards "stops signing": the earlier
/// retirement and a withdrawal win, so an old copy (a restored backup, or a
/// hostile database operator replaying one) cannot bring a withdrawn,
/// compromised key back.
fn merge_meta(local: &[u8], stored: &[u8]) -> Option<Vec<u8>> {
    let local: super::keys::KeyMeta = serde_json::from_slice(local).ok()?;
    let mut merged: super::keys::KeyMeta = serde_json::from_slice(stored).ok()?;
    merged.withdrawn |= local.withdrawn;
    merged.retired_at = match (merged.retired_at, local.retired_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    serde_json::to_vec_pretty(&merged).ok()
}

/// Seals the named files of `dir` into the store, in one batch; with
/// `names` `None`, every key-material file the store does not have yet
/// (never overwriting the cluster's newer copy with a stale local one).
pub fn push(store: &dyn Store, kek: &Kek, dir: &Path, names: Option<&[String]>) -> Result<usize, KeyError> {
    let all: Vec<String> = match names {
        Some(n) => n.to_vec(),
        None => fs::read_dir(dir)
            .map_err(|e| key_err(dir, e))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_material(n))
            // Unsure (a failed read) counts as present: never overwrite the
            // cluster's copy with a possibly stale local one.
            .filter(|n| matches!(store.get(&format!("{SEALED}{n}")), Ok(None)))
            .collect(),
    };
    let mut writes = Vec::new();
    for name in &all {
        let path = dir.join(name);
        let plain = fs::read(&path).map_err(|e| key_err(&path, e))?;
        writes.push(Write::Put(format!("{SEALED}{name}"), kek.seal(name, &plain)?));
    }
    if !writes.is_empty() {
        store.apply(&writes).map_err(store_err)?;
    }
    Ok(writes.len())
}

/// Makes the store hold exactly one pepper for the whole cluster, and
/// `dir` a copy of it: the first instance seals its own (an existing
/// single-instance pepper, or a new one); every later one takes it. A
/// compare-and-set on the change feed, so instances starting together
/// agree on one.
pub fn share_pepper(store: &dyn Store, kek: &Kek, dir: &Path) -> Result<(), KeyError> {
    let name = format!("{SEALED}{PEPPER}");
    for _ in 0..10 {
        let head = match store.feed() {
            Some(f) => f.head().map_err(store_err)?,
            None => 0,
        };
        if store.get(&name).map_err(store_err)?.is_some() {
            pull(store, kek, dir)?;
            return Ok(());
        }
        if super::keys::load_pepper(dir)?.is_none() {
            super::keys::create_pepper(dir)?;
        }
        let path = dir.join(PEPPER);
        let plain = fs::read(&path).map_err(|e| key_err(&path, e))?;
        let write = [Write::Put(name.clone(), kek.seal(PEPPER, &plain)?)];
        let stored = match store.feed() {
            Some(f) => f.apply_after(head, &write).map(|_| ()),
            None => store.apply(&write),
        };
        match stored {
            Ok(()) => return Ok(()),
            // Someone else changed the store meanwhile: look again.
            Err(StoreError::Stale) => continue,
            Err(e) => return Err(store_err(e)),
        }
    }
    Err(key_err(
        Path::new(&name),
        "could not agree on a pepper with the other instances",
    ))
}

/// Whether the cluster's pepper is in the store yet (else this is the
/// first instance, which may create the KEK file).
pub fn cluster_exists(store: &dyn Store) -> Result<bool, KeyError> {
    Ok(store.get(&format!("{SEALED}{PEPPER}")).map_err(store_err)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn sealed_records_round_trip_and_refuse_another_kek_or_name() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Kek::load(&dir.path().join("kek"), true).unwrap();
        let sealed = kek.seal("a.pem", b"secret material").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"), "sealed means unreadable");
        assert_eq!(kek.open("a.pem", &sealed).unwrap(), b"secret material");
        assert!(kek.open("b.pem", &sealed).is_err(), "bound to its name");
        let other = Kek::load(&tempfile::tempdir().unwrap().path().join("kek"), true).unwrap();
        assert!(other.open("a.pem", &sealed).is_err(), "another KEK cannot open it");
        assert!(Kek::load(&dir.path().join("missing"), false).is_err());
    }

    #[test]
    fn two_key_directories_share_one_pepper_and_every_key_through_the_store() {
        let store = MemoryStore::default();
        let kek_dir = tempfile::tempdir().unwrap();
        let kek = Kek::load(&kek_dir.path().join("kek"), true).unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        share_pepper(&store, &kek, a.path()).unwrap();
        share_pepper(&store, &kek, b.path()).unwrap();
        assert_eq!(
            fs::read(a.path().join(PEPPER)).unwrap(),
            fs::read(b.path().join(PEPPER)).unwrap()
        );
        let kid = super::super::keys::generate(a.path(), super::super::keys::Alg::ES256, 0).unwrap();
        push(&store, &kek, a.path(), None).unwrap();
        assert_eq!(pull(&store, &kek, b.path()).unwrap(), 2, "the key and its metadata");
        assert!(b.path().join(format!("{kid}.pem")).exists());
        assert_eq!(pull(&store, &kek, b.path()).unwrap(), 0, "nothing new the second time");

        // Withdrawn on B; an older copy in the store cannot bring it back.
        let meta_path = b.path().join(format!("{kid}.json"));
        let mut meta: super::super::keys::KeyMeta = serde_json::from_slice(&fs::read(&meta_path).unwrap()).unwrap();
        let old = fs::read(&meta_path).unwrap();
        meta.withdrawn = true;
        meta.retired_at = Some(5);
        fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
        store
            .apply(&[Write::Put(
                format!("{SEALED}{kid}.json"),
                kek.seal(&format!("{kid}.json"), &old).unwrap(),
            )])
            .unwrap();
        pull(&store, &kek, b.path()).unwrap();
        let now: super::super::keys::KeyMeta = serde_json::from_slice(&fs::read(&meta_path).unwrap()).unwrap();
        assert!(now.withdrawn, "a withdrawal is never undone by the store");
        assert_eq!(now.retired_at, Some(5));
    }
}
