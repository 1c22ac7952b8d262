//! The admin CLI (DESIGN §2): `appauth apps|rules|scopes|roles|audit …`
//! call a running server's admin API, as an operator would with curl, but
//! with the credentials read from a file or standard input (never a flag
//! value, which would land in shell history and `ps`), a token fetched by
//! the client-credentials grant, and the answer printed as a table or JSON.
//!
//! Exit codes: 0 done, 1 the server refused (its message is printed),
//! 2 usage (bad arguments, unreadable credentials).

mod apply;
mod backup;
mod client;
mod export;
mod manifest;
mod session;
mod table;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

pub use apply::{ApplyArgs, apply};
pub use backup::{BackupArgs, backup};
pub use export::{ExportArgs, export};
pub use session::Failure;

/// What every admin command takes.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Base URL of the server
    #[arg(long, env = "APPAUTH_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// `{"clientId","secret"}` of an application with the needed role (the
    /// shape of initial-admin.json), or `-` to read it from standard input.
    /// No default: the initial credentials file is meant to be deleted
    #[arg(long, env = "APPAUTH_CREDENTIALS", value_name = "FILE", global = true)]
    pub credentials: Option<PathBuf>,
    /// `table` for people; `json` or `yaml` for scripts (the API's own answer)
    #[arg(long, short = 'o', default_value = "table", value_parser = ["table", "json", "yaml"], global = true)]
    pub output: String,
    /// PEM certificate(s) of a private CA the server's HTTPS certificate
    /// chains to (trusted besides the system's roots)
    #[arg(long, env = "APPAUTH_CACERT", value_name = "FILE", global = true)]
    pub cacert: Option<PathBuf>,
}

/// Filters, search, sort and paging, as the list endpoints take them.
#[derive(Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// A filter FIELD<OP>VALUE on a column of this list, OP one of == != <= >= =@
    /// (contains) !@ =^ (starts with) =$ (ends with); repeatable, all must hold
    #[arg(long = "filter", value_name = "EXPR")]
    filters: Vec<String>,
    /// Case-insensitive text search over the visible columns
    #[arg(long)]
    search: Option<String>,
    /// Column to sort by, e.g. `name` or `createdAt`
    #[arg(long)]
    sort: Option<String>,
    /// Sort descending
    #[arg(long)]
    desc: bool,
    /// At most this many rows
    #[arg(long)]
    limit: Option<u32>,
    /// Skip this many rows
    #[arg(long)]
    offset: Option<u32>,
    /// Every matching row, page after page (not with --limit or --offset)
    #[arg(long, conflicts_with_all = ["limit", "offset"])]
    all: bool,
}

impl ListArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q: Vec<(&'static str, String)> = self.filters.iter().map(|f| ("filterBy", f.clone())).collect();
        q.extend(self.search.clone().map(|s| ("search", s)));
        q.extend(self.sort.clone().map(|s| ("sortBy", s)));
        if self.desc {
            q.push(("sortOrder", "desc".into()));
        }
        q.extend(self.limit.map(|n| ("limit", n.to_string())));
        q.extend(self.offset.map(|n| ("offset", n.to_string())));
        q
    }
}

#[derive(Subcommand, Debug)]
#[command(after_help = "Examples:
  appauth apps list --filter 'name=@ci' --sort createdAt --desc
  appauth apps create ci-pipeline-prod --output json > ci-creds.json
  appauth apps show ci-pipeline-prod   # by name, client ID or id
  appauth apps regenerate 6f1c…   # prints the new secret once
  appauth apps regenerate 6f1c… --grace 1d   # the old secret works one more day
  appauth apps create reports-job --audience https://reports.example --token-ttl 10m
  appauth apps policy 6f1c… --audience urn:appauth:api --audience https://reports.example
  appauth apps federated add 6f1c… --issuer https://token.actions.githubusercontent.com \\
      --subject-pattern 'repo:acme/*:environment:prod' --condition ref=refs/heads/main
  vault read -field=creds appauth/admin | appauth apps list --credentials -")]
pub enum AppsCommand {
    /// List applications (same filters as the console)
    List(ListArgs),
    /// Create an application; prints its client ID and secret once
    Create {
        name: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Set which audiences an application's tokens may name, and their
    /// lifetime (not on your own application)
    Policy {
        id: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Show one application (never its secret)
    Show { id: String },
    /// Enable an application
    Enable { id: String },
    /// Disable an application: every token it holds is revoked
    Disable { id: String },
    /// Regenerate the secret; prints the new secret once. Without --grace the
    /// old one and its tokens stop working at once
    Regenerate {
        id: String,
        /// Keep the old secret working this long (up to 7d): 3600, 90s, 1h,
        /// 7d; its earlier tokens are revoked when the overlap ends
        #[arg(long, value_name = "DURATION", default_value = "0", value_parser = seconds)]
        grace: i64,
    },
    /// Delete an application, its access rules, and revoke its tokens
    Delete { id: String },
    /// Federated credentials: external identities (a CI job, a Kubernetes
    /// service account) that get the application's tokens without a secret
    #[command(subcommand)]
    Federated(FederatedCommand),
}

#[derive(Subcommand, Debug)]
pub enum FederatedCommand {
    /// List an application's federated credentials and the trusted issuers
    List { app: String },
    /// Trust tokens from ISSUER whose sub is SUBJECT (or matches PATTERN,
    /// where * is one or more characters other than : and /)
    Add {
        app: String,
        /// One of the server's federation.issuers
        #[arg(long)]
        issuer: String,
        #[arg(
            long,
            conflicts_with = "subject_pattern",
            required_unless_present = "subject_pattern"
        )]
        subject: Option<String>,
        #[arg(long, value_name = "PATTERN")]
        subject_pattern: Option<String>,
        /// CLAIM=VALUE (repeatable); nested claims by dotted path
        /// (kubernetes.io.namespace=ci); VALUE may use *
        #[arg(long = "condition", value_name = "CLAIM=VALUE", value_parser = condition)]
        conditions: Vec<(String, String)>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove a federated credential (tokens it obtained stay valid until they expire)
    Remove { app: String, credential: String },
}

fn condition(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not CLAIM=VALUE"))
}

/// A duration in seconds: a plain number, or a number with one unit of
/// `s`, `m`, `h` or `d` (`90s`, `10m`, `1h`, `7d`).
pub fn seconds(s: &str) -> Result<i64, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration: use seconds (3600) or 90s, 10m, 1h, 7d"
            ));
        }
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use seconds (3600) or 90s, 10m, 1h, 7d"))?;
    n.checked_mul(scale).ok_or_else(|| format!("{s:?} is too long"))
}

/// An application's token policy on the command line.
#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    /// An audience its tokens may name (repeat for several; each one of
    /// the server's issuer.audiences). Default on create: the default audience
    #[arg(long = "audience", value_name = "AUDIENCE")]
    audiences: Vec<String>,
    /// Lifetime of its tokens (5s to issuer.token_ttl_seconds): 600, 10m, 1h
    #[arg(long, value_name = "DURATION", conflicts_with = "default_token_ttl", value_parser = seconds)]
    token_ttl: Option<i64>,
    /// Back to the issuer's token lifetime
    #[arg(long)]
    default_token_ttl: bool,
}

impl PolicyArgs {
    /// The members of a create or PATCH body this sets.
    fn body(&self, mut body: serde_json::Value) -> serde_json::Value {
        if !self.audiences.is_empty() {
            body["allowedAudiences"] = serde_json::json!(self.audiences);
        }
        if let Some(t) = self.token_ttl {
            body["tokenTtlSeconds"] = t.into();
        } else if self.default_token_ttl {
            body["tokenTtlSeconds"] = serde_json::Value::Null;
        }
        body
    }
}

#[derive(Subcommand, Debug)]
#[command(after_help = "Examples:
  appauth rules list --filter \"subjectId==$APP_ID\"
  appauth rules create --app ci-pipeline-prod --role l1-researcher --scope $CLUSTER_ID
  appauth rules delete $RULE_ID")]
pub enum RulesCommand {
    /// List access rules
    List(ListArgs),
    /// Grant a role on a scope to an application
    Create {
        /// The application: its id, client ID or name
        #[arg(long)]
        app: String,
        /// A role id (see `appauth roles list`)
        #[arg(long)]
        role: String,
        /// tenant, cluster, department or project; default: the type of
        /// the scope --scope names
        #[arg(long)]
        scope_type: Option<String>,
        /// The scope's id (see `appauth scopes list`)
        #[arg(long)]
        scope: String,
    },
    /// Delete an access rule
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
#[command(after_help = "Examples:
  appauth scopes list
  appauth scopes create --type cluster --name 'Cluster: A' --parent $TENANT_ID")]
pub enum ScopesCommand {
    /// List the scope tree
    List,
    /// Create a scope under a parent
    Create {
        /// cluster, department or project
        #[arg(long = "type")]
        scope_type: String,
        #[arg(long)]
        name: String,
        /// The parent scope's id
        #[arg(long)]
        parent: String,
    },
    /// Delete a scope (refused while rules or children use it)
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
pub enum RolesCommand {
    /// List the roles and their permissions
    List,
}

#[derive(Subcommand, Debug)]
#[command(after_help = "Examples:
  appauth audit list --filter action==app.regenerate-secret --limit 20")]
pub enum AuditCommand {
    /// List audit records, newest first
    List(ListArgs),
}

/// One admin call: method, path, body, and how to print the answer.
struct Call {
    method: reqwest::Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    view: table::View,
    /// An application named on the command line by id, client ID or name:
    /// resolved to its id, which replaces [`APP`] in the path and body.
    app: Option<String>,
    /// Fetch every page of a list.
    all: bool,
}

/// Where the resolved application id goes.
const APP: &str = "{app}";

/// A `scopeType` to be read from the scope the body's `scopeId` names.
const SCOPE_TYPE: &str = "{scope-type}";

impl Call {
    fn get(path: impl Into<String>, view: table::View) -> Self {
        Self {
            method: reqwest::Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            view,
            app: None,
            all: false,
        }
    }

    /// The call is about the application `reference` (id, client ID or name).
    fn about(mut self, reference: String) -> Self {
        self.app = Some(reference);
        self
    }

    fn with(mut self, method: reqwest::Method, body: Option<Value>) -> Self {
        self.method = method;
        self.body = body;
        self
    }

    fn list(path: &str, args: &ListArgs, view: table::View) -> Self {
        let mut call = Self::get(path, view);
        call.query = args.query();
        call.all = args.all;
        call
    }
}

/// The path of the application the call is [`Call::about`].
const APP_PATH: &str = "/api/v1/apps/{app}";

pub fn apps(conn: &Connection, cmd: AppsCommand) -> Result<(), Failure> {
    use reqwest::Method;
    let call = match cmd {
        AppsCommand::List(a) => Call::list("/api/v1/apps", &a, table::View::Apps),
        AppsCommand::Create { name, policy } => Call::get("/api/v1/apps", table::View::Secret)
            .with(Method::POST, Some(policy.body(json!({ "name": name })))),
        AppsCommand::Policy { id, policy } => Call::get(APP_PATH, table::View::App)
            .with(Method::PATCH, Some(policy.body(json!({}))))
            .about(id),
        AppsCommand::Show { id } => Call::get(APP_PATH, table::View::App).about(id),
        AppsCommand::Enable { id } => Call::get(APP_PATH, table::View::App)
            .with(Method::PATCH, Some(json!({"enabled": true})))
            .about(id),
        AppsCommand::Disable { id } => Call::get(APP_PATH, table::View::App)
            .with(Method::PATCH, Some(json!({"enabled": false})))
            .about(id),
        AppsCommand::Regenerate { id, grace } => Call::get(format!("{APP_PATH}/secret"), table::View::Secret)
            .with(Method::POST, Some(json!({ "graceSeconds": grace })))
            .about(id),
        AppsCommand::Delete { id } => Call::get(APP_PATH, table::View::Done)
            .with(Method::DELETE, None)
            .about(id),
        AppsCommand::Federated(f) => match f {
            FederatedCommand::List { app } => {
                Call::get(format!("{APP_PATH}/federated-credentials"), table::View::Federated).about(app)
            }
            FederatedCommand::Add {
                app,
                issuer,
                subject,
                subject_pattern,
                conditions,
                description,
            } => {
                let mut body = json!({"issuer": issuer, "conditions": conditions.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<String, Value>>()});
                if let Some(s) = subject {
                    body["subject"] = s.into();
                }
                if let Some(p) = subject_pattern {
                    body["subjectPattern"] = p.into();
                }
                if let Some(d) = description {
                    body["description"] = d.into();
                }
                Call::get(format!("{APP_PATH}/federated-credentials"), table::View::FederatedOne)
                    .with(Method::POST, Some(body))
                    .about(app)
            }
            FederatedCommand::Remove { app, credential } => Call::get(
                format!("{APP_PATH}/federated-credentials/{}", session::segment(&credential)),
                table::View::Done,
            )
            .with(Method::DELETE, None)
            .about(app),
        },
    };
    client::run(conn, call)
}

pub fn rules(conn: &Connection, cmd: RulesCommand) -> Result<(), Failure> {
    use reqwest::Method;
    const PATH: &str = "/api/v1/authorization/access-rules";
    let call = match cmd {
        RulesCommand::List(a) => Call::list(PATH, &a, table::View::Rules),
        RulesCommand::Create {
            app,
            role,
            scope_type,
            scope,
        } => Call::get(PATH, table::View::Rule)
            .with(
                Method::POST,
                Some(json!({"subjectType": "app", "subjectId": APP, "roleId": role,
                    "scopeType": scope_type.unwrap_or_else(|| SCOPE_TYPE.to_owned()), "scopeId": scope})),
            )
            .about(app),
        RulesCommand::Delete { id } => {
            Call::get(format!("{PATH}/{}", session::segment(&id)), table::View::Done).with(Method::DELETE, None)
        }
    };
    client::run(conn, call)
}

pub fn scopes(conn: &Connection, cmd: ScopesCommand) -> Result<(), Failure> {
    use reqwest::Method;
    let call = match cmd {
        ScopesCommand::List => Call::get("/api/v1/scopes", table::View::Scopes),
        ScopesCommand::Create {
            scope_type,
            name,
            parent,
        } => Call::get("/api/v1/scopes", table::View::Scope).with(
            Method::POST,
            Some(json!({"type": scope_type, "name": name, "parentId": parent})),
        ),
        ScopesCommand::Delete { id } => {
            Call::get(format!("/api/v1/scopes/{}", session::segment(&id)), table::View::Done).with(Method::DELETE, None)
        }
    };
    client::run(conn, call)
}

pub fn roles(conn: &Connection, RolesCommand::List: RolesCommand) -> Result<(), Failure> {
    client::run(conn, Call::get("/api/v1/authorization/roles", table::View::Roles))
}

pub fn audit(conn: &Connection, AuditCommand::List(a): AuditCommand) -> Result<(), Failure> {
    client::run(conn, Call::list("/api/v1/audit", &a, table::View::Audit))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_take_seconds_or_one_unit() {
        for (text, want) in [
            ("0", 0),
            ("3600", 3600),
            ("90s", 90),
            ("10m", 600),
            ("1h", 3600),
            ("7d", 604_800),
        ] {
            assert_eq!(super::seconds(text), Ok(want), "{text}");
        }
        for bad in ["", "h", "1x", "1h30m", "-5", "1.5h", "99999999999999999d"] {
            assert!(super::seconds(bad).is_err(), "{bad}");
        }
    }
}
