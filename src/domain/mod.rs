//! Domain types: the things appauth manages and the rules they obey.
//!
//! Everything here is parsed, not validated: a value of one of these types is
//! known to be well-formed, so the rest of the crate never re-checks it.

pub mod access_rule;
pub mod application;
pub mod authority;
pub mod client_keys;
pub mod federated;
pub mod role;
pub mod rotation;
pub mod scope;
pub mod secret;
pub mod tls_client;

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, the store's unit of time.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats a stored instant as RFC 3339 UTC with milliseconds, the API's time format.
/// Always three fraction digits (`time`'s RFC 3339 format drops trailing
/// zeros, so `.120` came out as `.12` and `.000` as nothing).
pub fn format_ms(ms: i64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

/// A fresh random identifier (UUID v4) for stored records.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// True when `s` has the shape of an id this server hands out (a hyphenated
/// UUID), so that hostile path segments are refused before any lookup.
pub fn is_id(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

/// An id as this server stores it: hex digits are case-insensitive on input
/// (RFC 9562 §4) and stored in lower case, so `3F2C…` names the same record
/// as `3f2c…`. `None` when `s` is not an id.
pub fn parse_id(s: &str) -> Option<String> {
    is_id(s).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_instant_has_three_fraction_digits() {
        assert_eq!(super::format_ms(1_796_000_000_120), "2026-11-30T00:53:20.120Z");
        assert_eq!(super::format_ms(1_796_000_000_000), "2026-11-30T00:53:20.000Z");
        assert_eq!(super::format_ms(1_796_000_000_001), "2026-11-30T00:53:20.001Z");
    }
}
