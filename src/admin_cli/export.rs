//! `appauth export`: the directory a running server holds, as a
//! [`Manifest`] (YAML or JSON), read through the admin API with the
//! caller's credentials (so it needs apps:read and scopes:read, and shows
//! what those show). Sorted, so two exports of the same directory are
//! byte-identical.

use super::Connection;
use super::manifest::{API_VERSION, AppSpec, FederatedSpec, Format, KIND, Manifest, RuleSpec, ScopeSpec};
use super::session::{Failure, Session, block_on};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  appauth export > directory.yaml
  appauth export -o json > directory.json")]
pub struct ExportArgs {}

pub fn export(conn: &Connection, _args: ExportArgs) -> Result<(), Failure> {
    let format = if conn.output == "json" {
        Format::Json
    } else {
        Format::Yaml
    };
    let manifest = block_on(async {
        let session = Session::open(conn).await?;
        read(&session).await
    })?;
    print!("{}", manifest.write(format)?);
    Ok(())
}

/// The scope tree of a server: each scope by id with its path of names.
pub struct Tree {
    pub root: ScopeSpec,
    /// id → path of names from the tenant.
    pub paths: BTreeMap<String, Vec<String>>,
    /// path → id.
    pub ids: BTreeMap<Vec<String>, String>,
}

impl Tree {
    pub async fn read(session: &Session) -> Result<Self, Failure> {
        let list = session.get("/api/v1/scopes").await?;
        let scopes = list["scopes"].as_array().cloned().unwrap_or_default();
        let field = |s: &Value, k: &str| s[k].as_str().unwrap_or_default().to_owned();
        let root = scopes
            .iter()
            .find(|s| s["parentId"].is_null())
            .ok_or_else(|| Failure::Refused("the server's scope tree has no tenant scope".into()))?;
        let mut children: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for s in &scopes {
            if let Some(p) = s["parentId"].as_str() {
                children.entry(p.to_owned()).or_default().push(s);
            }
        }
        let mut tree = Self {
            root: ScopeSpec {
                name: field(root, "name"),
                scope_type: field(root, "type"),
                children: Vec::new(),
            },
            paths: BTreeMap::new(),
            ids: BTreeMap::new(),
        };
        fn build(
            node: &Value,
            path: Vec<String>,
            children: &BTreeMap<String, Vec<&Value>>,
            tree: &mut Tree,
        ) -> Vec<ScopeSpec> {
            let id = node["id"].as_str().unwrap_or_default().to_owned();
            tree.paths.insert(id.clone(), path.clone());
            tree.ids.insert(path.clone(), id.clone());
            let mut out: Vec<ScopeSpec> = children
                .get(&id)
                .into_iter()
                .flatten()
                .map(|c| {
                    let name = c["name"].as_str().unwrap_or_default().to_owned();
                    let mut child_path = path.clone();
                    child_path.push(name.clone());
                    ScopeSpec {
                        name,
                        scope_type: c["type"].as_str().unwrap_or_default().to_owned(),
                        children: build(c, child_path, children, tree),
                    }
                })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            out
        }
        let kids = build(root, vec![tree.root.name.clone()], &children, &mut tree);
        tree.root.children = kids;
        Ok(tree)
    }
}

/// What the file says of one application the server holds.
pub fn app_spec(app: &Value, tree: &Tree) -> AppSpec {
    let mut rules: Vec<RuleSpec> = app["accessRules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| rule_spec(r, tree))
        .collect();
    rules.sort();
    let mut federated: Vec<FederatedSpec> = app["federatedCredentials"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(federated_spec)
        .collect();
    federated.sort();
    AppSpec {
        name: app["name"].as_str().unwrap_or_default().to_owned(),
        enabled: app["enabled"].as_bool(),
        allowed_audiences: serde_json::from_value(app["allowedAudiences"].clone()).ok().flatten(),
        token_ttl_seconds: Some(app["tokenTtlSeconds"].as_i64()),
        dpop_bound_access_tokens: app["dpopBoundAccessTokens"].as_bool(),
        certificate_bound_access_tokens: app["certificateBoundAccessTokens"].as_bool(),
        jwks: Some(app.get("jwks").filter(|v| !v.is_null()).cloned()),
        tls_client_auth: Some(app.get("tlsClientAuth").filter(|v| !v.is_null()).cloned()),
        rules: Some(rules),
        federated_credentials: Some(federated),
    }
}

/// An access rule of an application's JSON, named by role and scope path.
pub fn rule_spec(rule: &Value, tree: &Tree) -> RuleSpec {
    RuleSpec {
        role: rule["roleId"].as_str().unwrap_or_default().to_owned(),
        scope: tree
            .paths
            .get(rule["scopeId"].as_str().unwrap_or_default())
            .cloned()
            .unwrap_or_default(),
    }
}

/// A federated credential of an application's JSON, without what the
/// server made (id, times).
pub fn federated_spec(credential: &Value) -> Option<FederatedSpec> {
    let mut content = credential.clone();
    for member in ["id", "createdAt", "createdBy"] {
        content.as_object_mut()?.remove(member);
    }
    serde_json::from_value(content).ok()
}

/// Every application the caller can see, by name.
pub async fn apps(session: &Session) -> Result<Vec<Value>, Failure> {
    let q = [("sortBy", "name".to_owned())];
    let all = session.all_pages("/api/v1/apps", &q).await?;
    Ok(all["applications"].as_array().cloned().unwrap_or_default())
}

pub async fn read(session: &Session) -> Result<Manifest, Failure> {
    let tree = Tree::read(session).await?;
    let mut applications: Vec<AppSpec> = apps(session).await?.iter().map(|a| app_spec(a, &tree)).collect();
    applications.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Manifest {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        scopes: tree.root,
        applications,
    })
}
