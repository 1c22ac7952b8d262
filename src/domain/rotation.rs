//! Secret rotation with overlap: a regenerated secret's predecessor keeps
//! working for a grace period (the `graceSeconds` of
//! `POST /api/v1/apps/{id}/secret`), as Auth0, Okta and Azure allow, so a
//! deployment can roll out the new secret before the old one stops.

use super::application::hash_hex;
use super::secret::SecretHash;
use serde::{Deserialize, Serialize};

/// The longest overlap: seven days.
pub const MAX_GRACE_SECONDS: i64 = 7 * 86_400;

/// How long a replaced secret keeps working: 0 (at once, the default) to
/// [`MAX_GRACE_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grace(i64);

impl Grace {
    pub fn parse(seconds: i64) -> Result<Self, String> {
        if (0..=MAX_GRACE_SECONDS).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err(format!(
                "graceSeconds must be between 0 (the old secret stops at once) and {MAX_GRACE_SECONDS} (7 days); got {seconds}"
            ))
        }
    }

    pub fn seconds(self) -> i64 {
        self.0
    }
}

/// A replaced secret during its overlap (`graceSeconds`).
///
/// Why no new revocation kind: tokens issued *before* the rotation carry
/// `iat < before`, so the ordinary client cut-off "iat < before", written
/// when the overlap ends, revokes exactly them; tokens issued *during* the
/// overlap carry `iat >= before` (the hot entry's `min_iat`) and, when the
/// old secret issued them, an `exp` no later than `until`. So every
/// verifier that follows client cut-offs today handles rotation unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetiringSecret {
    #[serde(with = "hash_hex")]
    pub hash: SecretHash,
    /// When this secret was made (Unix ms).
    pub created_at: i64,
    /// The rotation's cut-off (Unix s): tokens with an earlier `iat` are
    /// revoked when the overlap ends.
    pub before: i64,
    /// The overlap's end (Unix s): the secret stops working then.
    pub until: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_is_zero_to_seven_days() {
        assert_eq!(Grace::parse(0).map(Grace::seconds), Ok(0));
        assert_eq!(Grace::parse(604_800).map(Grace::seconds), Ok(604_800));
        assert!(Grace::parse(604_801).unwrap_err().contains("between 0"));
        assert!(Grace::parse(-1).is_err());
    }
}
