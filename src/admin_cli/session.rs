//! One signed-in conversation with a running server's admin API: the
//! credentials read from a file or standard input, a token by the
//! client-credentials grant, then admin calls whose refusals come back in
//! the server's own words.

use super::Connection;
use serde_json::Value;
use std::io::Read as _;

/// Why a command did not complete, and its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 2: the command line, a file it names, or the credentials are wrong.
    Usage(String),
    /// Exit 1: the server refused, or could not be reached.
    Refused(String),
}

/// A path segment, percent-encoded so an id cannot change the path.
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// How many rows one page of a list asks for when every row is wanted.
const PAGE: usize = 500;

pub struct Session {
    http: reqwest::Client,
    base: String,
    token: String,
    /// The client ID the session signed in as.
    pub client_id: String,
}

impl Session {
    /// Reads the credentials and gets a token from `conn.url`.
    pub async fn open(conn: &Connection) -> Result<Self, Failure> {
        let (id, secret) = credentials(conn)?;
        let base = conn.url.trim_end_matches('/').to_owned();
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(path) = &conn.cacert {
            let pem = std::fs::read(path).map_err(|e| Failure::Usage(format!("--cacert {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| Failure::Usage(format!("--cacert {}: no PEM certificate in it", path.display())))?;
            for c in certs {
                http = http.add_root_certificate(c);
            }
        }
        let http = http.build().map_err(|e| Failure::Refused(e.to_string()))?;
        let mut session = Self {
            http,
            base,
            token: String::new(),
            client_id: id.clone(),
        };
        let resp = session
            .http
            .post(format!("{}/oauth/token", session.base))
            .basic_auth(form_encoded(&id), Some(form_encoded(&secret)))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| session.unreachable(e))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| session.unreachable(e))?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        let token: Value =
            serde_json::from_str(&body).map_err(|_| Failure::Refused("the token answer is not JSON".into()))?;
        session.token = token["access_token"].as_str().unwrap_or_default().to_owned();
        Ok(session)
    }

    fn unreachable(&self, e: reqwest::Error) -> Failure {
        Failure::Refused(format!("cannot reach {}: {}", self.base, causes(&e)))
    }

    /// One admin call; the answer's JSON (`null` for an empty body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .query(query);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(refusal(status, &text));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|_| Failure::Refused("the answer is not JSON".into()))
    }

    /// A GET whose answer is a file, not JSON.
    pub async fn download(&self, path: &str) -> Result<Vec<u8>, Failure> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(std::time::Duration::from_secs(600))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(refusal(status, &String::from_utf8_lossy(&bytes)));
        }
        Ok(bytes.to_vec())
    }

    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.call(reqwest::Method::GET, path, &[], None).await
    }

    /// Every page of a list, joined into one answer of the same shape.
    pub async fn all_pages(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let mut joined: Value = Value::Null;
        loop {
            let so_far = rows(&joined).map_or(0, Vec::len);
            let mut q = query.to_vec();
            q.push(("limit", PAGE.to_string()));
            q.push(("offset", so_far.to_string()));
            let page = self.call(reqwest::Method::GET, path, &q, None).await?;
            let got = rows(&page).map_or(0, Vec::len);
            let total = page["totalRecords"].as_u64().unwrap_or(0) as usize;
            if joined.is_null() {
                joined = page;
            } else if let (Some(all), Some(more)) = (rows_mut(&mut joined), rows(&page)) {
                all.extend(more.iter().cloned());
            }
            if got == 0 || rows(&joined).map_or(0, Vec::len) >= total {
                return Ok(joined);
            }
        }
    }

    /// The id of the application `reference` names: its id, its client ID
    /// or its name, in that order; a reference that names none is refused
    /// with what was tried.
    pub async fn resolve_app(&self, reference: &str) -> Result<String, Failure> {
        match self.get(&format!("/api/v1/apps/{}", segment(reference))).await {
            Ok(_) => return Ok(reference.to_owned()),
            Err(Failure::Refused(m)) if m.starts_with("404") || m.starts_with("400") => {}
            Err(e) => return Err(e),
        }
        for column in ["clientId", "name"] {
            let q = [("filterBy", format!("{column}=={reference}")), ("limit", "2".into())];
            let found = self.call(reqwest::Method::GET, "/api/v1/apps", &q, None).await?;
            if let Some(id) = found["applications"][0]["id"].as_str() {
                return Ok(id.to_owned());
            }
        }
        Err(Failure::Refused(format!(
            "no application has the id, client ID or name {reference:?}"
        )))
    }

    /// The type of the scope with id `scope`, from the scope tree.
    pub async fn scope_type(&self, scope: &str) -> Result<String, Failure> {
        let tree = self.get("/api/v1/scopes").await?;
        tree["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["id"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(scope)))
            .and_then(|s| s["type"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| Failure::Refused(format!("no scope has the id {scope:?} (see `appauth scopes list`)")))
    }
}

/// Runs `work` on a single-threaded runtime (the CLI makes one call at a time).
pub fn block_on<T>(work: impl std::future::Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Refused(format!("cannot start the async runtime: {e}")))?
        .block_on(work)
}

fn credentials(conn: &Connection) -> Result<(String, String), Failure> {
    let file = conn.credentials.as_ref().ok_or_else(|| {
        Failure::Usage(
            "no credentials: pass --credentials FILE (or - for standard input) or set APPAUTH_CREDENTIALS to a file of the form {\"clientId\": …, \"secret\": …}".into(),
        )
    })?;
    let (from, text) = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Usage(format!("cannot read credentials from standard input: {e}")))?;
        ("standard input".to_owned(), text)
    } else {
        let path = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| {
            Failure::Usage(format!(
                "cannot read credentials from {path}: {e} (use --credentials FILE or -)"
            ))
        })?;
        (path, text)
    };
    let v: Value = serde_json::from_str(&text).map_err(|_| {
        Failure::Usage(format!(
            "{from} is not JSON of the form {{\"clientId\": …, \"secret\": …}}"
        ))
    })?;
    match (v["clientId"].as_str(), v["secret"].as_str()) {
        (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
        _ => Err(Failure::Usage(format!(
            "{from} lacks \"clientId\" and \"secret\" (the shape of initial-admin.json)"
        ))),
    }
}

/// The server's own words for a refusal (admin API or OAuth error body).
fn refusal(status: reqwest::StatusCode, body: &str) -> Failure {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = v["message"]
        .as_str()
        .or(v["error_description"].as_str())
        .or(v["error"].as_str())
        .unwrap_or("no details");
    Failure::Refused(format!("{status}: {message}"))
}

/// An error and every cause under it: "error sending request" alone hides
/// the TLS or connection failure that a user can act on.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// The rows of a list answer: its one array member.
pub fn rows(v: &Value) -> Option<&Vec<Value>> {
    v.as_object()?.values().find_map(Value::as_array)
}

fn rows_mut(v: &mut Value) -> Option<&mut Vec<Value>> {
    v.as_object_mut()?.values_mut().find_map(Value::as_array_mut)
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
fn form_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
