//! The admin API's collections as queryable rows (see [`crate::query`]) and
//! the CSV export of applications (RFC 4180, formula-injection safe).

use crate::directory::{AppRow, AuditEvent, By, Catalog};
use crate::domain::access_rule::AccessRule;
use crate::domain::{format_ms, role};
use crate::query::{Cell, Column, Kind, ListQuery, Marks, Row};
use std::borrow::Cow;

pub struct AppRecord<'a> {
    pub row: &'a AppRow,
    pub cat: &'a Catalog,
    /// The name, read from the catalog's dense arena when scanning (see
    /// `directory::apps`): a scan then never leaves sequential memory for it.
    name: &'a str,
}

impl<'a> AppRecord<'a> {
    pub fn new(row: &'a AppRow, cat: &'a Catalog) -> Self {
        Self {
            row,
            cat,
            name: row.app.name.as_str(),
        }
    }

    /// Every application, as a list query scans them.
    pub fn all(cat: &'a Catalog) -> impl Iterator<Item = Self> {
        cat.apps.rows().map(move |(name, row)| Self { row, cat, name })
    }

    /// A row whose name was read from the catalog's arena.
    pub fn named(row: &'a AppRow, cat: &'a Catalog, name: &'a str) -> Self {
        Self { row, cat, name }
    }

    /// The "Access rule(s)" column: `Role (Scope name)`, `; `-separated, as
    /// the console's table shows it (the scope's type is in the API's JSON).
    pub fn rules_text(&self) -> String {
        let mut out = String::new();
        for r in self.cat.rules_of(&self.row.app.id) {
            if !out.is_empty() {
                out.push_str("; ");
            }
            let role = role::find(&r.role_id).map_or(r.role_id.as_str(), |x| x.name);
            let scope = self.cat.scopes.get(&r.scope_id).map_or("", |s| s.name.as_str());
            out.push_str(&format!("{role} ({scope})"));
        }
        out
    }
}

/// Runs a list query over the applications: (matching count, the page's
/// ids). Sorted by name or id, or not at all (id order), it walks the
/// catalog's kept order (see `directory::apps`) instead of sorting every
/// match.
pub fn run_app_query(cat: &Catalog, q: &ListQuery) -> (usize, Vec<String>) {
    let column = |name| crate::query::column_index::<AppRecord<'_>>(name).ok();
    let by = match q.sort {
        None => Some(By::Id),
        Some((c, _)) if Some(c) == column("id") => Some(By::Id),
        Some((c, _)) if Some(c) == column("name") => Some(By::Name),
        Some(_) => None,
    };
    if let Some(order) = by.and_then(|by| cat.apps.order(by)) {
        let at = |slot| cat.apps.at(slot).map(|(name, row)| AppRecord::named(row, cat, name));
        let marks = match column("name") {
            // The console's first view: the order itself is the answer.
            _ if !Marks::needed(q) => Marks::every(cat.apps.len()),
            // `name=@…`, the console's filter box: one search of the arena.
            Some(name) => match q.split_contains(name) {
                Some((needle, rest)) => rest.mark_by(name, cat.apps.names_containing(&needle), at),
                None => q.mark_by(name, cat.apps.names(), at),
            },
            None => q.mark(
                cat.apps
                    .slotted_rows()
                    .map(|(slot, name, row)| (slot, AppRecord::named(row, cat, name))),
            ),
        };
        let (total, page) = q.page_in_order(&marks, order, at);
        return (total, page.into_iter().map(|r| r.row.app.id.clone()).collect());
    }
    let records: Vec<AppRecord<'_>> = AppRecord::all(cat).collect();
    let (total, page) = q.run(records.iter());
    (total, page.into_iter().map(|r| r.row.app.id.clone()).collect())
}

pub const APP_COLUMNS: &[Column] = &[
    Column {
        name: "id",
        kind: Kind::Text,
        searchable: false,
    },
    Column {
        name: "name",
        kind: Kind::Text,
        searchable: true,
    },
    Column {
        name: "clientId",
        kind: Kind::Text,
        searchable: true,
    },
    Column {
        name: "accessRules",
        kind: Kind::Text,
        searchable: false,
    },
    Column {
        name: "lastLogin",
        kind: Kind::Time,
        searchable: false,
    },
    Column {
        name: "createdBy",
        kind: Kind::Text,
        searchable: true,
    },
    Column {
        name: "createdAt",
        kind: Kind::Time,
        searchable: false,
    },
    Column {
        name: "updatedAt",
        kind: Kind::Time,
        searchable: false,
    },
    Column {
        name: "enabled",
        kind: Kind::Bool,
        searchable: false,
    },
    Column {
        name: "createdByName",
        kind: Kind::Text,
        searchable: true,
    },
];

impl Row for AppRecord<'_> {
    const COLUMNS: &'static [Column] = APP_COLUMNS;

    fn id(&self) -> &str {
        &self.row.app.id
    }

    fn cell(&self, column: usize) -> Cell<'_> {
        let app = &self.row.app;
        match column {
            0 => Cell::Text(Cow::Borrowed(&app.id)),
            1 => Cell::Text(Cow::Borrowed(self.name)),
            2 => Cell::Text(Cow::Borrowed(app.client_id.as_str())),
            3 => Cell::Text(Cow::Owned(self.rules_text())),
            4 => Cell::Time(self.row.login.get()),
            5 => Cell::Text(Cow::Borrowed(&app.created_by)),
            6 => Cell::Time(Some(app.created_at)),
            7 => Cell::Time(Some(app.updated_at)),
            8 => Cell::Bool(app.enabled),
            _ => Cell::Text(Cow::Borrowed(self.cat.creator_label(&app.created_by))),
        }
    }
}

pub struct RuleRecord<'a> {
    pub rule: &'a AccessRule,
    pub cat: &'a Catalog,
}

pub const RULE_COLUMNS: &[Column] = &[
    Column {
        name: "id",
        kind: Kind::Text,
        searchable: false,
    },
    Column {
        name: "subjectType",
        kind: Kind::Text,
        searchable: false,
    },
    Column {
        name: "subjectId",
        kind: Kind::Text,
        searchable: true,
    },
    Column {
        name: "roleId",
        kind: Kind::Text,
        searchable: false,
    },
    Column {
        name: "roleName",
        kind: Kind::Text,
        searchable: true,
    },
    Column {
        name: "scopeType",
        kind: Kind::Text,
        searchable: false,
    },
    Column {
        name: "scopeId",
        kind: Kind::Text,
        searchable: false,
    },
    Column {
        name: "scopeName",
        kind: Kind::Text,
        searchable: true,
    },
    Column {
        name: "createdBy",
        kind: Kind::Text,
        searchable: true,
    },
    Column {
        name: "createdAt",
        kind: Kind::Time,
        searchable: false,
    },
];

impl Row for RuleRecord<'_> {
    const COLUMNS: &'static [Column] = RULE_COLUMNS;

    fn id(&self) -> &str {
        &self.rule.id
    }

    fn cell(&self, column: usize) -> Cell<'_> {
        let r = self.rule;
        let text = |s: &'static str| Cell::Text(Cow::Borrowed(s));
        match column {
            0 => Cell::Text(Cow::Borrowed(&r.id)),
            1 => Cell::Text(Cow::Borrowed(&r.subject_type)),
            2 => Cell::Text(Cow::Borrowed(&r.subject_id)),
            3 => Cell::Text(Cow::Borrowed(&r.role_id)),
            4 => role::find(&r.role_id).map_or_else(|| Cell::Text(Cow::Borrowed(&r.role_id)), |x| text(x.name)),
            5 => text(r.scope_type.as_str()),
            6 => Cell::Text(Cow::Borrowed(&r.scope_id)),
            7 => Cell::Text(Cow::Borrowed(
                self.cat.scopes.get(&r.scope_id).map_or("", |s| s.name.as_str()),
            )),
            8 => Cell::Text(Cow::Borrowed(&r.created_by)),
            _ => Cell::Time(Some(r.created_at)),
        }
    }
}

/// An audit record as a queryable row (`GET /api/v1/audit`).
pub struct AuditRecord<'a>(pub &'a AuditEvent);

const fn col(name: &'static str, kind: Kind, searchable: bool) -> Column {
    Column { name, kind, searchable }
}

pub const AUDIT_COLUMNS: &[Column] = &[
    col("id", Kind::Text, false),
    col("at", Kind::Time, false),
    col("actorClientId", Kind::Text, true),
    col("actorName", Kind::Text, true),
    col("action", Kind::Text, true),
    col("targetType", Kind::Text, false),
    col("targetId", Kind::Text, true),
    col("targetName", Kind::Text, true),
    col("outcome", Kind::Text, false),
    col("status", Kind::Text, false),
    col("sourceAddress", Kind::Text, true),
    col("requestId", Kind::Text, true),
    col("summary", Kind::Text, true),
];

/// The column `at`: audit lists are newest first unless asked otherwise.
pub const AUDIT_AT_COLUMN: usize = 1;

impl Row for AuditRecord<'_> {
    const COLUMNS: &'static [Column] = AUDIT_COLUMNS;

    fn id(&self) -> &str {
        &self.0.id
    }

    fn cell(&self, column: usize) -> Cell<'_> {
        let e = self.0;
        fn text(s: &str) -> Cell<'_> {
            Cell::Text(Cow::Borrowed(s))
        }
        match column {
            0 => text(&e.id),
            1 => Cell::Time(Some(e.at)),
            2 => text(&e.actor.client_id),
            3 => text(&e.actor.name),
            4 => text(&e.action),
            5 => text(&e.target_type),
            6 => text(&e.target_id),
            7 => text(&e.target_name),
            8 => text(&e.outcome),
            9 => Cell::Text(Cow::Owned(e.status.to_string())),
            10 => text(&e.source_address),
            11 => text(&e.request_id),
            _ => text(&e.summary),
        }
    }
}

/// The audit CSV's columns: (API field, heading as in the console's table).
pub const AUDIT_CSV_COLUMNS: [(&str, &str); 12] = [
    ("at", "Time"),
    ("actorName", "Actor"),
    ("actorClientId", "Actor client ID"),
    ("action", "Action"),
    ("targetType", "Target type"),
    ("targetName", "Target"),
    ("targetId", "Target ID"),
    ("outcome", "Outcome"),
    ("status", "Status"),
    ("sourceAddress", "Source address"),
    ("requestId", "Request ID"),
    ("summary", "Summary"),
];

/// The value of an audit export column for one record.
pub fn audit_csv_value(e: &AuditEvent, field: &str) -> String {
    let rec = AuditRecord(e);
    match AUDIT_COLUMNS.iter().position(|c| c.name == field).map(|i| rec.cell(i)) {
        Some(Cell::Text(t)) => t.into_owned(),
        Some(Cell::Time(Some(ms))) => format_ms(ms),
        _ => String::new(),
    }
}

/// The CSV export's columns: (API field, heading as in the product's table).
/// The first seven are the default (the seed's table); `createdBy`, the
/// creator's client ID, and the token policy, only when asked for with `columns=`.
pub const CSV_COLUMNS: [(&str, &str); 10] = [
    ("name", "Application"),
    ("clientId", "Client ID"),
    ("accessRules", "Access rule(s)"),
    ("lastLogin", "Last login"),
    ("createdByName", "Created by"),
    ("createdAt", "Creation time"),
    ("updatedAt", "Last updated"),
    ("createdBy", "Created by (client ID)"),
    ("allowedAudiences", "Allowed audiences"),
    ("tokenTtlSeconds", "Token lifetime (s)"),
];
pub const CSV_DEFAULT_COLUMNS: usize = 7;

pub const MAX_CSV_ROWS: usize = 20_000;

/// One CSV field: neutralised against formula injection (a leading
/// `= + - @ TAB CR` gets a `'`), then quoted per RFC 4180 when needed.
pub fn csv_field(out: &mut String, value: &str) {
    let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = risky || value.contains([',', '"', '\r', '\n']);
    if needs_quotes {
        out.push('"');
    }
    if risky {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if needs_quotes {
        out.push('"');
    }
}

pub fn csv_line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, &f);
    }
    out.push_str("\r\n");
}

/// The value of an export column for one application.
pub fn csv_value(rec: &AppRecord<'_>, field: &str) -> String {
    let app = &rec.row.app;
    match field {
        "name" => app.name.as_str().to_owned(),
        "clientId" => app.client_id.as_str().to_owned(),
        "accessRules" => rec.rules_text(),
        "lastLogin" => rec.row.login.get().map(format_ms).unwrap_or_default(),
        "createdBy" => app.created_by.clone(),
        "createdByName" => rec.cat.creator_label(&app.created_by).to_owned(),
        "createdAt" => format_ms(app.created_at),
        "updatedAt" => format_ms(app.updated_at),
        "allowedAudiences" => app
            .policy
            .allowed_audiences
            .as_ref()
            .map_or_else(|| "(every audience)".to_owned(), |l| l.join(" ")),
        "tokenTtlSeconds" => app
            .policy
            .token_ttl_seconds
            .map_or_else(|| "(issuer default)".to_owned(), |t| t.to_string()),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(v: &str) -> String {
        let mut s = String::new();
        csv_field(&mut s, v);
        s
    }

    #[test]
    fn csv_fields_are_quoted_and_neutralised() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        assert_eq!(field("+1"), "\"'+1\"");
        assert_eq!(field("-1"), "\"'-1\"");
        assert_eq!(field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(field("\tx"), "\"'\tx\"");
        assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(field("<script>"), "<script>");
    }
}
