//! `appauth apply -f FILE`: makes a running server's directory match a
//! [`Manifest`], through the admin API with the caller's credentials, so
//! every authority rule (DESIGN §4) holds as it would for the same calls
//! made by hand. It reads the server, prints the plan (the diff), and
//! unless `--dry-run` makes the changes in a fixed order: scopes (parents
//! first), applications, their rules and federated credentials, then with
//! `--prune` deletions (applications, then scopes, deepest first).
//!
//! It stops at the first refusal and says which change it was and why;
//! nothing after it is tried. Applying the same file again finds nothing
//! to change and says so. The secrets of applications it creates are
//! written once, as each is created, to a file it names (mode 0600,
//! never overwritten) or to standard output; they are shown nowhere else.

use super::Connection;
use super::export::{Tree, apps, federated_spec, rule_spec};
use super::manifest::{AppSpec, FederatedSpec, Manifest, RuleSpec, ScopeSpec, show_path};
use super::session::{Failure, Session, block_on, segment};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  appauth export > directory.yaml
  appauth apply -f directory.yaml --dry-run
  appauth apply -f directory.yaml --secrets-out new-secrets.jsonl
  appauth apply -f directory.yaml --prune   # also deletes what the file does not list")]
pub struct ApplyArgs {
    /// The file (YAML or JSON, as `appauth export` writes it), or - for standard input
    #[arg(long, short = 'f', value_name = "FILE")]
    file: PathBuf,
    /// Print the changes without making them
    #[arg(long)]
    dry_run: bool,
    /// Also delete applications and scopes the file does not list (never
    /// the application apply runs as)
    #[arg(long)]
    prune: bool,
    /// Where the secrets of created applications go, one JSON object per
    /// line (created with mode 0600; an existing file is refused), or - for
    /// standard output. Default: appauth-secrets-<time>.jsonl here
    #[arg(long, value_name = "FILE")]
    secrets_out: Option<PathBuf>,
}

/// One change, as planned and as printed.
#[derive(Debug)]
enum Step {
    CreateScope {
        path: Vec<String>,
        scope_type: String,
    },
    CreateApp(AppSpec),
    UpdateApp {
        name: String,
        body: Value,
        what: Vec<String>,
    },
    RemoveRule {
        app: String,
        id: String,
        rule: RuleSpec,
    },
    AddRule {
        app: String,
        rule: RuleSpec,
    },
    RemoveFederated {
        app: String,
        id: String,
        spec: FederatedSpec,
    },
    AddFederated {
        app: String,
        spec: FederatedSpec,
    },
    DeleteApp {
        name: String,
    },
    DeleteScope {
        path: Vec<String>,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::CreateScope { path, scope_type } => write!(f, "+ scope {} ({scope_type})", show_path(path)),
            Step::CreateApp(spec) => {
                write!(f, "+ application {:?}", spec.name)?;
                if spec.enabled == Some(false) {
                    write!(f, " (disabled)")?;
                }
                Ok(())
            }
            Step::UpdateApp { name, what, .. } => write!(f, "~ application {name:?}: {}", what.join("; ")),
            Step::RemoveRule { app, rule, .. } => {
                write!(f, "- rule {app:?}: {} on {}", rule.role, show_path(&rule.scope))
            }
            Step::AddRule { app, rule } => write!(f, "+ rule {app:?}: {} on {}", rule.role, show_path(&rule.scope)),
            Step::RemoveFederated { app, spec, .. } => {
                write!(f, "- federated credential {app:?}: {}", spec.label())
            }
            Step::AddFederated { app, spec } => write!(f, "+ federated credential {app:?}: {}", spec.label()),
            Step::DeleteApp { name } => write!(
                f,
                "- application {name:?} (and its access rules; its tokens are revoked)"
            ),
            Step::DeleteScope { path } => write!(f, "- scope {}", show_path(path)),
        }
    }
}

pub fn apply(conn: &Connection, args: ApplyArgs) -> Result<(), Failure> {
    let (from, text) = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
        ("standard input".to_owned(), text)
    } else {
        let path = args.file.display().to_string();
        let text =
            std::fs::read_to_string(&args.file).map_err(|e| Failure::Usage(format!("cannot read {path}: {e}")))?;
        (path, text)
    };
    let mut wanted = Manifest::read(&from, &text)?;
    if args.dry_run && args.secrets_out.is_some() {
        return Err(Failure::Usage(
            "--secrets-out has nothing to write with --dry-run".into(),
        ));
    }
    block_on(async {
        let session = Session::open(conn).await?;
        let mut server = Server::read(&session).await?;
        if wanted.scopes.name != server.tree.root.name {
            println!(
                "note: the tenant is named {:?} here and {:?} in {from}; tenants are not renamed, its scopes are matched under it",
                server.tree.root.name, wanted.scopes.name
            );
            rename_root(&mut wanted, &server.tree.root.name);
        }
        let plan = plan(&wanted, &server, args.prune, &session.client_id)?;
        let kept = if args.prune {
            0
        } else {
            server.unlisted(&wanted, &session.client_id)
        };
        for step in &plan {
            println!("{step}");
        }
        if kept > 0 {
            println!("({kept} applications or scopes on the server are not in {from}: kept; --prune deletes them)");
        }
        if plan.is_empty() {
            println!("no changes: the server already matches {from}");
            return Ok(());
        }
        if args.dry_run {
            println!("dry run: {} changes would be made; nothing was changed", plan.len());
            return Ok(());
        }
        // Opened before the first change: a secret must never be made that
        // cannot be written anywhere.
        let creates = plan.iter().any(|s| matches!(s, Step::CreateApp(_)));
        let mut secrets = Secrets::open(creates, args.secrets_out.clone())?;
        for (done, step) in plan.iter().enumerate() {
            if let Err(e) = server.make(&session, step, &mut secrets).await {
                let reason = match e {
                    Failure::Refused(m) | Failure::Usage(m) => m,
                };
                return Err(Failure::Refused(format!(
                    "{step}\n  refused: {reason}\nstopped after {done} of {} changes; nothing after this one was tried",
                    plan.len()
                )));
            }
        }
        println!("applied {} changes", plan.len());
        Ok(())
    })
}

/// The server's directory as `apply` reads it, kept up to date as it
/// creates things (their ids are needed by later changes).
struct Server {
    tree: Tree,
    /// Scope path → type.
    types: BTreeMap<Vec<String>, String>,
    /// Application name → its JSON.
    apps: BTreeMap<String, Value>,
}

impl Server {
    async fn read(session: &Session) -> Result<Self, Failure> {
        let tree = Tree::read(session).await?;
        let mut types = BTreeMap::new();
        tree.root.walk(&mut Vec::new(), &mut |path, s| {
            types.insert(path.to_vec(), s.scope_type.clone());
        });
        let apps = apps(session)
            .await?
            .into_iter()
            .map(|a| (a["name"].as_str().unwrap_or_default().to_owned(), a))
            .collect();
        Ok(Self { tree, types, apps })
    }

    /// How many applications and scopes the server has that the file does not list.
    fn unlisted(&self, wanted: &Manifest, own: &str) -> usize {
        prune_apps(wanted, self, own).len() + prune_scopes(wanted, self).len()
    }

    fn app_id(&self, name: &str) -> Result<String, Failure> {
        self.apps
            .get(name)
            .and_then(|a| a["id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| Failure::Refused(format!("application {name:?} is not on the server")))
    }

    fn scope_id(&self, path: &[String]) -> Result<String, Failure> {
        self.tree
            .ids
            .get(path)
            .cloned()
            .ok_or_else(|| Failure::Refused(format!("scope {} is not on the server", show_path(path))))
    }

    /// Makes one change.
    async fn make(&mut self, session: &Session, step: &Step, secrets: &mut Secrets) -> Result<(), Failure> {
        match step {
            Step::CreateScope { path, scope_type } => {
                let parent = self.scope_id(&path[..path.len() - 1])?;
                let name = path.last().cloned().unwrap_or_default();
                let made = session
                    .call(
                        Method::POST,
                        "/api/v1/scopes",
                        &[],
                        Some(&json!({"type": scope_type, "name": name, "parentId": parent})),
                    )
                    .await?;
                let id = made["id"].as_str().unwrap_or_default().to_owned();
                self.tree.ids.insert(path.clone(), id);
                self.types.insert(path.clone(), scope_type.clone());
            }
            Step::CreateApp(spec) => {
                let made = session
                    .call(Method::POST, "/api/v1/apps", &[], Some(&create_body(spec)))
                    .await?;
                secrets.write(&made)?;
                let id = made["id"].as_str().unwrap_or_default().to_owned();
                if spec.enabled == Some(false) {
                    session
                        .call(Method::PATCH, &app_path(&id), &[], Some(&json!({"enabled": false})))
                        .await?;
                }
                self.apps.insert(spec.name.clone(), made);
            }
            Step::UpdateApp { name, body, .. } => {
                let id = self.app_id(name)?;
                session.call(Method::PATCH, &app_path(&id), &[], Some(body)).await?;
            }
            Step::RemoveRule { id, .. } => {
                let path = format!("/api/v1/authorization/access-rules/{}", segment(id));
                session.call(Method::DELETE, &path, &[], None).await?;
            }
            Step::AddRule { app, rule } => {
                let body = json!({
                    "subjectType": "app",
                    "subjectId": self.app_id(app)?,
                    "roleId": rule.role,
                    "scopeType": self.types.get(&rule.scope).cloned().unwrap_or_default(),
                    "scopeId": self.scope_id(&rule.scope)?,
                });
                session
                    .call(Method::POST, "/api/v1/authorization/access-rules", &[], Some(&body))
                    .await?;
            }
            Step::RemoveFederated { app, id, .. } => {
                let path = format!("{}/federated-credentials/{}", app_path(&self.app_id(app)?), segment(id));
                session.call(Method::DELETE, &path, &[], None).await?;
            }
            Step::AddFederated { app, spec } => {
                let path = format!("{}/federated-credentials", app_path(&self.app_id(app)?));
                session.call(Method::POST, &path, &[], Some(&spec.body())).await?;
            }
            Step::DeleteApp { name } => {
                session
                    .call(Method::DELETE, &app_path(&self.app_id(name)?), &[], None)
                    .await?;
            }
            Step::DeleteScope { path } => {
                let path = format!("/api/v1/scopes/{}", segment(&self.scope_id(path)?));
                session.call(Method::DELETE, &path, &[], None).await?;
            }
        }
        Ok(())
    }
}

fn app_path(id: &str) -> String {
    format!("/api/v1/apps/{}", segment(id))
}

fn rename_root(m: &mut Manifest, name: &str) {
    let old = std::mem::replace(&mut m.scopes.name, name.to_owned());
    for app in &mut m.applications {
        for r in app.rules.iter_mut().flatten() {
            if r.scope.first() == Some(&old) {
                r.scope[0] = name.to_owned();
            }
        }
    }
}

/// The create body of an application: its name and the policy the file sets.
fn create_body(spec: &AppSpec) -> Value {
    let mut body = json!({"name": spec.name});
    if let Some(a) = &spec.allowed_audiences {
        body["allowedAudiences"] = json!(a);
    }
    if let Some(Some(t)) = spec.token_ttl_seconds {
        body["tokenTtlSeconds"] = t.into();
    }
    if let Some(d) = spec.dpop_bound_access_tokens {
        body["dpopBoundAccessTokens"] = d.into();
    }
    if let Some(c) = spec.certificate_bound_access_tokens {
        body["certificateBoundAccessTokens"] = c.into();
    }
    if let Some(Some(k)) = &spec.jwks {
        body["jwks"] = k.clone();
    }
    if let Some(Some(t)) = &spec.tls_client_auth {
        body["tlsClientAuth"] = t.clone();
    }
    body
}

/// A JWK Set or client certificate registration as the server would store
/// it, so a file that spells one differently (PEM instead of thumbprint,
/// members in another order) is not a change.
fn normalized(member: &str, v: &Value) -> Value {
    use crate::domain::client_keys::ClientKeys;
    use crate::domain::tls_client::TlsClientAuth;
    let parsed = match member {
        "jwks" => ClientKeys::parse(v).ok().map(Value::from),
        _ => TlsClientAuth::parse(v).ok().and_then(|t| serde_json::to_value(t).ok()),
    };
    parsed.unwrap_or_else(|| v.clone())
}

/// What PATCH would change of `have` to make it `spec`; `None` when nothing.
fn update(spec: &AppSpec, have: &Value) -> Option<(Value, Vec<String>)> {
    let mut body = json!({});
    let mut what = Vec::new();
    let mut set = |member: &str, want: Value, label: String| {
        if want != have[member] {
            body[member] = want;
            what.push(label);
        }
    };
    let was = |member: &str| have[member].to_string();
    if let Some(e) = spec.enabled {
        set("enabled", e.into(), format!("enabled {} → {e}", was("enabled")));
    }
    if let Some(a) = &spec.allowed_audiences {
        let label = format!("allowedAudiences {} → {}", was("allowedAudiences"), json!(a));
        set("allowedAudiences", json!(a), label);
    }
    if let Some(t) = spec.token_ttl_seconds {
        let want = t.map_or(Value::Null, Value::from);
        let label = format!("tokenTtlSeconds {} → {want}", was("tokenTtlSeconds"));
        set("tokenTtlSeconds", want, label);
    }
    for (member, want) in [
        ("dpopBoundAccessTokens", spec.dpop_bound_access_tokens),
        ("certificateBoundAccessTokens", spec.certificate_bound_access_tokens),
    ] {
        if let Some(b) = want {
            set(member, b.into(), format!("{member} {} → {b}", was(member)));
        }
    }
    for (member, want) in [("jwks", &spec.jwks), ("tlsClientAuth", &spec.tls_client_auth)] {
        if let Some(want) = want {
            let want = want.as_ref().map_or(Value::Null, |v| normalized(member, v));
            let label = match (have[member].is_null(), want.is_null()) {
                (true, _) => format!("{member} added"),
                (false, true) => format!("{member} removed"),
                (false, false) => format!("{member} replaced"),
            };
            set(member, want, label);
        }
    }
    (!what.is_empty()).then_some((body, what))
}

/// The changes that make `server` match `wanted`, in the order they are made.
fn plan(wanted: &Manifest, server: &Server, prune: bool, own: &str) -> Result<Vec<Step>, Failure> {
    let mut steps = Vec::new();
    let mut conflict = None;
    wanted.scopes.walk(&mut Vec::new(), &mut |path, s: &ScopeSpec| match server.types.get(path) {
        None => steps.push(Step::CreateScope {
            path: path.to_vec(),
            scope_type: s.scope_type.clone(),
        }),
        Some(t) if *t != s.scope_type && conflict.is_none() => {
            conflict = Some(format!(
                "scope {} is a {t} on the server and a {} in the file; a scope's type cannot change (delete it, or name the other one differently)",
                show_path(path),
                s.scope_type
            ));
        }
        Some(_) => {}
    });
    if let Some(c) = conflict {
        return Err(Failure::Refused(c));
    }
    let mut rules = Vec::new();
    let mut federated = Vec::new();
    for spec in &wanted.applications {
        let have = server.apps.get(&spec.name);
        match have {
            None => steps.push(Step::CreateApp(spec.clone())),
            Some(have) => {
                if let Some((body, what)) = update(spec, have) {
                    steps.push(Step::UpdateApp {
                        name: spec.name.clone(),
                        body,
                        what,
                    });
                }
            }
        }
        if let Some(want) = &spec.rules {
            let mut had = Vec::new();
            for r in have.and_then(|a| a["accessRules"].as_array()).into_iter().flatten() {
                let rule = rule_spec(r, &server.tree);
                if !want.contains(&rule) {
                    rules.push(Step::RemoveRule {
                        app: spec.name.clone(),
                        id: r["id"].as_str().unwrap_or_default().to_owned(),
                        rule: rule.clone(),
                    });
                }
                had.push(rule);
            }
            for r in want.iter().filter(|r| !had.contains(r)) {
                rules.push(Step::AddRule {
                    app: spec.name.clone(),
                    rule: r.clone(),
                });
            }
        }
        if let Some(want) = &spec.federated_credentials {
            let mut had = Vec::new();
            for c in have
                .and_then(|a| a["federatedCredentials"].as_array())
                .into_iter()
                .flatten()
            {
                let Some(cred) = federated_spec(c) else { continue };
                if !want.contains(&cred) {
                    federated.push(Step::RemoveFederated {
                        app: spec.name.clone(),
                        id: c["id"].as_str().unwrap_or_default().to_owned(),
                        spec: cred.clone(),
                    });
                }
                had.push(cred);
            }
            for c in want.iter().filter(|c| !had.contains(c)) {
                federated.push(Step::AddFederated {
                    app: spec.name.clone(),
                    spec: c.clone(),
                });
            }
        }
    }
    steps.extend(rules);
    steps.extend(federated);
    if prune {
        steps.extend(
            prune_apps(wanted, server, own)
                .into_iter()
                .map(|name| Step::DeleteApp { name }),
        );
        steps.extend(
            prune_scopes(wanted, server)
                .into_iter()
                .map(|path| Step::DeleteScope { path }),
        );
    }
    Ok(steps)
}

/// Applications on the server the file does not list, except the caller's own.
fn prune_apps(wanted: &Manifest, server: &Server, own: &str) -> Vec<String> {
    server
        .apps
        .iter()
        .filter(|(name, a)| a["clientId"] != own && !wanted.applications.iter().any(|s| &s.name == *name))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Scopes on the server the file does not list, deepest first.
fn prune_scopes(wanted: &Manifest, server: &Server) -> Vec<Vec<String>> {
    let mut listed = std::collections::BTreeSet::new();
    wanted.scopes.walk(&mut Vec::new(), &mut |path, _| {
        listed.insert(path.to_vec());
    });
    let mut extra: Vec<Vec<String>> = server.types.keys().filter(|p| !listed.contains(*p)).cloned().collect();
    extra.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    extra
}

/// Where the secrets of created applications go.
struct Secrets {
    out: Option<Box<dyn std::io::Write>>,
}

impl Secrets {
    fn open(needed: bool, to: Option<PathBuf>) -> Result<Self, Failure> {
        if !needed {
            return Ok(Self { out: None });
        }
        let path =
            to.unwrap_or_else(|| PathBuf::from(format!("appauth-secrets-{}.jsonl", crate::domain::now_ms() / 1000)));
        let out: Box<dyn std::io::Write> = if path.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            use std::os::unix::fs::OpenOptionsExt;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Failure::Usage(format!("cannot create the secrets file {}: {e}", path.display())))?;
            println!(
                "the secrets of created applications go to {} (mode 0600): move them to your secret manager and delete it",
                path.display()
            );
            Box::new(file)
        };
        Ok(Self { out: Some(out) })
    }

    fn write(&mut self, created: &Value) -> Result<(), Failure> {
        let line = json!({"name": created["name"], "clientId": created["clientId"], "secret": created["secret"]});
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| Failure::Refused("no secrets file is open".into()))?;
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Failure::Refused(format!("cannot write a created application's secret: {e}")))
    }
}
