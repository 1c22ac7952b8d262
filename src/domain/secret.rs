//! Client secrets (DESIGN §1): generation, wire format, keyed hashing.
//!
//! Secrets are server-generated with 256 bits of entropy, so they are stored
//! as HMAC-SHA256(pepper, secret) instead of with a password hash: bcrypt or
//! argon2 exist to slow down guessing of low-entropy passwords and would cost
//! 10–200 ms per token request for no gain here. (This is also why oxide-auth's
//! registrar, which hashes with argon2 behind a synchronous trait, is not used.)
//!
//! Wire format: `aas_` + 43 base64url characters (32 random bytes) + 6
//! base64url characters of CRC-32 over the body. The prefix lets secret
//! scanners recognise a leaked secret; the checksum rejects typos and garbage
//! before any lookup.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

pub const SECRET_PREFIX: &str = "aas_";
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;
pub const SECRET_LEN: usize = SECRET_PREFIX.len() + BODY_LEN + CHECK_LEN;

/// A client secret in its wire form. `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    #[error("client secret must start with `aas_`")]
    Prefix,
    #[error("client secret must be {SECRET_LEN} characters long")]
    Length,
    #[error("client secret contains characters outside base64url")]
    Alphabet,
    #[error("client secret checksum does not match (mistyped or truncated?)")]
    Checksum,
}

impl ClientSecret {
    pub fn generate(rng: &SystemRandom) -> Self {
        let mut raw = [0u8; 32];
        // SystemRandom only fails when the OS has no entropy source at all,
        // in which case no secret can be issued safely.
        rng.fill(&mut raw).expect("operating system random source failed");
        let body = URL_SAFE_NO_PAD.encode(raw);
        let mut s = String::with_capacity(SECRET_LEN);
        s.push_str(SECRET_PREFIX);
        s.push_str(&body);
        // Base64url output is ASCII.
        s.extend(checksum(&body).map(char::from));
        Self(s)
    }

    pub fn parse(s: &str) -> Result<Self, SecretFormatError> {
        Self::check_format(s)?;
        Ok(Self(s.to_owned()))
    }

    /// What [`Self::parse`] checks, without keeping a copy: the token
    /// endpoint's check of a presented secret.
    pub fn check_format(s: &str) -> Result<(), SecretFormatError> {
        let rest = s.strip_prefix(SECRET_PREFIX).ok_or(SecretFormatError::Prefix)?;
        if s.len() != SECRET_LEN {
            return Err(SecretFormatError::Length);
        }
        if !rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SecretFormatError::Alphabet);
        }
        let (body, check) = rest.split_at(BODY_LEN);
        if checksum(body) != *check.as_bytes() {
            return Err(SecretFormatError::Checksum);
        }
        Ok(())
    }

    /// The secret itself, for the one response that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The CRC-32 of the body in base64url: four bytes are always six
/// characters, so it fits on the stack (checked once per token request).
fn checksum(body: &str) -> [u8; CHECK_LEN] {
    let mut out = [0u8; CHECK_LEN];
    // Cannot fail: the output is exactly CHECK_LEN long.
    let _ = URL_SAFE_NO_PAD.encode_slice(crc32fast::hash(body.as_bytes()).to_be_bytes(), &mut out);
    out
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([REDACTED])")
    }
}

/// HMAC-SHA256 tag of a secret under the pepper; what the store keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([REDACTED])")
    }
}

impl SecretHash {
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A public handle for the secret (12 hex digits), so people can tell
    /// which of an application's secrets is which. Derived by SHA-256 from
    /// the keyed tag: it reveals nothing about the secret and needs no storage.
    pub fn id(&self) -> String {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"appauth secret id\0".as_slice(), &self.0].concat(),
        );
        digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(hex, 16).ok()?;
        }
        Some(Self(out))
    }
}

/// Which of an application's secrets a presented one matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    Current,
    Previous,
    None,
}

/// The server-wide HMAC key. It lives in `keys/pepper`, outside the store, so
/// a copy of the store alone does not allow checking guesses offline.
pub struct Pepper {
    key: hmac::Key,
    /// Tag checked for unknown clients so they cost the same as known ones.
    dummy: SecretHash,
}

impl Pepper {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let mut dummy = [0u8; 32];
        dummy.copy_from_slice(hmac::sign(&key, b"appauth unknown client").as_ref());
        Self {
            key,
            dummy: SecretHash(dummy),
        }
    }

    /// A key for another purpose, derived from the pepper (HMAC with a
    /// label): the same on every instance that shares the pepper.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.key, label).as_ref());
        out
    }

    pub fn hash(&self, secret: &ClientSecret) -> SecretHash {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.key, secret.0.as_bytes()).as_ref());
        SecretHash(out)
    }

    /// Constant-time check of `secret` against `stored`; with `None` (unknown
    /// client) the same work is done against a dummy tag and `false` returned.
    pub fn verify(&self, secret: &str, stored: Option<&SecretHash>) -> bool {
        self.verify_either(secret, stored, None) == Matched::Current
    }

    /// As [`Self::verify`], against the current tag and, during a rotation's
    /// overlap, the previous one. One HMAC either way; both comparisons are
    /// constant-time and always made, so timing does not tell which matched.
    pub fn verify_either(&self, secret: &str, current: Option<&SecretHash>, previous: Option<&SecretHash>) -> Matched {
        use subtle::ConstantTimeEq;
        let tag = hmac::sign(&self.key, secret.as_bytes());
        let tag = tag.as_ref();
        let is_current = tag.ct_eq(&current.unwrap_or(&self.dummy).0);
        let is_previous = tag.ct_eq(&previous.unwrap_or(&self.dummy).0);
        match (bool::from(is_current), bool::from(is_previous)) {
            (true, _) if current.is_some() => Matched::Current,
            (_, true) if previous.is_some() => Matched::Previous,
            _ => Matched::None,
        }
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_differ() {
        let rng = SystemRandom::new();
        let a = ClientSecret::generate(&rng);
        let b = ClientSecret::generate(&rng);
        assert_ne!(a, b);
        assert_eq!(ClientSecret::parse(a.expose()), Ok(a.clone()));
        assert_eq!(a.expose().len(), SECRET_LEN);
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let s = ClientSecret::generate(&SystemRandom::new());
        let mut chars: Vec<char> = s.expose().chars().collect();
        chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(ClientSecret::parse(&typo), Err(SecretFormatError::Checksum));
    }

    #[test]
    fn malformed_secrets_name_their_defect() {
        assert_eq!(ClientSecret::parse("nope"), Err(SecretFormatError::Prefix));
        assert_eq!(ClientSecret::parse("aas_short"), Err(SecretFormatError::Length));
        let bad = format!("aas_{}", "!".repeat(BODY_LEN + CHECK_LEN));
        assert_eq!(ClientSecret::parse(&bad), Err(SecretFormatError::Alphabet));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let s = ClientSecret::generate(&SystemRandom::new());
        assert!(!format!("{s:?}").contains(&s.expose()[4..]));
        let p = Pepper::from_bytes(b"k");
        assert!(!format!("{:?}", p.hash(&s)).contains(&p.hash(&s).to_hex()));
    }

    #[test]
    fn verification_accepts_only_the_hashed_secret() {
        let rng = SystemRandom::new();
        let pepper = Pepper::from_bytes(&[7; 32]);
        let s = ClientSecret::generate(&rng);
        let other = ClientSecret::generate(&rng);
        let h = pepper.hash(&s);
        assert!(pepper.verify(s.expose(), Some(&h)));
        assert!(!pepper.verify(other.expose(), Some(&h)));
        assert!(!pepper.verify(s.expose(), None));
        assert_eq!(SecretHash::from_hex(&h.to_hex()), Some(h));
    }

    #[test]
    fn either_secret_of_a_rotation_is_told_apart_and_a_third_matches_neither() {
        let rng = SystemRandom::new();
        let pepper = Pepper::from_bytes(&[7; 32]);
        let (new, old, other) = (
            ClientSecret::generate(&rng),
            ClientSecret::generate(&rng),
            ClientSecret::generate(&rng),
        );
        let (hn, ho) = (pepper.hash(&new), pepper.hash(&old));
        assert_eq!(
            pepper.verify_either(new.expose(), Some(&hn), Some(&ho)),
            Matched::Current
        );
        assert_eq!(
            pepper.verify_either(old.expose(), Some(&hn), Some(&ho)),
            Matched::Previous
        );
        assert_eq!(
            pepper.verify_either(other.expose(), Some(&hn), Some(&ho)),
            Matched::None
        );
        assert_eq!(pepper.verify_either(old.expose(), Some(&hn), None), Matched::None);
        assert_eq!(pepper.verify_either(new.expose(), None, None), Matched::None);
    }

    #[test]
    fn secret_ids_are_stable_short_and_differ_between_secrets() {
        let pepper = Pepper::from_bytes(&[7; 32]);
        let rng = SystemRandom::new();
        let (a, b) = (
            pepper.hash(&ClientSecret::generate(&rng)),
            pepper.hash(&ClientSecret::generate(&rng)),
        );
        assert_eq!(a.id(), a.id());
        assert_eq!(a.id().len(), 12);
        assert_ne!(a.id(), b.id());
        assert!(!a.to_hex().contains(&a.id()), "the id is not a slice of the stored tag");
    }
}
