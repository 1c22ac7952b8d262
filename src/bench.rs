//! `appauth bench` (DESIGN §7): provisions N applications through the admin
//! API, then drives `POST /oauth/token` over C keep-alive HTTP/1.1
//! connections for S seconds, rotating through the applications; shows
//! live progress and reports requests/s, latency percentiles (HDR
//! histogram) and errors by status. Loopback targets only, unless
//! `--allow-remote`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub url: String,
    /// Where applications are provisioned (the admin plane); `None`: `url`.
    pub admin_url: Option<String>,
    pub admin_credentials: PathBuf,
    pub apps: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub json: bool,
    pub allow_remote: bool,
    /// Reuse (or save) provisioned credentials here, to skip provisioning.
    pub credentials_cache: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub url: String,
    pub apps: usize,
    pub concurrency: usize,
    pub duration_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub latency_ms: Latency,
    pub errors_by_status: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Serialize, Deserialize)]
struct Creds {
    #[serde(rename = "clientId")]
    client_id: String,
    secret: String,
}

struct Target {
    host: String,
    port: u16,
    path_base: String,
}

fn parse_target(url: &str, allow_remote: bool) -> Result<Target, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("--url {url:?}: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(
            "--url must be http:// (the load generator does not speak TLS; bench the TLS terminator separately)".into(),
        );
    }
    let host = parsed
        .host_str()
        .ok_or("--url has no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let loopback = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .all(|a| a.ip().is_loopback());
    if !loopback && !allow_remote {
        return Err(format!(
            "refusing to load-test {host}: not a loopback address (pass --allow-remote to override)"
        ));
    }
    Ok(Target {
        host,
        port,
        path_base: parsed.path().trim_end_matches('/').to_owned(),
    })
}

async fn provision(args: &BenchArgs, base: &str) -> Result<Vec<Creds>, String> {
    if let Some(path) = &args.credentials_cache
        && let Ok(bytes) = std::fs::read(path)
    {
        let creds: Vec<Creds> = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if creds.len() >= args.apps {
            eprintln!("reusing {} provisioned applications from {}", args.apps, path.display());
            return Ok(creds.into_iter().take(args.apps).collect());
        }
    }
    let admin: Creds = serde_json::from_slice(
        &std::fs::read(&args.admin_credentials).map_err(|e| format!("{}: {e}", args.admin_credentials.display()))?,
    )
    .map_err(|e| {
        format!(
            "{}: expected {{\"clientId\",\"secret\"}}: {e}",
            args.admin_credentials.display()
        )
    })?;
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&admin.client_id, Some(&admin.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let bearer = token["access_token"]
        .as_str()
        .ok_or_else(|| format!("admin token refused: {token}"))?
        .to_owned();
    let run = &crate::domain::new_id()[..8];
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut out = Vec::with_capacity(args.apps);
    let indices: Vec<usize> = (0..args.apps).collect();
    for chunk in indices.chunks(16) {
        let futures = chunk.iter().map(|i| {
            let (http, bearer, done) = (http.clone(), bearer.clone(), done.clone());
            let name = format!("bench-{run}-{i}");
            let url = format!("{base}/api/v1/apps");
            async move {
                let resp: serde_json::Value = http
                    .post(url)
                    .bearer_auth(bearer)
                    .json(&serde_json::json!({"name": name}))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                done.fetch_add(1, Ordering::Relaxed);
                match (resp["clientId"].as_str(), resp["secret"].as_str()) {
                    (Some(c), Some(s)) => Ok(Creds {
                        client_id: c.to_owned(),
                        secret: s.to_owned(),
                    }),
                    _ => Err(format!("creating {name} failed: {resp}")),
                }
            }
        });
        for r in futures_util::future::join_all(futures).await {
            out.push(r?);
        }
        if out.len() % 1000 < 16 {
            eprint!(
                "\rprovisioned {}/{} applications ({:.0}/s)",
                out.len(),
                args.apps,
                out.len() as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "\rprovisioned {} applications in {:.1} s            ",
        out.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.credentials_cache {
        let _ = crate::token::keys::write_private(path, &serde_json::to_vec(&out).unwrap_or_default());
    }
    Ok(out)
}

struct Shared {
    requests: Vec<Request<Full<Bytes>>>,
    next: AtomicUsize,
    count: AtomicU64,
    errors: std::sync::Mutex<BTreeMap<String, u64>>,
    recording: AtomicBool,
    stop: AtomicBool,
}

async fn connection(target: Arc<Target>, shared: Arc<Shared>) -> Result<Histogram<u64>, String> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    while !shared.stop.load(Ordering::Relaxed) {
        let i = shared.next.fetch_add(1, Ordering::Relaxed) % shared.requests.len();
        let template = &shared.requests[i];
        let mut req = Request::builder().method("POST").uri(template.uri().clone());
        for (k, v) in template.headers() {
            req = req.header(k, v);
        }
        let req = req.body(template.body().clone()).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let outcome = match sender.send_request(req).await {
            Ok(resp) => {
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                Ok(status)
            }
            Err(e) => Err(e.to_string()),
        };
        if !shared.recording.load(Ordering::Relaxed) {
            if outcome.is_err() {
                return Err("connection failed during warm-up".into());
            }
            continue;
        }
        let _ = hist.record(start.elapsed().as_micros().max(1) as u64);
        shared.count.fetch_add(1, Ordering::Relaxed);
        let key = match &outcome {
            Ok(s) if s.is_success() => continue,
            Ok(s) => s.as_u16().to_string(),
            Err(_) => "connection error".to_owned(),
        };
        *shared
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
        if outcome.is_err() {
            break;
        }
    }
    Ok(hist)
}

pub async fn run(args: BenchArgs) -> Result<BenchReport, String> {
    let target = Arc::new(parse_target(&args.url, args.allow_remote)?);
    if args.apps == 0 || args.concurrency == 0 {
        return Err("--apps and --concurrency must be at least 1".into());
    }
    let admin_base = args
        .admin_url
        .as_deref()
        .unwrap_or(&args.url)
        .trim_end_matches('/')
        .to_owned();
    let creds = provision(&args, &admin_base).await?;
    let authority = format!("{}:{}", target.host, target.port);
    let body = Bytes::from_static(b"grant_type=client_credentials");
    let requests = creds
        .iter()
        .map(|c| {
            Request::builder()
                .method("POST")
                .uri(format!("{}/oauth/token", target.path_base))
                .header("host", &authority)
                .header("content-type", "application/x-www-form-urlencoded")
                .header(
                    "authorization",
                    format!("Basic {}", STANDARD.encode(format!("{}:{}", c.client_id, c.secret))),
                )
                .body(Full::new(body.clone()))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared {
        requests,
        next: AtomicUsize::new(0),
        count: AtomicU64::new(0),
        errors: Default::default(),
        recording: AtomicBool::new(args.warmup.is_zero()),
        stop: AtomicBool::new(false),
    });
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(connection(target.clone(), shared.clone())))
        .collect();
    if !args.warmup.is_zero() {
        eprintln!("warming up for {} s", args.warmup.as_secs());
        tokio::time::sleep(args.warmup).await;
        shared.recording.store(true, Ordering::Relaxed);
    }
    let started = Instant::now();
    let mut last = 0;
    while started.elapsed() < args.duration {
        tokio::time::sleep(Duration::from_secs(1).min(args.duration.saturating_sub(started.elapsed()))).await;
        let n = shared.count.load(Ordering::Relaxed);
        let errors: u64 = shared.errors.lock().unwrap_or_else(|p| p.into_inner()).values().sum();
        eprintln!(
            "{:>5.1} s  {:>9} requests  {:>8} req/s  {} errors",
            started.elapsed().as_secs_f64(),
            n,
            n - last,
            errors
        );
        last = n;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    for t in tasks {
        match t.await {
            Ok(Ok(h)) => hist.add(h).map_err(|e| e.to_string())?,
            Ok(Err(e)) => eprintln!("a connection failed: {e}"),
            Err(e) => eprintln!("a connection task failed: {e}"),
        }
    }
    let requests = shared.count.load(Ordering::Relaxed);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let errors_by_status = shared.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(BenchReport {
        url: args.url.clone(),
        apps: args.apps,
        concurrency: args.concurrency,
        duration_s: elapsed,
        requests,
        requests_per_s: requests as f64 / elapsed,
        latency_ms: Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            max: hist.max() as f64 / 1000.0,
        },
        errors_by_status,
    })
}

impl BenchReport {
    pub fn human(&self) -> String {
        let errors = if self.errors_by_status.is_empty() {
            "none".to_owned()
        } else {
            self.errors_by_status
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "target      {}\napps        {}  concurrency {}  duration {:.1} s\nrequests/s  {:.0}   ({} requests)\nlatency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}\nerrors      {}",
            self.url,
            self.apps,
            self.concurrency,
            self.duration_s,
            self.requests_per_s,
            self.requests,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.max,
            errors
        )
    }
}
