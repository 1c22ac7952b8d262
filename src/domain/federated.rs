//! Federated credentials (workload identity federation): an application
//! accepts a token from a trusted external issuer (GitHub Actions, GitLab
//! CI, a Kubernetes API server, SPIFFE) instead of its secret, when the
//! token's `iss` is the credential's issuer, its `sub` is the credential's
//! subject (or matches its pattern), and every condition on other claims
//! holds. The model is Azure's "federated identity credentials".
//!
//! Patterns: `*` matches one or more characters other than `:` and `/`;
//! every other character matches itself. So `repo:acme/*:ref:refs/heads/main`
//! matches every repository of `acme` on `main`, but not
//! `repo:acme/x:ref:refs/heads/main:extra` nor `repo:evil/acme/x:…`: a star
//! never crosses the separators the platforms put between owner, repository,
//! ref, namespace and service account.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// At most this many federated credentials per application.
pub const MAX_PER_APP: usize = 20;
/// At most this many claim conditions per credential.
pub const MAX_CONDITIONS: usize = 16;
const MAX_PATTERN: usize = 256;
const MAX_CLAIM_NAME: usize = 128;
const MAX_DESCRIPTION: usize = 200;
/// Claims the token checks already govern: a condition on them would be
/// misleading (`iss` is the credential's issuer, `sub` its subject).
const RESERVED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// A stored federated credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredential {
    pub id: String,
    /// A configured `federation.issuers` entry's `issuer`.
    pub issuer: String,
    pub subject: Subject,
    /// Claim (a dotted path into nested objects) → exact value or pattern.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// The client ID that added it.
    pub created_by: String,
}

/// How `sub` must look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Subject {
    Exact(String),
    Pattern(String),
}

/// How a token was obtained through a federated credential: the external
/// identity, and which credential accepted it. Goes into the token (`fed`),
/// the audit log and the access log; the external token itself never does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub iss: String,
    pub sub: String,
    pub credential_id: String,
}

/// What an administrator sends; parsed into a [`FederatedCredential`].
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewFederatedCredential {
    /// The external issuer, exactly as configured in `federation.issuers`.
    pub issuer: String,
    /// The token's `sub`, exactly. Send this or `subjectPattern`.
    pub subject: Option<String>,
    /// A pattern for `sub`: `*` matches one or more characters other than `:` and `/`.
    pub subject_pattern: Option<String>,
    /// Claim → exact value or pattern; nested claims by dotted path (`kubernetes.io.namespace`).
    #[serde(default)]
    pub conditions: BTreeMap<String, String>,
    pub description: Option<String>,
}

impl NewFederatedCredential {
    /// Checks the shape; `trusted` are the configured issuers. The error is
    /// the whole sentence a 400 carries.
    pub fn parse(
        self,
        trusted: &[&str],
        id: String,
        created_by: &str,
        now_ms: i64,
    ) -> Result<FederatedCredential, String> {
        if !trusted.contains(&self.issuer.as_str()) {
            return Err(if trusted.is_empty() {
                format!(
                    "issuer {:?} is not trusted: this server trusts no external issuer (an operator lists them in federation.issuers)",
                    self.issuer
                )
            } else {
                format!(
                    "issuer {:?} is not trusted; trusted issuers (federation.issuers): {}",
                    self.issuer,
                    trusted.join(", ")
                )
            });
        }
        let subject = match (self.subject, self.subject_pattern) {
            (Some(s), None) => {
                check_text("subject", &s, MAX_PATTERN)?;
                Subject::Exact(s)
            }
            (None, Some(p)) => {
                check_pattern("subjectPattern", &p)?;
                Subject::Pattern(p)
            }
            _ => return Err("send exactly one of subject and subjectPattern".into()),
        };
        if self.conditions.len() > MAX_CONDITIONS {
            return Err(format!("at most {MAX_CONDITIONS} conditions"));
        }
        for (claim, value) in &self.conditions {
            let valid_name = !claim.is_empty()
                && claim.len() <= MAX_CLAIM_NAME
                && claim
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
                && !claim.starts_with('.')
                && !claim.ends_with('.');
            if !valid_name {
                return Err(format!(
                    "condition claim {claim:?} must be 1 to {MAX_CLAIM_NAME} characters of letters, digits, _ - : and dots between names"
                ));
            }
            if RESERVED_CLAIMS.contains(&claim.as_str()) {
                return Err(format!(
                    "a condition on {claim:?} is not allowed: issuer and subject are the credential's own fields, and aud, exp, nbf, iat, jti are checked for every token"
                ));
            }
            if value.contains('*') {
                check_pattern(&format!("condition {claim:?}"), value)?;
            } else {
                check_text(&format!("condition {claim:?}"), value, MAX_PATTERN)?;
            }
        }
        if let Some(d) = &self.description {
            check_text("description", d, MAX_DESCRIPTION)?;
        }
        Ok(FederatedCredential {
            id,
            issuer: self.issuer,
            subject,
            conditions: self.conditions,
            description: self.description,
            created_at: now_ms,
            created_by: created_by.to_owned(),
        })
    }
}

fn check_text(what: &str, v: &str, max: usize) -> Result<(), String> {
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(format!(
            "{what} must be 1 to {max} characters without control characters"
        ));
    }
    Ok(())
}

fn check_pattern(what: &str, p: &str) -> Result<(), String> {
    check_text(what, p, MAX_PATTERN)?;
    if !p.chars().any(|c| c != '*' && c != ':' && c != '/') {
        return Err(format!(
            "{what} {p:?} must contain something besides * and separators: it would match almost any token of the issuer"
        ));
    }
    if p.contains("**") {
        return Err(format!(
            "{what} {p:?}: ** means nothing more than * here (a star never crosses : or /); write one *"
        ));
    }
    Ok(())
}

/// Whether `text` matches `pattern` (see the module docs). Linear-time
/// dynamic programming: no pattern can make it backtrack exponentially.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // reach[j]: the pattern prefix so far matches text[..j].
    let mut reach = vec![false; t.len() + 1];
    reach[0] = true;
    for &pc in &p {
        let mut next = vec![false; t.len() + 1];
        if pc == '*' {
            // One or more non-separators: start where the prefix matched,
            // or go on from where this star already reached.
            for j in 0..t.len() {
                if (reach[j] || next[j]) && t[j] != ':' && t[j] != '/' {
                    next[j + 1] = true;
                }
            }
        } else {
            for j in 0..t.len() {
                if reach[j] && t[j] == pc {
                    next[j + 1] = true;
                }
            }
        }
        reach = next;
    }
    reach[t.len()]
}

/// The string at a dotted claim path: `kubernetes.io.namespace` is
/// `{"kubernetes.io": {"namespace": …}}` (the longest key that fits wins at
/// each level, since claim names may themselves hold dots).
pub fn claim_at<'a>(claims: &'a Value, path: &str) -> Option<&'a str> {
    let obj = claims.as_object()?;
    if let Some(v) = obj.get(path) {
        return v.as_str();
    }
    let mut best: Option<(&str, &Value)> = None;
    for (k, v) in obj {
        if path.len() > k.len() + 1
            && path.starts_with(k.as_str())
            && path.as_bytes()[k.len()] == b'.'
            && best.is_none_or(|(b, _)| k.len() > b.len())
        {
            best = Some((k, v));
        }
    }
    let (k, v) = best?;
    claim_at(v, &path[k.len() + 1..])
}

fn value_matches(expected: &str, actual: &str) -> bool {
    if expected.contains('*') {
        glob_match(expected, actual)
    } else {
        expected == actual
    }
}

impl FederatedCredential {
    /// Whether a verified external token (its `iss`, `sub` and claims)
    /// satisfies this credential. Conditions need string claims.
    pub fn matches(&self, iss: &str, sub: &str, claims: &Value) -> bool {
        if iss != self.issuer {
            return false;
        }
        let subject_ok = match &self.subject {
            Subject::Exact(s) => s == sub,
            Subject::Pattern(p) => glob_match(p, sub),
        };
        subject_ok
            && self
                .conditions
                .iter()
                .all(|(claim, want)| claim_at(claims, claim).is_some_and(|got| value_matches(want, got)))
    }

    /// For audit summaries.
    pub fn describe(&self) -> String {
        let subject = match &self.subject {
            Subject::Exact(s) => format!("sub {s:?}"),
            Subject::Pattern(p) => format!("sub like {p:?}"),
        };
        let conditions: Vec<String> = self.conditions.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        if conditions.is_empty() {
            format!("{} {subject}", self.issuer)
        } else {
            format!("{} {subject} where {}", self.issuer, conditions.join(", "))
        }
    }

    /// Whether two credentials accept exactly the same tokens.
    pub fn same_rule(&self, other: &FederatedCredential) -> bool {
        self.issuer == other.issuer && self.subject == other.subject && self.conditions == other.conditions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_star_matches_one_or_more_characters_and_never_crosses_a_separator() {
        let gh = "repo:acme/*:ref:refs/heads/main";
        assert!(glob_match(gh, "repo:acme/api:ref:refs/heads/main"));
        assert!(glob_match(gh, "repo:acme/a:ref:refs/heads/main"));
        assert!(!glob_match(gh, "repo:acme/:ref:refs/heads/main"), "one or more");
        assert!(
            !glob_match(gh, "repo:acme/api/x:ref:refs/heads/main"),
            "never crosses /"
        );
        assert!(
            !glob_match(gh, "repo:acme/api:x:ref:refs/heads/main"),
            "never crosses :"
        );
        assert!(
            !glob_match(gh, "repo:acme/api:ref:refs/heads/main:extra"),
            "anchored at the end"
        );
        assert!(
            !glob_match(gh, "xrepo:acme/api:ref:refs/heads/main"),
            "anchored at the start"
        );
        assert!(!glob_match(gh, "repo:evil/acme/api:ref:refs/heads/main"));
        let k8s = "system:serviceaccount:ci-*:deployer";
        assert!(glob_match(k8s, "system:serviceaccount:ci-prod:deployer"));
        assert!(!glob_match(k8s, "system:serviceaccount:ci-:deployer"));
        assert!(!glob_match(k8s, "system:serviceaccount:ci-a:b:deployer"));
        // Several stars, and stars next to literals.
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("a*b*c", "abbbc") && !glob_match("a*b*c", "abc"));
        assert!(glob_match("*-prod", "eu-prod") && !glob_match("*-prod", "-prod"));
        // Exact text: no special characters besides *.
        assert!(glob_match("a?b[c]", "a?b[c]") && !glob_match("a?b", "axb"));
        // Not exponential: a long text against many stars answers at once.
        let long = "a".repeat(1_000);
        assert!(!glob_match("*a*a*a*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn dotted_claim_paths_reach_into_nested_objects_whose_names_hold_dots() {
        let claims = json!({"kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "deployer"}},
            "repository": "acme/api", "run_id": 7});
        assert_eq!(claim_at(&claims, "kubernetes.io.namespace"), Some("ci"));
        assert_eq!(claim_at(&claims, "kubernetes.io.serviceaccount.name"), Some("deployer"));
        assert_eq!(claim_at(&claims, "repository"), Some("acme/api"));
        assert_eq!(claim_at(&claims, "run_id"), None, "only string claims");
        assert_eq!(claim_at(&claims, "kubernetes.io"), None, "an object is no value");
        assert_eq!(claim_at(&claims, "kubernetes"), None);
    }

    fn new(subject: Option<&str>, pattern: Option<&str>, conditions: &[(&str, &str)]) -> NewFederatedCredential {
        NewFederatedCredential {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: subject.map(Into::into),
            subject_pattern: pattern.map(Into::into),
            conditions: conditions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            description: None,
        }
    }

    #[test]
    fn a_credential_needs_a_trusted_issuer_one_subject_and_sane_conditions() {
        let trusted = ["https://token.actions.githubusercontent.com"];
        let ok = |n: NewFederatedCredential| n.parse(&trusted, "id".into(), "c", 0);
        assert!(ok(new(Some("repo:acme/api:ref:refs/heads/main"), None, &[])).is_ok());
        assert!(
            ok(new(
                None,
                Some("repo:acme/*:environment:prod"),
                &[("ref", "refs/heads/*")]
            ))
            .is_ok()
        );
        for (bad, needle) in [
            (new(None, None, &[]), "exactly one"),
            (new(Some("a"), Some("b"), &[]), "exactly one"),
            (new(None, Some("*"), &[]), "besides *"),
            (new(None, Some("*:*/*"), &[]), "besides *"),
            (new(None, Some("repo:**"), &[]), "**"),
            (new(Some("a"), None, &[("sub", "x")]), "not allowed"),
            (new(Some("a"), None, &[("aud", "x")]), "not allowed"),
            (new(Some("a"), None, &[("bad name", "x")]), "condition claim"),
            (new(Some("a"), None, &[("repository", "")]), "1 to 256"),
            (new(Some("a\n"), None, &[]), "control"),
        ] {
            let e = ok(bad).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        let mut other = new(Some("a"), None, &[]);
        other.issuer = "https://evil.example".into();
        assert!(ok(other).unwrap_err().contains("not trusted"));
    }

    #[test]
    fn a_token_matches_only_with_its_issuer_subject_and_every_condition() {
        let trusted = ["https://token.actions.githubusercontent.com"];
        let c = new(
            None,
            Some("repo:acme/*:environment:prod"),
            &[("job_workflow_ref", "acme/pipelines/*")],
        )
        .parse(&trusted, "id".into(), "c", 0)
        .unwrap();
        let iss = "https://token.actions.githubusercontent.com";
        let claims = json!({"job_workflow_ref": "acme/pipelines/.github/workflows/deploy.yml@refs/heads/main"});
        assert!(
            !c.matches(iss, "repo:acme/api:environment:prod", &claims),
            "* never crosses /"
        );
        let claims = json!({"job_workflow_ref": "acme/other/deploy.yml"});
        assert!(!c.matches(iss, "repo:acme/api:environment:prod", &claims));
        let claims = json!({"job_workflow_ref": "acme/pipelines/deploy.yml"});
        assert!(c.matches(iss, "repo:acme/api:environment:prod", &claims));
        assert!(!c.matches("https://other", "repo:acme/api:environment:prod", &claims));
        assert!(!c.matches(iss, "repo:acme/api:environment:staging", &claims));
        assert!(
            !c.matches(iss, "repo:acme/api:environment:prod", &json!({})),
            "a missing claim fails"
        );
    }
}
