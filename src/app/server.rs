//! Serving: the accept loop on per-core runtimes, optional TLS (rustls),
//! connection limits and timeouts, and graceful shutdown (stop accepting,
//! finish in-flight requests, flush the store).

use super::*;
use futures_util::future::Either;

impl App {
    /// Runs until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `shutdown` completes, then drains connections and flushes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let background = tokio::spawn(background_tasks(self.state.clone(), stop_rx.clone()));
        let overlaps = tokio::spawn(end_overlaps(self.state.clone(), stop_rx.clone()));
        let follower = tokio::spawn(follow_feed(self.state.clone(), stop_rx));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let limits = self.state.config.server.clone();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // A request head larger than this gets 431 (hyper's default is
            // ~400 KB, and 10,000 slow connections each holding one is 4 GB).
            .max_buf_size(MAX_HEAD_BYTES);
        builder.http2().max_header_list_size(MAX_HEAD_BYTES as u32);
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        let trusted_proxies: Arc<[std::net::IpAddr]> = limits.trusted_proxies.clone().into();
        let workers = ConnectionWorkers::start()?;
        let mut next_worker = 0usize;
        tokio::pin!(shutdown);
        loop {
            // Beyond `server.max_connections`, new connections wait in the
            // kernel's listen backlog until one ends: the ones being served
            // are not harmed, and nothing is accepted only to be dropped.
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(s) => s,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let Ok(stream) = stream.into_std() else { continue };
                    let router = self.router.clone();
                    // The peer address rides on every request of the
                    // connection (abuse limits and the audit log need it).
                    let trusted = trusted_proxies.clone();
                    let state = self.state.clone();
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let client = PeerAddr(forwarded_client(&trusted, peer, req.headers()));
                        dispatch(&state, &router, Some(client), req.map(axum::body::Body::new))
                    });
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    let tls = self.tls.clone();
                    let (first_byte, idle) = (limits.header_read_timeout, limits.idle_timeout);
                    next_worker = next_worker.wrapping_add(1);
                    workers.handle(next_worker).spawn(async move {
                        let _slot = slot;
                        // Re-registered with this worker's reactor, so all of
                        // the connection's wake-ups stay on one thread.
                        let Ok(stream) = tokio::net::TcpStream::from_std(stream) else { return };
                        let activity = Activity::new();
                        let stream = Watched::new(stream, activity.clone());
                        let serve = async {
                            match tls {
                                None => {
                                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                                    let _ = watcher.watch(conn.into_owned()).await;
                                }
                                Some(acceptor) => {
                                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                                    let Ok(Ok(tls)) = handshake else { return };
                                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                                    let _ = watcher.watch(conn.into_owned()).await;
                                }
                            }
                        };
                        // Whichever ends first; dropping the connection closes it.
                        tokio::select! {
                            () = serve => {}
                            () = connection::watchdog(activity, first_byte, idle) => {}
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(self.listener);
        tracing::info!("shutting down: finishing in-flight requests");
        if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 30 s; closing them");
        }
        workers.stop();
        let _ = stop_tx.send(true);
        let _ = background.await;
        let _ = overlaps.await;
        let _ = follower.await;
        self.state.access_log.flush();
        if let Err(e) = self.state.directory.flush_logins().await {
            tracing::error!(error = %e, "could not save last-login times at shutdown");
        }
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The largest request head (request line and headers) served.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Whether an HTTP/1 request's framing is one that a proxy in front could
/// read differently (RFC 9112 §6.1): a `Transfer-Encoding` other than one
/// plain `chunked` (e.g. `chunked, chunked`, `gzip, chunked`, or two
/// headers). Such a request is refused and its connection closed, so no
/// second request can hide in its body (request smuggling). (With both
/// `Transfer-Encoding` and `Content-Length`, hyper already lets the former
/// win and drops the latter, as RFC 9112 §6.3 says.)
fn ambiguous_framing(headers: &axum::http::HeaderMap) -> bool {
    let mut te = headers.get_all(axum::http::header::TRANSFER_ENCODING).iter();
    match (te.next(), te.next()) {
        (None, _) => false,
        (Some(v), None) => !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => true,
    }
}

fn refuse_framing(path: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let message =
        "ambiguous message framing: send one Transfer-Encoding: chunked, or a Content-Length (RFC 9112 section 6)";
    let mut resp = if path.starts_with("/oauth/") {
        crate::error::OAuthError::InvalidRequest(message.into()).into_response()
    } else {
        crate::error::ApiError::bad_request(message).into_response()
    };
    resp.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    resp
}

/// Serves one request as the server does: `POST /oauth/token` straight to
/// its handler, everything else through the router. The token endpoint
/// skips the router because matching, boxing and the middleware's future
/// cost ~8 % of its CPU per token (measured with perf, 2026-12); any other
/// method or path on it (405s,
/// trailing slashes) is the router's. A layer added to the router must be
/// added to `routes::token::direct` too: the router's only one, the access
/// log, is shared with it through `telemetry::access::Started`.
pub(super) fn dispatch(
    state: &SharedState,
    router: &Router,
    peer: Option<PeerAddr>,
    mut req: axum::http::Request<axum::body::Body>,
) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + use<> {
    if ambiguous_framing(req.headers()) {
        let resp = refuse_framing(req.uri().path());
        return Either::Left(Either::Right(std::future::ready(Ok(resp))));
    }
    if req.method() == axum::http::Method::POST && req.uri().path() == routes::token::TOKEN_PATH {
        let state = state.clone();
        return Either::Left(Either::Left(async move {
            Ok(routes::token::direct(state, peer, req).await)
        }));
    }
    if let Some(peer) = peer {
        req.extensions_mut().insert(peer);
    }
    // A Router is always ready, so `call` needs no `poll_ready`.
    Either::Right(tower::Service::call(&mut router.clone(), req))
}

impl App {
    /// Serves one request in-process, exactly as a connection would
    /// (benchmarks; there is no peer address).
    pub fn handle(
        &self,
        req: axum::http::Request<axum::body::Body>,
    ) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + use<> {
        dispatch(&self.state, &self.router, None, req)
    }
}

/// One single-threaded runtime per core for connections. The multi-thread
/// scheduler moved connection tasks between workers, and the cross-thread
/// wake-ups cost more than the work on a 2-core machine; a connection here
/// lives on one thread from accept to close.
pub(super) struct ConnectionWorkers {
    handles: Vec<tokio::runtime::Handle>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ConnectionWorkers {
    pub(super) fn start() -> std::io::Result<Self> {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut w = ConnectionWorkers {
            handles: Vec::with_capacity(n),
            stops: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            w.handles.push(rt.handle().clone());
            w.stops.push(tx);
            w.threads.push(
                std::thread::Builder::new()
                    .name(format!("appauth-conn-{i}"))
                    .spawn(move || {
                        rt.block_on(async {
                            let _ = rx.await;
                        });
                    })?,
            );
        }
        Ok(w)
    }

    pub(super) fn handle(&self, i: usize) -> &tokio::runtime::Handle {
        &self.handles[i % self.handles.len()]
    }

    /// Called after the graceful drain: ends the worker threads.
    pub(super) fn stop(self) {
        for s in self.stops {
            let _ = s.send(());
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

pub(super) fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<TlsAcceptor, StartupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| StartupError::Other(format!("server.tls_cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartupError::Other(format!(
            "server.tls_cert {}: no certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartupError::Other(format!("server.tls_key {}: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StartupError::Other(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            StartupError::Other(format!(
                "server.tls_cert/server.tls_key do not match or are unusable: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The client behind a trusted load balancer: the last `X-Forwarded-For`
/// entry, the one the balancer itself appended (earlier entries are the
/// client's own claims). From any other peer, or when the last entry is not
/// an address, the TCP peer is the client, so nobody can pick the address
/// the failure limits and the audit log charge.
pub(super) fn forwarded_client(
    trusted: &[std::net::IpAddr],
    peer: SocketAddr,
    headers: &axum::http::HeaderMap,
) -> SocketAddr {
    if trusted.is_empty() || !trusted.contains(&peer.ip()) {
        return peer;
    }
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok());
    last.map_or(peer, |ip| SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client_and_only_by_its_own_last_entry() {
        let lb: SocketAddr = "10.0.0.5:40000".parse().unwrap();
        let other: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let trusted = ["10.0.0.5".parse().unwrap()];
        let client = |t: &[std::net::IpAddr], p, h: &[&str]| forwarded_client(t, p, &headers(h)).ip().to_string();
        // The balancer appends the real client after whatever the client sent.
        assert_eq!(client(&trusted, lb, &["1.2.3.4, 198.51.100.7"]), "198.51.100.7");
        assert_eq!(client(&trusted, lb, &["1.2.3.4", "198.51.100.7"]), "198.51.100.7");
        // Anyone else's header is ignored; so is one without a usable last entry.
        assert_eq!(client(&trusted, other, &["198.51.100.7"]), "203.0.113.9");
        assert_eq!(client(&[], lb, &["198.51.100.7"]), "10.0.0.5");
        assert_eq!(client(&trusted, lb, &["198.51.100.7, junk"]), "10.0.0.5");
        assert_eq!(client(&trusted, lb, &[]), "10.0.0.5");
    }
}
