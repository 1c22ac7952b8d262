//! Where a request came from (the connection's peer, or the client a
//! trusted proxy forwarded) and its request id: for abuse limits, the audit
//! log and the access log, on both planes.

use crate::directory::RequestInfo;
use crate::http::SharedState;
use crate::telemetry::{PeerAddr, RequestId};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::net::IpAddr;

/// Where a request came from and its id, from the connection and the
/// access-log middleware.
pub fn request_info(extensions: &axum::http::Extensions) -> RequestInfo {
    RequestInfo {
        source_address: extensions
            .get::<PeerAddr>()
            .map_or_else(|| "unknown".into(), |p| p.0.ip().to_string()),
        request_id: extensions
            .get::<RequestId>()
            .map_or_else(|| "-".into(), |r| r.0.to_string()),
    }
}

/// The caller's source address and request id, for handlers that
/// authenticate by hand (the OAuth endpoints). Kept unformatted: the token
/// endpoint needs only the address, and formats nothing.
pub struct Origin {
    pub source: IpAddr,
    peer: Option<PeerAddr>,
    id: Option<RequestId>,
}

impl Origin {
    /// Where a request came from, for a caller outside the router (no peer:
    /// an in-process request, as the extractor sees one).
    pub fn of(peer: Option<PeerAddr>, id: RequestId) -> Self {
        Origin {
            source: peer.map_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), |p| p.0.ip()),
            peer,
            id: Some(id),
        }
    }

    pub fn request_info(&self) -> RequestInfo {
        RequestInfo {
            source_address: self.peer.map_or_else(|| "unknown".into(), |p| p.0.ip().to_string()),
            request_id: self.id.map_or_else(|| "-".into(), |r| r.0.to_string()),
        }
    }
}

impl FromRequestParts<SharedState> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &SharedState) -> Result<Self, Self::Rejection> {
        Ok(Origin {
            source: source_ip(&parts.extensions),
            peer: parts.extensions.get::<PeerAddr>().copied(),
            id: parts.extensions.get::<RequestId>().copied(),
        })
    }
}

/// The source address used for abuse limits (unspecified when unknown, e.g. in-process).
pub fn source_ip(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<PeerAddr>()
        .map_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), |p| p.0.ip())
}
