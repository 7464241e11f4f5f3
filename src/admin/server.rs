//! The admin HTTP listener: `/healthz`, `/readyz`, `/metrics`, plus any routes other components
//! merge in (task API, status page).
//!
//! ```no_run
//! # async fn demo(listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! use tollgate::admin::server::{AdminServer, Readiness};
//! let readiness = Readiness::new();
//! let token = tokio_util::sync::CancellationToken::new();
//! let server = AdminServer::new(readiness.clone())
//!     .merge(axum::Router::new().route("/api/v1/ping", axum::routing::get(|| async { "pong" })));
//! let serving = tokio::spawn(server.serve(listener, token.clone()));
//! readiness.mark_ready(); // once every listener is bound
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, IntGauge, IntGaugeVec, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The `Content-Type` of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// Whether the process should receive traffic: starting (not yet), ready, or draining (no longer).
/// Cheap to clone; every clone shares the same state.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicU8>);

impl Readiness {
    /// Starts out not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every listener is bound: `/readyz` answers 200 (unless draining).
    pub fn mark_ready(&self) {
        // Only starting becomes ready: draining never goes back.
        let _was_not_starting = self
            .0
            .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire)
            .is_err();
    }

    /// Shutting down: `/readyz` answers 503 from now on.
    pub fn mark_draining(&self) {
        self.0.store(DRAINING, Ordering::Release);
    }

    /// True between [`Readiness::mark_ready`] and [`Readiness::mark_draining`].
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire) == READY
    }

    fn describe(&self) -> (StatusCode, &'static str) {
        match self.0.load(Ordering::Acquire) {
            READY => (StatusCode::OK, "ready\n"),
            DRAINING => (StatusCode::SERVICE_UNAVAILABLE, "not ready: draining\n"),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: starting (listeners not bound yet)\n",
            ),
        }
    }
}

/// Process-level metrics registered by the admin listener.
#[derive(Debug)]
pub struct ProcessMetrics {
    /// `tollgate_build_info{version}`, always 1.
    pub build_info: IntGaugeVec,
    /// `tollgate_up`, 1 while the process runs.
    pub up: IntGauge,
}

impl ProcessMetrics {
    /// Metric name.
    pub const BUILD_INFO: &'static str = "tollgate_build_info";
    /// Metric name.
    pub const UP: &'static str = "tollgate_up";

    /// The process-wide instance, registered in [`crate::telemetry::registry`] on first use.
    pub fn get() -> &'static Self {
        static METRICS: LazyLock<ProcessMetrics> = LazyLock::new(|| {
            let build_info = IntGaugeVec::new(
                prometheus::Opts::new(ProcessMetrics::BUILD_INFO, "Build information; always 1."),
                &["version"],
            )
            .expect("static metric definition is valid");
            build_info
                .with_label_values(&[env!("CARGO_PKG_VERSION")])
                .set(1);
            let up = IntGauge::new(ProcessMetrics::UP, "1 while tollgate is running.")
                .expect("static metric definition is valid");
            up.set(1);
            let registry = crate::telemetry::registry();
            registry
                .register(Box::new(build_info.clone()))
                .expect("metric is registered once");
            registry
                .register(Box::new(up.clone()))
                .expect("metric is registered once");
            ProcessMetrics { build_info, up }
        });
        &METRICS
    }
}

/// The admin HTTP server. Build it, [`merge`](AdminServer::merge) extra routes, then
/// [`serve`](AdminServer::serve) it on a listener the caller bound.
#[derive(Debug)]
pub struct AdminServer {
    router: Router,
}

impl AdminServer {
    /// The built-in routes: `/healthz`, `/readyz` (from `readiness`) and `/metrics`.
    pub fn new(readiness: Readiness) -> Self {
        let _ = ProcessMetrics::get();
        let router = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(move || async move { readiness.describe() }))
            .route("/metrics", get(metrics));
        Self { router }
    }

    /// Adds another component's routes (for example `/api/v1/tasks/{id}` or `/`). Panics, like
    /// [`Router::merge`], if a path is already routed.
    pub fn merge(mut self, router: Router) -> Self {
        self.router = self.router.merge(router);
        self
    }

    /// The complete router, for serving elsewhere or for `oneshot` tests.
    pub fn into_router(self) -> Router {
        self.router
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight requests and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}

/// `/metrics`: the whole registry in the Prometheus text format.
async fn metrics() -> impl IntoResponse {
    let families = crate::telemetry::registry().gather();
    let mut body = Vec::new();
    match TextEncoder::new().encode(&families, &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "Encoding metrics failed.");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding metrics failed\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_moves_forward_only() {
        let r = Readiness::new();
        assert_eq!(r.describe().0, StatusCode::SERVICE_UNAVAILABLE);
        r.mark_ready();
        assert!(r.is_ready());
        r.mark_draining();
        r.mark_ready();
        assert!(!r.is_ready());
        assert!(r.describe().1.contains("draining"));
    }
}
