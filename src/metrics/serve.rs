//! `GET /metrics` on `[metrics] listen`: the gauges refreshed from the state database,
//! then every family in the format the scraper asked for.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::Metrics;
use super::text::{OPENMETRICS, PROMETHEUS, to_prometheus, wants_openmetrics};
use crate::config::Config;
use crate::time::Clock;

/// Why metrics cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address is taken or not ours to bind.
    #[error("{key} {addr} cannot be served ({source}); is another tasksync or exporter using it?")]
    Bind { key: &'static str, addr: SocketAddr, source: std::io::Error },
}

/// What a scrape reads besides the counters.
#[derive(Clone)]
struct Scrape {
    /// The counters and the registry.
    metrics: Arc<Metrics>,
    /// Where the state database is (read-only at each scrape).
    cfg: Arc<Config>,
    /// "Now", for the lag.
    clock: Clock,
}

/// The server, stopped when dropped.
#[derive(Debug)]
pub struct Served {
    /// The bound address (the port, when `listen` said 0).
    pub addr: SocketAddr,
    /// The accept loop.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `[metrics] listen` when set and serves in the background; `None` when unset.
pub async fn start(cfg: &Config, metrics: Arc<Metrics>, clock: Clock) -> Result<Option<Served>, MetricsError> {
    let (Some(addr), key) = (cfg.metrics.listen, cfg.metrics.key) else { return Ok(None) };
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|source| MetricsError::Bind { key, addr, source })?;
    let addr = listener.local_addr().map_err(|source| MetricsError::Bind { key, addr, source })?;
    let scrape = Scrape { metrics, cfg: Arc::new(cfg.clone()), clock };
    let app = Router::new().route("/metrics", get(metrics_page)).with_state(scrape);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, %addr, "The metrics server stopped");
        }
    });
    tracing::info!(%addr, "Serving Prometheus metrics at /metrics");
    Ok(Some(Served { addr, task }))
}

async fn metrics_page(State(s): State<Scrape>, headers: HeaderMap) -> impl IntoResponse {
    let now = (s.clock)();
    let cfg = s.cfg.clone();
    let report = tokio::task::spawn_blocking(move || crate::status::report(&cfg, now)).await;
    match report {
        Ok(Ok(report)) => s.metrics.refresh(report.as_ref(), now, s.cfg.sync.start),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "A scrape could not read the state database");
            s.metrics.state_unreadable();
        }
        Err(_) => s.metrics.state_unreadable(),
    }
    let text = s.metrics.openmetrics();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if wants_openmetrics(accept) {
        ([(header::CONTENT_TYPE, OPENMETRICS)], text)
    } else {
        ([(header::CONTENT_TYPE, PROMETHEUS)], to_prometheus(&text))
    }
}
