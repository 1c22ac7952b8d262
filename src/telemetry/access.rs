//! The access log: one line per request (method, path, status, latency,
//! client ID when known, request id), in the text or JSON shape of the
//! other log lines.
//!
//! Why not `tracing::info!`: on the token path that cost 12 % of throughput
//! (formatting through the subscriber, and one channel message — a
//! wake-up of the writer thread and a `write(2)` — per line). Here a request
//! appends its line to a shared buffer, and the background task hands the
//! buffer to a non-blocking writer of its own every 100 ms in line-aligned
//! pieces, so no line is ever split (other log lines may fall between
//! pieces) and a burst costs a few wake-ups. Lines are dropped and counted,
//! never waited for, when that writer's queue is full (it holds
//! [`super::ACCESS_PIECES_QUEUED`] pieces of up to 64 KiB, or of one longer
//! line: 32 MiB while stdout is stuck, 96 MiB if every line were a hostile
//! 64-KiB path), and past [`MAX_BUFFERED`] bytes if the flushing task itself
//! falls behind. Nothing else writes through that writer, so its drop
//! counter tells exactly which pieces were dropped, and each of their lines
//! is counted. Not seen here, so not counted: a piece stdout refuses with an
//! error (the writer discards it) and pieces still queued when shutdown's
//! flush deadline passes.
//!
//! The two buffers are swapped and reused, never freed: at 30,000 tokens/s
//! a fresh buffer per flush meant ~7 MB/s allocated, grown by doubling on
//! the connection threads, freed, and returned to the kernel by the
//! allocator (`madvise`) a second later. On a VM with free-page reporting
//! that churn went with the hypervisor taking the vCPU for ~100 ms at a
//! time (BENCHMARKS.md, issue 27, "the 100 ms stalls").

use super::latency::RouteClass;
use super::request_id::{RequestId, X_REQUEST_ID};
use crate::config::LogFormat;
use axum::response::Response;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use tracing_appender::non_blocking::NonBlocking;

/// Response extension carrying the client ID a request authenticated as (or
/// claimed, when it has an ID's shape) for the access log.
#[derive(Clone)]
pub struct LoggedClient(pub String);

/// Response extension: the external identity (`iss`, `sub`) whose token
/// obtained this one through a federated credential. Never the token.
#[derive(Clone)]
pub struct LoggedFederation {
    pub iss: String,
    pub sub: String,
}

/// Lines waiting beyond this many bytes mean the writer is stuck.
pub const MAX_BUFFERED: usize = 8 << 20;

/// The writer gets the lines in pieces of at most this size (cut at line
/// ends; a longer line goes whole).
const PIECE: usize = 64 << 10;

/// A buffer keeps at most this much capacity between flushes (~100 ms of
/// lines at 10,000 requests/s is 1.9 MB).
const KEEP_CAPACITY: usize = 4 << 20;

/// Where the first piece of `rest` ends: after the last line end within
/// `max` bytes, or after the first line end when one line is longer.
fn piece_end(rest: &[u8], max: usize) -> usize {
    if rest.len() <= max {
        return rest.len();
    }
    match memchr::memrchr(b'\n', &rest[..max]) {
        Some(i) => i + 1,
        None => memchr::memchr(b'\n', &rest[max..]).map_or(rest.len(), |i| max + i + 1),
    }
}

/// Off until [`AccessLog::enable`] (the binary, when `log.level` admits
/// INFO for `appauth::access`); in-process tests and benches log nothing.
#[derive(Default)]
pub struct AccessLog {
    sink: OnceLock<(NonBlocking, LogFormat)>,
    buf: Mutex<Vec<u8>>,
    /// The buffer being written out; only [`AccessLog::flush`] locks it, and
    /// it swaps it with `buf` so both keep their capacity.
    spare: Mutex<Vec<u8>>,
    /// `log.token_success_sample`: 1 in this many successful token
    /// requests gets a line (0 or 1: all).
    token_sample: std::sync::atomic::AtomicU32,
    token_seen: std::sync::atomic::AtomicU64,
}

impl AccessLog {
    pub fn enable(&self, writer: NonBlocking, format: LogFormat) {
        let _ = self.sink.set((writer, format));
    }

    pub fn enabled(&self) -> bool {
        self.sink.get().is_some()
    }

    /// Logs only one in `n` successful token requests (failures always).
    pub fn sample_token_successes(&self, n: u32) {
        self.token_sample.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether this successful token request is one of the sampled ones.
    fn sampled_out(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let n = u64::from(self.token_sample.load(Relaxed));
        n > 1 && !self.token_seen.fetch_add(1, Relaxed).is_multiple_of(n)
    }

    /// Hands the buffered lines to the writer (the background task calls
    /// this every 100 ms, and once more at shutdown); lines the writer
    /// drops are counted in `metrics`.
    pub fn flush(&self, metrics: &super::Metrics) {
        let Some((writer, _)) = self.sink.get() else { return };
        let mut out = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
            if buf.is_empty() {
                return;
            }
            std::mem::swap(&mut *buf, &mut *out);
        }
        // Lossy and non-blocking: a full channel drops a piece and the
        // writer's own counter records it. The writer copies each piece, so
        // pieces of a bounded size keep its allocations reusable too.
        let mut writer = writer.clone();
        let dropped = writer.error_counter();
        let mut rest = out.as_slice();
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at(piece_end(rest, PIECE));
            let before = dropped.dropped_lines();
            let _ = writer.write_all(piece);
            if dropped.dropped_lines() != before {
                // Only this log writes through this writer, and only this
                // task flushes: the piece was dropped, every line of it.
                metrics.access_lines_dropped(memchr::memchr_iter(b'\n', piece).count() as u64);
            }
            rest = tail;
        }
        out.clear();
        if out.capacity() > KEEP_CAPACITY {
            // After a burst: keep what a busy 100 ms needs, not the burst.
            out.shrink_to(KEEP_CAPACITY);
        }
    }

    /// False when the line was dropped (the writer is not keeping up).
    fn record(&self, line: &Line<'_>) -> bool {
        let Some((_, format)) = self.sink.get() else {
            return true;
        };
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        if buf.len() > MAX_BUFFERED {
            return false;
        }
        line.write(*format, &mut buf);
        true
    }
}

/// What one access line says.
struct Line<'a> {
    unix_micros: i64,
    method: &'a str,
    path: &'a str,
    status: u16,
    latency_us: u64,
    client: Option<&'a str>,
    federated: Option<&'a LoggedFederation>,
    request_id: &'a [u8],
}

impl Line<'_> {
    fn write(&self, format: LogFormat, out: &mut Vec<u8>) {
        let mut num = itoa_buf();
        match format {
            LogFormat::Text => {
                timestamp(self.unix_micros, out);
                out.extend_from_slice(b"  INFO appauth::access: request method=");
                safe(self.method, out);
                out.extend_from_slice(b" path=");
                safe(self.path, out);
                out.extend_from_slice(b" status=");
                out.extend_from_slice(num.format(self.status));
                out.extend_from_slice(b" latency_us=");
                out.extend_from_slice(num.format(self.latency_us));
                out.extend_from_slice(b" client_id=");
                quoted_or(self.client, b"-", out);
                if let Some(f) = self.federated {
                    out.extend_from_slice(b" external_iss=");
                    quoted_or(Some(&f.iss), b"-", out);
                    out.extend_from_slice(b" external_sub=");
                    quoted_or(Some(&f.sub), b"-", out);
                }
                out.extend_from_slice(b" request_id=");
                out.extend_from_slice(self.request_id);
            }
            LogFormat::Json => {
                out.extend_from_slice(b"{\"timestamp\":\"");
                timestamp(self.unix_micros, out);
                out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"method\":\"");
                safe(self.method, out);
                out.extend_from_slice(b"\",\"path\":\"");
                safe(self.path, out);
                out.extend_from_slice(b"\",\"status\":");
                out.extend_from_slice(num.format(self.status));
                out.extend_from_slice(b",\"latency_us\":");
                out.extend_from_slice(num.format(self.latency_us));
                out.extend_from_slice(b",\"client_id\":");
                quoted_or(self.client, b"null", out);
                if let Some(f) = self.federated {
                    out.extend_from_slice(b",\"external_iss\":");
                    quoted_or(Some(&f.iss), b"null", out);
                    out.extend_from_slice(b",\"external_sub\":");
                    quoted_or(Some(&f.sub), b"null", out);
                }
                out.extend_from_slice(b",\"request_id\":\"");
                out.extend_from_slice(self.request_id);
                out.extend_from_slice(b"\",\"target\":\"appauth::access\"}");
            }
        }
        out.push(b'\n');
    }
}

/// Copies `s`, percent-encoding every byte outside printable ASCII and `"`
/// and `\`, so a value can neither break a line nor forge a field, and the
/// result is valid inside a JSON string as is.
fn safe(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        }
    }
}

/// `"value"` (made safe), or `absent` when there is none.
fn quoted_or(value: Option<&str>, absent: &[u8], out: &mut Vec<u8>) {
    match value {
        Some(v) => {
            out.push(b'"');
            safe(v, out);
            out.push(b'"');
        }
        None => out.extend_from_slice(absent),
    }
}

/// Formats integers without `fmt` (a small stack buffer).
struct Digits([u8; 20]);

fn itoa_buf() -> Digits {
    Digits([0; 20])
}

impl Digits {
    fn format(&mut self, n: impl Into<u64>) -> &[u8] {
        let mut n: u64 = n.into();
        let mut i = self.0.len();
        loop {
            i -= 1;
            self.0[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        &self.0[i..]
    }
}

/// RFC 3339 UTC with microseconds, as the other log lines print it.
fn timestamp(unix_micros: i64, out: &mut Vec<u8>) {
    let secs = unix_micros.div_euclid(1_000_000);
    let micros = unix_micros.rem_euclid(1_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let two = |v: i64, out: &mut Vec<u8>| out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
    let y = y.clamp(0, 9999);
    two(y / 100, out);
    two(y % 100, out);
    out.push(b'-');
    two(m, out);
    out.push(b'-');
    two(d, out);
    out.push(b'T');
    two(sod / 3600, out);
    out.push(b':');
    two(sod / 60 % 60, out);
    out.push(b':');
    two(sod % 60, out);
    out.push(b'.');
    two(micros / 10_000, out);
    two(micros / 100 % 100, out);
    two(micros % 100, out);
    out.push(b'Z');
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A request under way: its id and when it began. The HTTP middleware and
/// the token endpoint's direct path (`http::server`) both end it with
/// [`Started::finish`], so every request is timed, counted and logged alike.
pub struct Started {
    pub id: RequestId,
    at: Instant,
}

impl Started {
    pub fn now(state: &impl super::Observed) -> Self {
        Started {
            id: RequestId(state.request_ids().next()),
            at: Instant::now(),
        }
    }

    /// Records the latency and sets `X-Request-Id`, without an access line.
    pub fn finish_quiet(self, state: &impl super::Observed, route: RouteClass, mut resp: Response) -> Response {
        self.stamp(state, route, &mut resp);
        resp
    }

    /// What every request gets: its latency observed, its id on the
    /// answer. Returns the latency and the id's text for the access line.
    fn stamp(&self, state: &impl super::Observed, route: RouteClass, resp: &mut Response) -> (u64, [u8; 21]) {
        let latency_us = self.at.elapsed().as_micros() as u64;
        state.metrics().observe(route, latency_us);
        let hex = self.id.0.hex();
        if let Ok(v) = axum::http::HeaderValue::from_bytes(&hex) {
            resp.headers_mut().insert(X_REQUEST_ID, v);
        }
        (latency_us, hex)
    }

    /// Records the latency, sets `X-Request-Id` and writes the access line
    /// (when the access log is on), naming the client the response's
    /// [`LoggedClient`] extension names.
    pub fn finish(self, state: &impl super::Observed, method: &str, path: &str, resp: Response) -> Response {
        self.finish_for(state, method, path, resp, None)
    }

    /// As [`Self::finish`], with the client ID given directly (`None`: the
    /// extension's): the token endpoint's path, which skips the
    /// extension's four allocations a request.
    pub fn finish_for(
        self,
        state: &impl super::Observed,
        method: &str,
        path: &str,
        mut resp: Response,
        client: Option<&str>,
    ) -> Response {
        let route = RouteClass::of(path);
        let (latency_us, hex) = self.stamp(state, route, &mut resp);
        if !state.access_log().enabled()
            || (route == RouteClass::Token && resp.status().is_success() && state.access_log().sampled_out())
        {
            return resp;
        }
        let unix_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let kept = state.access_log().record(&Line {
            unix_micros,
            method,
            path,
            status: resp.status().as_u16(),
            latency_us,
            client: client.or_else(|| resp.extensions().get::<LoggedClient>().map(|c| c.0.as_str())),
            federated: resp.extensions().get::<LoggedFederation>(),
            request_id: &hex,
        });
        if !kept {
            state.metrics().access_line_dropped();
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(client: Option<&str>, path: &str) -> Line<'static> {
        Line {
            unix_micros: 1_764_613_225_123_456,
            method: "POST",
            path: Box::leak(path.to_owned().into_boxed_str()),
            status: 200,
            latency_us: 87,
            client: client.map(|c| &*Box::leak(c.to_owned().into_boxed_str())),
            federated: None,
            request_id: b"7b848083-000000000021",
        }
    }

    #[test]
    fn pieces_end_at_line_ends_and_cover_every_byte() {
        let mut buf = Vec::new();
        for i in 0..500 {
            // Lines of varied length, one longer than a piece.
            let len = if i == 250 { 3 * 64 } else { 1 + i % 37 };
            buf.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
            buf.push(b'\n');
        }
        let mut rest = buf.as_slice();
        let mut joined = Vec::new();
        while !rest.is_empty() {
            let end = piece_end(rest, 64);
            assert!(end > 0);
            let piece = &rest[..end];
            assert_eq!(piece.last(), Some(&b'\n'), "a piece ends a line");
            assert!(
                end <= 64 || !piece[..end - 1].contains(&b'\n'),
                "only a single long line exceeds a piece"
            );
            joined.extend_from_slice(piece);
            rest = &rest[end..];
        }
        assert_eq!(joined, buf);
        assert_eq!(piece_end(b"no line end", 4), 11, "an unterminated tail goes whole");
    }

    #[test]
    fn flushing_hands_every_line_over_and_keeps_both_buffers() {
        let sink = SharedSink::default();
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(sink.clone());
        let log = AccessLog::default();
        log.enable(writer, LogFormat::Text);
        let mut want = Vec::new();
        for round in 0..3 {
            for i in 0..2_000 {
                let l = line(Some(&format!("c{round}-{i}")), "/oauth/token");
                l.write(LogFormat::Text, &mut want);
                assert!(log.record(&l));
            }
            log.flush(&crate::telemetry::Metrics::default());
            let kept = (log.buf.lock().unwrap().capacity(), log.spare.lock().unwrap().capacity());
            assert!(kept.1 > 100_000, "the written buffer keeps its capacity: {kept:?}");
        }
        assert!(log.buf.lock().unwrap().capacity() > 100_000, "both buffers were reused");
        drop(log);
        // The guard waits at most 100 ms for the writer: poll instead.
        sink.wait_for(|b| b.len() >= want.len());
        drop(guard);
        assert_eq!(*sink.0.lock().unwrap(), want);
    }

    #[test]
    fn lines_the_writer_drops_are_counted_one_by_one() {
        // The writer's worker blocks on `gate` and its channel holds one
        // piece, so most pieces of one flush are dropped.
        let gate = std::sync::Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let sink = SharedSink::default();
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(1)
            .finish(Gated(gate.clone(), sink.clone()));
        // As in the binary: the access log's writer is its own, and its
        // counter is not the metrics' (the access log counts for it).
        let metrics = crate::telemetry::Metrics::default();
        let log = AccessLog::default();
        log.enable(writer, LogFormat::Text);
        for i in 0..3_000 {
            assert!(log.record(&line(Some(&format!("c{i}")), "/oauth/token")));
        }
        log.flush(&metrics);
        drop(held);
        drop(log);
        let dropped = metrics.log_lines_dropped();
        let lines = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count() as u64;
        sink.wait_for(|b| lines(b) + dropped >= 3_000);
        drop(guard);
        let written = lines(&sink.0.lock().unwrap());
        assert!(dropped > 1_000, "most pieces were dropped: {dropped}");
        assert_eq!(written + dropped, 3_000, "every line is written or counted");
    }

    /// A sink that waits for the test's gate before each write.
    struct Gated(std::sync::Arc<Mutex<()>>, SharedSink);

    impl std::io::Write for Gated {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _open = self.0.lock().unwrap();
            self.1.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A `Write` target the test reads back.
    #[derive(Clone, Default)]
    struct SharedSink(std::sync::Arc<Mutex<Vec<u8>>>);

    impl SharedSink {
        /// Waits (10 s at most) until what was written satisfies `done`.
        fn wait_for(&self, done: impl Fn(&[u8]) -> bool) {
            let deadline = Instant::now() + std::time::Duration::from_secs(10);
            while !done(&self.0.lock().unwrap()) && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }

    impl std::io::Write for SharedSink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_lines_read_like_the_other_log_lines() {
        let mut out = Vec::new();
        line(Some("abc"), "/oauth/token").write(LogFormat::Text, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-12-01T18:20:25.123456Z  INFO appauth::access: request method=POST path=/oauth/token status=200 latency_us=87 client_id=\"abc\" request_id=7b848083-000000000021\n"
        );
    }

    #[test]
    fn json_lines_parse_and_carry_every_field() {
        let mut out = Vec::new();
        line(None, "/a b\"\\\n").write(LogFormat::Json, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["path"], "/a%20b%22%5C%0A");
        assert_eq!(v["status"], 200);
        assert_eq!(v["client_id"], serde_json::Value::Null);
        assert_eq!(v["timestamp"], "2025-12-01T18:20:25.123456Z");
        assert_eq!(v["target"], "appauth::access");
    }

    #[test]
    fn timestamps_match_the_time_crate_across_dates() {
        for secs in [0i64, 951_782_400, 4_107_542_399, 1_709_164_800, 253_402_300_799] {
            let mut out = Vec::new();
            timestamp(secs * 1_000_000 + 5, &mut out);
            let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let want = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000005Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
