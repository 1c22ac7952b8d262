//! Tables for people: the columns an operator scans for, aligned; secrets
//! (create, regenerate) printed once with a warning that they will not be
//! shown again.

use serde_json::Value;

#[derive(Debug, Clone, Copy)]
pub enum View {
    Apps,
    App,
    Secret,
    Rules,
    Rule,
    Scopes,
    Scope,
    Roles,
    Audit,
    Federated,
    FederatedOne,
    Done,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Aligned columns; control characters in values (names are free text in
/// scopes) are shown escaped so they cannot rewrite the terminal.
fn grid(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let clean = |s: &str| {
        s.chars()
            .flat_map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect::<String>()
    };
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.iter().map(|c| clean(c)).collect()).collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut out = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        out.truncate(out.trim_end().len());
        out + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn rows(list: &Value, fields: &[&str]) -> Vec<Vec<String>> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| fields.iter().map(|f| text(&i[*f])).collect())
                .collect()
        })
        .unwrap_or_default()
}

fn total(v: &Value, shown: usize) -> String {
    match v["totalRecords"].as_u64() {
        Some(t) if t as usize != shown => format!("{shown} of {t}\n"),
        _ => String::new(),
    }
}

pub fn render(view: View, v: &Value) -> String {
    const APP: [&str; 8] = [
        "id",
        "name",
        "clientId",
        "enabled",
        "allowedAudiences",
        "tokenTtlSeconds",
        "createdByName",
        "createdAt",
    ];
    const RULE: [&str; 6] = ["id", "subjectId", "roleId", "scopeType", "scopeName", "createdAt"];
    const SCOPE: [&str; 4] = ["id", "type", "name", "parentId"];
    const FEDERATED: [&str; 5] = ["id", "issuer", "subject", "subjectPattern", "conditions"];
    let list = |key: &str, fields: &[&str]| {
        let r = rows(&v[key], fields);
        let n = r.len();
        grid(fields, r) + &total(v, n)
    };
    match view {
        View::Apps => list("applications", &APP),
        View::Rules => list("accessRules", &RULE),
        View::Scopes => list("scopes", &SCOPE),
        View::Roles => list("roles", &["id", "name", "permissions"]),
        View::Audit => {
            let mut r = rows(&v["events"], &["at", "action", "outcome", "targetName", "summary"]);
            for (row, e) in r.iter_mut().zip(v["events"].as_array().into_iter().flatten()) {
                row.insert(1, text(&e["actor"]["name"]));
            }
            let n = r.len();
            grid(&["at", "actor", "action", "outcome", "target", "summary"], r) + &total(v, n)
        }
        View::App => {
            const SECRET: [&str; 3] = ["id", "createdAt", "expiresAt"];
            let secrets = rows(&v["secrets"], &SECRET);
            let secrets = if secrets.is_empty() {
                String::new()
            } else {
                format!("\nsecrets\n{}", grid(&SECRET, secrets))
            };
            const RULES: [&str; 4] = ["id", "roleName", "scopeType", "scopeName"];
            let rules = rows(&v["accessRules"], &RULES);
            let rules = if rules.is_empty() {
                "\naccess rules: none\n".to_owned()
            } else {
                format!("\naccess rules\n{}", grid(&RULES, rules))
            };
            grid(&APP, rows(&Value::Array(vec![v.clone()]), &APP))
                + &format!("\nlast login: {}\n", text(&v["lastLogin"]))
                + &rules
                + &secrets
        }
        View::Federated => {
            let creds = rows(&v["federatedCredentials"], &FEDERATED);
            format!("trusted issuers: {}\n", text(&v["trustedIssuers"])) + &grid(&FEDERATED, creds)
        }
        View::FederatedOne => grid(&FEDERATED, rows(&Value::Array(vec![v.clone()]), &FEDERATED)),
        View::Rule => grid(&RULE, rows(&Value::Array(vec![v.clone()]), &RULE)),
        View::Scope => grid(&SCOPE, rows(&Value::Array(vec![v.clone()]), &SCOPE)),
        View::Secret => format!(
            "id         {}\nname       {}\nclientId   {}\nsecret     {}\n\nThe secret is shown only now: store it in your secret manager.\n",
            text(&v["id"]),
            text(&v["name"]),
            text(&v["clientId"]),
            text(&v["secret"])
        ),
        View::Done => "done\n".into(),
    }
}
