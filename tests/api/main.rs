//! One integration-test binary: the real server on port 0, a real sled
//! store in a temp dir, real HTTP over loopback.

mod binary;
mod helpers;
mod metadata;
mod tls;
mod token;
