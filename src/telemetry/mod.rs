//! Logging (tracing), the access log and Prometheus metrics.
//!
//! Operational events go through `tracing`; the access log, one line per
//! request, has a path of its own ([`access`]) because it runs on every
//! token request. Neither ever sees a secret, an `Authorization` header, a
//! token or a body: handlers only ever hand the logger a client ID, via
//! [`LoggedClient`].

pub mod access;
pub mod latency;
mod metrics;
mod process;
mod request_id;

pub use self::access::{AccessLog, LoggedClient, LoggedFederation};
pub use self::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics, TOKEN_ERROR_CODES};
pub use self::request_id::{RequestId, RequestIdValue, RequestIds};

use crate::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// How many pieces (up to 64 KiB of whole lines each, or one longer line)
/// may wait for stdout in the access log's own writer: 32 MiB in normal
/// traffic, ~3 s of lines at 40,000 tokens/s. Past that, pieces are dropped
/// and every line in them is counted.
pub const ACCESS_PIECES_QUEUED: usize = 512;

/// What `init` hands back: the guards that flush the log writers on drop,
/// the count of lines the event writer dropped, and the access log's own
/// writer (it hands that one whole batches of lines).
pub struct Logging {
    pub guard: tracing_appender::non_blocking::WorkerGuard,
    pub dropped: tracing_appender::non_blocking::ErrorCounter,
    /// The access log's writer, to the same stdout: its queue is bounded in
    /// pieces, so in bytes, and nothing else shares its drop counter, so the
    /// access log counts its dropped lines exactly.
    pub access_writer: tracing_appender::non_blocking::NonBlocking,
    pub access_guard: tracing_appender::non_blocking::WorkerGuard,
    pub format: LogFormat,
    /// Whether `log.level` lets access lines (target `appauth::access`, INFO) through.
    pub access: bool,
}

/// Installs the process-wide subscriber (binary only; tests read the
/// binary's output). The writer is non-blocking and lossy: when stdout
/// cannot keep up, lines are dropped rather than stalling requests — and
/// counted (`appauth_log_lines_dropped_total`, plus one warning line).
pub fn init(log: &LogConfig) -> Logging {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(64 * 1024)
        .finish(std::io::stdout());
    let dropped = writer.error_counter();
    // Each write to stdout is one piece of whole lines under stdout's lock,
    // so the two writers' lines never mix within a line.
    let (access_writer, access_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(ACCESS_PIECES_QUEUED)
        .thread_name("appauth-access-log")
        .finish(std::io::stdout());
    let filter = EnvFilter::new(format!("{},sled=warn,hyper=warn,rustls=warn,redis=warn", log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone());
    match log.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
    Logging {
        guard,
        dropped,
        access_writer,
        access_guard,
        format: log.format,
        access: tracing::enabled!(target: "appauth::access", tracing::Level::INFO),
    }
}

/// Request extension: the peer address of the connection (source address
/// for abuse limits and the audit log).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// What records a request: its id source, the access log and the metrics.
/// The HTTP state implements it, so telemetry needs nothing from HTTP.
pub trait Observed {
    fn request_ids(&self) -> &RequestIds;
    fn access_log(&self) -> &AccessLog;
    fn metrics(&self) -> &Metrics;
}
