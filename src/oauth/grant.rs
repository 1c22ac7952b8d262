//! The client-credentials grant (RFC 6749 §4.4), independent of HTTP: given
//! the client's credentials and the optional `scope` / `resource` /
//! `audience`, authenticate the client and issue a token — or say precisely
//! which RFC error applies. Routes only parse and map.

use super::assertion;
use super::replay::{JtiLedger, Use};
use super::throttle::{FailureThrottle, Verdict};
use crate::directory::{Authenticated, Directory};
use crate::domain::secret::ClientSecret;
use crate::error::OAuthError;
use crate::token::{IssueRequest, TokenIssuer};
use std::net::IpAddr;
use std::sync::Arc;

/// How the client presented its credentials (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Body,
}

pub struct GrantRequest<'a> {
    /// Where the request came from (abuse limits are per address).
    pub source: IpAddr,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub method: AuthMethod,
    /// What the request asks for.
    pub asked: Asked<'a>,
}

/// What a token request asks for beyond authentication: narrowing
/// (`scope`), the audience (`resource` or `audience`), and the DPoP key it
/// proved (its thumbprint).
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    pub scope: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub dpop_jkt: Option<&'a str>,
    /// The thumbprint of the client certificate on the connection, if any:
    /// the token is bound to it when the client authenticated with it or
    /// its policy asks for certificate-bound tokens (RFC 8705 §3).
    pub x5t: Option<&'a str>,
}

#[derive(Debug)]
pub struct Granted {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: Option<Arc<str>>,
    pub client_id: Arc<str>,
    /// Set when a federated credential authenticated the client.
    pub federated: Option<crate::domain::federated::Provenance>,
    /// Bound to a DPoP key: `token_type` is `DPoP` (RFC 9449 §5).
    pub dpop: bool,
}

/// Where a federated token was presented: as a client assertion (a refusal
/// is `invalid_client`, RFC 6749 §5.2) or as a token exchange's
/// `subject_token` (`invalid_request`, RFC 8693 §2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FederatedVia {
    Assertion,
    TokenExchange,
}

/// Client authentication (RFC 6749 §2.3.1) for every client-authenticated
/// endpoint. A malformed secret cannot belong to any client, so rejecting it
/// before the lookup tells the caller nothing about which clients exist.
pub fn authenticate(
    directory: &Directory,
    client_id: &str,
    secret: &str,
    method: AuthMethod,
    now_ms: i64,
) -> Result<Authenticated, OAuthError> {
    let challenge = method == AuthMethod::Basic;
    ClientSecret::check_format(secret)
        .map_err(|e| OAuthError::invalid_client(format!("client authentication failed: {e}"), challenge))?;
    directory
        .authenticate(client_id, secret, now_ms.div_euclid(1000))
        .ok_or_else(|| OAuthError::invalid_client("client authentication failed", challenge))
}

pub struct Grants {
    pub directory: Arc<Directory>,
    pub issuer: Arc<TokenIssuer>,
    pub throttle: FailureThrottle,
    /// Remembers used client-assertion `jti`s (RFC 7523 §3).
    pub ledger: Arc<dyn JtiLedger>,
    /// `oauth.max_assertion_lifetime_seconds`.
    pub max_assertion_lifetime: i64,
    /// Trusted external issuers (`federation.issuers`).
    pub federation: Arc<crate::federation::Federation>,
    /// DPoP proofs' single use and nonces (RFC 9449).
    pub dpop: super::dpop::Dpop,
    /// Client certificates (RFC 8705).
    pub mtls: super::mtls::Mtls,
}

impl Grants {
    /// Client authentication behind the abuse limits: a source past its
    /// failure budget is refused before any secret work (no HMAC, no
    /// lookup), and every failure is counted against it.
    pub fn authenticate(
        &self,
        source: IpAddr,
        client_id: &str,
        secret: &str,
        method: AuthMethod,
        now_ms: i64,
    ) -> Result<Authenticated, OAuthError> {
        if let Verdict::Block { retry_after, limit, .. } = self.throttle.check(source, client_id, now_ms) {
            return Err(OAuthError::TooManyRequests { retry_after, limit });
        }
        authenticate(&self.directory, client_id, secret, method, now_ms).inspect_err(|_| {
            self.throttle.failed(source, client_id, now_ms);
        })
    }

    /// `private_key_jwt` client authentication (RFC 7523 §2.2) behind the
    /// same abuse limits. `audiences`: what the assertion's `aud` may name
    /// (the issuer, the endpoint's URL).
    pub async fn authenticate_assertion(
        &self,
        source: IpAddr,
        client_id: Option<&str>,
        assertion: &str,
        audiences: &[&str],
    ) -> Result<Authenticated, OAuthError> {
        // A token from a trusted external issuer is a federated credential,
        // not a key the client registered (RFC 7523 §2.2 allows either).
        if let Some(iss) = crate::federation::Federation::peek_issuer(assertion)
            && self.federation.is_trusted(&iss)
        {
            let client_id = client_id.ok_or_else(|| {
                OAuthError::invalid_client(
                    "client_id is required with a federated client assertion: the external token names its own subject, not the application",
                    false,
                )
            })?;
            return self
                .authenticate_federated(source, client_id, assertion, FederatedVia::Assertion)
                .await;
        }
        let now_ms = crate::domain::now_ms();
        let claimed = client_id
            .map(str::to_owned)
            .or_else(|| assertion::claimed_client(assertion))
            .unwrap_or_default();
        if let Verdict::Block { retry_after, limit, .. } = self.throttle.check(source, &claimed, now_ms) {
            return Err(OAuthError::TooManyRequests { retry_after, limit });
        }
        let checked = assertion::check(
            &self.directory,
            assertion,
            client_id,
            audiences,
            self.max_assertion_lifetime,
            now_ms / 1000,
        )
        .inspect_err(|_| self.throttle.failed(source, &claimed, now_ms))?;
        let client = &checked.entry.client_id;
        match self
            .ledger
            .first_use(client, &checked.jti, checked.issued, checked.exp)
            .await
        {
            Ok(Use::First) => Ok(Authenticated::by_key(checked.entry)),
            Ok(Use::Replay) => {
                self.throttle.failed(source, &claimed, now_ms);
                Err(OAuthError::invalid_client(
                    "client assertion refused: its jti was already used; an assertion is good for one request (RFC 7523 section 3)",
                    false,
                ))
            }
            Ok(Use::BeforeCoverage { since }) => Err(OAuthError::invalid_client(
                format!(
                    "client assertion refused: it was issued (iat) before {since}, when this server's record of used assertions begins (a restart, or Redis lost its data), so it may have been used already; sign a new one"
                ),
                false,
            )),
            Ok(Use::ClientFull { max }) => {
                tracing::warn!(client_id = %client, max, "a client holds the most unexpired assertions it may; refusing its assertions until some expire");
                Err(OAuthError::TooManyRequests {
                    retry_after: 60,
                    limit: super::throttle::Limit::ClientAssertions,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "assertion replay ledger unavailable; refusing the assertion");
                Err(OAuthError::TemporarilyUnavailable(
                    "client assertions cannot be checked for replay right now; retry shortly".into(),
                ))
            }
        }
    }

    /// Authenticates `client_id` by an external token one of its federated
    /// credentials accepts, behind the same abuse limits as secrets.
    pub async fn authenticate_federated(
        &self,
        source: IpAddr,
        client_id: &str,
        token: &str,
        via: FederatedVia,
    ) -> Result<Authenticated, OAuthError> {
        let now_ms = crate::domain::now_ms();
        if let Verdict::Block { retry_after, limit, .. } = self.throttle.check(source, client_id, now_ms) {
            return Err(OAuthError::TooManyRequests { retry_after, limit });
        }
        let refuse = |m: String| match via {
            FederatedVia::Assertion => {
                OAuthError::invalid_client(format!("federated client assertion refused: {m}"), false)
            }
            FederatedVia::TokenExchange => OAuthError::InvalidRequest(format!("subject_token refused: {m}")),
        };
        let identity = match self.federation.verify(token, now_ms / 1000).await {
            Ok(i) => i,
            Err(crate::federation::FederationError::Refused(m)) => {
                self.throttle.failed(source, client_id, now_ms);
                return Err(refuse(m));
            }
            Err(crate::federation::FederationError::Unavailable(m)) => {
                tracing::warn!(error = %m, "federated token refused: the issuer's keys are unavailable");
                return Err(OAuthError::TemporarilyUnavailable(format!(
                    "the external token cannot be checked right now: {m}; retry shortly"
                )));
            }
        };
        // Unknown, disabled and not-accepting read alike: the caller learns
        // nothing about which applications exist.
        let credential = self.directory.entry(client_id).filter(|e| e.enabled).and_then(|e| {
            let id = e
                .federated
                .iter()
                .find(|c| c.matches(&identity.iss, &identity.sub, &identity.claims))
                .map(|c| c.id.clone());
            id.map(|id| (e, id))
        });
        let Some((entry, credential_id)) = credential else {
            self.throttle.failed(source, client_id, now_ms);
            return Err(refuse(format!(
                "no federated credential of client {client_id:?} accepts iss {:?} with sub {:?}",
                identity.iss, identity.sub
            )));
        };
        let mut authenticated = Authenticated::by_key(entry);
        authenticated.federated = Some(crate::domain::federated::Provenance {
            iss: identity.iss,
            sub: identity.sub,
            credential_id,
        });
        Ok(authenticated)
    }

    /// Mutual-TLS client authentication (RFC 8705 §2) behind the same
    /// abuse limits: `client_id` names the application, the connection's
    /// certificate proves it.
    pub fn authenticate_certificate(
        &self,
        source: IpAddr,
        client_id: &str,
        cert: &super::mtls::ClientCertificate,
    ) -> Result<Authenticated, OAuthError> {
        let now_ms = crate::domain::now_ms();
        if let Verdict::Block { retry_after, limit, .. } = self.throttle.check(source, client_id, now_ms) {
            return Err(OAuthError::TooManyRequests { retry_after, limit });
        }
        // Every failure reads the same to the client: the reason would tell
        // a stranger which client IDs exist and what name an application
        // registered (what certificate to ask a CA for). It is logged.
        let checked = match self.directory.entry(client_id).filter(|e| e.enabled) {
            None => Err("client authentication failed".to_owned()),
            Some(entry) => self.mtls.authenticate(&entry, cert).map(|()| entry).map_err(|reason| {
                tracing::info!(client_id, reason, "mutual-TLS client authentication failed");
                "client authentication failed".to_owned()
            }),
        };
        match checked {
            Ok(entry) => {
                let mut authenticated = Authenticated::by_key(entry);
                authenticated.by_certificate = true;
                Ok(authenticated)
            }
            Err(m) => {
                self.throttle.failed(source, client_id, now_ms);
                Err(OAuthError::invalid_client(m, false))
            }
        }
    }

    pub fn client_credentials(&self, req: &GrantRequest<'_>) -> Result<Granted, OAuthError> {
        let now_ms = crate::domain::now_ms();
        let entry = self.authenticate(req.source, req.client_id, req.client_secret, req.method, now_ms)?;
        self.grant_to(&entry, req.method == AuthMethod::Basic, &req.asked, now_ms)
    }

    /// Issues a token to an authenticated client. `challenge`: it used HTTP
    /// Basic (a late refusal then carries `WWW-Authenticate: Basic`).
    pub fn grant_to(
        &self,
        client: &Authenticated,
        challenge: bool,
        asked: &Asked<'_>,
        now_ms: i64,
    ) -> Result<Granted, OAuthError> {
        let Asked {
            scope: scope_param,
            resource,
            audience,
            dpop_jkt,
            x5t,
        } = *asked;
        let entry = &client.entry;
        if entry.policy.dpop_bound_access_tokens && dpop_jkt.is_none() {
            return Err(OAuthError::InvalidDpopProof(
                "this client gets DPoP-bound tokens only: send a DPoP proof (RFC 9449 section 4) with the request"
                    .into(),
            ));
        }
        let x5t = if client.by_certificate || entry.policy.certificate_bound_access_tokens {
            Some(x5t.ok_or_else(|| {
                OAuthError::InvalidRequest(
                    "this client gets certificate-bound tokens only: present its client certificate on the TLS connection (RFC 8705 section 3)".into(),
                )
            })?)
        } else {
            None
        };
        let audience = self.audience(resource, audience, &entry.policy)?;
        let narrowed;
        let (scope, rules_json) = match scope_param {
            None => (entry.all_roles.clone(), &*entry.rules_json),
            Some(requested) => {
                let mut roles: Vec<&str> = Vec::new();
                for r in requested.split(' ').filter(|s| !s.is_empty()) {
                    if !entry.has_role(r) {
                        return Err(OAuthError::InvalidScope(format!(
                            "scope {r:?} is not granted to this client; granted: {}",
                            entry.all_roles.as_deref().unwrap_or("(none)")
                        )));
                    }
                    if !roles.contains(&r) {
                        roles.push(r);
                    }
                }
                if roles.is_empty() {
                    (entry.all_roles.clone(), &*entry.rules_json)
                } else {
                    narrowed = entry.rules_json_for(&roles);
                    (Some(Arc::from(roles.join(" "))), narrowed.as_str())
                }
            }
        };
        let issued = self
            .issuer
            .issue(
                &IssueRequest {
                    client_id: &entry.client_id,
                    audience,
                    scope: scope.as_deref(),
                    access_rules_json: rules_json,
                    min_iat: entry.min_iat,
                    not_after: client.not_after,
                    ttl: entry.policy.token_ttl_seconds,
                    federated: client.federated.as_ref().map(|f| (f.iss.as_str(), f.sub.as_str())),
                    dpop_jkt,
                    x5t,
                },
                now_ms / 1000,
            )
            .map_err(|e| {
                tracing::error!(error = %e, "token signing failed");
                OAuthError::ServerError
            })?;
        // Read after the clock and the signature: if a regenerate, disable or
        // delete retired these credentials meanwhile, its cut-off may not
        // cover this token, so it is never handed out (see `Credential`).
        if entry.credential.is_retired() {
            return Err(OAuthError::invalid_client("client authentication failed", challenge));
        }
        entry.login.touch(now_ms);
        Ok(Granted {
            access_token: issued.access_token,
            expires_in: issued.expires_in,
            scope,
            client_id: entry.client_id.clone(),
            federated: client.federated.clone(),
            dpop: dpop_jkt.is_some(),
        })
    }

    /// The index of the requested audience (RFC 8707 `resource`, or the
    /// `audience` parameter) — one the issuer serves and the application
    /// is allowed — or, when none is asked for, the first the issuer
    /// serves that the application is allowed (the default audience, for
    /// an application allowed it).
    fn audience(
        &self,
        resource: Option<&str>,
        audience: Option<&str>,
        policy: &crate::domain::application::TokenPolicy,
    ) -> Result<usize, OAuthError> {
        let served = self.issuer.audiences();
        let find = |a: &str| {
            let i = served
                .iter()
                .position(|x| x == a)
                .ok_or_else(|| OAuthError::InvalidTarget(format!("{a:?} is not an audience this issuer serves")))?;
            if !policy.allows(a) {
                return Err(OAuthError::InvalidTarget(format!(
                    "this client may not get tokens for {a:?}; an administrator can add it to its allowedAudiences"
                )));
            }
            Ok(i)
        };
        match (resource, audience) {
            (Some(_), Some(_)) => Err(OAuthError::InvalidRequest(
                "send either resource or audience, not both".into(),
            )),
            (Some(r), None) => {
                let absolute = url::Url::parse(r).is_ok_and(|u| u.fragment().is_none());
                if !absolute {
                    return Err(OAuthError::InvalidTarget(format!(
                        "resource {r:?} must be an absolute URI without a fragment (RFC 8707 section 2)"
                    )));
                }
                find(r)
            }
            (None, Some(a)) => find(a),
            (None, None) => served.iter().position(|a| policy.allows(a)).ok_or_else(|| {
                OAuthError::InvalidTarget(
                    "this client is allowed no audience this issuer serves; an administrator can set its allowedAudiences"
                        .into(),
                )
            }),
        }
    }
}
