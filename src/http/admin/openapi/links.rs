//! OpenAPI links (OpenAPI 3.1 §4.8.20): which answer feeds which request —
//! a created application's `id` into reading, changing, rotating and
//! deleting it; a created scope into access rules, a listed one into its children.
//! Clients' generators use them, and schemathesis' stateful phase follows
//! them to reach operations a random UUID never would (they answer 404).

use serde_json::{Value, json};

/// (source path, method, status, link name, target operationId, link body).
type Link = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Value,
);

fn links() -> Vec<Link> {
    let by_id = |expr: &str| json!({"parameters": {"path.id": expr}});
    let mut out: Vec<Link> = Vec::new();
    let created = "$response.body#/id";
    for (target, name) in [
        ("getApp", "ReadTheApplication"),
        ("updateApp", "ChangeTheApplication"),
        ("regenerateSecret", "RotateItsSecret"),
        ("deleteApp", "DeleteTheApplication"),
    ] {
        out.push(("/api/v1/apps", "post", "201", name, target, by_id(created)));
    }
    // No link from a created application to a rule for it: deleting the
    // application deletes its rules, and schemathesis' "created resource
    // not found" check, blind to that, blames the rule's later 404 on the
    // server. Rules are reached from created scopes instead.
    out.push((
        "/api/v1/apps",
        "get",
        "200",
        "ReadTheFirst",
        "getApp",
        by_id("$response.body#/applications/0/id"),
    ));
    for (target, name) in [("getScope", "ReadTheScope"), ("deleteScope", "DeleteTheScope")] {
        out.push(("/api/v1/scopes", "post", "201", name, target, by_id(created)));
    }
    // No link from a created scope to creating its child: schemathesis
    // applies a link's body fields by chance, and when it does not, its
    // "created resource not found" check blames the random parent's 404
    // on the scope just created (same path, no parameters). Children are
    // reached from the listing instead (below).
    out.push((
        "/api/v1/scopes",
        "post",
        "201",
        "GrantARoleInIt",
        "createAccessRule",
        json!({"requestBody": {"scopeId": created, "scopeType": "$response.body#/type"}}),
    ));
    out.push((
        "/api/v1/scopes",
        "get",
        "200",
        "AddUnderTheFirst",
        "createScope",
        json!({"requestBody": {"parentId": "$response.body#/scopes/0/id"}}),
    ));
    for (target, name) in [("getAccessRule", "ReadTheRule"), ("deleteAccessRule", "DeleteTheRule")] {
        out.push((
            "/api/v1/authorization/access-rules",
            "post",
            "201",
            name,
            target,
            by_id(created),
        ));
    }
    out.push((
        "/api/v1/authorization/access-rules",
        "get",
        "200",
        "ReadTheFirst",
        "getAccessRule",
        by_id("$response.body#/accessRules/0/id"),
    ));
    out
}

pub fn apply(doc: &mut Value) {
    for (path, method, status, name, target, mut link) in links() {
        // A pointer, not indexing: indexing would insert the path of a
        // renamed route as `null` (the links test counts what is linked).
        let pointer = format!("/paths/{}/{method}/responses/{status}", path.replace('/', "~1"));
        let Some(response) = doc.pointer_mut(&pointer) else {
            continue;
        };
        link["operationId"] = json!(target);
        response["links"][name] = link;
    }
}
