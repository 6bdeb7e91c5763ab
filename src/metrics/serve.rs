//! `GET /metrics` on `[metrics] listen`: the gauges refreshed by the caller's reader (the
//! state database, in the product), then every family in the format the scraper asked for.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::text::{OPENMETRICS, PROMETHEUS, to_prometheus, wants_openmetrics};
use super::{Gauges, Metrics};

/// Why metrics cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address is taken or not ours to bind.
    #[error("{key} {addr} cannot be served ({source}); is another tasksync or exporter using it?")]
    Bind {
        /// The config key that named it (`metrics.listen`).
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why the bind failed.
        source: std::io::Error,
    },
}

/// What a scrape reads besides the counters: the lag (always) and the gauges of the data
/// set (`None`: no state database yet); `Err` when it cannot be read. Called off the async
/// threads, once per scrape.
pub type ReadGauges = Arc<dyn Fn() -> Result<(Option<i64>, Option<Gauges>), String> + Send + Sync>;

/// Where to serve and what to read at each scrape.
pub struct Endpoint {
    /// The address to bind (port 0: any free port; [`Served::addr`] tells which).
    pub addr: SocketAddr,
    /// The config key that named it, for the error.
    pub key: &'static str,
    /// The gauges' reader.
    pub read: ReadGauges,
}

/// What a scrape reads besides the counters.
#[derive(Clone)]
struct Scrape {
    /// The counters and the registry.
    metrics: Arc<Metrics>,
    /// The gauges' reader.
    read: ReadGauges,
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

/// Binds the endpoint and serves in the background until the returned guard is dropped.
pub async fn start(endpoint: Endpoint, metrics: Arc<Metrics>) -> Result<Served, MetricsError> {
    let Endpoint { addr, key, read } = endpoint;
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|source| MetricsError::Bind { key, addr, source })?;
    let addr = listener.local_addr().map_err(|source| MetricsError::Bind { key, addr, source })?;
    let scrape = Scrape { metrics, read };
    let app = Router::new().route("/metrics", get(metrics_page)).with_state(scrape);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, %addr, "The metrics server stopped");
        }
    });
    tracing::info!(%addr, "Serving Prometheus metrics at /metrics");
    Ok(Served { addr, task })
}

async fn metrics_page(State(s): State<Scrape>, headers: HeaderMap) -> impl IntoResponse {
    let read = s.read.clone();
    match tokio::task::spawn_blocking(move || read()).await {
        Ok(Ok((lag_s, gauges))) => s.metrics.refresh(lag_s, gauges.as_ref()),
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
