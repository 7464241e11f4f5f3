//! Process wiring: builds every component from the config, runs them, drains on shutdown.
//!
//! Start-up order: validate and build exporters, build the processor and the pipeline, bind
//! every listener (a bind failure is fatal and names the address), start serving, then mark
//! ready. Shutdown (SIGTERM/SIGINT): mark draining (`/readyz` 503), refuse new requests, stop the
//! receivers (in-flight requests finish), drain exporter queues until `shutdown_timeout`, log
//! and count what could not be sent, then stop the admin listener.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub mod config;

use self::config::Config;
use crate::admin::server::{AdminServer, Readiness};
use crate::admin::status::StatusPage;
use crate::export::Exporters;
use crate::pipeline::process::Processing;
use crate::pipeline::{ExportFanout, Pipeline, TraceSink};
use crate::receiver::grpc::GrpcReceiver;
use crate::receiver::http::HttpReceiver;
use crate::task::{SystemClock, TaskTracker};

async fn bind(what: &str, addr: &str) -> anyhow::Result<Option<TcpListener>> {
    if addr.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))?;
    info!(what, addr = %listener.local_addr()?, "Listening.");
    Ok(Some(listener))
}

/// Runs tollgate until SIGTERM/SIGINT, then drains. `config_path` is watched for reloads.
pub async fn run(config: Config, config_path: PathBuf) -> anyhow::Result<()> {
    // reqwest is built without a default crypto provider; install ring once for the process.
    // An error only means a provider is already installed.
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();

    let background = CancellationToken::new();
    let tracker = Arc::new(TaskTracker::new(&config.tasks, Arc::new(SystemClock)));
    let state = open_state(&config.state)?;
    let mut processing = Processing::with_state(
        &config.pricing,
        &config.tasks,
        &config.alerts,
        &config.metrics,
        tracker.clone(),
        state.clone(),
    )?;
    tokio::spawn(maintain_state(
        state.clone(),
        tracker.clock().clone(),
        // A shared store that went unreachable is probed (and its backlog replayed) at
        // least every second.
        if state.shared() {
            config
                .state
                .maintain_interval
                .min(std::time::Duration::from_secs(1))
        } else {
            config.state.maintain_interval
        },
        background.clone(),
    ));
    let engine = processing.engine().clone();
    // One state store for every stage: call claims, task totals, alert markers, budget totals.
    let store = processing.state().clone();
    let budgets = Arc::new(
        crate::budget::Budgets::new(
            &config.budgets,
            store,
            tracker.clock().clone(),
            Some(engine.clone()),
        )
        .map_err(|e| {
            let e: Vec<String> = e
                .into_iter()
                .map(|(i, e)| format!("budgets[{i}]: {e}"))
                .collect();
            anyhow::anyhow!(e.join("; "))
        })?,
    );
    processing.set_budgets(budgets.clone());
    let recent = processing.recent().clone();
    tokio::spawn(tracker.clone().run_sweeper(background.clone()));
    tokio::spawn(engine.clone().run(background.clone()));

    let exporters = Arc::new(Exporters::from_configs(&config.exporters)?);
    let pipeline = Arc::new(Pipeline::new(
        &config.pipeline,
        processing,
        ExportFanout::new(exporters.clone()),
    ));
    let sink: Arc<dyn TraceSink> = pipeline.clone();
    // The exporters' working memory (joined and encoded requests in flight) comes out of the
    // budget up front, for the whole run: the budget then covers what is really held.
    let _scratch = sink.memory().map(|budget| {
        let scratch = exporters.scratch_bytes();
        let mut permit = budget.empty();
        let reserved = scratch.min(budget.limit() / 2);
        if !permit.try_grow(reserved) || reserved < scratch {
            warn!(
                scratch_bytes = scratch,
                limit_bytes = budget.limit(),
                "The exporters' working memory (concurrency x batch.max_bytes x 2 each) is more than half of [pipeline] memory_limit_mib; only half is set aside, so peak memory may exceed the limit. Raise memory_limit_mib or lower batch.max_bytes / concurrency."
            );
        }
        info!(
            scratch_bytes = reserved,
            "Memory budget: set aside for the exporters' requests in flight."
        );
        permit
    });
    let status = Arc::new(StatusPage::new(
        recent,
        tracker.clone(),
        engine.clone(),
        exporters.clone(),
    ));
    tokio::spawn(status.clone().follow_alerts(background.clone()));

    let otlp = &config.receivers.otlp;
    for warning in otlp.exposure_warnings() {
        warn!("{warning}");
    }
    let admin_listener = bind("admin", &config.admin.listen).await?;
    let grpc_listener = bind("OTLP/gRPC", &otlp.grpc).await?;
    let http_listener = bind("OTLP/HTTP", &otlp.http).await?;

    let readiness = Readiness::new();
    let admin_stop = CancellationToken::new();
    let receivers_stop = CancellationToken::new();
    // Cancelled when connections must go, finished or not (the shutdown deadline).
    let receivers_cut = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let admin_task = admin_listener.map(|listener| {
        let grpc_api = tonic::service::Routes::new(crate::admin::task_grpc::TaskService::server(
            engine.clone(),
        ))
        .add_service(crate::admin::budget_grpc::BudgetService::server(
            budgets.clone(),
        ))
        .into_axum_router();
        let server = AdminServer::new(readiness.clone())
            .merge(crate::admin::task_http::router(tracker.clone()))
            .merge(crate::budget::http::router(budgets.clone()))
            .merge(status.clone().router())
            .merge(grpc_api);
        tokio::spawn(server.serve(listener, admin_stop.clone()))
    });
    if let Some(listener) = grpc_listener {
        let receiver = GrpcReceiver::new(otlp, sink.clone());
        let (stop, cut) = (receivers_stop.clone(), receivers_cut.clone());
        tasks.spawn(async move {
            receiver
                .serve_until(listener, stop, cut)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    if let Some(listener) = http_listener {
        let receiver = HttpReceiver::new(otlp, sink.clone());
        let (stop, cut) = (receivers_stop.clone(), receivers_cut.clone());
        tasks.spawn(async move {
            receiver
                .serve_until(listener, stop, cut)
                .await
                .map_err(anyhow::Error::from)
        });
    }

    let mut reloads = self::config::watch(config_path, config.clone());
    readiness.mark_ready();
    info!(
        exporters = config.exporters.len(),
        version = env!("CARGO_PKG_VERSION"),
        "tollgate is ready."
    );

    loop {
        tokio::select! {
            () = shutdown_signal() => break,
            changed = reloads.changed() => {
                if changed.is_err() {
                    continue;
                }
                let new = reloads.borrow_and_update().clone();
                pipeline.processor().reload(&new.pricing, &new.alerts);
                if let Err(errors) = budgets.reload(&new.budgets) {
                    warn!(errors = errors.len(), "New budgets are invalid; keeping the old ones.");
                }
                info!("Configuration reloaded: prices and alert rules apply to new spans; listeners, exporters, [tasks] and [metrics] keep their settings until restart.");
            }
            Some(done) = tasks.join_next() => {
                // A receiver stopped on its own: that is fatal.
                let error = match done {
                    Ok(Ok(())) => anyhow::anyhow!("a receiver stopped unexpectedly"),
                    Ok(Err(e)) => e,
                    Err(e) => anyhow::Error::from(e),
                };
                warn!(%error, "A receiver failed; shutting down.");
                background.cancel();
                receivers_stop.cancel();
                exporters.drain(Instant::now() + config.pipeline.shutdown_timeout).await;
                admin_stop.cancel();
                return Err(error);
            }
        }
    }

    // The whole shutdown is bounded by `shutdown_timeout`: connections get the first half to
    // finish what they are sending (they are refused at submit anyway) and are then cut; the
    // exporters drain until the deadline; the admin listener then gets one more second.
    let timeout = config.pipeline.shutdown_timeout;
    let deadline = Instant::now() + timeout;
    info!(
        ?timeout,
        "Shutting down: refusing new data, draining exporter queues."
    );
    readiness.mark_draining();
    pipeline.start_draining();
    receivers_stop.cancel();
    {
        let cut = receivers_cut.clone();
        let at = tokio::time::Instant::now() + timeout / 2;
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            cut.cancel();
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(error)) = done {
            warn!(%error, "A receiver failed while stopping.");
        }
    }
    let cut = crate::receiver::metrics::METRICS
        .connections_closed
        .with_label_values(&["otlp_grpc", "shutdown_deadline"])
        .get()
        + crate::receiver::metrics::METRICS
            .connections_closed
            .with_label_values(&["otlp_http", "shutdown_deadline"])
            .get();
    if cut > 0 {
        warn!(connections = cut, "Shutdown: cut connections still open at half the shutdown timeout (their requests were not accepted).");
    }
    exporters.drain(deadline).await;
    background.cancel();
    admin_stop.cancel();
    if let Some(task) = admin_task {
        let admin_deadline =
            tokio::time::Instant::from_std(deadline) + std::time::Duration::from_secs(1);
        match tokio::time::timeout_at(admin_deadline, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => warn!(%error, "The admin listener failed."),
            Ok(Err(error)) => warn!(%error, "The admin listener task failed."),
            Err(_) => warn!("The admin listener did not stop in time; leaving it."),
        }
    }
    info!("tollgate stopped.");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(error) => {
                warn!(%error, "Cannot listen for SIGTERM; only Ctrl-C stops tollgate.");
                tokio::signal::ctrl_c().await.ok();
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => info!("Received SIGTERM."),
            _ = tokio::signal::ctrl_c() => info!("Received SIGINT."),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok();
    }
}

/// The state store `[state]` asks for. The disk store is opened (and its snapshot and log
/// replayed) before any span is accepted.
fn open_state(
    cfg: &crate::state::StateConfig,
) -> anyhow::Result<Arc<dyn crate::state::StateStore>> {
    use crate::state::{Backend, DurableStore, MemoryStore};
    Ok(match cfg.backend {
        Backend::Memory => Arc::new(MemoryStore::new()),
        Backend::Disk => {
            let dir = cfg
                .path
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("[state] backend = \"disk\" needs a path"))?;
            let store = DurableStore::open(dir).map_err(|e| {
                anyhow::anyhow!("cannot open the state store in {}: {e}", dir.display())
            })?;
            info!(dir = %dir.display(), "State store: on disk (restored).");
            crate::state::set_backend("disk");
            Arc::new(store)
        }
        Backend::Redis => {
            let url = cfg
                .url
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("[state] backend = \"redis\" needs a url"))?;
            let store = crate::state::RedisStore::open(crate::state::RedisOptions {
                url: url.expose().to_owned(),
                prefix: cfg.key_prefix.clone(),
                pool: cfg.pool,
                connect_timeout: cfg.connect_timeout,
                timeout: cfg.timeout,
                task_idle_ms: crate::state::StateLimits::default().task_idle_ms,
                backlog_max_ops: cfg.replay_max_ops,
            })
            .map_err(|e| anyhow::anyhow!("[state] url: {e}"))?;
            info!(prefix = %cfg.key_prefix, "State store: Redis (shared by the fleet).");
            crate::state::set_backend("redis");
            Arc::new(store)
        }
    })
}

/// Housekeeping of the state store every `interval`, off the span path (fsync of a disk log,
/// snapshots, expiry), and once more when tollgate stops.
async fn maintain_state(
    state: Arc<dyn crate::state::StateStore>,
    clock: Arc<dyn crate::task::Clock>,
    interval: std::time::Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        let (state, now) = (state.clone(), clock.now_ms());
        // A snapshot or an fsync blocks: keep it off the runtime's workers.
        if let Err(error) = tokio::task::spawn_blocking(move || state.maintain(now)).await {
            warn!(%error, "State housekeeping failed.");
        }
    }
    let now = clock.now_ms();
    if let Err(error) = tokio::task::spawn_blocking(move || state.shutdown(now)).await {
        warn!(%error, "State housekeeping failed.");
    }
}
