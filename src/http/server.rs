//! Serving HTTP: the accept loop of each listener on per-core runtimes,
//! optional TLS (rustls), connection limits and timeouts, strict framing
//! (RFC 9112 §6), and the graceful drain when asked to stop.

use crate::connection::{self, Activity, Watched};
use crate::http::SharedState;
use crate::http::paths::TOKEN_PATH;
use crate::http::router::Plane;
use crate::oauth::mtls::{ClientCertificate, PresentedCertificate};
use crate::telemetry::PeerAddr;
use axum::Router;
use futures_util::future::Either;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// One listening socket and what it serves.
pub struct Listener {
    pub listener: TcpListener,
    pub plane: Plane,
    pub router: Router,
    pub tls: Option<TlsAcceptor>,
}

/// Serves every listener until `shutdown` completes, then stops accepting
/// and lets in-flight requests finish (30 s at most).
pub async fn serve(
    listeners: Vec<Listener>,
    state: SharedState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limits = state.config.server.clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // A request head larger than this gets 431 (hyper's default is
        // ~400 KB, and 10,000 slow connections each holding one is 4 GB).
        .max_buf_size(MAX_HEAD_BYTES);
    builder.http2().max_header_list_size(MAX_HEAD_BYTES as u32);
    // One budget of connections for every listener: what the process can hold.
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let workers = Arc::new(ConnectionWorkers::start()?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    {
        let loops: Vec<_> = listeners
            .into_iter()
            .map(|l| {
                let accept = AcceptLoop {
                    state: state.clone(),
                    builder: builder.clone(),
                    slots: slots.clone(),
                    workers: workers.clone(),
                    graceful: &graceful,
                };
                let mut stop = stop_rx.clone();
                async move {
                    accept
                        .run(l, async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await
                }
            })
            .collect();
        let all = futures_util::future::join_all(loops);
        tokio::pin!(all);
        tokio::select! {
            _ = &mut all => {}
            () = shutdown => {
                let _ = stop_tx.send(true);
                all.await;
            }
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 30 s; closing them");
    }
    if let Ok(workers) = Arc::try_unwrap(workers) {
        workers.stop();
    }
    Ok(())
}

/// What every request of one connection shares.
#[derive(Clone)]
struct Conn {
    state: SharedState,
    plane: Plane,
    router: Router,
    trusted: Arc<[std::net::IpAddr]>,
    peer: SocketAddr,
}

impl Conn {
    /// The connection's request handler. The peer address rides on every
    /// request (abuse limits and the audit log need it), and so does the
    /// client certificate: the one of this TLS connection, or the one a
    /// trusted proxy names in `server.client_cert_header` (on a separate
    /// admin listener only with `server.client_cert_header_on_admin`).
    fn service(
        self,
        tls_cert: Option<PresentedCertificate>,
    ) -> impl hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
    > + Clone {
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let client = PeerAddr(forwarded_client(&self.trusted, self.peer, req.headers()));
            let server = &self.state.config.server;
            let header_here = self.plane != Plane::Admin || server.client_cert_header_on_admin;
            let cert = match &server.client_cert_header {
                Some(name) if header_here && self.trusted.contains(&self.peer.ip()) => req
                    .headers()
                    .get(name)
                    .and_then(|v| ClientCertificate::from_header(v.as_bytes()))
                    .map(Arc::new),
                _ => tls_cert.clone(),
            };
            let mut req = req.map(axum::body::Body::new);
            if let Some(cert) = cert {
                req.extensions_mut().insert(cert);
            }
            dispatch(&self.state, self.plane, &self.router, Some(client), req)
        })
    }
}

struct AcceptLoop<'g> {
    state: SharedState,
    builder: auto::Builder<TokioExecutor>,
    slots: Arc<tokio::sync::Semaphore>,
    workers: Arc<ConnectionWorkers>,
    graceful: &'g hyper_util::server::graceful::GracefulShutdown,
}

impl AcceptLoop<'_> {
    async fn run(self, l: Listener, stop: impl Future<Output = ()>) {
        let limits = self.state.config.server.clone();
        let trusted_proxies: Arc<[std::net::IpAddr]> = limits.trusted_proxies.clone().into();
        let mut next_worker = 0usize;
        tokio::pin!(stop);
        loop {
            // Beyond `server.max_connections`, new connections wait in the
            // kernel's listen backlog until one ends: the ones being served
            // are not harmed, and nothing is accepted only to be dropped.
            let slot = tokio::select! {
                slot = self.slots.clone().acquire_owned() => match slot {
                    Ok(s) => s,
                    Err(_) => break,
                },
                () = &mut stop => break,
            };
            let accepted = tokio::select! {
                accepted = l.listener.accept() => accepted,
                () = &mut stop => break,
            };
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
            let conn = Conn {
                state: self.state.clone(),
                plane: l.plane,
                router: l.router.clone(),
                trusted: trusted_proxies.clone(),
                peer,
            };
            let builder = self.builder.clone();
            let watcher = self.graceful.watcher();
            let tls = l.tls.clone();
            let (first_byte, idle) = (limits.header_read_timeout, limits.idle_timeout);
            next_worker = next_worker.wrapping_add(1);
            self.workers.handle(next_worker).spawn(async move {
                let _slot = slot;
                // Re-registered with this worker's reactor, so all of the
                // connection's wake-ups stay on one thread.
                let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                    return;
                };
                let activity = Activity::new();
                let stream = Watched::new(stream, activity.clone());
                let serve = async {
                    match tls {
                        None => {
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), conn.service(None));
                            let _ = watcher.watch(conn.into_owned()).await;
                        }
                        Some(acceptor) => {
                            let handshake =
                                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                            let Ok(Ok(tls)) = handshake else { return };
                            // The certificate the client proved it holds (RFC 8705).
                            let cert = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| {
                                    ClientCertificate::new(c.iter().map(|c| c.clone().into_owned()).collect())
                                })
                                .map(Arc::new);
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), conn.service(cert));
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
/// added to `public::token::direct` too: the router's only one, the access
/// log, is shared with it through `telemetry::access::Started`.
pub fn dispatch(
    state: &SharedState,
    plane: Plane,
    router: &Router,
    peer: Option<PeerAddr>,
    mut req: axum::http::Request<axum::body::Body>,
) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + use<> {
    if ambiguous_framing(req.headers()) {
        let resp = refuse_framing(req.uri().path());
        return Either::Left(Either::Right(std::future::ready(Ok(resp))));
    }
    if plane.serves_token() && req.method() == axum::http::Method::POST && req.uri().path() == TOKEN_PATH {
        let state = state.clone();
        // Boxed: hyper moves the request's future a few times before polling
        // it, and this one is kilobytes (the form's parameters, the body's
        // timer); a pointer moves for the price of one allocation.
        return Either::Left(Either::Left(Box::pin(async move {
            Ok(crate::http::public::token::direct(state, peer, req).await)
        })));
    }
    if let Some(peer) = peer {
        req.extensions_mut().insert(peer);
    }
    // A Router is always ready, so `call` needs no `poll_ready`.
    Either::Right(tower::Service::call(&mut router.clone(), req))
}

/// One single-threaded runtime per core for connections. The multi-thread
/// scheduler moved connection tasks between workers, and the cross-thread
/// wake-ups cost more than the work on a 2-core machine; a connection here
/// lives on one thread from accept to close.
struct ConnectionWorkers {
    handles: Vec<tokio::runtime::Handle>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ConnectionWorkers {
    fn start() -> std::io::Result<Self> {
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

    fn handle(&self, i: usize) -> &tokio::runtime::Handle {
        &self.handles[i % self.handles.len()]
    }

    /// Called after the graceful drain: ends the worker threads.
    fn stop(self) {
        for s in self.stops {
            let _ = s.send(());
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

pub async fn shutdown_signal() {
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
pub fn forwarded_client(trusted: &[std::net::IpAddr], peer: SocketAddr, headers: &axum::http::HeaderMap) -> SocketAddr {
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
