//! Running: the background jobs next to the HTTP server, and the shutdown
//! order (stop accepting, finish in-flight requests, stop the jobs, flush
//! the access log and last-login times, close the store).

use super::*;

impl App {
    /// Runs until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(crate::http::server::shutdown_signal()).await
    }

    /// Runs until `shutdown` completes, then drains connections and flushes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let background = tokio::spawn(background_tasks(self.state.clone(), stop_rx.clone()));
        let overlaps = tokio::spawn(end_overlaps(self.state.clone(), stop_rx.clone()));
        let follower = tokio::spawn(follow_feed(self.state.clone(), stop_rx));
        let served = crate::http::server::serve(self.listeners, self.state.clone(), shutdown).await;
        let _ = stop_tx.send(true);
        let _ = background.await;
        let _ = overlaps.await;
        let _ = follower.await;
        self.state.access_log.flush(&self.state.metrics);
        if let Err(e) = self.state.directory.flush_logins().await {
            tracing::error!(error = %e, "could not save last-login times at shutdown");
        }
        if let Err(e) = self.state.directory.flush_token_audit().await {
            tracing::error!(error = %e, "could not append federated-token audit records at shutdown");
        }
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        tracing::info!("stopped");
        served
    }

    /// Serves one request in-process, exactly as the first listener's
    /// connections would (benchmarks; there is no peer address).
    pub fn handle(
        &self,
        req: axum::http::Request<axum::body::Body>,
    ) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + use<> {
        let first = &self.listeners[0];
        crate::http::server::dispatch(&self.state, first.plane, &first.router, None, req)
    }
}
