//! Signing keys (DESIGN §1, §5): PKCS#8 PEM files in `keys/` named by their
//! RFC 7638 thumbprint (`<kid>.pem`), each with a `<kid>.json` sidecar that
//! records its algorithm and when it starts signing; the published JWKS
//! (RFC 7517); and the pepper for secret hashes.
//!
//! Rotation: a key is *next* before its activation instant (already in the
//! JWKS, so verifiers learn it ahead of time), *active* while it is the newest
//! activated key, *retiring* after a newer key activated and until every
//! token it signed has expired, then *expired* (no longer published).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::domain::secret::Pepper;

pub use appauth_verify::jws::Alg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Active,
    Retiring,
    Expired,
    /// Withdrawn with `appauth keys retire --now` (key compromise): neither
    /// signs nor verifies, and is not published.
    Withdrawn,
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Expired => "expired",
            KeyState::Withdrawn => "withdrawn",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyMeta {
    pub alg: Alg,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds from which this key signs new tokens.
    pub activates_at: i64,
    /// Unix seconds from which it no longer signs (`appauth keys retire`);
    /// it stays published until the tokens it signed have expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
    /// Withdrawn at once (`appauth keys retire --now`, key compromise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

impl KeyMeta {
    /// Whether this key may sign at `now`.
    fn signs_at(&self, now: i64) -> bool {
        !self.withdrawn && self.activates_at <= now && self.retired_at.is_none_or(|r| now < r)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("no signing key in {0} (run `appauth init` or `appauth keys generate`)")]
    NoKey(PathBuf),
}

fn file_err(path: &Path, reason: impl fmt::Display) -> KeyError {
    KeyError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

enum Signer {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    /// RS256 (RSASSA-PKCS1-v1_5 with SHA-256): ~20× an ES256 signature,
    /// so only audiences that need RSA get it (`issuer.audience_algs`).
    Rsa(RsaKeyPair),
}

/// Key sizes `keys generate --alg RS256 --bits` accepts.
pub const RSA_BITS: [usize; 2] = [2048, 3072];

/// A signature: ES256 and EdDSA ones (64 bytes) stay on the stack, as
/// signing runs once per token; RSA ones are on the heap.
pub enum Signature {
    Short([u8; 64]),
    Long(Vec<u8>),
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Short(b) => b,
            Self::Long(v) => v,
        }
    }
}

/// A parsed private key, ready to sign; parsed once at load.
pub struct SigningKey {
    pub kid: String,
    pub meta: KeyMeta,
    signer: Signer,
    public: Vec<u8>,
    /// `base64url({"alg":…,"typ":"at+jwt","kid":…})`, encoded once.
    pub header_b64: String,
    pub jwk: serde_json::Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_pkcs8(der: &[u8], meta_alg: Option<Alg>, path: &Path) -> Result<(Self, Alg), KeyError> {
        let rng = SystemRandom::new();
        let ecdsa =
            || EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng).map(Signer::Ecdsa);
        let ed = || Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map(Signer::Ed25519);
        let rsa = || RsaKeyPair::from_pkcs8(der).map(Signer::Rsa);
        let (signer, alg) = match meta_alg {
            Some(Alg::RS256) => (
                rsa().map_err(|e| file_err(path, format!("not an RSA PKCS#8 key of 2048 to 8192 bits: {e}")))?,
                Alg::RS256,
            ),
            Some(Alg::PS256) => return Err(file_err(path, "PS256 is not a signing algorithm of this server")),
            Some(Alg::ES256) => (
                ecdsa().map_err(|e| file_err(path, format!("not a P-256 PKCS#8 key: {e}")))?,
                Alg::ES256,
            ),
            Some(Alg::EdDSA) => (
                ed().map_err(|e| file_err(path, format!("not an Ed25519 PKCS#8 key: {e}")))?,
                Alg::EdDSA,
            ),
            None => match (ecdsa(), ed(), rsa()) {
                (Ok(s), _, _) => (s, Alg::ES256),
                (_, Ok(s), _) => (s, Alg::EdDSA),
                (_, _, Ok(s)) => (s, Alg::RS256),
                _ => return Err(file_err(path, "neither a P-256, an Ed25519 nor an RSA PKCS#8 key")),
            },
        };
        let public = match &signer {
            Signer::Ecdsa(k) => k.public_key().as_ref().to_vec(),
            Signer::Ed25519(k) => k.public_key().as_ref().to_vec(),
            Signer::Rsa(k) => k.public_key().as_ref().to_vec(),
        };
        let (kid, jwk) = jwk_for(&signer, alg);
        let header = format!(r#"{{"alg":"{}","typ":"at+jwt","kid":"{kid}"}}"#, alg.as_str());
        let key = SigningKey {
            header_b64: URL_SAFE_NO_PAD.encode(header),
            kid,
            meta: KeyMeta {
                alg,
                created_at: 0,
                activates_at: 0,
                retired_at: None,
                withdrawn: false,
            },
            signer,
            public,
            jwk,
        };
        Ok((key, alg))
    }

    pub fn alg(&self) -> Alg {
        self.meta.alg
    }

    /// The length of this key's signatures, in bytes.
    pub fn signature_len(&self) -> usize {
        match &self.signer {
            Signer::Rsa(k) => k.public().modulus_len(),
            Signer::Ecdsa(_) | Signer::Ed25519(_) => 64,
        }
    }

    /// The modulus size of an RSA key.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.signer {
            Signer::Rsa(k) => Some(k.public().modulus_len() * 8),
            _ => None,
        }
    }

    pub fn sign(&self, rng: &SystemRandom, msg: &[u8]) -> Result<Signature, ring::error::Unspecified> {
        let short = |sig: &[u8]| <[u8; 64]>::try_from(sig).map_err(|_| ring::error::Unspecified);
        match &self.signer {
            Signer::Ecdsa(k) => {
                let mut sig = short(k.sign(rng, msg)?.as_ref())?;
                // Canonical low-S: verifiers refuse the other form (see jws).
                appauth_verify::jws::normalize_s(&mut sig);
                Ok(Signature::Short(sig))
            }
            Signer::Ed25519(k) => Ok(Signature::Short(short(k.sign(msg).as_ref())?)),
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, rng, msg, &mut sig)?;
                Ok(Signature::Long(sig))
            }
        }
    }

    pub fn verifying_key(&self) -> crate::token::jwt::PublicKey {
        crate::token::jwt::PublicKey {
            alg: self.meta.alg,
            bytes: self.public.clone(),
        }
    }
}

/// The RFC 7638 thumbprint (used as `kid`) and the public JWK, with the
/// members in the thumbprint's canonical (lexicographic) order.
fn jwk_for(signer: &Signer, alg: Alg) -> (String, serde_json::Value) {
    let (canonical, mut jwk) = match signer {
        Signer::Ecdsa(k) => {
            let public = k.public_key().as_ref();
            let x = URL_SAFE_NO_PAD.encode(&public[1..33]);
            let y = URL_SAFE_NO_PAD.encode(&public[33..65]);
            (
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            )
        }
        Signer::Ed25519(k) => {
            let x = URL_SAFE_NO_PAD.encode(k.public_key().as_ref());
            (
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            )
        }
        Signer::Rsa(k) => {
            let public: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
            let n = URL_SAFE_NO_PAD.encode(&public.n);
            let e = URL_SAFE_NO_PAD.encode(&public.e);
            (
                format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
                serde_json::json!({"kty": "RSA", "n": n, "e": e}),
            )
        }
    };
    let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()));
    jwk["kid"] = kid.clone().into();
    jwk["use"] = "sig".into();
    jwk["alg"] = alg.as_str().into();
    (kid, jwk)
}

/// Keys replace one another within a chain: the default chain (ES256 and
/// EdDSA, one signs at a time for every audience without its own algorithm)
/// and the RSA chain (signs only for audiences in `issuer.audience_algs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Default,
    Rsa,
}

impl Chain {
    pub fn of(alg: Alg) -> Self {
        if alg.is_rsa() { Chain::Rsa } else { Chain::Default }
    }
}

/// A replaced key stays published this long after the last token it signed
/// expired: clock skew between appauth and verifiers.
pub const RETIRE_GRACE_SECONDS: i64 = 5;

/// What identifies the contents of `keys/` cheaply: names, sizes and mtimes
/// of the key files, so a rescan reparses only when something changed.
pub fn dir_fingerprint(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pem" || x == "json"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), m.len(), m.modified().ok()))
        })
        .collect();
    out.sort();
    out
}

/// All keys found in `keys/`, oldest activation first.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    /// Tokens live this long, so a replaced key stays published this long.
    token_ttl: i64,
}

impl KeySet {
    pub fn load(dir: &Path, token_ttl: i64) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self { keys, token_ttl });
            }
            Err(e) => return Err(file_err(dir, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| file_err(dir, e))?.path();
            if path.extension().is_some_and(|e| e == "pem") {
                keys.push(Arc::new(load_key(&path)?));
            }
        }
        keys.sort_by(|a, b| (a.meta.activates_at, &a.kid).cmp(&(b.meta.activates_at, &b.kid)));
        Ok(Self { keys, token_ttl })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key of `chain` exists that has not been withdrawn.
    pub fn has_chain(&self, chain: Chain) -> bool {
        self.keys
            .iter()
            .any(|k| Chain::of(k.alg()) == chain && !k.meta.withdrawn)
    }

    pub fn all(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    /// The key that signs tokens at `now` for audiences without an
    /// algorithm of their own: the newest ES256 or EdDSA key already
    /// activated and neither retired nor withdrawn.
    pub fn signing_key(&self, now: i64) -> Option<&Arc<SigningKey>> {
        self.signing_key_in(Chain::Default, now)
    }

    /// The key that signs at `now` for an audience that asks for `alg`
    /// (`issuer.audience_algs`).
    pub fn signing_key_for(&self, alg: Alg, now: i64) -> Option<&Arc<SigningKey>> {
        self.signing_key_in(Chain::of(alg), now)
    }

    fn signing_key_in(&self, chain: Chain, now: i64) -> Option<&Arc<SigningKey>> {
        self.keys
            .iter()
            .rev()
            .find(|k| Chain::of(k.alg()) == chain && k.meta.signs_at(now))
    }

    pub fn state(&self, index: usize, now: i64) -> KeyState {
        let key = &self.keys[index];
        if key.meta.withdrawn {
            return KeyState::Withdrawn;
        }
        if key.meta.activates_at > now {
            return KeyState::Next;
        }
        if let Some(retired) = key.meta.retired_at.filter(|r| *r <= now) {
            return if now < retired + self.token_ttl + RETIRE_GRACE_SECONDS {
                KeyState::Retiring
            } else {
                KeyState::Expired
            };
        }
        // Keys are sorted by activation, so the next one of the same chain
        // is the successor.
        let chain = Chain::of(key.alg());
        match self.keys[index + 1..]
            .iter()
            .find(|k| Chain::of(k.alg()) == chain && !k.meta.withdrawn)
        {
            Some(successor) if successor.meta.activates_at <= now => {
                if now < successor.meta.activates_at + self.token_ttl + RETIRE_GRACE_SECONDS {
                    KeyState::Retiring
                } else {
                    KeyState::Expired
                }
            }
            _ => KeyState::Active,
        }
    }

    /// Keys that belong in the JWKS at `now` (next, active, retiring).
    pub fn published(&self, now: i64) -> impl Iterator<Item = &Arc<SigningKey>> {
        (0..self.keys.len())
            .filter(move |&i| !matches!(self.state(i, now), KeyState::Expired | KeyState::Withdrawn))
            .map(|i| &self.keys[i])
    }

    /// A key that may have signed a token still valid at `now`.
    pub fn find_published(&self, kid: &str, now: i64) -> Option<&Arc<SigningKey>> {
        self.published(now).find(|k| k.kid == kid)
    }

    pub fn jwks_json(&self, now: i64) -> String {
        let keys: Vec<&serde_json::Value> = self.published(now).map(|k| &k.jwk).collect();
        serde_json::json!({ "keys": keys }).to_string()
    }
}

fn load_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    let block = pem::parse(text.as_bytes()).map_err(|e| file_err(path, format!("not PEM: {e}")))?;
    if block.tag() != "PRIVATE KEY" {
        return Err(file_err(
            path,
            format!("expected a PKCS#8 `PRIVATE KEY` block, found `{}`", block.tag()),
        ));
    }
    let meta_path = path.with_extension("json");
    let meta: Option<KeyMeta> = match fs::read(&meta_path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| file_err(&meta_path, e))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(file_err(&meta_path, e)),
    };
    let (mut key, alg) = SigningKey::from_pkcs8(block.contents(), meta.as_ref().map(|m| m.alg), path)?;
    key.meta = match meta {
        Some(m) => m,
        None => {
            // A key dropped in by hand without metadata: treat it as having
            // been active since the file was written.
            let mtime = fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
            KeyMeta {
                alg,
                created_at: mtime,
                activates_at: mtime,
                retired_at: None,
                withdrawn: false,
            }
        }
    };
    if path.file_stem().is_some_and(|s| s != key.kid.as_str()) {
        tracing::warn!(path = %path.display(), kid = %key.kid, "key file is not named by its thumbprint; using the thumbprint as kid");
    }
    Ok(key)
}

/// Writes `bytes` to `path` with mode 0600, atomically (temp file + rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| file_err(dir, e))
}

/// Creates a key in `dir` that starts signing at `activates_at`; returns its
/// kid. RS256 keys are 2048-bit; see [`generate_sized`].
pub fn generate(dir: &Path, alg: Alg, activates_at: i64) -> Result<String, KeyError> {
    generate_sized(dir, alg, RSA_BITS[0], activates_at)
}

/// As [`generate`], with the modulus size for RS256 (one of [`RSA_BITS`]).
///
/// ring cannot generate RSA keys, so the `rsa` crate finds the primes and
/// writes PKCS#8; ring parses and signs with it like any other key. (The
/// `rsa` crate's own signing has a known timing side channel, RUSTSEC-2023-0071;
/// it never signs here.)
pub fn generate_sized(dir: &Path, alg: Alg, rsa_bits: usize, activates_at: i64) -> Result<String, KeyError> {
    ensure_dir(dir)?;
    let rng = SystemRandom::new();
    let der: Vec<u8> = match alg {
        Alg::ES256 => EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| file_err(dir, "key generation failed"))?,
        Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| file_err(dir, "key generation failed"))?,
        Alg::RS256 => {
            use rsa::pkcs8::EncodePrivateKey;
            if !RSA_BITS.contains(&rsa_bits) {
                return Err(file_err(dir, format!("RSA keys are 2048 or 3072 bits, not {rsa_bits}")));
            }
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, rsa_bits)
                .map_err(|e| file_err(dir, format!("RSA key generation failed: {e}")))?;
            key.to_pkcs8_der()
                .map_err(|e| file_err(dir, format!("RSA key encoding failed: {e}")))?
                .as_bytes()
                .to_vec()
        }
        Alg::PS256 => return Err(file_err(dir, "PS256 is not a signing algorithm of this server")),
    };
    let (key, _) = SigningKey::from_pkcs8(&der, Some(alg), dir)?;
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
    let now = crate::domain::now_ms() / 1000;
    let meta = KeyMeta {
        alg,
        created_at: now,
        activates_at,
        retired_at: None,
        withdrawn: false,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| file_err(dir, e))?;
    // Metadata first: a PEM without its sidecar would be taken as active now.
    let meta_path = dir.join(format!("{}.json", key.kid));
    write_private(&meta_path, &meta_json).map_err(|e| file_err(&meta_path, e))?;
    let pem_path = dir.join(format!("{}.pem", key.kid));
    write_private(&pem_path, pem.as_bytes()).map_err(|e| file_err(&pem_path, e))?;
    Ok(key.kid)
}

/// What `retire` did.
#[derive(Debug)]
pub struct Retired {
    /// When the key stops signing (Unix seconds).
    pub stops_signing_at: i64,
    /// A replacement generated because no other key could take over.
    pub replacement: Option<String>,
}

/// `appauth keys retire KID [--now]`. Without `now`, the key stops signing
/// once another key signs (a replacement is generated when there is none,
/// published `publish_ahead` seconds before it takes over) and stays in the
/// JWKS until its tokens have expired. With `now` (key compromise) it is
/// withdrawn at once: out of the JWKS, refused for verification, and a
/// replacement that signs immediately is generated when needed. A running
/// server picks the change up within a second.
pub fn retire(dir: &Path, kid: &str, now_flag: bool, publish_ahead: i64, token_ttl: i64) -> Result<Retired, KeyError> {
    let meta_path = dir.join(format!("{kid}.json"));
    let pem_path = dir.join(format!("{kid}.pem"));
    if !pem_path.exists() {
        return Err(file_err(&pem_path, "no such key (see `appauth keys list`)"));
    }
    let set = KeySet::load(dir, token_ttl)?;
    let key = set
        .all()
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| file_err(&pem_path, "no such key"))?;
    let mut meta = key.meta.clone();
    let now = crate::domain::now_ms() / 1000;
    // Only a key of the same chain can take over (an RSA key never signs
    // for the default audiences, nor the reverse); a replacement has the
    // retired key's algorithm.
    let chain = Chain::of(key.alg());
    let alg = key.alg();
    let bits = key.rsa_bits().unwrap_or(RSA_BITS[0]);
    let others_sign = set
        .all()
        .iter()
        .filter(|k| k.kid != kid && Chain::of(k.alg()) == chain)
        .filter(|k| !k.meta.withdrawn && k.meta.retired_at.is_none());
    let mut replacement = None;
    let stops_signing_at = if now_flag {
        if !others_sign.clone().any(|k| k.meta.activates_at <= now) {
            replacement = Some(generate_sized(dir, alg, bits, now)?);
        }
        meta.withdrawn = true;
        now
    } else {
        match others_sign.map(|k| k.meta.activates_at).max() {
            Some(at) => at.max(now),
            None => {
                let at = now + publish_ahead;
                replacement = Some(generate_sized(dir, alg, bits, at)?);
                at
            }
        }
    };
    meta.retired_at = Some(meta.retired_at.map_or(stops_signing_at, |r| r.min(stops_signing_at)));
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| file_err(&meta_path, e))?;
    write_private(&meta_path, &json).map_err(|e| file_err(&meta_path, e))?;
    Ok(Retired {
        stops_signing_at,
        replacement,
    })
}

const PEPPER_FILE: &str = "pepper";

/// Loads `keys/pepper`; `None` when it does not exist yet.
pub fn load_pepper(dir: &Path) -> Result<Option<Pepper>, KeyError> {
    let path = dir.join(PEPPER_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = STANDARD
                .decode(text.trim())
                .map_err(|_| file_err(&path, "pepper is not base64"))?;
            if bytes.len() < 32 {
                return Err(file_err(&path, "pepper must be at least 32 bytes"));
            }
            Ok(Some(Pepper::from_bytes(&bytes)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_err(&path, e)),
    }
}

pub fn create_pepper(dir: &Path) -> Result<Pepper, KeyError> {
    ensure_dir(dir)?;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| file_err(dir, "random source failed"))?;
    let path = dir.join(PEPPER_FILE);
    write_private(&path, STANDARD.encode(bytes).as_bytes()).map_err(|e| file_err(&path, e))?;
    Ok(Pepper::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_with_their_thumbprint_as_kid() {
        let dir = tempfile::tempdir().unwrap();
        let es = generate(dir.path(), Alg::ES256, 0).unwrap();
        let ed = generate(dir.path(), Alg::EdDSA, 10).unwrap();
        let set = KeySet::load(dir.path(), 3600).unwrap();
        assert_eq!(set.all().len(), 2);
        assert_eq!(set.all()[0].kid, es);
        assert_eq!(set.all()[1].kid, ed);
        assert_eq!(set.all()[0].jwk["alg"], "ES256");
        assert_eq!(set.all()[1].jwk["kty"], "OKP");
    }

    #[test]
    fn key_states_follow_activation_and_token_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), Alg::ES256, 100).unwrap();
        let second = generate(dir.path(), Alg::ES256, 1000).unwrap();
        let set = KeySet::load(dir.path(), 3600).unwrap();
        assert_eq!(set.state(0, 500), KeyState::Active);
        assert_eq!(set.state(1, 500), KeyState::Next);
        assert_eq!(set.signing_key(500).unwrap().kid, set.all()[0].kid);
        assert_eq!(set.state(0, 2000), KeyState::Retiring);
        assert_eq!(set.signing_key(2000).unwrap().kid, second);
        assert_eq!(set.state(0, 1000 + 3600 + RETIRE_GRACE_SECONDS - 1), KeyState::Retiring);
        assert_eq!(set.state(0, 1000 + 3600 + RETIRE_GRACE_SECONDS), KeyState::Expired);
        assert_eq!(set.published(1000 + 3600 + RETIRE_GRACE_SECONDS).count(), 1);
    }

    #[test]
    fn a_retired_key_stops_signing_but_stays_published_and_a_withdrawn_one_vanishes() {
        let dir = tempfile::tempdir().unwrap();
        let old = generate(dir.path(), Alg::ES256, 0).unwrap();
        let now = crate::domain::now_ms() / 1000;
        let done = retire(dir.path(), &old, false, 0, 3600).unwrap();
        let new = done
            .replacement
            .expect("a replacement is generated when no other key signs");
        let set = KeySet::load(dir.path(), 3600).unwrap();
        let later = now + 5;
        assert_eq!(set.signing_key(later).unwrap().kid, new);
        assert!(set.find_published(&old, later).is_some(), "retiring keys still verify");
        retire(dir.path(), &old, true, 0, 3600).unwrap();
        let set = KeySet::load(dir.path(), 3600).unwrap();
        assert!(
            set.find_published(&old, later).is_none(),
            "withdrawn: not published, not trusted"
        );
        let i = set.all().iter().position(|k| k.kid == old).unwrap();
        assert_eq!(set.state(i, later), KeyState::Withdrawn);
    }

    #[test]
    fn pepper_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_pepper(dir.path()).unwrap().is_none());
        let p = create_pepper(dir.path()).unwrap();
        let q = load_pepper(dir.path()).unwrap().unwrap();
        let s = crate::domain::secret::ClientSecret::generate(&SystemRandom::new());
        assert_eq!(p.hash(&s), q.hash(&s));
    }
}
