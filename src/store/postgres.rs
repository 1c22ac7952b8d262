//! The PostgreSQL backend (DESIGN §1 "Scale-out"): many appauth instances
//! share one database.
//!
//! The records keep the key layout of the other backends (`appauth_kv`,
//! ordered by byte value), so one codec and one conformance suite serve
//! all three. What only a shared store needs lives here:
//!
//! - **The change feed.** Every write of a followed key appends
//!   `(seq, key)` to `appauth_changes` in the same transaction, under a
//!   transaction-scoped advisory lock, so sequence numbers are gap-free and
//!   in commit order; the commit sends `NOTIFY appauth_changes`. Instances
//!   `LISTEN`, and also poll, so a lost notification costs at most one poll.
//! - **Optimistic directory writes.** [`ChangeFeed::apply_after`] commits
//!   only if no other directory change landed since the caller's catalog
//!   was current: checks (name taken, last administrator, ceilings) made on
//!   that catalog hold for the whole cluster.
//! - **Last-login times** merged per application with `GREATEST`, never
//!   overwritten by an older value from another instance.
//! - **Migrations**, embedded and versioned, applied at open under a
//!   session advisory lock, so instances starting together on an empty
//!   database apply each exactly once.
//!
//! The `postgres` crate is synchronous; all calls run on one dedicated
//! thread that owns the connection (reconnecting after a failure), so the
//! store works from any thread the directory calls it on (it always calls
//! from `spawn_blocking`, as for sled's fsync).

use super::{Change, ChangeFeed, Store, StoreError, Write};
use postgres::fallible_iterator::FallibleIterator;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// Versioned migrations; the number is the schema version they produce.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("postgres/001_init.sql")),
    (2, include_str!("postgres/002_unique.sql")),
];
/// Advisory lock keys ("appauth" in the high bytes).
const MIGRATION_LOCK: i64 = 0x6170_7061_7574_0001;
const WRITE_LOCK: i64 = 0x6170_7061_7574_0002;
const CHANNEL: &str = "appauth_changes";
/// How long a caller waits for the database before the write fails (503).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Changes older than this are purged; an instance that was cut off for
/// longer reloads in full (`FeedGap`).
const CHANGE_RETENTION_HOURS: i64 = 24;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub struct PostgresStore {
    jobs: Mutex<mpsc::Sender<Job>>,
    healthy: Arc<AtomicBool>,
    signal: Arc<tokio::sync::Notify>,
    stop: Arc<AtomicBool>,
    /// The newest change this instance was handed or wrote: its number and
    /// commit time (µs). A number alone does not identify a change: after
    /// a restore from an earlier dump (or a failover that lost commits),
    /// new writes reuse the numbers, and once the log's head is past what
    /// an instance saw, only the commit time shows the log it saw is gone.
    mark: Arc<Mutex<Option<(u64, i64)>>>,
}

/// A change's commit time in µs, as the feed compares them.
const COMMITTED_US: &str = "(extract(epoch from committed_at) * 1000000)::bigint";

struct Connection {
    config: Endpoint,
    client: Option<postgres::Client>,
}

/// Where and how to connect: the parsed URL, and the TLS connector when
/// the URL asks for TLS (`sslmode=require|verify-ca|verify-full`, or an
/// `sslrootcert`). With TLS the server's certificate is always verified
/// (against `sslrootcert`, else the public web PKI roots) and its name
/// checked: `require` here means what libpq calls `verify-full`, because
/// an unverified TLS connection would hand the database password and every
/// secret hash to whoever sits in between.
#[derive(Clone)]
struct Endpoint {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Endpoint {
    fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        }
    }
}

/// Takes `sslmode` and `sslrootcert` out of the URL's query (the `postgres`
/// crate knows no `sslrootcert` nor the `verify-*` modes) and builds the
/// connector they ask for.
fn tls_from_url(url: &str) -> Result<(String, Option<tokio_postgres_rustls::MakeRustlsConnect>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let (mut mode, mut root_cert, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_owned()),
            Some(("sslrootcert", v)) => root_cert = Some(v.to_owned()),
            _ => kept.push(pair),
        }
    }
    let wants_tls = match mode.as_deref() {
        None | Some("disable" | "prefer" | "allow") => root_cert.is_some(),
        Some("require" | "verify-ca" | "verify-full") => true,
        Some(other) => {
            return Err(StoreError::Io(format!(
                "store.postgres_url: sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    if matches!(mode.as_deref(), Some("disable")) && root_cert.is_some() {
        return Err(StoreError::Io(
            "store.postgres_url: sslrootcert with sslmode=disable makes no sense".into(),
        ));
    }
    // `prefer`/`allow` with no sslrootcert stay plain, as before.
    if wants_tls {
        kept.push("sslmode=require");
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    if !wants_tls {
        return Ok((url, None));
    }
    let mut roots = rustls::RootCertStore::empty();
    match &root_cert {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| StoreError::Io(format!("store.postgres_url: cannot read sslrootcert {path}: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| StoreError::Io(format!("store.postgres_url: sslrootcert {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| StoreError::Io(format!("store.postgres_url: sslrootcert {path}: {e}")))?;
            }
            if roots.is_empty() {
                return Err(StoreError::Io(format!(
                    "store.postgres_url: sslrootcert {path} holds no certificate"
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Io(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((url, Some(tokio_postgres_rustls::MakeRustlsConnect::new(config))))
}

impl Connection {
    fn client(&mut self) -> Result<&mut postgres::Client, postgres::Error> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = Some(self.config.connect()?);
        }
        Ok(self.client.as_mut().expect("connected just above"))
    }
}

fn db_err(e: postgres::Error) -> StoreError {
    if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
        let constraint = e.as_db_error().and_then(|d| d.constraint()).unwrap_or("unique");
        return StoreError::Duplicate {
            constraint: constraint.to_owned(),
        };
    }
    // The server's message (never the URL's password); a bare "db error"
    // would tell an operator nothing.
    match e.as_db_error() {
        Some(d) => StoreError::Io(format!("PostgreSQL: {} ({})", d.message(), d.code().code())),
        // The cause (e.g. which certificate check failed) is in the source.
        None => match std::error::Error::source(&e) {
            Some(cause) => StoreError::Io(format!("PostgreSQL: {e}: {cause}")),
            None => StoreError::Io(format!("PostgreSQL: {e}")),
        },
    }
}

/// A failed COMMIT the server refused is a definite failure; a connection
/// lost while it was under way leaves the outcome unknown, and saying
/// "nothing was changed" then could be false.
fn commit_err(e: postgres::Error) -> StoreError {
    if e.as_db_error().is_some() {
        db_err(e)
    } else {
        StoreError::Indeterminate(format!("PostgreSQL connection lost during COMMIT: {e}"))
    }
}

/// Parses `url` and sets what every appauth connection needs.
fn connection_config(url: &str) -> Result<Endpoint, StoreError> {
    let (url, tls) = tls_from_url(url)?;
    let mut config = postgres::Config::from_str(&url)
        .map_err(|e| StoreError::Io(format!("store.postgres_url is not a valid PostgreSQL URL: {e}")))?;
    config
        .application_name("appauth")
        .connect_timeout(Duration::from_secs(3))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        // A silent network (no RST) is noticed within ~25 s, not Linux's ~11 min.
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .options("-c statement_timeout=8000 -c lock_timeout=5000");
    Ok(Endpoint { config, tls })
}

impl PostgresStore {
    /// Connects, applies pending migrations, and starts the listener that
    /// wakes [`ChangeFeed::signal`] on every commit of another instance.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config = connection_config(url)?;
        let mut conn = Connection { config, client: None };
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("appauth-postgres".into())
            .spawn(move || {
                for job in rx {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Io(format!("cannot start the PostgreSQL thread: {e}")))?;
        let store = Self {
            jobs: Mutex::new(tx),
            healthy: Arc::new(AtomicBool::new(true)),
            signal: Arc::new(tokio::sync::Notify::new()),
            stop: Arc::new(AtomicBool::new(false)),
            mark: Arc::new(Mutex::new(None)),
        };
        // On the connection thread, like every call: the `postgres` client
        // runs its own runtime, which may not start inside tokio's.
        store.call(migrate)?;
        store.start_listener(connection_config(url)?)?;
        Ok(store)
    }

    /// Runs `f` on the connection thread and waits for its answer. A job
    /// still queued when its caller gave up is skipped, so a timed-out
    /// write is never committed later behind its caller's back; one that
    /// had started is reported as `Indeterminate`, never as "not done".
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let healthy = self.healthy.clone();
        let deadline = std::time::Instant::now() + CALL_TIMEOUT;
        let started = Arc::new(AtomicBool::new(false));
        let job_started = started.clone();
        let job: Job = Box::new(move |conn| {
            if std::time::Instant::now() >= deadline {
                return;
            }
            job_started.store(true, Ordering::SeqCst);
            let result = match conn.client() {
                Ok(client) => f(client),
                Err(e) => Err(db_err(e)),
            };
            // Stale is an answer, not a fault.
            let ok = !matches!(result, Err(StoreError::Io(_)));
            healthy.store(ok, Ordering::Relaxed);
            if !ok && conn.client.as_ref().is_some_and(|c| c.is_closed()) {
                conn.client = None;
            }
            let _ = reply.send(result);
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| StoreError::Io("the PostgreSQL thread has stopped".into()))?;
        let waited = deadline.saturating_duration_since(std::time::Instant::now());
        answer.recv_timeout(waited).unwrap_or_else(|_| {
            self.healthy.store(false, Ordering::Relaxed);
            let what = format!("PostgreSQL did not answer within {} s", CALL_TIMEOUT.as_secs());
            Err(if started.load(Ordering::SeqCst) {
                StoreError::Indeterminate(what)
            } else {
                StoreError::Io(what)
            })
        })
    }

    /// A second connection that only `LISTEN`s; it reconnects after a
    /// failure, and wakes the feed's followers then too (they may have
    /// missed notifications meanwhile).
    fn start_listener(&self, config: Endpoint) -> Result<(), StoreError> {
        let (signal, stop) = (self.signal.clone(), self.stop.clone());
        std::thread::Builder::new()
            .name("appauth-pg-listen".into())
            .spawn(move || {
                let mut last_purge = std::time::Instant::now() - Duration::from_secs(3600);
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut client) = config.connect() else {
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    };
                    if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
                        // e.g. a hot standby, where LISTEN is refused: no tight loop.
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    }
                    signal.notify_one();
                    while !stop.load(Ordering::Relaxed) && !client.is_closed() {
                        if last_purge.elapsed() > Duration::from_secs(3600) {
                            last_purge = std::time::Instant::now();
                            if let Err(e) = purge_changes(&mut client) {
                                tracing::warn!(error = %e, "could not purge the PostgreSQL change log");
                            }
                        }
                        // Each notification wakes the follower at once (waiting
                        // for a quiet moment first cost up to 500 ms per change).
                        // `notify_one` keeps a permit when the follower is busy
                        // catching up, so a change announced meanwhile is not
                        // left to the 250 ms poll; extra permits coalesce.
                        let mut notes = client.notifications();
                        let mut iter = notes.timeout_iter(Duration::from_millis(500));
                        while let Ok(Some(_)) = iter.next() {
                            signal.notify_one();
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Io(format!("cannot start the PostgreSQL listener: {e}")))?;
        Ok(())
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn migrate(client: &mut postgres::Client) -> Result<(), StoreError> {
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({MIGRATION_LOCK});
             CREATE TABLE IF NOT EXISTS appauth_schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .map_err(db_err)?;
    let result = (|| {
        let applied: Vec<i32> = client
            .query("SELECT version FROM appauth_schema_migrations", &[])
            .map_err(db_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let newest = MIGRATIONS.last().map_or(0, |m| m.0);
        if let Some(v) = applied.iter().find(|v| **v > newest) {
            return Err(StoreError::Schema {
                found: v.to_string(),
                expected: "at most the versions this appauth knows",
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
            let mut tx = client.transaction().map_err(db_err)?;
            tx.batch_execute(sql).map_err(|e| migration_err(*version, e))?;
            tx.execute(
                "INSERT INTO appauth_schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .map_err(db_err)?;
            tx.commit().map_err(commit_err)?;
            tracing::info!(version, "applied PostgreSQL migration");
        }
        Ok(())
    })();
    let _ = client.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
    result
}

/// A migration that cannot apply says which, and what to do: migration 2
/// builds unique indexes, which fail on duplicates stored by an older
/// version (or by hand) before the database enforced them.
fn migration_err(version: i32, e: postgres::Error) -> StoreError {
    // PostgreSQL's DETAIL names the duplicated key, e.g. `Key (...)=(ci) is duplicated.`
    let detail = e
        .as_db_error()
        .and_then(|d| d.detail())
        .map(str::to_owned)
        .unwrap_or_default();
    match db_err(e) {
        StoreError::Duplicate { constraint } => StoreError::Io(format!(
            "PostgreSQL migration {version} cannot add the unique index {constraint}: the database already \
             holds duplicates ({detail}). Nothing was changed. Find the records with: SELECT key, \
             convert_from(value, 'UTF8') FROM appauth_kv WHERE key LIKE 'app/%' OR key LIKE 'rule/%' OR \
             key LIKE 'scope/%'; delete all but one of each duplicate through appauth on the previous \
             version (or with SQL), then start again."
        )),
        other => StoreError::Io(format!("PostgreSQL migration {version} failed: {other}")),
    }
}

fn purge_changes(client: &mut postgres::Client) -> Result<u64, postgres::Error> {
    client.execute(
        &format!(
            "DELETE FROM appauth_changes WHERE committed_at < now() - interval '{CHANGE_RETENTION_HOURS} hours'
               AND seq < (SELECT max(seq) FROM appauth_changes)"
        ),
        &[],
    )
}

fn to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// Writes the batch in `tx` and logs its followed keys; returns the last
/// sequence number written (or `None` when nothing was followed).
fn write_batch(tx: &mut postgres::Transaction<'_>, writes: &[Write]) -> Result<Option<u64>, postgres::Error> {
    let followed = writes.iter().any(|w| {
        let (Write::Put(k, _) | Write::Delete(k)) = w;
        super::is_followed(k)
    });
    let mut seq: i64 = 0;
    if followed {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
        seq = tx
            .query_one("SELECT coalesce(max(seq), 0) FROM appauth_changes", &[])?
            .get(0);
    }
    for w in writes {
        let key = match w {
            Write::Put(k, v) => {
                tx.execute(
                    "INSERT INTO appauth_kv (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    &[k, v],
                )?;
                k
            }
            Write::Delete(k) => {
                tx.execute("DELETE FROM appauth_kv WHERE key = $1", &[k])?;
                k
            }
        };
        if super::is_followed(key) {
            seq += 1;
            tx.execute("INSERT INTO appauth_changes (seq, key) VALUES ($1, $2)", &[&seq, key])?;
        }
    }
    if followed {
        tx.execute(&format!("NOTIFY {CHANNEL}"), &[])?;
    }
    Ok(followed.then_some(seq as u64))
}

impl Store for PostgresStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.call(move |c| {
            c.query_opt("SELECT value FROM appauth_kv WHERE key = $1", &[&key])
                .map(|row| row.map(|r| r.get(0)))
                .map_err(db_err)
        })
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = prefix.to_owned();
        // Byte order (COLLATE "C"): the keys starting with `prefix` are the
        // range [prefix, prefix with its last character incremented), which
        // the primary key answers without reading past it.
        let mut upper = prefix.clone();
        let last = upper.pop().map_or(0, |ch| ch as u32);
        upper.push(char::from_u32(last + 1).unwrap_or(char::MAX));
        self.call(move |c| {
            let rows = c
                .query(
                    "SELECT key, value FROM appauth_kv WHERE key >= $1 AND key < $2 ORDER BY key",
                    &[&prefix, &upper],
                )
                .map_err(db_err)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        let writes = writes.to_vec();
        self.call(move |c| {
            let mut tx = c.transaction().map_err(db_err)?;
            write_batch(&mut tx, &writes).map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
    }

    fn put_side(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let (name, bytes) = (name.to_owned(), bytes.to_vec());
        self.call(move |c| {
            c.execute(
                "INSERT INTO appauth_side (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&name, &bytes],
            )
            .map(|_| ())
            .map_err(db_err)
        })
    }

    fn get_side(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_owned();
        self.call(move |c| {
            c.query_opt("SELECT value FROM appauth_side WHERE name = $1", &[&name])
                .map(|row| row.map(|r| r.get(0)))
                .map_err(db_err)
        })
    }

    fn merge_logins(&self, changed: &[(String, i64)]) -> Result<(), StoreError> {
        let (ids, times): (Vec<String>, Vec<i64>) = changed.iter().cloned().unzip();
        self.call(move |c| {
            c.execute(
                "INSERT INTO appauth_logins (app_id, last_login_ms)
                 SELECT * FROM unnest($1::text[], $2::bigint[])
                 ON CONFLICT (app_id) DO UPDATE
                 SET last_login_ms = GREATEST(appauth_logins.last_login_ms, EXCLUDED.last_login_ms)",
                &[&ids, &times],
            )
            .map(|_| ())
            .map_err(db_err)
        })
    }

    fn load_logins(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.call(|c| {
            let rows = c
                .query("SELECT app_id, last_login_ms FROM appauth_logins", &[])
                .map_err(db_err)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.call(|c| c.simple_query("SELECT 1").map(|_| ()).map_err(db_err))
    }

    fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn probe_write(&self) -> Result<(), StoreError> {
        self.apply(&[Write::Put(
            super::keys::PROBE.into(),
            crate::domain::now_ms().to_be_bytes().to_vec(),
        )])
    }

    fn feed(&self) -> Option<&dyn ChangeFeed> {
        Some(self)
    }
}

impl ChangeFeed for PostgresStore {
    fn head(&self) -> Result<u64, StoreError> {
        self.call(|c| {
            c.query_one("SELECT coalesce(max(seq), 0) FROM appauth_changes", &[])
                .map(|r| r.get::<_, i64>(0) as u64)
                .map_err(db_err)
        })
    }

    fn since(&self, seq: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let mark = self.mark.clone();
        self.call(move |c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(db_err)?;
            let bounds = tx
                .query_one("SELECT min(seq), max(seq) FROM appauth_changes", &[])
                .map_err(db_err)?;
            let (oldest, newest): (Option<i64>, Option<i64>) = (bounds.get(0), bounds.get(1));
            // Purged past what we saw, or the log is behind what we saw (a
            // restore from backup, a promoted replica that lost commits):
            // either way, only a full reload is right.
            if oldest.is_some_and(|o| o as u64 > seq + 1) || newest.map_or(0, |n| n as u64) < seq {
                return Err(StoreError::FeedGap(seq));
            }
            // The change we saw last is still the one under its number:
            // otherwise the log was rewound and written past us again.
            let at_seen: Option<i64> = tx
                .query_opt(
                    &format!("SELECT {COMMITTED_US} FROM appauth_changes WHERE seq = $1"),
                    &[&to_i64(seq)],
                )
                .map_err(db_err)?
                .map(|r| r.get(0));
            let marked = *mark.lock().unwrap_or_else(|p| p.into_inner());
            if let (Some((marked_seq, marked_at)), Some(at)) = (marked, at_seen)
                && marked_seq == seq
                && marked_at != at
            {
                return Err(StoreError::FeedGap(seq));
            }
            let rows = tx
                .query(
                    &format!(
                        "SELECT c.seq, c.key, kv.value, {COMMITTED_US} FROM appauth_changes c
                         LEFT JOIN appauth_kv kv ON kv.key = c.key
                         WHERE c.seq > $1 ORDER BY c.seq LIMIT $2"
                    ),
                    &[&to_i64(seq), &(limit.min(100_000) as i64)],
                )
                .map_err(db_err)?;
            let newest_seen = match rows.last() {
                Some(r) => Some((r.get::<_, i64>(0) as u64, r.get::<_, i64>(3))),
                None => at_seen.map(|at| (seq, at)),
            };
            if newest_seen.is_some() {
                *mark.lock().unwrap_or_else(|p| p.into_inner()) = newest_seen;
            }
            Ok(rows
                .iter()
                .map(|r| Change {
                    seq: r.get::<_, i64>(0) as u64,
                    key: r.get(1),
                    value: r.get(2),
                })
                .collect())
        })
    }

    fn apply_after(&self, seen: u64, writes: &[Write]) -> Result<u64, StoreError> {
        let writes = writes.to_vec();
        let mark = self.mark.clone();
        self.call(move |c| {
            let mut tx = c.transaction().map_err(db_err)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                .map_err(db_err)?;
            let newer = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM appauth_changes
                      WHERE seq > $1 AND left(key, length($2)) <> $2)",
                    &[&to_i64(seen), &super::keys::REVOKED_JTI],
                )
                .map_err(db_err)?
                .get::<_, bool>(0);
            if newer {
                return Err(StoreError::Stale);
            }
            let last = write_batch(&mut tx, &writes).map_err(db_err)?;
            // `committed_at` defaults to now(): the transaction's start.
            let at: i64 = tx
                .query_one("SELECT (extract(epoch from now()) * 1000000)::bigint", &[])
                .map_err(db_err)?
                .get(0);
            tx.commit().map_err(commit_err)?;
            if let Some(last) = last {
                *mark.lock().unwrap_or_else(|p| p.into_inner()) = Some((last, at));
            }
            Ok(last.unwrap_or(seen))
        })
    }

    fn signal(&self) -> Arc<tokio::sync::Notify> {
        self.signal.clone()
    }
}
