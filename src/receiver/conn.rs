//! The receivers' connection loop: hyper serving HTTP/1.1 and HTTP/2 (or HTTP/2 only, for the
//! gRPC port) under per-connection limits.
//!
//! - at most `max_connections` open at once; one over the cap is served by a service that
//!   answers every request 503 + `Retry-After` / UNAVAILABLE and is closed within a few seconds
//!   (so clients back off and retry instead of timing out); counted;
//! - HTTP/1.1 headers must arrive within `header_read_timeout` (hyper's timer), and the first
//!   request of any connection must start within it (a client that connects and says nothing, or
//!   sends the HTTP/2 preface a byte at a time, is closed);
//! - a connection with no request in flight for `idle_timeout` is closed;
//! - HTTP/2: keep-alive pings (`http2_keepalive_interval` / `_timeout`) and
//!   `http2_max_concurrent_streams`;
//! - bodies are bounded by `body_read_timeout` in the handlers (a held stream ends there);
//! - on shutdown every connection is asked to finish (HTTP/2 GOAWAY, HTTP/1.1 close after the
//!   current response) and, when `cut` is cancelled, dropped.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::OtlpReceiverConfig;
use super::metrics::{Receiver, METRICS};
use super::NodelayListener;

/// One request in, one response out.
pub(crate) type Handler = Arc<
    dyn Fn(http::Request<Incoming>) -> BoxFuture<'static, http::Response<axum::body::Body>>
        + Send
        + Sync,
>;

/// Connections over the cap being answered at once; more than that are closed on accept.
const MAX_REFUSING: usize = 64;
/// How long an over-the-cap connection may stay to read its answer.
const REFUSAL_LIFETIME: Duration = Duration::from_secs(3);

/// The limits the loop applies (from `[receivers.otlp]`).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    keepalive_interval: Duration,
    keepalive_timeout: Duration,
    max_concurrent_streams: u32,
    /// HTTP/2 only (the gRPC port).
    pub(crate) http2_only: bool,
}

impl Limits {
    pub(crate) fn new(cfg: &OtlpReceiverConfig) -> Self {
        Self {
            header_read_timeout: cfg.header_read_timeout,
            idle_timeout: cfg.idle_timeout,
            max_connections: cfg.max_connections.max(1),
            keepalive_interval: cfg.http2_keepalive_interval,
            keepalive_timeout: cfg.http2_keepalive_timeout,
            max_concurrent_streams: cfg.http2_max_concurrent_streams.max(1),
            http2_only: false,
        }
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }
}

fn builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    // OTLP batches are large (hundreds of KB): bigger HTTP/2 frames and windows let a client
    // send one in a few frames without waiting for window updates. Windows are flow-control
    // credit, not buffers.
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_frame_size(256 << 10)
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(16 << 20);
    if limits.http2_only {
        b = b.http2_only();
    }
    b
}

/// Serves `listener` until `shutdown` is cancelled; then asks every connection to finish and
/// returns when they have, or when `cut` is cancelled (the rest are dropped and counted).
pub(crate) async fn serve(
    listener: TcpListener,
    receiver: Receiver,
    handler: Handler,
    refusal: Handler,
    limits: Limits,
    shutdown: CancellationToken,
    cut: CancellationToken,
) {
    let mut listener = NodelayListener::new(listener);
    let builder = Arc::new(builder(&limits));
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let conns = TaskTracker::new();
    loop {
        let (stream, _peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match open.clone().try_acquire_owned() {
            Ok(permit) => {
                let (builder, handler, limits) = (builder.clone(), handler.clone(), limits.clone());
                let (shutdown, cut) = (shutdown.clone(), cut.clone());
                conns.spawn(async move {
                    let gauge = METRICS.connections.with_label_values(&[receiver.label()]);
                    gauge.inc();
                    one(stream, receiver, &builder, handler, &limits, shutdown, cut).await;
                    gauge.dec();
                    drop(permit);
                });
            }
            Err(_) => {
                METRICS
                    .connections_refused
                    .with_label_values(&[receiver.label()])
                    .inc();
                tracing::debug!(
                    receiver = receiver.label(),
                    max = limits.max_connections,
                    "Connection over max_connections refused."
                );
                let Ok(slot) = refusing.clone().try_acquire_owned() else {
                    continue; // dropping the stream closes it
                };
                let (builder, refusal) = (builder.clone(), refusal.clone());
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let f = refusal(req);
                        async move { Ok::<_, Infallible>(f.await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if tokio::time::timeout(REFUSAL_LIFETIME, conn).await.is_err() {
                        tracing::debug!("A refused connection was closed after its lifetime.");
                    }
                    drop(slot);
                });
            }
        }
    }
    conns.close();
    tokio::select! {
        () = conns.wait() => {}
        () = cut.cancelled() => {
            // The connections see `cut` too and drop themselves; wait for them to have done so.
            conns.wait().await;
        }
    }
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    started: AtomicUsize,
    last_end: Mutex<Instant>,
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_end.lock() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn one(
    stream: TcpStream,
    receiver: Receiver,
    builder: &Builder<TokioExecutor>,
    handler: Handler,
    limits: &Limits,
    shutdown: CancellationToken,
    cut: CancellationToken,
) {
    let opened = Instant::now();
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        started: AtomicUsize::new(0),
        last_end: Mutex::new(opened),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req| {
            activity.in_flight.fetch_add(1, Ordering::AcqRel);
            activity.started.fetch_add(1, Ordering::AcqRel);
            let guard = InFlight(activity.clone());
            let f = handler(req);
            async move {
                let response = f.await;
                drop(guard);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let check_every = (limits.idle_timeout.min(limits.header_read_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut finishing = false;
    let closed = |reason: &str| {
        METRICS
            .connections_closed
            .with_label_values(&[receiver.label(), reason])
            .inc();
    };
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                // hyper's own header timer also closes a keep-alive connection that sends no
                // next request: the same idle close as the tick's below, counted the same way
                // (whichever of the two timers fires first).
                let timed_out = done.as_ref().err().is_some_and(|e| {
                    e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout)
                });
                if timed_out && activity.in_flight.load(Ordering::Acquire) == 0 {
                    if activity.started.load(Ordering::Acquire) == 0 {
                        closed("handshake_timeout");
                    } else {
                        closed("idle");
                    }
                }
                return;
            }
            () = shutdown.cancelled(), if !finishing => {
                conn.as_mut().graceful_shutdown();
                finishing = true;
            }
            () = cut.cancelled() => {
                closed("shutdown_deadline");
                return;
            }
            _ = tick.tick() => {
                if activity.in_flight.load(Ordering::Acquire) > 0 {
                    continue;
                }
                if activity.started.load(Ordering::Acquire) == 0
                    && opened.elapsed() >= limits.header_read_timeout
                {
                    closed("handshake_timeout");
                    return;
                }
                if activity.last_end.lock().elapsed() >= limits.idle_timeout {
                    closed("idle");
                    return;
                }
            }
        }
    }
}

/// The answer on a connection over the cap: 503 + `Retry-After` (HTTP, connection closed) or
/// UNAVAILABLE (gRPC).
pub(crate) fn refusal(max: usize) -> Handler {
    Arc::new(move |req: http::Request<Incoming>| {
        let message = format!("too many open connections (max_connections = {max}); retry later");
        let grpc = super::http::is_grpc(req.headers());
        Box::pin(async move {
            if grpc {
                return tonic::Status::unavailable(message).into_http();
            }
            let mut response = http::Response::new(axum::body::Body::from(message));
            *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            let h = response.headers_mut();
            h.insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
            h.insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            h.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain"),
            );
            response
        })
    })
}
