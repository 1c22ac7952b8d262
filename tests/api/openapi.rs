//! GET /api/openapi.json: OpenAPI 3.1, and the real responses conform to it.

use crate::helpers::*;
use serde_json::{Value, json};

/// Checks `value` against an OpenAPI 3.1 schema (the subset utoipa emits:
/// $ref, allOf, oneOf, type / type arrays, properties, required, items,
/// enum). Objects may not carry properties the schema does not list.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for part in parts {
            let part = match part["$ref"].as_str() {
                Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
                None => part,
            };
            for (k, v) in part["properties"].as_object().into_iter().flatten() {
                merged["properties"][k] = v.clone();
            }
            for r in part["required"].as_array().into_iter().flatten() {
                merged["required"].as_array_mut().unwrap().push(r.clone());
            }
        }
        return conforms(doc, &merged, value, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        return options
            .iter()
            .any(|o| conforms(doc, o, value, at).is_ok())
            .then_some(())
            .ok_or_else(|| format!("{at}: matches no oneOf branch: {value}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} not in {allowed:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let number_ok = actual == "integer" && types.contains(&"number");
    if !(types.contains(&actual) || number_ok) {
        return Err(format!("{at}: expected {types:?}, got {value}"));
    }
    match value {
        Value::Object(map) => {
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !map.contains_key(r) {
                    return Err(format!("{at}: required property {r} missing"));
                }
            }
            let props = schema["properties"].as_object().cloned().unwrap_or_default();
            for (k, v) in map {
                let sub = props.get(k).ok_or_else(|| format!("{at}: undocumented property {k}"))?;
                conforms(doc, sub, v, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let s = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(!s.is_null(), "no documented {status} JSON response for {method} {path}");
    s
}

async fn check(doc: &Value, path: &str, method: &str, resp: reqwest::Response) -> Value {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    if let Err(e) = conforms(doc, response_schema(doc, path, method, status), &body, "$") {
        panic!("{method} {path} → {status} does not match its schema: {e}");
    }
    body
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_real_responses_match_it() {
    let app = spawn_app().await;
    let doc: Value = app.get_json("/api/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let api = app.api().await;

    let created = check(
        &doc,
        "/api/v1/apps",
        "post",
        api.post("/api/v1/apps", json!({"name": "documented"})).await,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let tenant = api.tenant_id().await;
    check(
        &doc,
        "/api/v1/apps/{id}",
        "get",
        api.get(&format!("/api/v1/apps/{id}")).await,
    )
    .await;
    check(&doc, "/api/v1/apps", "get", api.get("/api/v1/apps").await).await;
    check(
        &doc,
        "/api/v1/apps/{id}",
        "patch",
        api.patch(&format!("/api/v1/apps/{id}"), json!({"enabled": true})).await,
    )
    .await;
    check(
        &doc,
        "/api/v1/apps/{id}/secret",
        "post",
        api.post(&format!("/api/v1/apps/{id}/secret"), json!({})).await,
    )
    .await;
    check(
        &doc,
        "/api/v1/apps",
        "post",
        api.post("/api/v1/apps", json!({"name": "documented"})).await,
    )
    .await;
    check(
        &doc,
        "/api/v1/apps/{id}",
        "get",
        api.get("/api/v1/apps/0b9c6a52-5d7e-4f1a-9c3b-2a1d4e5f6a7b").await,
    )
    .await;
    let cluster = check(
        &doc,
        "/api/v1/scopes",
        "post",
        api.post(
            "/api/v1/scopes",
            json!({"type": "cluster", "name": "Cluster: A", "parentId": tenant}),
        )
        .await,
    )
    .await;
    check(&doc, "/api/v1/scopes", "get", api.get("/api/v1/scopes").await).await;
    let rule = check(
        &doc,
        "/api/v1/authorization/access-rules",
        "post",
        api.grant(&id, "viewer", "cluster", cluster["id"].as_str().unwrap())
            .await,
    )
    .await;
    check(
        &doc,
        "/api/v1/authorization/access-rules",
        "get",
        api.get("/api/v1/authorization/access-rules").await,
    )
    .await;
    let rule_path = format!("/api/v1/authorization/access-rules/{}", rule["id"].as_str().unwrap());
    check(
        &doc,
        "/api/v1/authorization/access-rules/{id}",
        "get",
        api.get(&rule_path).await,
    )
    .await;
    check(
        &doc,
        "/api/v1/authorization/roles",
        "get",
        api.get("/api/v1/authorization/roles").await,
    )
    .await;
    check(
        &doc,
        "/oauth/token",
        "post",
        app.token_request(&app.admin_id, &app.admin_secret, "").await,
    )
    .await;
    check(
        &doc,
        "/oauth/token",
        "post",
        app.token_request(&app.admin_id, "aas_nope", "").await,
    )
    .await;
    let compat = app
        .client
        .post(app.url("/api/v1/token"))
        .json(&json!({"grantType": "client_credentials", "clientId": app.admin_id, "clientSecret": app.admin_secret}))
        .send()
        .await
        .unwrap();
    check(&doc, "/api/v1/token", "post", compat).await;
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let doc: Value = app.get_json("/api/openapi.json").await;
    let api = app.api().await;
    let mut count = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "0b9c6a52-5d7e-4f1a-9c3b-2a1d4e5f6a7b");
            let resp = api
                .request(method.to_uppercase().parse().unwrap(), &concrete)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            assert!(
                !body.contains("no route for"),
                "{method} {path} is documented but not routed"
            );
            assert_ne!(status, 405, "{method} {path}");
            count += 1;
        }
    }
    assert!(count >= 17, "{count} operations documented");
}

#[tokio::test]
async fn every_operation_documents_the_refusals_the_server_can_give() {
    let app = spawn_app().await;
    let doc: Value = app.get_json("/api/openapi.json").await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let oauth = path.starts_with("/oauth/") || path == "/api/v1/token";
        for (method, op) in item.as_object().unwrap() {
            let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            let needed: &[&str] = match (oauth, method.as_str()) {
                (true, _) => &["400", "401", "413", "429", "503"],
                (false, "post" | "patch") => &["400", "401", "403", "413", "415", "429", "503"],
                (false, "delete") => &["401", "403", "429", "503"],
                (false, _) => &["401", "403", "429"],
            };
            for s in needed {
                assert!(
                    statuses.iter().any(|x| x == s),
                    "{method} {path} does not document {s}: {statuses:?}"
                );
            }
        }
    }
    // What the server enforces on a name is in the schema.
    let name = &doc["components"]["schemas"]["CreateApp"]["properties"]["name"];
    assert_eq!(name["pattern"], "^[a-z][-_a-z0-9]*[a-z0-9]$");
    assert_eq!(
        (name["minLength"].as_u64(), name["maxLength"].as_u64()),
        (Some(2), Some(63))
    );
    // And the assertion parameters on the OAuth forms.
    assert!(doc["components"]["schemas"]["TokenForm"]["properties"]["client_assertion"].is_object());
}

/// The record a link's value names must exist: an application, a scope or
/// a rule, read back by its own path.
async fn assert_exists(api: &crate::helpers::Api<'_>, collection: &str, id: &str, link: &str) {
    let status = api.get(&format!("{collection}/{id}")).await.status();
    assert_eq!(status, 200, "{link}: {collection}/{id}");
}

#[tokio::test]
async fn operation_ids_are_unique_and_every_link_leads_from_a_real_answer_to_a_real_record() {
    let app = spawn_app().await;
    let doc: Value = app.get_json("/api/openapi.json").await;
    let api = app.api().await;
    // operationId → (method, path); OpenAPI requires them unique.
    let mut ops = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                ops.insert(id.to_owned(), (method.clone(), path.clone())).is_none(),
                "operationId {id} is used twice"
            );
        }
    }
    // One real answer per operation that has links.
    let tenant = api.tenant_id().await;
    let subject = api.create_app("linked").await;
    let cluster = api.create_scope("cluster", "Cluster: linked", &tenant).await;
    let rule: Value = api
        .grant(
            subject["id"].as_str().unwrap(),
            "viewer",
            "cluster",
            cluster["id"].as_str().unwrap(),
        )
        .await
        .json()
        .await
        .unwrap();
    let answers: Vec<(&str, &str, Value)> = vec![
        ("/api/v1/apps", "post", api.create_app("linked-source").await),
        (
            "/api/v1/apps",
            "get",
            api.get("/api/v1/apps").await.json().await.unwrap(),
        ),
        ("/api/v1/scopes", "post", cluster.clone()),
        (
            "/api/v1/scopes",
            "get",
            api.get("/api/v1/scopes").await.json().await.unwrap(),
        ),
        ("/api/v1/authorization/access-rules", "post", rule),
        (
            "/api/v1/authorization/access-rules",
            "get",
            api.get("/api/v1/authorization/access-rules")
                .await
                .json()
                .await
                .unwrap(),
        ),
    ];
    let resolve = |body: &Value, expr: &str, link: &str| -> String {
        let pointer = expr
            .strip_prefix("$response.body#")
            .unwrap_or_else(|| panic!("{link}: {expr} is not a body expression"));
        body.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{link}: {expr} finds nothing in {body}"))
            .to_owned()
    };
    let mut followed = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    let label = format!("{method} {path} {status} → {name}");
                    let (answer_path, answer_method, body) = answers
                        .iter()
                        .find(|(p, m, _)| p == path && m == method)
                        .unwrap_or_else(|| panic!("{label}: no real answer to follow it from"));
                    assert_eq!((answer_path, answer_method), (&path.as_str(), &method.as_str()));
                    let target = link["operationId"].as_str().unwrap();
                    let (target_method, target_path) = ops
                        .get(target)
                        .unwrap_or_else(|| panic!("{label}: no operation {target}"));
                    for (param, expr) in link["parameters"].as_object().into_iter().flatten() {
                        assert_eq!(param, "path.id", "{label}");
                        assert!(target_path.contains("{id}"), "{label}: {target_path} takes no id");
                        let id = resolve(body, expr.as_str().unwrap(), &label);
                        let collection = target_path.split("/{id}").next().unwrap();
                        assert_exists(&api, collection, &id, &label).await;
                    }
                    let request = &doc["paths"][target_path][target_method]["requestBody"]["content"]["application/json"]
                        ["schema"]["$ref"];
                    for (field, value) in link["requestBody"].as_object().into_iter().flatten() {
                        let schema = request
                            .as_str()
                            .unwrap_or_else(|| panic!("{label}: {target} takes no JSON body"));
                        let schema = &doc["components"]["schemas"][schema.rsplit('/').next().unwrap()];
                        assert!(
                            !schema["properties"][field].is_null(),
                            "{label}: {target} has no {field}"
                        );
                        let value = value.as_str().unwrap();
                        if !value.starts_with('$') {
                            continue;
                        }
                        let resolved = resolve(body, value, &label);
                        match field.as_str() {
                            "subjectId" => assert_exists(&api, "/api/v1/apps", &resolved, &label).await,
                            "parentId" | "scopeId" => assert_exists(&api, "/api/v1/scopes", &resolved, &label).await,
                            "scopeType" => {
                                assert!(["tenant", "cluster", "department", "project"].contains(&resolved.as_str()))
                            }
                            other => panic!("{label}: no check for {other}"),
                        }
                    }
                    followed += 1;
                }
            }
        }
    }
    assert!(followed >= 12, "{followed} links followed");
}
