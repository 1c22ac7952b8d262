//! The OAuth side, independent of HTTP: the client-credentials grant and
//! client authentication (RFC 6749 §4.4, §2.3.1), and the abuse limits in
//! front of them (RFC 6585 §4).

pub mod assertion;
pub mod grant;
pub mod replay;
pub mod shared_failures;
pub mod throttle;
