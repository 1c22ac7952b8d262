//! One conformance suite for every `Store` backend: sled, in-memory and
//! PostgreSQL must keep the same contract (ordered prefix scans, atomic
//! batches, side records, merged last-login times), and the backends with
//! a change feed the same feed semantics.

use appauth::store::{ChangeFeed, MemoryStore, PostgresStore, SledStore, Store, StoreError, Write};

fn put(k: &str, v: &str) -> Write {
    Write::Put(k.into(), v.as_bytes().to_vec())
}

fn conformance(s: &dyn Store) {
    s.apply(&[
        put("app/1", "a"),
        put("app/2", "b"),
        put("apps", "x"),
        put("app0", "y"),
        put("rule/1", "c"),
    ])
    .unwrap();
    let keys: Vec<String> = s.scan_prefix("app/").unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        ["app/1", "app/2"],
        "a prefix scan stops at the prefix boundary, in key order"
    );
    assert_eq!(s.get("app/2").unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(s.get("app/3").unwrap(), None);

    s.apply(&[Write::Delete("app/1".into()), put("app/2", "b2"), put("app/3", "c")])
        .unwrap();
    let all: Vec<(String, Vec<u8>)> = s.scan_prefix("app/").unwrap();
    assert_eq!(
        all,
        [
            ("app/2".to_string(), b"b2".to_vec()),
            ("app/3".to_string(), b"c".to_vec())
        ],
        "a batch applies deletes and overwrites together"
    );

    s.put_side("side-a", b"one").unwrap();
    s.put_side("side-a", b"two").unwrap();
    assert_eq!(s.get_side("side-a").unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(s.get_side("side-b").unwrap(), None);

    s.merge_logins(&[("a".into(), 100), ("b".into(), 50)]).unwrap();
    s.merge_logins(&[("a".into(), 90), ("b".into(), 70), ("c".into(), 1)])
        .unwrap();
    let mut logins = s.load_logins().unwrap();
    logins.sort();
    assert_eq!(
        logins,
        [("a".to_string(), 100), ("b".to_string(), 70), ("c".to_string(), 1)],
        "the later time wins, never an older one"
    );
    s.ping().unwrap();
}

fn feed_conformance(s: &dyn Store) {
    let feed: &dyn ChangeFeed = s.feed().expect("this backend has a change feed");
    let start = feed.head().unwrap();
    s.apply(&[put("app/f1", "1"), put("audit/0001-x", "not followed")])
        .unwrap();
    s.apply(&[put("app/f1", "2"), put("rule/f1", "r")]).unwrap();
    let changes = feed.since(start, 100).unwrap();
    let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        keys,
        ["app/f1", "app/f1", "rule/f1"],
        "followed keys only, in commit order"
    );
    assert!(
        changes.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "gap-free sequence"
    );
    assert_eq!(
        changes[0].value.as_deref(),
        Some(&b"2"[..]),
        "each change carries the value now"
    );
    assert_eq!(feed.since(start, 1).unwrap().len(), 1, "the limit is honoured");

    let seen = feed.head().unwrap();
    s.apply(&[put("revoked/j1", "token")]).unwrap();
    let after = feed
        .apply_after(seen, &[put("app/f2", "x")])
        .expect("a revocation does not conflict with a directory write");
    assert!(after > seen);
    let stale = feed.apply_after(seen, &[put("app/f3", "y")]);
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "a directory change since `seen` makes the write stale"
    );
    assert_eq!(s.get("app/f3").unwrap(), None, "a stale write writes nothing");
    s.apply(&[Write::Delete("app/f2".into())]).unwrap();
    let last = feed.since(after, 100).unwrap();
    assert_eq!(
        last.last().map(|c| (c.key.as_str(), c.value.clone())),
        Some(("app/f2", None))
    );
}

#[test]
fn the_in_memory_store_keeps_the_store_contract_and_the_feed_contract() {
    let s = MemoryStore::default();
    conformance(&s);
    feed_conformance(&s);
}

#[test]
fn the_sled_store_keeps_the_store_contract_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStore::open(dir.path()).unwrap();
        conformance(&s);
        assert!(s.feed().is_none(), "one process owns a sled store: no feed");
    }
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        s.get("app/3").unwrap().as_deref(),
        Some(&b"c"[..]),
        "durable across a reopen"
    );
    assert_eq!(s.load_logins().unwrap().len(), 3);
}

#[test]
fn the_postgres_store_keeps_the_store_contract_and_the_feed_contract() {
    let db = crate::helpers::PostgresDb::create();
    let s = PostgresStore::open(&db.url).unwrap();
    conformance(&s);
    feed_conformance(&s);
    drop(s);
    let again = PostgresStore::open(&db.url).expect("migrations already applied are skipped");
    assert_eq!(again.get("app/3").unwrap().as_deref(), Some(&b"c"[..]));
}

#[test]
fn postgres_refuses_a_second_application_with_the_same_name_whoever_writes_it() {
    let db = crate::helpers::PostgresDb::create();
    let s = PostgresStore::open(&db.url).unwrap();
    let app = |name: &str| format!(r#"{{"id":"x","name":"{name}","clientId":"c"}}"#);
    s.apply(&[
        put("app/1", &app("ci")),
        put("rule/1", r#"{"subjectId":"1","roleId":"r","scopeId":"s"}"#),
    ])
    .unwrap();
    // A batch that would duplicate the name is refused whole.
    let e = s.apply(&[put("app/9", "{}"), put("app/2", &app("ci"))]).unwrap_err();
    assert!(
        matches!(&e, StoreError::Duplicate { constraint } if constraint == "appauth_unique_app_name"),
        "{e:?}"
    );
    assert_eq!(s.get("app/9").unwrap(), None, "nothing of a refused batch is written");
    let e = s
        .apply(&[put("rule/2", r#"{"subjectId":"1","roleId":"r","scopeId":"s"}"#)])
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Duplicate { constraint } if constraint == "appauth_unique_rule"),
        "{e:?}"
    );
    // Renaming the one record, and a different grant, are fine; so is a
    // value that is not JSON (the directory reads it as absent).
    s.apply(&[put("app/1", &app("ci-2")), put("app/2", &app("ci"))])
        .unwrap();
    s.apply(&[put("rule/2", r#"{"subjectId":"1","roleId":"r","scopeId":"t"}"#)])
        .unwrap();
    s.apply(&[put("app/3", "not json"), put("app/4", "not json")]).unwrap();
    // Hand-written SQL is held to the same rule.
    let e = crate::helpers::admin_sql(
        &db.url,
        r#"INSERT INTO appauth_kv VALUES ('app/5', convert_to('{"name":"ci"}', 'UTF8'))"#,
    )
    .unwrap_err();
    assert!(e.contains("appauth_unique_app_name"), "{e}");
}

#[test]
fn upgrading_a_database_that_already_holds_duplicates_stops_with_what_to_do() {
    let db = crate::helpers::PostgresDb::create();
    drop(PostgresStore::open(&db.url).unwrap());
    // The database as an appauth before migration 2 left it, with two
    // applications of one name (nothing stopped that then).
    crate::helpers::admin_sql(
        &db.url,
        r#"DROP FUNCTION appauth_record(bytea) CASCADE;
           DELETE FROM appauth_schema_migrations WHERE version = 2;
           INSERT INTO appauth_kv VALUES ('app/1', convert_to('{"name":"ci"}', 'UTF8')),
                                         ('app/2', convert_to('{"name":"ci"}', 'UTF8'))"#,
    )
    .unwrap();
    let e = PostgresStore::open(&db.url)
        .err()
        .expect("the upgrade refuses")
        .to_string();
    assert!(
        e.contains("migration 2") && e.contains("already holds duplicates") && e.contains("Nothing was changed"),
        "{e}"
    );
    // Nothing was changed indeed: version 2 is still not applied, and the
    // records are there to be fixed.
    let after = crate::helpers::admin_sql(
        &db.url,
        "INSERT INTO appauth_kv VALUES ('app/3', convert_to('{\"name\":\"ci\"}', 'UTF8'))",
    );
    assert!(after.is_ok(), "no unique index was left half-built: {after:?}");
}

#[test]
fn postgres_over_tls_verifies_the_server_certificate_and_refuses_an_unknown_one() {
    let db = crate::helpers::PostgresDb::create();
    let ca = std::env::var("TEST_POSTGRES_CA")
        .expect("TEST_POSTGRES_CA is not set: scripts/test.sh starts PostgreSQL with TLS and sets it");
    let s = PostgresStore::open(&format!("{}?sslmode=verify-full&sslrootcert={ca}", db.url)).unwrap();
    s.apply(&[put("app/1", "x")]).unwrap();
    assert_eq!(s.get("app/1").unwrap().as_deref(), Some(&b"x"[..]));
    // The store's connections are the encrypted ones.
    crate::helpers::admin_sql(
        &db.url,
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
           WHERE s.ssl AND a.application_name = 'appauth' AND a.datname = current_database())
         THEN RAISE EXCEPTION 'no TLS connection from appauth'; END IF; END $$;",
    )
    .unwrap();
    drop(s);
    // A server certificate the configured CA did not sign is refused, and
    // `require` alone verifies too (against the public roots: refused here).
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_ca.path(), stranger.cert.pem()).unwrap();
    let wrong = format!("{}?sslmode=require&sslrootcert={}", db.url, other_ca.path().display());
    let e = PostgresStore::open(&wrong)
        .err()
        .expect("an unknown certificate is refused");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    assert!(PostgresStore::open(&format!("{}?sslmode=require", db.url)).is_err());
    let e = PostgresStore::open(&format!("{}?sslmode=sometimes", db.url))
        .err()
        .unwrap();
    assert!(e.to_string().contains("sslmode=sometimes"), "{e}");
}

#[test]
fn a_bad_postgres_url_is_refused_without_showing_its_password() {
    let e = PostgresStore::open("postgres://appauth:hunter2@127.0.0.1:1/x")
        .err()
        .expect("nothing listens on port 1");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(PostgresStore::open("not a url").is_err());
}
