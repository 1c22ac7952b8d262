//! Public JWKs (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2) to verification keys,
//! for the issuer's JWKS and for the keys applications register for
//! `private_key_jwt` (RFC 7523). Each key is pinned to one algorithm: EC
//! P-256 is ES256, OKP Ed25519 is EdDSA, and an RSA key must name RS256 or
//! PS256 in `alg`, because the same RSA key could otherwise be used with
//! either padding.

use crate::jws::{Alg, PublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// Members that only private keys have (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2).
pub const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// RSA moduli below this many bits are refused (RFC 7518 §3.3: 2048 at least).
pub const MIN_RSA_BITS: usize = 2048;
/// ring verifies RSA moduli up to 8192 bits.
pub const MAX_RSA_BITS: usize = 8192;

/// A key the verifier can use, with its `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedJwk {
    pub kid: Option<String>,
    pub key: PublicKey,
}

/// Reads one public JWK; the error says which member is wrong and why.
pub fn parse(jwk: &Value) -> Result<ParsedJwk, String> {
    let obj = jwk.as_object().ok_or("a JWK must be a JSON object")?;
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
        return Err(format!(
            "member \"{m}\" is private key material: register public keys only"
        ));
    }
    let text = |name: &str| -> Result<Option<&str>, String> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("member \"{name}\" must be a string")),
        }
    };
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let v = text(name)?.ok_or_else(|| format!("member \"{name}\" is required"))?;
        URL_SAFE_NO_PAD
            .decode(v)
            .map_err(|_| format!("member \"{name}\" is not base64url without padding"))
    };
    let kid = text("kid")?.map(str::to_owned);
    if kid.as_deref().is_some_and(|k| k.is_empty() || k.len() > 128) {
        return Err("member \"kid\" must be 1 to 128 characters".into());
    }
    if let Some(u) = text("use")?
        && u != "sig"
    {
        return Err(format!("member \"use\" is {u:?}; only \"sig\" keys can authenticate"));
    }
    let alg = match text("alg")? {
        None => None,
        Some(a) => Some(
            Alg::parse(a).ok_or_else(|| format!("member \"alg\" is {a:?}; accepted: ES256, EdDSA, RS256, PS256"))?,
        ),
    };
    let kty = text("kty")?.ok_or("member \"kty\" is required")?;
    let key = match kty {
        "EC" => {
            match text("crv")? {
                Some("P-256") => {}
                other => return Err(format!("EC keys must have crv \"P-256\" (ES256), not {other:?}")),
            }
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates \"x\" and \"y\" must be 32 bytes each".into());
            }
            PublicKey {
                alg: Alg::ES256,
                bytes: [&[4u8][..], &x, &y].concat(),
            }
        }
        "OKP" => {
            match text("crv")? {
                Some("Ed25519") => {}
                other => return Err(format!("OKP keys must have crv \"Ed25519\" (EdDSA), not {other:?}")),
            }
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("Ed25519 member \"x\" must be 32 bytes".into());
            }
            PublicKey {
                alg: Alg::EdDSA,
                bytes: x,
            }
        }
        "RSA" => {
            let alg = alg
                .filter(|a| a.is_rsa())
                .ok_or("RSA keys must name their algorithm: \"alg\" RS256 or PS256")?;
            let (n, e) = (bytes("n")?, bytes("e")?);
            let bits = match n.iter().position(|b| *b != 0) {
                Some(i) => (n.len() - i) * 8 - n[i].leading_zeros() as usize,
                None => 0,
            };
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(format!(
                    "RSA modulus is {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
                ));
            }
            let exponent = (e.len() <= 4).then(|| e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
            if !exponent.is_some_and(|x| x >= 3 && x % 2 == 1) {
                return Err("RSA member \"e\" must be an odd exponent of at least 3, at most 4 bytes".into());
            }
            PublicKey::rsa(alg, &n, &e)
        }
        other => return Err(format!("kty {other:?} is not accepted; use EC, OKP or RSA")),
    };
    if alg.is_some_and(|a| a != key.alg) {
        return Err(format!(
            "member \"alg\" does not match the key: a {kty} key verifies {}",
            key.alg.as_str()
        ));
    }
    Ok(ParsedJwk { kid, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};

    #[test]
    fn private_members_wrong_curves_and_short_rsa_keys_are_refused_with_the_reason() {
        let ec = serde_json::json!({"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"});
        assert!(parse(&ec).unwrap_err().contains("\"d\" is private"));
        let p384 = serde_json::json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA"});
        assert!(parse(&p384).unwrap_err().contains("P-256"));
        let n = URL_SAFE_NO_PAD.encode([0xffu8; 128]);
        let short = serde_json::json!({"kty":"RSA","alg":"RS256","n":n,"e":"AQAB"});
        assert!(parse(&short).unwrap_err().contains("1024 bits"));
        let n = URL_SAFE_NO_PAD.encode([0xffu8; 256]);
        let no_alg = serde_json::json!({"kty":"RSA","n":n,"e":"AQAB"});
        assert!(parse(&no_alg).unwrap_err().contains("RS256 or PS256"));
        let mismatch =
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x":URL_SAFE_NO_PAD.encode([1u8;32]),"alg":"ES256"});
        assert!(parse(&mismatch).unwrap_err().contains("does not match"));
    }

    #[test]
    fn an_rsa_jwk_built_from_n_and_e_verifies_what_its_private_key_signed() {
        // A fixed 2048-bit test key would be long; ring cannot generate RSA
        // keys, so this round-trips through ring's own DER encoding instead.
        let der = include_bytes!("../testdata/rsa-2048.pk8");
        let pair = RsaKeyPair::from_pkcs8(der).unwrap();
        let comps: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
        let jwk = serde_json::json!({"kty":"RSA","alg":"RS256","kid":"k",
            "n": URL_SAFE_NO_PAD.encode(&comps.n), "e": URL_SAFE_NO_PAD.encode(&comps.e)});
        let parsed = parse(&jwk).unwrap();
        assert_eq!(parsed.key.bytes, pair.public_key().as_ref(), "same DER as ring's");
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), b"msg", &mut sig)
            .unwrap();
        assert!(parsed.key.verify(b"msg", &sig));
        assert!(!parsed.key.verify(b"other", &sig));
    }
}
