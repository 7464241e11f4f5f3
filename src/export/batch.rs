//! The per-exporter worker: takes batches off its queue, concatenates them into requests
//! (max spans / max bytes / flush interval), and sends up to `concurrency` at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::config::{BatchConfig, RetryConfig};
use super::metrics::{ExporterMetrics, InFlight};
use super::queue::{ExportQueue, Item};
use super::retry::{deadline_reached, send_with_retry, Final, RetryCtx};
use super::transport::{Body, Transport};
use super::ExportBatch;
use crate::wire::{batch, scan};

/// Everything one exporter's worker and its send tasks share.
pub(crate) struct Shared {
    pub name: String,
    pub queue: Arc<ExportQueue>,
    pub transport: Arc<dyn Transport>,
    pub metrics: Arc<ExporterMetrics>,
    pub batch: BatchConfig,
    pub retry: RetryConfig,
    pub timeout: Duration,
    pub max_request_bytes: Option<usize>,
    pub shutdown: watch::Receiver<Option<Instant>>,
}

impl Shared {
    fn set_queue_gauges(&self, batches: usize, bytes: usize) {
        self.metrics
            .queue_len
            .set(i64::try_from(batches).unwrap_or(i64::MAX));
        self.metrics
            .queue_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    fn drop_all(&self, parts: &[Arc<ExportBatch>], reason: &'static str, detail: &str) {
        let spans: usize = parts.iter().map(|b| b.spans).sum();
        self.drop_spans(spans, reason, detail);
    }

    fn drop_spans(&self, spans: usize, reason: &'static str, detail: &str) {
        if spans > 0 {
            self.metrics.drop_spans(&self.name, spans, reason, detail);
        }
    }
}

/// Runs until the queue is closed and empty (or the shutdown deadline passes).
pub(crate) async fn run(shared: Arc<Shared>, concurrency: usize, tracker: TaskTracker) {
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    while let Some((first, n, bytes)) = shared.queue.pop().await {
        shared.set_queue_gauges(n, bytes);
        // From here until its send ends the request is in flight: while more batches join it,
        // while it waits for a send slot, while it is sent and retried. It has left the queue,
        // so the queue gauges no longer show it.
        let mut in_flight = shared.metrics.in_flight(first.batch.spans);
        let until = Instant::now() + shared.batch.timeout;
        let mut spans = first.batch.spans;
        let mut size = first.batch.bytes.len();
        let mut parts = vec![first];
        while spans < shared.batch.max_spans && size < shared.batch.max_bytes {
            let room = shared.batch.max_bytes - size;
            match shared.queue.pop_more(room, until).await {
                Some((b, n, bytes)) => {
                    shared.set_queue_gauges(n, bytes);
                    in_flight.add(b.batch.spans);
                    spans += b.batch.spans;
                    size += b.batch.bytes.len();
                    parts.push(b);
                }
                None => break,
            }
        }
        // Wait for a free request slot, unless the shutdown deadline passes first.
        let permit = tokio::select! {
            biased;
            () = deadline_reached(shared.shutdown.clone()) => None,
            p = slots.clone().acquire_owned() => p.ok(),
        };
        let Some(permit) = permit else {
            if shared.queue.is_disk() {
                // Not dropped: it stays queued on disk for the next start.
                break;
            }
            shared.drop_spans(spans, "shutdown", "shutdown deadline passed before sending");
            let rest = shared.queue.clear();
            shared.set_queue_gauges(0, 0);
            shared.drop_all(&rest, "shutdown", "shutdown deadline passed before sending");
            break;
        };
        tracker.spawn(send_parts(shared.clone(), parts, (permit, in_flight)));
    }
}

/// Sends one concatenated request (split when over `max_request_bytes`); `parts` (and so their
/// memory permits), the send slot and the in-flight count live until every attempt is over.
async fn send_parts(
    shared: Arc<Shared>,
    parts: Vec<Item>,
    _held: (OwnedSemaphorePermit, InFlight),
) {
    let body = Body::new(parts.iter().map(|b| b.batch.bytes.clone()).collect());
    let total_spans: usize = parts.iter().map(|b| b.batch.spans).sum();
    let ctx = RetryCtx {
        name: &shared.name,
        retry: &shared.retry,
        timeout: shared.timeout,
        metrics: &shared.metrics,
        shutdown: shared.shutdown.clone(),
        persistent: shared.queue.is_disk(),
    };
    let mut kept = false;
    match shared.max_request_bytes {
        Some(max) if body.len() > max => {
            let body = body.to_bytes();
            match scan(&body) {
                Ok(index) => {
                    for part in batch::split(&body, &index, max) {
                        let spans = scan(&part).map_or(0, |i| i.spans.len());
                        let done =
                            send_with_retry(shared.transport.as_ref(), part.into(), spans, &ctx)
                                .await;
                        kept |= done == Final::Kept;
                    }
                }
                Err(e) => {
                    shared.drop_spans(total_spans, "invalid_data", &e.to_string());
                }
            }
        }
        _ => {
            let done = send_with_retry(shared.transport.as_ref(), body, total_spans, &ctx).await;
            kept = done == Final::Kept;
        }
    }
    // Delivered or given up on (counted): a disk queue forgets them. Kept (shutdown deadline):
    // they stay queued on disk, and are sent again (in full) after the next start.
    if !kept {
        shared.queue.ack(&parts);
    }
    drop(parts);
}
