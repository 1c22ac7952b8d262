//! List queries shared by the admin API's collections (DESIGN §4):
//! `filterBy` (repeatable, `field<op>value`), `search`, `sortBy` /
//! `sortOrder`, `offset` / `limit`.
//!
//! Semantics, documented in the README and checked by a property test
//! against a naive evaluator:
//! - text: `==` `!=` exact; `=@` `!@` `=^` `=$` case-insensitive contains /
//!   not-contains / starts / ends; `<=` `>=` by byte order.
//! - times: the value is an RFC 3339 instant (or Unix milliseconds); `==`,
//!   `!=`, `<=`, `>=` compare instants, the text operators apply to the
//!   formatted RFC 3339 string. A missing time (`lastLogin` never set)
//!   matches only `!=` and `!@`.
//! - booleans: `==` / `!=` with `true` / `false`.
//! - `search`: case-insensitive substring of any searchable column.
//! - sort: by one column, then by `id` ascending, so pages are stable.

use std::borrow::Cow;
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Time,
    Bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub searchable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell<'a> {
    Text(Cow<'a, str>),
    /// Unix ms; `None` when not set.
    Time(Option<i64>),
    Bool(bool),
}

/// Something a list query can run over.
pub trait Row {
    const COLUMNS: &'static [Column];
    fn id(&self) -> &str;
    fn cell(&self, column: usize) -> Cell<'_>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Le,
    Ge,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
}

pub const OPS: [(&str, Op); 8] = [
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("=@", Op::Contains),
    ("!@", Op::NotContains),
    ("=^", Op::StartsWith),
    ("=$", Op::EndsWith),
];

#[derive(Debug, Clone)]
pub struct Filter {
    pub column: usize,
    pub op: Op,
    pub value: String,
    /// `value` lowercased once, for the case-insensitive operators.
    lower: String,
    /// The value as an instant, for time columns.
    time: Option<i64>,
}

/// Bytes of a text sort key kept inline (longer values fall back to a full compare on ties).
const KEY_PREFIX: usize = 24;

/// A row's sort key, copied out of the row once per query.
enum SortKey {
    None,
    /// Zero-padded prefix: byte order of the padded prefixes matches byte
    /// order of the strings unless one is cut, which `complete` says.
    Text {
        prefix: [u8; KEY_PREFIX],
        complete: bool,
    },
    Time(Option<i64>),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

pub const MAX_LIMIT: usize = 500;
/// Bounds on what one list request may ask for: every filter is evaluated
/// against every row, so their number and size bound the query's cost.
pub const MAX_FILTERS: usize = 20;
/// Longest `filterBy` or `search` value, in characters (as JSON Schema's
/// `maxLength` counts, so the OpenAPI document can say it exactly).
pub const MAX_VALUE_CHARS: usize = 256;
pub const DEFAULT_LIMIT: usize = 50;

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filters: Vec<Filter>,
    pub search: Option<String>,
    pub sort: Option<(usize, Order)>,
    pub offset: usize,
    pub limit: usize,
}

/// A query parameter problem, with the valid choices for the 400's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub message: String,
    pub valid: Vec<String>,
}

fn qerr(message: String, valid: Vec<String>) -> QueryError {
    QueryError { message, valid }
}

fn column_names<R: Row>() -> Vec<String> {
    R::COLUMNS.iter().map(|c| c.name.to_owned()).collect()
}

pub fn column_index<R: Row>(name: &str) -> Result<usize, QueryError> {
    R::COLUMNS.iter().position(|c| c.name == name).ok_or_else(|| {
        qerr(
            format!(
                "unknown field {name:?}; valid fields: {}",
                column_names::<R>().join(", ")
            ),
            column_names::<R>(),
        )
    })
}

/// Parses an instant: RFC 3339, or Unix milliseconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    // A bare date means its first instant in UTC: "on or after 2020-01-01".
    let date = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// Parses one `filterBy` value: `field`, then an operator, then the value
/// (which may itself contain `=`, `,` or anything else).
pub fn parse_filter<R: Row>(raw: &str) -> Result<Filter, QueryError> {
    let name_len = raw.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(raw.len());
    let (name, rest) = raw.split_at(name_len);
    let ops: Vec<String> = OPS.iter().map(|(s, _)| s.to_string()).collect();
    let column = column_index::<R>(name)?;
    let (op_str, op) = OPS.iter().find(|(s, _)| rest.starts_with(s)).ok_or_else(|| {
        qerr(
            format!(
                "filterBy {raw:?}: expected field, operator, value; operators: {}",
                ops.join(" ")
            ),
            ops.clone(),
        )
    })?;
    let mut value = rest[op_str.len()..].to_owned();
    // Ids are stored in lower case and are case-insensitive on input
    // (RFC 9562 §4), in filters as in paths: `subjectId==3F2C…` finds them.
    if (name == "id" || name.ends_with("Id") || name == "createdBy")
        && let Some(id) = crate::domain::parse_id(&value)
    {
        value = id;
    }
    let kind = R::COLUMNS[column].kind;
    let mut time = None;
    match kind {
        Kind::Bool if !matches!(op, Op::Eq | Op::Ne) || !matches!(value.as_str(), "true" | "false") => {
            return Err(qerr(
                format!("filterBy {raw:?}: {name} is a boolean; use {name}==true or {name}!=true"),
                vec!["==".into(), "!=".into()],
            ));
        }
        Kind::Time if matches!(op, Op::Eq | Op::Ne | Op::Le | Op::Ge) => {
            time = Some(parse_instant(&value).ok_or_else(|| {
                qerr(
                    format!("filterBy {raw:?}: {name} is a time; give a date like 2026-01-31, an RFC 3339 instant like 2026-01-31T12:00:00Z, or Unix milliseconds"),
                    Vec::new(),
                )
            })?);
        }
        _ => {}
    }
    Ok(Filter {
        column,
        op: *op,
        lower: value.to_lowercase(),
        value,
        time,
    })
}

/// Case-insensitive tests against an already-lowercased needle. ASCII text
/// (ids, names, most labels) is compared in place: these run once per row
/// per list request, over up to 100,000 rows.
fn contains_ci(hay: &str, lower: &str) -> bool {
    // ASCII rows are compared byte by byte, folding case as they go: no
    // copy, no allocation, and no searcher set-up or `memcmp` call per
    // candidate (with those, this was a third of a list query's time).
    if hay.is_ascii() {
        let (h, n) = (hay.as_bytes(), lower.as_bytes());
        let Some((&first, rest)) = n.split_first() else {
            return true;
        };
        let Some(last_start) = h.len().checked_sub(n.len()) else {
            return false;
        };
        return (0..=last_start).any(|i| {
            h[i].to_ascii_lowercase() == first
                && h[i + 1..i + n.len()]
                    .iter()
                    .zip(rest)
                    .all(|(a, b)| a.to_ascii_lowercase() == *b)
        });
    }
    hay.to_lowercase().contains(lower)
}

fn starts_ci(hay: &str, lower: &str) -> bool {
    if hay.is_ascii() && lower.is_ascii() {
        hay.len() >= lower.len() && hay.as_bytes()[..lower.len()].eq_ignore_ascii_case(lower.as_bytes())
    } else {
        hay.to_lowercase().starts_with(lower)
    }
}

fn ends_ci(hay: &str, lower: &str) -> bool {
    if hay.is_ascii() && lower.is_ascii() {
        hay.len() >= lower.len() && hay.as_bytes()[hay.len() - lower.len()..].eq_ignore_ascii_case(lower.as_bytes())
    } else {
        hay.to_lowercase().ends_with(lower)
    }
}

fn text_matches(text: &str, op: Op, value: &str, lower: &str) -> bool {
    match op {
        Op::Eq => text == value,
        Op::Ne => text != value,
        Op::Le => text <= value,
        Op::Ge => text >= value,
        Op::Contains => contains_ci(text, lower),
        Op::NotContains => !contains_ci(text, lower),
        Op::StartsWith => starts_ci(text, lower),
        Op::EndsWith => ends_ci(text, lower),
    }
}

impl Filter {
    pub fn matches<R: Row>(&self, row: &R) -> bool {
        match row.cell(self.column) {
            Cell::Text(t) => text_matches(&t, self.op, &self.value, &self.lower),
            Cell::Bool(b) => (b == (self.value == "true")) == (self.op == Op::Eq),
            Cell::Time(None) => matches!(self.op, Op::Ne | Op::NotContains),
            Cell::Time(Some(ms)) => match (self.op, self.time) {
                (Op::Eq, Some(v)) => ms == v,
                (Op::Ne, Some(v)) => ms != v,
                (Op::Le, Some(v)) => ms <= v,
                (Op::Ge, Some(v)) => ms >= v,
                (op, _) => text_matches(&crate::domain::format_ms(ms), op, &self.value, &self.lower),
            },
        }
    }
}

fn cmp_cells(a: &Cell<'_>, b: &Cell<'_>) -> Ordering {
    match (a, b) {
        (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
        // Never-set times sort before any time.
        (Cell::Time(x), Cell::Time(y)) => x.cmp(y),
        (Cell::Bool(x), Cell::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

impl ListQuery {
    pub fn matches<R: Row>(&self, row: &R) -> bool {
        if !self.filters.iter().all(|f| f.matches(row)) {
            return false;
        }
        match &self.search {
            None => true,
            // Lowercased when parsed.
            Some(needle) => R::COLUMNS
                .iter()
                .enumerate()
                .filter(|(_, c)| c.searchable)
                .any(|(i, _)| match row.cell(i) {
                    Cell::Text(t) => contains_ci(&t, needle),
                    _ => false,
                }),
        }
    }

    fn sort_key<R: Row>(&self, row: &R) -> SortKey {
        let Some((col, _)) = self.sort else {
            return SortKey::None;
        };
        match row.cell(col) {
            Cell::Text(t) => {
                let mut prefix = [0u8; KEY_PREFIX];
                let n = t.len().min(KEY_PREFIX);
                prefix[..n].copy_from_slice(&t.as_bytes()[..n]);
                SortKey::Text {
                    prefix,
                    // NUL bytes would tie with the zero padding.
                    complete: t.len() <= KEY_PREFIX && !t.as_bytes().contains(&0),
                }
            }
            Cell::Time(t) => SortKey::Time(t),
            Cell::Bool(b) => SortKey::Bool(b),
        }
    }

    /// Orders by the extracted keys, reading the rows only when two text
    /// prefixes tie and one of them was cut (and for the `id` tie-break).
    fn compare_keyed<R: Row>(&self, (ka, a): &(SortKey, &R), (kb, b): &(SortKey, &R)) -> Ordering {
        let by_key = match (ka, kb) {
            (
                SortKey::Text {
                    prefix: pa,
                    complete: ca,
                },
                SortKey::Text {
                    prefix: pb,
                    complete: cb,
                },
            ) => match pa.cmp(pb) {
                Ordering::Equal if !(*ca && *cb) => return self.compare(*a, *b),
                o => o,
            },
            (SortKey::Time(x), SortKey::Time(y)) => x.cmp(y),
            (SortKey::Bool(x), SortKey::Bool(y)) => x.cmp(y),
            _ => Ordering::Equal,
        };
        let by_key = match self.sort {
            Some((_, Order::Desc)) => by_key.reverse(),
            _ => by_key,
        };
        by_key.then_with(|| a.id().cmp(b.id()))
    }

    fn compare<R: Row>(&self, a: &R, b: &R) -> Ordering {
        let by_column = match self.sort {
            Some((col, order)) => {
                let o = cmp_cells(&a.cell(col), &b.cell(col));
                if order == Order::Desc { o.reverse() } else { o }
            }
            None => Ordering::Equal,
        };
        by_column.then_with(|| a.id().cmp(b.id()))
    }

    /// Filters, sorts and pages `rows`: (matching count, page in order).
    /// Only the rows up to the end of the page are fully sorted.
    pub fn run<'r, R: Row + 'r>(&self, rows: impl Iterator<Item = &'r R>) -> (usize, Vec<&'r R>) {
        let (offset, limit) = (self.offset, self.limit);
        // Each matched row's sort key is read once into a contiguous vector:
        // comparing in place would chase two heap strings per comparison,
        // and with 100,000 rows those cache misses were most of the cost.
        let mut matched: Vec<(SortKey, &R)> = rows
            .filter(|r| self.matches(*r))
            .map(|r| (self.sort_key(r), r))
            .collect();
        let total = matched.len();
        let end = offset.saturating_add(limit).min(total);
        if offset >= total {
            return (total, Vec::new());
        }
        let cmp = |a: &(SortKey, &R), b: &(SortKey, &R)| self.compare_keyed(a, b);
        if end < total {
            matched.select_nth_unstable_by(end, cmp);
            matched.truncate(end);
        }
        matched.sort_unstable_by(cmp);
        (total, matched.into_iter().skip(offset).map(|(_, r)| r).collect())
    }
}

/// A borrowed row is a row (the indexed walk takes rows by value).
impl<R: Row> Row for &R {
    const COLUMNS: &'static [Column] = R::COLUMNS;
    fn id(&self) -> &str {
        (**self).id()
    }
    fn cell(&self, column: usize) -> Cell<'_> {
        (**self).cell(column)
    }
}

/// The rows a query matched, by slot (see [`ListQuery::page_in_order`]).
#[derive(Default)]
pub struct Marks {
    bits: Vec<u64>,
    total: usize,
    /// Every row of the walked order (a query with no filter and no search).
    every: bool,
}

impl Marks {
    /// All `total` rows of the order a page is walked in.
    pub fn every(total: usize) -> Self {
        Self {
            bits: Vec::new(),
            total,
            every: true,
        }
    }

    /// Whether nothing but the order is needed: no filter, no search.
    pub fn needed(q: &ListQuery) -> bool {
        !q.filters.is_empty() || q.search.is_some()
    }

    fn set(&mut self, slot: u32) {
        let (word, bit) = (slot as usize / 64, slot % 64);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << bit;
        self.total += 1;
    }

    fn has(&self, slot: u32) -> bool {
        self.every
            || self
                .bits
                .get(slot as usize / 64)
                .is_some_and(|w| (w >> (slot % 64)) & 1 == 1)
    }
}

impl ListQuery {
    /// Marks the matching rows of `(slot, row)`.
    pub fn mark<R: Row>(&self, rows: impl Iterator<Item = (u32, R)>) -> Marks {
        let mut marks = Marks::default();
        for (slot, _) in rows.filter(|(_, r)| self.matches(r)) {
            marks.set(slot);
        }
        marks
    }

    /// Marks the matching rows, testing the filters on one text column
    /// from `texts` (that column's value of every row, by slot) first and
    /// reading a row through `at` only when those pass and more is asked
    /// (other filters, a search). Rows kept in one table but named from a
    /// dense column are then decided without touching most of them. Marks
    /// exactly what [`Self::mark`] does: a text cell is tested the same way.
    pub fn mark_by<'t, R: Row>(
        &self,
        column: usize,
        texts: impl Iterator<Item = (u32, &'t str)>,
        at: impl Fn(u32) -> Option<R>,
    ) -> Marks {
        let on_column: Vec<&Filter> = self.filters.iter().filter(|f| f.column == column).collect();
        let rest = self.search.is_some() || on_column.len() < self.filters.len();
        let mut marks = Marks::default();
        for (slot, text) in texts {
            if on_column.iter().all(|f| text_matches(text, f.op, &f.value, &f.lower))
                && (!rest || at(slot).is_some_and(|r| self.matches(&r)))
            {
                marks.set(slot);
            }
        }
        marks
    }

    /// Splits off the first `=@` filter on `column`, for a caller that can
    /// answer it from an index: its lowercased value, and this query
    /// without it.
    pub fn split_contains(&self, column: usize) -> Option<(String, ListQuery)> {
        let i = self
            .filters
            .iter()
            .position(|f| f.column == column && f.op == Op::Contains)?;
        let mut rest = self.clone();
        let filter = rest.filters.remove(i);
        Some((filter.lower, rest))
    }

    /// [`Self::run`] for a query sorted by a column whose order (then id,
    /// ascending) an index keeps: `marks` the matching slots, `order` the
    /// slots in that column's order and `at` reads one slot. The order is
    /// walked only until the page is full, instead of sorting every match.
    /// The result is exactly [`Self::run`]'s.
    pub fn page_in_order<R: Row>(
        &self,
        marks: &Marks,
        order: &[u32],
        at: impl Fn(u32) -> Option<R>,
    ) -> (usize, Vec<R>) {
        let total = marks.total;
        let end = self.offset.saturating_add(self.limit).min(total);
        if self.offset >= end {
            return (total, Vec::new());
        }
        let desc = matches!(self.sort, Some((_, Order::Desc)));
        let walk: Box<dyn Iterator<Item = &u32>> = if desc {
            Box::new(order.iter().rev())
        } else {
            Box::new(order.iter())
        };
        let mut page: Vec<R> = Vec::with_capacity(end + 1);
        for row in walk.filter(|&&s| marks.has(s)).filter_map(|&s| at(s)) {
            // Past the page's end only rows tying with its last one matter:
            // descending walks ties in descending id, which `run` orders
            // ascending, so the whole run of ties is taken and sorted.
            if page.len() >= end
                && page.last().is_none_or(|last| {
                    self.sort
                        .is_none_or(|(c, _)| cmp_cells(&last.cell(c), &row.cell(c)).is_ne())
                })
            {
                break;
            }
            page.push(row);
        }
        page.sort_by(|a, b| self.compare(a, b));
        page.truncate(end);
        (total, page.into_iter().skip(self.offset).collect())
    }
}

/// Parses the common query parameters from raw `(name, value)` pairs.
/// `extra` names parameters the caller handles itself (e.g. `format`).
pub fn parse_query<R: Row>(pairs: &[(String, String)], extra: &[&str]) -> Result<ListQuery, QueryError> {
    parse_query_limited::<R>(pairs, extra, MAX_LIMIT, DEFAULT_LIMIT)
}

/// As [`parse_query`], with another limit range (CSV export allows more).
pub fn parse_query_limited<R: Row>(
    pairs: &[(String, String)],
    extra: &[&str],
    max_limit: usize,
    default_limit: usize,
) -> Result<ListQuery, QueryError> {
    let mut q = ListQuery {
        filters: Vec::new(),
        search: None,
        sort: None,
        offset: 0,
        limit: default_limit,
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut sort_by = None;
    let mut order = Order::Asc;
    let known = ["filterBy", "search", "sortBy", "sortOrder", "offset", "limit"];
    let filters = pairs.iter().filter(|(k, _)| k == "filterBy").count();
    if filters > MAX_FILTERS {
        return Err(qerr(
            format!("at most {MAX_FILTERS} filterBy parameters are allowed, got {filters}"),
            Vec::new(),
        ));
    }
    if let Some((name, value)) = pairs
        .iter()
        .find(|(k, v)| (k == "filterBy" || k == "search") && v.chars().count() > MAX_VALUE_CHARS)
    {
        return Err(qerr(
            format!(
                "{name} values are limited to {MAX_VALUE_CHARS} characters, got {}",
                value.chars().count()
            ),
            Vec::new(),
        ));
    }
    for (name, value) in pairs {
        if name != "filterBy" {
            if seen.contains(&name.as_str()) {
                return Err(qerr(
                    format!("query parameter {name:?} must be given at most once"),
                    Vec::new(),
                ));
            }
            seen.push(name);
        }
        let number = |max: usize, what: &str| -> Result<usize, QueryError> {
            let n: i64 = value
                .parse()
                .map_err(|_| qerr(format!("{what} must be an integer, got {value:?}"), Vec::new()))?;
            if n < 0 || n as u64 > max as u64 {
                return Err(qerr(
                    format!(
                        "{what} must be between {} and {max}, got {n}",
                        if what == "limit" { 1 } else { 0 }
                    ),
                    Vec::new(),
                ));
            }
            Ok(n as usize)
        };
        match name.as_str() {
            "filterBy" => q.filters.push(parse_filter::<R>(value)?),
            "search" => q.search = (!value.is_empty()).then(|| value.to_lowercase()),
            "sortBy" => sort_by = Some(column_index::<R>(value)?),
            "sortOrder" => {
                order = match value.as_str() {
                    "asc" => Order::Asc,
                    "desc" => Order::Desc,
                    _ => {
                        return Err(qerr(
                            format!("sortOrder must be asc or desc, got {value:?}"),
                            vec!["asc".into(), "desc".into()],
                        ));
                    }
                }
            }
            "offset" => q.offset = number(usize::MAX >> 1, "offset")?,
            "limit" => {
                q.limit = number(max_limit, "limit")?;
                if q.limit == 0 {
                    return Err(qerr(
                        format!("limit must be between 1 and {max_limit}, got 0"),
                        Vec::new(),
                    ));
                }
            }
            "format" if extra.contains(&"format") && value != "csv" => {
                return Err(qerr(
                    format!("format must be csv, got {value:?}; leave it out for JSON"),
                    vec!["csv".into()],
                ));
            }
            other if extra.contains(&other) => {}
            other => {
                let mut valid: Vec<String> = known.iter().map(|s| s.to_string()).collect();
                valid.extend(extra.iter().map(|s| s.to_string()));
                return Err(qerr(
                    format!("unknown query parameter {other:?}; valid: {}", valid.join(", ")),
                    valid,
                ));
            }
        }
    }
    q.sort = sort_by.map(|c| (c, order));
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct T {
        id: String,
        name: String,
    }

    impl Row for T {
        // The applications' first two columns: id, then name (searchable).
        const COLUMNS: &'static [Column] = crate::listing::APP_COLUMNS.split_at(2).0;
        fn id(&self) -> &str {
            &self.id
        }
        fn cell(&self, column: usize) -> Cell<'_> {
            Cell::Text(std::borrow::Cow::Borrowed(if column == 0 {
                &self.id
            } else {
                &self.name
            }))
        }
    }

    proptest! {
        #[test]
        fn contains_ci_is_a_case_insensitive_substring_test(hay in "[aAbB\\-é]{0,12}", needle in "[abB\\-É]{0,4}") {
            let lower = needle.to_lowercase();
            prop_assert_eq!(contains_ci(&hay, &lower), hay.to_lowercase().contains(&lower));
        }

        // The indexed walk must page exactly as the full sort does, ties
        // (equal names, which only a multi-instance race can make) included,
        // sorted by name, by id, or not at all.
        #[test]
        fn walking_a_kept_order_pages_exactly_as_sorting_every_match(
            names in proptest::collection::vec("[ab]{0,3}", 0..60),
            needle in "[ab]{0,2}",
            desc in any::<bool>(),
            offset in 0usize..70,
            limit in 1usize..20,
            by in 0u8..3,
            search in proptest::option::of("[ab]{1,2}"),
            id_filter in proptest::option::of("[0-9]"),
        ) {
            let rows: Vec<T> = names
                .iter()
                .enumerate()
                .map(|(i, n)| T { id: format!("id-{:02}", (i * 37) % 61), name: n.clone() })
                .collect();
            // Slots sorted by (name, id), or by id (for sortBy=id and for
            // no sortBy at all, whose order is the id's).
            let mut order: Vec<u32> = (0..rows.len() as u32).collect();
            order.sort_by(|&a, &b| {
                let (a, b) = (&rows[a as usize], &rows[b as usize]);
                if by == 0 { (&a.name, &a.id).cmp(&(&b.name, &b.id)) } else { a.id.cmp(&b.id) }
            });
            let mut pairs: Vec<(String, String)> = [
                ("filterBy", format!("name=@{needle}")),
                ("sortOrder", if desc { "desc" } else { "asc" }.into()),
                ("offset", offset.to_string()),
                ("limit", limit.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            // A search and a filter on another column make the marking
            // read rows, not only the name column.
            if let Some(search) = search {
                pairs.push(("search".into(), search));
            }
            if let Some(digit) = id_filter {
                pairs.push(("filterBy".into(), format!("id=@{digit}")));
            }
            match by {
                0 => pairs.push(("sortBy".into(), "name".into())),
                1 => pairs.push(("sortBy".into(), "id".into())),
                _ => {}
            }
            let q = parse_query::<T>(&pairs, &[]).expect("valid query");
            let (total, page) = q.run(rows.iter());
            let want: Vec<&str> = page.iter().map(|r| r.id.as_str()).collect();
            let marks = q.mark(rows.iter().enumerate().map(|(i, r)| (i as u32, r)));
            let (total_in_order, page_in_order) = q.page_in_order(&marks, &order, |s| rows.get(s as usize));
            let got: Vec<&str> = page_in_order.iter().map(|r| r.id.as_str()).collect();
            prop_assert_eq!(total_in_order, total);
            prop_assert_eq!(&got, &want);
            // The same, marked from the name column first.
            let marks = q.mark_by(1, rows.iter().enumerate().map(|(i, r)| (i as u32, r.name.as_str())), |s| rows.get(s as usize));
            let (total_by_text, page_by_text) = q.page_in_order(&marks, &order, |s| rows.get(s as usize));
            let got: Vec<&str> = page_by_text.iter().map(|r| r.id.as_str()).collect();
            prop_assert_eq!(total_by_text, total);
            prop_assert_eq!(got, want);
            // With no filter and no search, every row in the order.
            let mut bare = q.clone();
            bare.filters.clear();
            bare.search = None;
            prop_assert!(!Marks::needed(&bare));
            let (total, page) = bare.run(rows.iter());
            let want: Vec<&str> = page.iter().map(|r| r.id.as_str()).collect();
            let (total_every, page_every) = bare.page_in_order(&Marks::every(rows.len()), &order, |s| rows.get(s as usize));
            let got: Vec<&str> = page_every.iter().map(|r| r.id.as_str()).collect();
            prop_assert_eq!(total_every, total);
            prop_assert_eq!(got, want);
        }
    }
}
