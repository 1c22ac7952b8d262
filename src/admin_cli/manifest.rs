//! The directory as a file (`appauth export`, `appauth apply`): scopes,
//! applications with their token policy, keys, federated credentials and
//! access rules, never a secret and never a server-made id, so a file
//! exported from one server describes the same directory on another.
//!
//! Objects are named by what an operator names them by: an application by
//! its name (unique), a scope by its path of names from the tenant (names
//! are unique among siblings), a rule by (role, scope path), a federated
//! credential by its content. A member left out of an application means
//! "not managed by this file" (left as it is; the server's default on
//! create); `rules` and `federatedCredentials`, when present, are the whole
//! set. `export` writes every member, so its output manages everything.

use super::session::Failure;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The `apiVersion` this build reads and writes.
pub const API_VERSION: &str = "appauth/v1";
pub const KIND: &str = "Directory";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    pub api_version: String,
    pub kind: String,
    /// The tenant scope and the tree under it.
    pub scopes: ScopeSpec,
    #[serde(default)]
    pub applications: Vec<AppSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub scope_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ScopeSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_audiences: Option<Vec<String>>,
    /// `null`: the issuer's token lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub token_ttl_seconds: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_bound_access_tokens: Option<bool>,
    /// `private_key_jwt` public keys (a JWK Set); `null` removes them.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub jwks: Option<Option<Value>>,
    /// The client certificate registration; `null` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub tls_client_auth: Option<Option<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_credentials: Option<Vec<FederatedSpec>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A role id (`appauth roles list`).
    pub role: String,
    /// The scope's path of names, from the tenant's.
    pub scope: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FederatedSpec {
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl FederatedSpec {
    /// The API's body for adding it.
    pub fn body(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A short description for a plan line.
    pub fn label(&self) -> String {
        let sub = match (&self.subject, &self.subject_pattern) {
            (Some(s), _) => format!("sub {s:?}"),
            (None, Some(p)) => format!("sub matching {p:?}"),
            (None, None) => "any sub".into(),
        };
        let mut out = format!("{} {sub}", self.issuer);
        for (k, v) in &self.conditions {
            out.push_str(&format!(", {k}={v:?}"));
        }
        out
    }
}

/// Tells a member written as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The format a file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Manifest {
    pub fn write(&self, format: Format) -> Result<String, Failure> {
        match format {
            Format::Json => serde_json::to_string_pretty(self)
                .map(|s| s + "\n")
                .map_err(|e| Failure::Refused(format!("cannot write JSON: {e}"))),
            Format::Yaml => {
                serde_yaml_ng::to_string(self).map_err(|e| Failure::Refused(format!("cannot write YAML: {e}")))
            }
        }
    }

    /// Reads a file written by `export` or by hand (YAML, of which JSON is
    /// a subset), and checks what can be checked without a server.
    pub fn read(from: &str, text: &str) -> Result<Self, Failure> {
        let m: Self = serde_yaml_ng::from_str(text).map_err(|e| Failure::Usage(format!("{from}: {e}")))?;
        if m.api_version != API_VERSION || m.kind != KIND {
            return Err(Failure::Usage(format!(
                "{from}: expected apiVersion {API_VERSION:?} and kind {KIND:?}, found {:?} and {:?}",
                m.api_version, m.kind
            )));
        }
        m.check().map_err(|e| Failure::Usage(format!("{from}: {e}")))?;
        Ok(m)
    }

    /// Names that would make the file ambiguous.
    fn check(&self) -> Result<(), String> {
        if self.scopes.scope_type != "tenant" {
            return Err(format!(
                "scopes: the root is the tenant (type: tenant), not a {}",
                self.scopes.scope_type
            ));
        }
        let mut paths = std::collections::BTreeSet::new();
        let mut duplicate = None;
        self.scopes.walk(&mut Vec::new(), &mut |path, _| {
            if !paths.insert(path.to_vec()) && duplicate.is_none() {
                duplicate = Some(path.to_vec());
            }
        });
        if let Some(p) = duplicate {
            return Err(format!("scopes: {} is listed twice", show_path(&p)));
        }
        let mut names = std::collections::BTreeSet::new();
        for app in &self.applications {
            if !names.insert(&app.name) {
                return Err(format!("applications: {:?} is listed twice", app.name));
            }
            if let Some(rules) = &app.rules {
                for (i, r) in rules.iter().enumerate() {
                    if !paths.contains(&r.scope) {
                        return Err(format!(
                            "applications: {:?}: rule {} names the scope {}, which the file does not list",
                            app.name,
                            i + 1,
                            show_path(&r.scope)
                        ));
                    }
                    if rules[..i].contains(r) {
                        return Err(format!(
                            "applications: {:?}: the rule {} on {} is listed twice",
                            app.name,
                            r.role,
                            show_path(&r.scope)
                        ));
                    }
                }
            }
            if let Some(creds) = &app.federated_credentials {
                for (i, c) in creds.iter().enumerate() {
                    if creds[..i].contains(c) {
                        return Err(format!(
                            "applications: {:?}: the federated credential {} is listed twice",
                            app.name,
                            c.label()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

impl ScopeSpec {
    /// Calls `f` with each scope's path, parents before children.
    pub fn walk<'a>(&'a self, path: &mut Vec<String>, f: &mut impl FnMut(&[String], &'a ScopeSpec)) {
        path.push(self.name.clone());
        f(path, self);
        for c in &self.children {
            c.walk(path, f);
        }
        path.pop();
    }
}

/// A scope path as people read it: `Tenant › Cluster: A`.
pub fn show_path(path: &[String]) -> String {
    path.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(" › ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
apiVersion: appauth/v1
kind: Directory
scopes:
  name: Tenant
  type: tenant
  children:
  - name: "Cluster: A"
    type: cluster
applications:
- name: ci-job
  tokenTtlSeconds: null
  rules:
  - role: l1-researcher
    scope: [Tenant, "Cluster: A"]
"#;

    #[test]
    fn a_member_written_as_null_differs_from_one_left_out() {
        let m = Manifest::read("f", FILE).unwrap();
        assert_eq!(m.applications[0].token_ttl_seconds, Some(None));
        assert_eq!(m.applications[0].jwks, None);
        let again = Manifest::read("f", &m.write(Format::Yaml).unwrap()).unwrap();
        assert_eq!(again, m);
        let json = Manifest::read("f", &m.write(Format::Json).unwrap()).unwrap();
        assert_eq!(json, m);
    }

    #[test]
    fn ambiguous_or_unknown_content_is_refused_with_where() {
        for (text, says) in [
            (FILE.replace("tokenTtlSeconds", "tokenTTL"), "unknown field `tokenTTL`"),
            (
                FILE.replace("[Tenant, \"Cluster: A\"]", "[Tenant, B]"),
                "\"Tenant\" › \"B\"",
            ),
            (FILE.replace("kind: Directory", "kind: Apps"), "kind"),
            (
                FILE.replace(
                    "  - role: l1-researcher\n    scope: [Tenant, \"Cluster: A\"]\n",
                    "  - role: r\n    scope: [Tenant]\n  - role: r\n    scope: [Tenant]\n",
                ),
                "listed twice",
            ),
            (FILE.replace("type: tenant", "type: cluster"), "the root is the tenant"),
        ] {
            match Manifest::read("f", &text) {
                Err(Failure::Usage(m)) => assert!(m.contains(says), "{m}"),
                other => panic!("{says}: {other:?}"),
            }
        }
    }
}
