//! `application/x-www-form-urlencoded` bodies (HTML §4.10.21.7) parsed the
//! way OAuth requires (RFC 6749 §3.2): values must be UTF-8, an empty value
//! counts as absent, and a known parameter sent twice is an error rather
//! than silently first- or last-wins.

use percent_encoding::percent_decode;
use std::borrow::Cow;

#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    NotUtf8,
    Duplicate(String),
}

impl FormError {
    pub fn describe(&self) -> String {
        match self {
            FormError::NotUtf8 => "request body is not valid UTF-8 after form decoding".into(),
            FormError::Duplicate(name) => {
                format!("parameter {name:?} must not be sent more than once (RFC 6749 section 3.2)")
            }
        }
    }
}

/// Form-decodes one component: `+` is a space, then percent-decoding.
pub fn decode_component(raw: &[u8]) -> Result<Cow<'_, str>, FormError> {
    // Most components (`grant_type=client_credentials`) need no decoding:
    // borrowed, they cost no allocation.
    if !raw.iter().any(|&b| b == b'+' || b == b'%') {
        return std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|_| FormError::NotUtf8);
    }
    let plus_free: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect())
    } else {
        Cow::Borrowed(raw)
    };
    let bytes: Vec<u8> = percent_decode(&plus_free).collect();
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Cow::Owned(s)),
        Err(_) => Err(FormError::NotUtf8),
    }
}

/// Parses a form body, keeping only the `known` parameter names; returns
/// their values in the order of `known`.
pub fn parse<const N: usize>(body: &[u8], known: [&str; N]) -> Result<[Option<String>; N], FormError> {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode_component(k)?;
        let value = decode_component(v)?;
        if let Some(i) = known.iter().position(|n| *n == name) {
            if value.is_empty() {
                continue;
            }
            if out[i].is_some() {
                return Err(FormError::Duplicate(name.into_owned()));
            }
            out[i] = Some(value.into_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_and_ignores_unknown() {
        let [a, b] = parse(b"a=x+y%2Bz&junk=1&junk=2&b=%E2%9C%93", ["a", "b"]).unwrap();
        assert_eq!(a.as_deref(), Some("x y+z"));
        assert_eq!(b.as_deref(), Some("✓"));
    }

    #[test]
    fn empty_values_count_as_absent_and_duplicates_fail() {
        let [a] = parse(b"a=&a=1", ["a"]).unwrap();
        assert_eq!(a.as_deref(), Some("1"));
        assert_eq!(parse(b"a=1&a=2", ["a"]), Err(FormError::Duplicate("a".into())));
        assert_eq!(parse(b"a=%FF", ["a"]), Err(FormError::NotUtf8));
        assert_eq!(parse(b"a=\xff", ["a"]), Err(FormError::NotUtf8));
    }
}
