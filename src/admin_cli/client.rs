//! The admin CLI's HTTP side: credentials from a file or standard input, a
//! token by the client-credentials grant, one admin call, the answer printed.

use super::{Call, Connection, table};
use serde_json::Value;
use std::io::Read as _;

/// Why a command did not complete, and its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 2: the command line or the credentials file is wrong.
    Usage(String),
    /// Exit 1: the server refused, or could not be reached.
    Refused(String),
}

/// A path segment, percent-encoded so an id cannot change the path.
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
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

pub fn run(conn: &Connection, call: Call) -> Result<(), Failure> {
    let (id, secret) = credentials(conn)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Refused(format!("cannot start the async runtime: {e}")))?;
    let base = conn.url.trim_end_matches('/').to_owned();
    let answer = runtime.block_on(async move {
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
        let unreachable = |e: reqwest::Error| Failure::Refused(format!("cannot reach {base}: {}", causes(&e)));
        let resp = http
            .post(format!("{base}/oauth/token"))
            .basic_auth(segment_form(&id), Some(segment_form(&secret)))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let body = resp.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        let token: Value =
            serde_json::from_str(&body).map_err(|_| Failure::Refused("the token answer is not JSON".into()))?;
        let token = token["access_token"].as_str().unwrap_or_default().to_owned();
        let mut call = call;
        if let Some(reference) = call.app.take() {
            let id = resolve_app(&http, &base, &token, &reference).await?;
            call.path = call.path.replace(super::APP, &segment(&id));
            if let Some(body) = &mut call.body {
                for v in body.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
                    if v == super::APP {
                        *v = Value::String(id.clone());
                    }
                }
            }
        }
        if let Some(body) = &mut call.body
            && body["scopeType"] == super::SCOPE_TYPE
        {
            let scope = body["scopeId"].as_str().unwrap_or_default().to_owned();
            body["scopeType"] = scope_type(&http, &base, &token, &scope).await?.into();
        }
        let send = |offset: Option<usize>| {
            let mut req = http
                .request(call.method.clone(), format!("{base}{}", call.path))
                .bearer_auth(&token)
                .query(&call.query);
            if let Some(offset) = offset {
                req = req.query(&[("limit", "500".to_owned()), ("offset", offset.to_string())]);
            }
            if let Some(body) = &call.body {
                req = req.json(body);
            }
            async move {
                let resp = req.send().await.map_err(unreachable)?;
                let status = resp.status();
                let body = resp.text().await.map_err(unreachable)?;
                if !status.is_success() {
                    return Err(refusal(status, &body));
                }
                Ok(body)
            }
        };
        if !call.all {
            return Ok((send(None).await?, call.view));
        }
        // Every page, joined into one answer of the same shape.
        let mut joined: Value = Value::Null;
        loop {
            let rows_so_far = rows(&joined).map_or(0, Vec::len);
            let page: Value = serde_json::from_str(&send(Some(rows_so_far)).await?)
                .map_err(|_| Failure::Refused("the answer is not JSON".into()))?;
            let got = rows(&page).map_or(0, Vec::len);
            let total = page["totalRecords"].as_u64().unwrap_or(0) as usize;
            if joined.is_null() {
                joined = page;
            } else if let (Some(all), Some(more)) = (rows_mut(&mut joined), rows(&page)) {
                all.extend(more.iter().cloned());
            }
            if got == 0 || rows(&joined).map_or(0, Vec::len) >= total {
                break;
            }
        }
        Ok((joined.to_string(), call.view))
    })?;
    let (answer, view) = answer;
    let value: Value = if answer.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&answer).map_err(|_| Failure::Refused("the answer is not JSON".into()))?
    };
    if conn.output == "json" {
        if !value.is_null() {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
    } else {
        print!("{}", table::render(view, &value));
    }
    Ok(())
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

/// The id of the application `reference` names: its id, its client ID or
/// its name, in that order; a reference that names none is refused with
/// what was tried.
async fn resolve_app(http: &reqwest::Client, base: &str, token: &str, reference: &str) -> Result<String, Failure> {
    let unreachable = |e: reqwest::Error| Failure::Refused(format!("cannot reach {base}: {}", causes(&e)));
    let resp = http
        .get(format!("{base}/api/v1/apps/{}", segment(reference)))
        .bearer_auth(token)
        .send()
        .await
        .map_err(unreachable)?;
    let status = resp.status();
    let body = resp.text().await.map_err(unreachable)?;
    if status.is_success() {
        return Ok(reference.to_owned());
    }
    if status != reqwest::StatusCode::NOT_FOUND && status != reqwest::StatusCode::BAD_REQUEST {
        return Err(refusal(status, &body));
    }
    for column in ["clientId", "name"] {
        let resp = http
            .get(format!("{base}/api/v1/apps"))
            .bearer_auth(token)
            .query(&[("filterBy", format!("{column}=={reference}")), ("limit", "2".into())])
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let body = resp.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        let found: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Some(id) = found["applications"][0]["id"].as_str() {
            return Ok(id.to_owned());
        }
    }
    Err(Failure::Refused(format!(
        "no application has the id, client ID or name {reference:?}"
    )))
}

/// The rows of a list answer: its one array member.
fn rows(v: &Value) -> Option<&Vec<Value>> {
    v.as_object()?.values().find_map(Value::as_array)
}

fn rows_mut(v: &mut Value) -> Option<&mut Vec<Value>> {
    v.as_object_mut()?.values_mut().find_map(Value::as_array_mut)
}

/// The type of the scope with id `scope`, from the scope tree.
async fn scope_type(http: &reqwest::Client, base: &str, token: &str, scope: &str) -> Result<String, Failure> {
    let unreachable = |e: reqwest::Error| Failure::Refused(format!("cannot reach {base}: {}", causes(&e)));
    let resp = http
        .get(format!("{base}/api/v1/scopes"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(unreachable)?;
    let status = resp.status();
    let body = resp.text().await.map_err(unreachable)?;
    if !status.is_success() {
        return Err(refusal(status, &body));
    }
    let tree: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    tree["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["id"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(scope)))
        .and_then(|s| s["type"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| Failure::Refused(format!("no scope has the id {scope:?} (see `appauth scopes list`)")))
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
fn segment_form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
