use appauth::{App, Config};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub dir: TempDir,
    pub client: reqwest::Client,
    pub admin_id: String,
    pub admin_secret: String,
    pub stop: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<std::io::Result<()>>>,
}

pub fn test_config(dir: &Path, extra: &[String]) -> Config {
    let mut set = vec![
        "server.listen=127.0.0.1:0".to_string(),
        format!("store.path={}", dir.join("data").display()),
        format!("keys.dir={}", dir.join("keys").display()),
    ];
    set.extend_from_slice(extra);
    Config::load(None, Vec::new(), &set).expect("test configuration is valid")
}

/// The Python with Debian's python3-jwt and python3-authlib (installed by
/// scripts/test.sh): `/usr/bin/python3`, not whichever `python3` is first
/// on the PATH (a pyenv one would lack them); `TEST_PYTHON` overrides.
pub fn debian_python() -> String {
    std::env::var("TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

/// A Python with the newest authlib from PyPI (a virtualenv scripts/test.sh
/// makes under target/py-clients); `TEST_PYPI_PYTHON` overrides. Fails
/// loudly when it is missing: never a silent skip.
pub fn pypi_python() -> String {
    let python = std::env::var("TEST_PYPI_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/py-clients/bin/python").to_owned());
    assert!(
        Path::new(&python).exists(),
        "this test needs authlib from PyPI at {python}; run ./scripts/test.sh, which installs it"
    );
    python
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[String]) -> TestApp {
    spawn_in(tempfile::tempdir().unwrap(), extra).await
}

/// Starts the server on an existing directory (e.g. after a restart).
pub async fn spawn_in(dir: TempDir, extra: &[String]) -> TestApp {
    let config = test_config(dir.path(), extra);
    let app = App::build(config).await.expect("app builds");
    let port = app.port();
    let base = app.issuer_url().to_owned();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
    TestApp {
        base,
        port,
        client: http_client(),
        admin_id: creds["clientId"].as_str().unwrap().to_owned(),
        admin_secret: creds["secret"].as_str().unwrap().to_owned(),
        dir,
        stop: Some(tx),
        handle: Some(handle),
    }
}

/// A token from the server at `base` (HTTP Basic), panicking with its
/// answer when refused; for servers started outside `TestApp` too.
pub async fn token_at(base: &str, id: &str, secret: &str) -> String {
    token_with(&http_client(), base, id, secret).await
}

/// [`token_at`] over a given client (one that trusts a test CA, say).
pub async fn token_with(client: &reqwest::Client, base: &str, id: &str, secret: &str) -> String {
    let resp = client
        .post(format!("{base}/oauth/token"))
        .header("Authorization", basic(id, secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "token request refused: {body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// A server process a test started: killed when the test ends, pass or
/// fail, unless the test stopped it itself.
pub struct Served(pub std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the real binary (`appauth serve` on port 0) in `dir`; returns the
/// process and its base URL, read from its "listening" log line.
pub fn serve_binary(dir: &Path) -> (Served, String) {
    serve_command(
        std::process::Command::new(env!("CARGO_BIN_EXE_appauth"))
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0"]),
    )
}

/// Starts a server command (one that execs `appauth serve`); returns the
/// process and its base URL, read from its "listening" log line.
pub fn serve_command(cmd: &mut std::process::Command) -> (Served, String) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let served = Served(child);
    let address = loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (served, format!("http://{address}"))
}

/// SIGTERM (a clean shutdown) through the shell's builtin `kill`:
/// /usr/bin/kill (procps) may be missing on a fresh machine.
pub fn send_sigterm(pid: u32) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap()
        .success()
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
}

impl TestApp {
    /// A handle on a server this process did not start (e.g. the binary).
    pub fn external(base: &str, admin_id: &str, admin_secret: &str) -> TestApp {
        TestApp {
            base: base.to_owned(),
            port: base.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0),
            dir: tempfile::tempdir().unwrap(),
            client: http_client(),
            admin_id: admin_id.to_owned(),
            admin_secret: admin_secret.to_owned(),
            stop: None,
            handle: None,
        }
    }

    /// `GET path` without credentials, as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET path` without credentials, parsed as JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server gracefully and hands back its directory.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn post_form(&self, path: &str, body: &str, auth: Option<String>) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.send().await.unwrap()
    }

    pub async fn token_request(&self, id: &str, secret: &str, extra: &str) -> reqwest::Response {
        let body = format!("grant_type=client_credentials{extra}");
        self.post_form("/oauth/token", &body, Some(basic(id, secret))).await
    }

    /// A token for (id, secret), panicking with the server's answer if refused.
    pub async fn token_for(&self, id: &str, secret: &str) -> String {
        token_with(&self.client, &self.base, id, secret).await
    }

    pub async fn admin_token(&self) -> String {
        self.token_for(&self.admin_id, &self.admin_secret).await
    }
}

/// Asserts an RFC 6749 §5.2 error: status, `error` code, a non-empty
/// description and `Cache-Control: no-store`. Returns the body.
pub async fn assert_oauth_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status(), status, "status");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], code, "body: {body}");
    assert!(
        body["error_description"].as_str().is_some_and(|d| !d.is_empty()),
        "body: {body}"
    );
    body
}

/// The decoded payload of a JWT, without verification.
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// A thin admin API client bound to one bearer token.
pub struct Api<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl TestApp {
    pub async fn api(&self) -> Api<'_> {
        Api {
            app: self,
            token: self.admin_token().await,
        }
    }
}

impl Api<'_> {
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::PATCH, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path).send().await.unwrap()
    }

    /// Creates an application and returns the 201 body (with its secret).
    pub async fn create_app(&self, name: &str) -> Value {
        let resp = self.post("/api/v1/apps", serde_json::json!({"name": name})).await;
        assert_eq!(resp.status(), 201, "create {name}");
        resp.json().await.unwrap()
    }

    pub async fn tenant_id(&self) -> String {
        let scopes: Value = self.get("/api/v1/scopes").await.json().await.unwrap();
        scopes["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == "tenant")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn create_scope(&self, kind: &str, name: &str, parent: &str) -> Value {
        let resp = self
            .post(
                "/api/v1/scopes",
                serde_json::json!({"type": kind, "name": name, "parentId": parent}),
            )
            .await;
        assert_eq!(resp.status(), 201, "create scope {name}");
        resp.json().await.unwrap()
    }

    /// An application holding `role` on the tenant scope, and a token for it.
    pub async fn app_with_tenant_role(&self, name: &str, role: &str) -> (Value, String) {
        let created = self.create_app(name).await;
        let tenant = self.tenant_id().await;
        let resp = self
            .grant(created["id"].as_str().unwrap(), role, "tenant", &tenant)
            .await;
        assert_eq!(resp.status(), 201, "grant {role} to {name}");
        let token = self
            .app
            .token_for(
                created["clientId"].as_str().unwrap(),
                created["secret"].as_str().unwrap(),
            )
            .await;
        (created, token)
    }

    pub async fn grant(&self, app_id: &str, role: &str, scope_type: &str, scope_id: &str) -> reqwest::Response {
        self.post(
            "/api/v1/authorization/access-rules",
            serde_json::json!({"subjectType": "app", "subjectId": app_id, "roleId": role, "scopeType": scope_type, "scopeId": scope_id}),
        )
        .await
    }
}

/// Asserts an admin API error: status, `code` equal to it, and a message
/// containing `needle`. Returns the body.
pub async fn assert_api_error(resp: reqwest::Response, status: u16, needle: &str) -> Value {
    assert_eq!(resp.status(), status, "status");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], status, "body: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "message {message:?} lacks {needle:?}");
    body
}

/// A real `redis-server` on an ephemeral loopback port, killed on drop.
/// Fails loudly when redis-server is not installed: never a silent skip.
pub struct RedisServer {
    child: Option<std::process::Child>,
    pub port: u16,
    dir: TempDir,
    /// Persistence options it was started with, kept across restarts.
    persistence: Vec<String>,
}

/// `PATH` with the directory of the appauth binary under test first, so a
/// shell script's `appauth` is this build.
pub fn path_with_appauth() -> String {
    let binary = Path::new(env!("CARGO_BIN_EXE_appauth"));
    format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// With the given persistence options, e.g. an append-only file.
    pub fn start_with(persistence: &[&str]) -> Self {
        let persistence = persistence.iter().map(|s| s.to_string()).collect();
        Self::start_on(free_port(), tempfile::tempdir().unwrap(), persistence)
    }

    fn start_on(port: u16, dir: TempDir, persistence: Vec<String>) -> Self {
        let bin = std::env::var("TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = std::process::Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(&persistence)
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test needs redis-server ({bin}): {e}. Install it (apt-get install -y redis-server) or run ./scripts/test.sh")
            });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = s.write_all(b"PING\r\n");
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        RedisServer {
            child: Some(child),
            port,
            dir,
            persistence,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and starts an empty one on the same port.
    pub fn restart_empty(mut self) -> Self {
        self.kill9();
        let port = self.port;
        let persistence = std::mem::take(&mut self.persistence);
        Self::start_on(port, tempfile::tempdir().unwrap(), persistence)
    }

    /// SIGKILL (no save), then a new server on the same port and data
    /// directory: it comes back with whatever its last snapshot held.
    pub fn restart_from_disk(mut self) -> Self {
        self.kill9();
        self.come_back()
    }

    /// After [`kill9`](Self::kill9): a new server on the same port and
    /// data directory, loading what it had persisted (RDB or AOF).
    pub fn come_back(mut self) -> Self {
        self.kill9();
        let port = self.port;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let persistence = std::mem::take(&mut self.persistence);
        Self::start_on(port, dir, persistence)
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A database of its own in the test run's PostgreSQL cluster
/// (`TEST_POSTGRES_URL`, started by `scripts/test.sh`), dropped at the end.
pub struct PostgresDb {
    pub url: String,
    pub name: String,
    admin_url: String,
}

/// Runs SQL on its own thread: the `postgres` client runs a runtime of its
/// own, which may not start inside the test's.
pub fn admin_sql(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).map_err(|e| e.to_string())?;
        c.batch_execute(&sql).map_err(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned())
        })
    })
    .join()
    .unwrap()
}

impl PostgresDb {
    pub fn create() -> Self {
        let admin_url = std::env::var("TEST_POSTGRES_URL").expect(
            "TEST_POSTGRES_URL is not set: run the suite through scripts/test.sh, which starts a throw-away PostgreSQL",
        );
        let name = format!("appauth_test_{}", uuid::Uuid::new_v4().simple());
        admin_sql(&admin_url, &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create a test database at {admin_url}: {e}"));
        let (base, _) = admin_url.rsplit_once('/').expect("TEST_POSTGRES_URL names a database");
        PostgresDb {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        }
    }

    /// Makes the database unreachable for appauth: new connections are
    /// refused and open ones are terminated (what a database outage looks like).
    pub fn go_down(&self) {
        admin_sql(
            &self.admin_url,
            &format!(
                "ALTER DATABASE {0} ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
                self.name
            ),
        )
        .unwrap();
    }

    pub fn come_back(&self) {
        admin_sql(
            &self.admin_url,
            &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", self.name),
        )
        .unwrap();
    }

    /// Settings for an instance on this database.
    pub fn settings(&self) -> Vec<String> {
        vec![
            "store.backend=postgres".into(),
            format!("store.postgres_url={}", self.url),
        ]
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        let _ = admin_sql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// One instance of a cluster: its own store and keys dirs (keys come from
/// the database, unsealed with the KEK file `extra` names), the given admin
/// credentials (`None`: the ones this instance wrote at initialisation).
pub async fn spawn_instance(extra: &[String], admin: Option<(&str, &str)>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), extra);
    let app = App::build(config).await.expect("instance builds");
    let (port, base) = (app.port(), format!("http://{}", app.address()));
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let (admin_id, admin_secret) = match admin {
        Some((id, secret)) => (id.to_owned(), secret.to_owned()),
        None => {
            let creds: Value =
                serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
            (
                creds["clientId"].as_str().unwrap().to_owned(),
                creds["secret"].as_str().unwrap().to_owned(),
            )
        }
    };
    TestApp {
        base,
        port,
        client: http_client(),
        admin_id,
        admin_secret,
        dir,
        stop: Some(tx),
        handle: Some(handle),
    }
}

/// The rows of an exported CSV (RFC 4180 reader, enough for the export's output).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}
