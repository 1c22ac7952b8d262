//! One integration-test binary: the real server on port 0, a real sled
//! store in a temp dir, real HTTP over loopback.

mod access_rules;
mod admin_auth;
mod admin_cli;
mod apps;
mod audiences;
mod audit;
mod authority;
mod binary;
mod cluster;
mod console;
mod dpop;
mod durability;
mod faults;
mod federation;
mod gitops;
mod helpers;
mod layout;
mod listing;
mod metadata;
mod mtls;
mod oidc_issuer;
mod openapi;
mod package;
mod planes;
mod private_key_jwt;
mod query_prop;
mod revocation;
mod rotation;
mod rs256;
mod scopes;
mod store;
mod throttle;
mod tls;
mod token;
mod verify;
