//! Request bodies, bounded in size and time, and their media type.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;

pub enum BodyError {
    TooLarge(usize),
    Read(String),
    /// Not all of it arrived within `server.body_read_timeout_seconds`.
    TimedOut(u64),
}

/// Reads a request body of at most `limit` bytes; a declared or actual
/// larger body is refused without reading it all.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let collected = tokio::time::timeout(timeout, collect(http_body_util::Limited::new(body, limit)))
        .await
        .map_err(|_| BodyError::TimedOut(timeout.as_secs()))?;
    match collected {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge(limit)),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}

/// The body's data frames joined (trailers ignored). A body that arrives
/// as one frame, as a token request does, is handed on as it is: no queue
/// and no copy.
async fn collect<B>(mut body: B) -> Result<Bytes, B::Error>
where
    B: axum::body::HttpBody<Data = Bytes> + Unpin,
{
    let mut first = Bytes::new();
    let mut joined: Option<Vec<u8>> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match &mut joined {
            Some(all) => all.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut all = Vec::with_capacity(first.len() + data.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
        }
    }
    Ok(joined.map_or(first, Bytes::from))
}

/// Whether the request's media type (parameters such as `charset` aside)
/// is `expected`, compared case-insensitively without allocating.
pub fn has_media_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(expected)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&'static str]) -> Body {
        let frames = parts
            .iter()
            .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p.as_bytes())));
        Body::from_stream(futures_util::stream::iter(frames.collect::<Vec<_>>()))
    }

    async fn read(body: Body, limit: usize) -> Result<Bytes, BodyError> {
        read_body(&HeaderMap::new(), body, limit, std::time::Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn a_body_in_several_frames_is_joined_in_order() {
        let parts = ["", "grant_type=", "client_", "", "credentials"];
        let Ok(bytes) = read(chunked(&parts), 1024).await else {
            panic!("read failed")
        };
        assert_eq!(&bytes[..], b"grant_type=client_credentials");
        let Ok(one) = read(Body::from("a=b"), 1024).await else {
            panic!("read failed")
        };
        assert_eq!(&one[..], b"a=b");
        let Ok(none) = read(chunked(&[]), 1024).await else {
            panic!("read failed")
        };
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn frames_that_add_up_past_the_limit_are_refused() {
        let parts = ["0123456789"; 4];
        assert!(matches!(read(chunked(&parts), 35).await, Err(BodyError::TooLarge(35))));
        assert!(read(chunked(&parts), 40).await.is_ok());
    }
}
