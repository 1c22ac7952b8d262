//! The constraints the server's parsers enforce, written into the OpenAPI
//! document, so a request valid by the document is one the server accepts
//! (short of state: a missing parent is 404, a taken name 409). Derived
//! from the same tables the parsers use (`query::OPS`, the listings'
//! columns, `MAX_LIMIT`, …), so the two cannot drift apart; checked by
//! `scripts/api-fuzz.sh` (schemathesis) and the OpenAPI tests.

use crate::listing::{APP_COLUMNS, AUDIT_COLUMNS, CSV_COLUMNS, RULE_COLUMNS};
use crate::query::{Column, Kind, MAX_FILTERS, MAX_LIMIT, MAX_VALUE_CHARS, OPS};
use serde_json::{Value, json};

/// A hyphenated UUID, as `domain::is_id` accepts it.
pub const UUID_PATTERN: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// An instant `query::parse_instant` reads: Unix milliseconds, an RFC 3339
/// instant or a date. Days stop at 28 so every match is a real date.
const INSTANT: &str = "(-?[0-9]{1,18}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])([Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?([Zz]|[+-](0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]))?)";

fn escape(op: &str) -> String {
    op.chars()
        .map(|c| {
            if "^$.|?*+()[]{}\\".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn names(columns: &[Column], kind: Kind) -> Option<String> {
    let n: Vec<&str> = columns.iter().filter(|c| c.kind == kind).map(|c| c.name).collect();
    (!n.is_empty()).then(|| n.join("|"))
}

/// `filterBy`'s pattern: a column, an operator its kind allows, a value of
/// its kind (`query::parse_filter`).
fn filter_pattern(columns: &[Column]) -> String {
    let all_ops: Vec<String> = OPS.iter().map(|(s, _)| escape(s)).collect();
    let text_ops: Vec<String> = OPS[4..].iter().map(|(s, _)| escape(s)).collect();
    let compare_ops: Vec<String> = OPS[..4].iter().map(|(s, _)| escape(s)).collect();
    let mut alternatives = Vec::new();
    if let Some(t) = names(columns, Kind::Text) {
        alternatives.push(format!("({t})({})[\\s\\S]*", all_ops.join("|")));
    }
    if let Some(t) = names(columns, Kind::Time) {
        alternatives.push(format!("({t})({})[\\s\\S]*", text_ops.join("|")));
        alternatives.push(format!("({t})({}){INSTANT}", compare_ops.join("|")));
    }
    if let Some(b) = names(columns, Kind::Bool) {
        alternatives.push(format!("({b})(==|!=)(true|false)"));
    }
    format!("^({})$", alternatives.join("|"))
}

fn list_parameters(columns: &[Column]) -> Vec<(&'static str, Value)> {
    let fields: Vec<&str> = columns.iter().map(|c| c.name).collect();
    vec![
        (
            "filterBy",
            json!({"type": "array", "maxItems": MAX_FILTERS,
                "items": {"type": "string", "maxLength": MAX_VALUE_CHARS, "pattern": filter_pattern(columns)}}),
        ),
        ("search", json!({"type": "string", "maxLength": MAX_VALUE_CHARS})),
        ("sortBy", json!({"type": "string", "enum": fields})),
        ("sortOrder", json!({"type": "string", "enum": ["asc", "desc"]})),
        ("offset", json!({"type": "integer", "minimum": 0, "maximum": i64::MAX})),
        ("limit", json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})),
        ("format", json!({"type": "string", "enum": ["csv"]})),
        (
            "columns",
            json!({"type": "string", "pattern": format!("^ *({0}) *(, *({0}) *)*$",
                CSV_COLUMNS.iter().map(|(f, _)| *f).collect::<Vec<_>>().join("|"))}),
        ),
    ]
}

fn set_parameters(op: &mut Value, schemas: &[(&str, Value)]) {
    // `get_mut`, not indexing: indexing would insert `parameters: null`.
    for p in op
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        if let Some((_, s)) = schemas.iter().find(|(n, _)| *n == name) {
            p["schema"] = s.clone();
        }
        if p["in"] == "path" && (name == "id" || name == "credential") {
            p["schema"] = json!({"type": "string", "pattern": UUID_PATTERN});
        }
    }
}

fn add_response(op: &mut Value, status: &str, description: &str) {
    let responses = &mut op["responses"];
    if responses.get(status).is_none() {
        responses[status] = json!({"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiErrorBody"}}}});
    }
}

fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "204" => "Done; no content",
        "400" => "Invalid request; the message says which part and why",
        "401" => "Not authenticated",
        "403" => "Not allowed",
        "404" => "No such record",
        "409" => "Conflicts with the current state",
        "429" => "Too many requests; see Retry-After",
        _ => "See the message",
    }
}

/// Applies the constraints to the serialised document; `issuer` gives the
/// configured audiences and the longest token lifetime.
pub fn apply(doc: &mut Value, config: &crate::config::Config) {
    let issuer = &config.issuer;
    let lists: [(&str, &[Column]); 3] = [
        ("/api/v1/apps", APP_COLUMNS),
        ("/api/v1/authorization/access-rules", RULE_COLUMNS),
        ("/api/v1/audit", AUDIT_COLUMNS),
    ];
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let params = lists
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| list_parameters(c))
            .unwrap_or_default();
        let admin = path.starts_with("/api/v1/") && path != "/api/v1/token";
        for (method, op) in item.as_object_mut().into_iter().flatten() {
            set_parameters(op, &params);
            // OpenAPI requires a description on every response.
            for (status, response) in op
                .get_mut("responses")
                .and_then(Value::as_object_mut)
                .into_iter()
                .flatten()
            {
                if response.get("description").is_none_or(|d| d == "") {
                    response["description"] = json!(default_description(status));
                }
            }
            if path.contains("{id}") {
                add_response(op, "400", "The id is not a UUID");
                add_response(op, "404", "No such record");
            }
            if admin && method != "get" {
                add_response(
                    op,
                    "409",
                    "Conflicts with the current state: a name or rule that exists, the last administrator, a scope in use, a parent or scope of another type",
                );
            }
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    let id = json!({"type": "string", "pattern": UUID_PATTERN});
    // Every creatable scope has a parent (the tenant exists once: 409).
    schemas["CreateScope"]["properties"]["parentId"] = id.clone();
    schemas["CreateScope"]["required"] = json!(["type", "name", "parentId"]);
    schemas["CreateScope"]["properties"]["name"] =
        json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"});
    let grant = json!({"type": "string", "enum": ["client_credentials"]});
    let assertion_type = json!({"type": "string", "enum": [crate::oauth::assertion::ASSERTION_TYPE]});
    schemas["TokenForm"]["properties"]["grant_type"] = if config.federation.issuers.is_empty() {
        grant.clone()
    } else {
        json!({"type": "string", "enum": ["client_credentials", crate::http::public::token::TOKEN_EXCHANGE]})
    };
    schemas["TokenForm"]["properties"]["subject_token_type"] = json!({"type": "string", "enum": [
        "urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token"]});
    schemas["CompatRequest"]["properties"]["grantType"] = grant;
    for form in ["TokenForm", "RevokeForm"] {
        schemas[form]["properties"]["client_assertion_type"] = assertion_type.clone();
    }
    schemas["RevokeForm"]["properties"]["token"] = json!({"type": "string", "minLength": 1});
    // An assertion type names an assertion that must come with it (an
    // empty parameter counts as absent).
    for form in ["TokenForm", "RevokeForm"] {
        schemas[form]["properties"]["client_assertion"] = json!({"type": "string", "minLength": 1});
        schemas[form]["dependentRequired"] = json!({
            "client_assertion_type": ["client_assertion"],
            "client_assertion": ["client_assertion_type"],
        });
    }
    // token_type_hint stays any string: unknown hints are ignored (RFC 7009
    // section 2.1, RFC 7662 section 2.1).
    let rule = &mut schemas["CreateRule"]["properties"];
    rule["subjectType"] = json!({"type": "string", "enum": ["app"]});
    rule["subjectId"] = id.clone();
    rule["scopeId"] = id;
    rule["roleId"] =
        json!({"type": "string", "enum": crate::domain::role::ROLES.iter().map(|r| r.id).collect::<Vec<_>>()});
    // An application's audiences are the issuer's, each once.
    let audiences = json!({"type": "array", "minItems": 1, "maxItems": issuer.audiences.len().min(32),
        "uniqueItems": true, "items": {"type": "string", "enum": issuer.audiences}});
    let ttl = json!({"type": "integer", "minimum": 5, "maximum": issuer.token_ttl_seconds});
    // On create, null is the default; on update, a list replaces the list
    // (there is no null: "every audience" is never granted through the
    // API) and a null lifetime means the issuer's.
    let ttl_or_null = json!({"oneOf": [ttl, {"type": "null"}]});
    schemas["CreateApp"]["properties"]["allowedAudiences"] = json!({"oneOf": [audiences.clone(), {"type": "null"}]});
    schemas["CreateApp"]["properties"]["tokenTtlSeconds"] = ttl_or_null.clone();
    schemas["UpdateApp"]["properties"]["allowedAudiences"] = audiences;
    schemas["UpdateApp"]["properties"]["tokenTtlSeconds"] = ttl_or_null;
    // A JWK Set of public keys, as `ClientKeys::parse` takes it (the key
    // material itself is checked beyond what a schema can say).
    let jwk = json!({"type": "object", "required": ["kty"],
        "properties": {"kty": {"type": "string", "enum": ["EC", "OKP", "RSA"]}, "kid": {"type": "string", "minLength": 1}}});
    let jwks = json!({"type": "object", "required": ["keys"], "additionalProperties": false,
        "properties": {"keys": {"type": "array", "minItems": 1, "maxItems": crate::domain::client_keys::MAX_KEYS, "items": jwk}}});
    let jwks_or_null = json!({"oneOf": [jwks, {"type": "null"}]});
    schemas["CreateApp"]["properties"]["jwks"] = jwks_or_null.clone();
    schemas["UpdateApp"]["properties"]["jwks"] = jwks_or_null;
    federated_credentials(schemas, config);
}

/// `NewFederatedCredential` as `NewFederatedCredential::parse` takes it:
/// a configured issuer, one of subject and subjectPattern, conditions on
/// claims other than the ones every token is checked for.
fn federated_credentials(schemas: &mut Value, config: &crate::config::Config) {
    use crate::domain::federated::MAX_CONDITIONS;
    let trusted: Vec<&str> = config.federation.issuers.iter().map(|i| i.issuer.as_str()).collect();
    let text = |max: usize| json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"});
    let new = &mut schemas["NewFederatedCredential"];
    new["properties"]["issuer"] = json!({"type": "string", "enum": trusted});
    // null is absent (serde's Option), as everywhere in the API.
    let or_null = |v: Value| json!({"oneOf": [v, {"type": "null"}]});
    new["properties"]["subject"] = or_null(text(256));
    new["properties"]["subjectPattern"] = or_null(text(256));
    new["properties"]["description"] = or_null(text(200));
    new["properties"]["conditions"] = json!({
        "type": "object",
        "maxProperties": MAX_CONDITIONS,
        "propertyNames": {"maxLength": 128, "pattern": "^[A-Za-z0-9_:-]+(\\.[A-Za-z0-9_:-]+)*$",
            "not": {"enum": ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]}},
        "additionalProperties": text(256),
    });
    new["oneOf"] = json!([
        {"required": ["subject"], "properties": {"subject": {"type": "string"}, "subjectPattern": {"type": "null"}}},
        {"required": ["subjectPattern"], "properties": {"subjectPattern": {"type": "string"}, "subject": {"type": "null"}}},
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(s)
    }

    #[test]
    fn the_filter_pattern_accepts_what_the_parser_accepts_and_refuses_what_it_refuses() {
        let p = filter_pattern(APP_COLUMNS);
        for ok in [
            "name=@ci",
            "enabled==true",
            "createdAt>=2026-01-28",
            "createdAt<=1700000000000",
            "lastLogin=@x",
            "createdAt==2026-01-02T03:04:05.123+01:00",
        ] {
            assert!(matches(&p, ok), "{ok}");
            assert!(
                crate::query::parse_filter::<crate::listing::AppRecord<'_>>(ok).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "",
            "name",
            "nope==x",
            "enabled<=true",
            "enabled==maybe",
            "createdAt>=soon",
        ] {
            assert!(!matches(&p, bad), "{bad}");
            assert!(
                crate::query::parse_filter::<crate::listing::AppRecord<'_>>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
