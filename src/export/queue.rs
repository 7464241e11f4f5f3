//! An exporter's own bounded queue: in memory (capacity in bytes and in batches) or on disk
//! ([`super::disk`]); pushing never waits.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::ExportBatch;

struct Inner {
    items: VecDeque<Arc<ExportBatch>>,
    bytes: usize,
    closed: bool,
}

/// A bounded multi-producer, single-consumer queue of shared batches.
pub(crate) struct BatchQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    max_bytes: usize,
    max_batches: usize,
}

/// Why a batch was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// Over the byte or batch capacity.
    Full,
    /// The queue was closed for shutdown.
    Closed,
    /// The disk queue could not write (e.g. the disk is full).
    Io,
}

/// A batch taken off a queue; `ack` identifies it to a disk queue once it is done with.
pub(crate) struct Item {
    pub batch: Arc<ExportBatch>,
    pub ack: Option<u64>,
}

/// A queued batch: the queue's state after it, and what to wait for before answering the client.
pub(crate) struct Pushed {
    pub batches: usize,
    pub bytes: usize,
    pub wait: Option<SyncWait>,
}

/// Waits until a disk queue's fsync covers one write.
pub struct SyncWait {
    rx: tokio::sync::watch::Receiver<super::disk::Synced>,
    ticket: u64,
}

impl SyncWait {
    pub(crate) fn new(rx: tokio::sync::watch::Receiver<super::disk::Synced>, ticket: u64) -> Self {
        Self { rx, ticket }
    }

    /// True once the write is synced; false if the fsync failed (or the queue went away).
    pub async fn wait(mut self) -> bool {
        let ticket = self.ticket;
        match self.rx.wait_for(|s| s.outcome(ticket).is_some()).await {
            Ok(s) => s.outcome(ticket).unwrap_or(false),
            Err(_) => false,
        }
    }
}

impl std::fmt::Debug for SyncWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncWait")
            .field("ticket", &self.ticket)
            .finish()
    }
}

/// An exporter's queue: in memory or on disk.
pub(crate) enum ExportQueue {
    Memory(BatchQueue),
    Disk(super::disk::DiskQueue),
}

impl ExportQueue {
    pub(crate) fn is_disk(&self) -> bool {
        matches!(self, ExportQueue::Disk(_))
    }

    pub(crate) fn try_push(&self, batch: Arc<ExportBatch>) -> Result<Pushed, PushError> {
        match self {
            ExportQueue::Memory(q) => q.try_push(batch).map(|(batches, bytes)| Pushed {
                batches,
                bytes,
                wait: None,
            }),
            ExportQueue::Disk(q) => q.try_push(batch),
        }
    }

    pub(crate) async fn pop(&self) -> Option<(Item, usize, usize)> {
        match self {
            ExportQueue::Memory(q) => q
                .pop()
                .await
                .map(|(batch, n, b)| (Item { batch, ack: None }, n, b)),
            ExportQueue::Disk(q) => q.pop().await,
        }
    }

    pub(crate) async fn pop_more(
        &self,
        room: usize,
        until: Instant,
    ) -> Option<(Item, usize, usize)> {
        match self {
            ExportQueue::Memory(q) => q
                .pop_more(room, until)
                .await
                .map(|(batch, n, b)| (Item { batch, ack: None }, n, b)),
            ExportQueue::Disk(q) => q.pop_more(room, until).await,
        }
    }

    /// Done with these items (delivered or counted as dropped): a disk queue forgets them.
    pub(crate) fn ack(&self, items: &[Item]) {
        if let ExportQueue::Disk(q) = self {
            q.ack(items.iter().filter_map(|i| i.ack));
        }
    }

    pub(crate) fn close(&self) {
        match self {
            ExportQueue::Memory(q) => q.close(),
            ExportQueue::Disk(q) => q.close(),
        }
    }

    /// After the worker stopped: a disk queue syncs and says what stays queued.
    pub(crate) fn finish(&self) {
        if let ExportQueue::Disk(q) = self {
            q.finish();
        }
    }

    /// Memory: removes everything still queued (for the shutdown deadline). Disk: nothing (what
    /// is not delivered stays queued for the next start).
    pub(crate) fn clear(&self) -> Vec<Arc<ExportBatch>> {
        match self {
            ExportQueue::Memory(q) => q.clear(),
            ExportQueue::Disk(_) => Vec::new(),
        }
    }

    pub(crate) fn has_room(&self, bytes: usize) -> bool {
        match self {
            ExportQueue::Memory(q) => q.has_room(bytes),
            ExportQueue::Disk(q) => q.has_room(bytes),
        }
    }

    /// (batches, bytes) waiting.
    pub(crate) fn len(&self) -> (usize, usize) {
        match self {
            ExportQueue::Memory(q) => q.len(),
            ExportQueue::Disk(q) => q.len(),
        }
    }

    /// (max batches, max bytes).
    pub(crate) fn capacity(&self) -> (usize, usize) {
        match self {
            ExportQueue::Memory(q) => q.capacity(),
            ExportQueue::Disk(q) => (
                usize::MAX,
                usize::try_from(q.max_size()).unwrap_or(usize::MAX),
            ),
        }
    }
}

impl BatchQueue {
    pub(crate) fn new(max_bytes: usize, max_batches: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                bytes: 0,
                closed: false,
            }),
            notify: Notify::new(),
            max_bytes,
            max_batches,
        }
    }

    /// Queues a batch unless that would pass either capacity. Never waits.
    pub(crate) fn try_push(&self, batch: Arc<ExportBatch>) -> Result<(usize, usize), PushError> {
        let mut g = self.inner.lock();
        if g.closed {
            return Err(PushError::Closed);
        }
        let len = batch.bytes.len();
        if g.items.len() >= self.max_batches || g.bytes + len > self.max_bytes {
            return Err(PushError::Full);
        }
        g.bytes += len;
        g.items.push_back(batch);
        let state = (g.items.len(), g.bytes);
        drop(g);
        self.notify.notify_one();
        Ok(state)
    }

    /// Takes the head batch if its byte size fits in `room` (or `room` is `None`).
    fn take(&self, room: Option<usize>) -> Taken {
        let mut g = self.inner.lock();
        match g.items.front() {
            Some(b) if room.is_none_or(|r| b.bytes.len() <= r) => {
                let b = g.items.pop_front().expect("non-empty");
                g.bytes -= b.bytes.len();
                Taken::Batch(b, g.items.len(), g.bytes)
            }
            Some(_) => Taken::NoRoom,
            None if g.closed => Taken::Closed,
            None => Taken::Empty,
        }
    }

    /// Waits for the next batch; `None` once the queue is closed and empty.
    pub(crate) async fn pop(&self) -> Option<(Arc<ExportBatch>, usize, usize)> {
        loop {
            let notified = self.notify.notified();
            match self.take(None) {
                Taken::Batch(b, n, bytes) => return Some((b, n, bytes)),
                Taken::Closed => return None,
                Taken::Empty | Taken::NoRoom => notified.await,
            }
        }
    }

    /// Takes another batch for the batch being built if one with at most `room` bytes arrives
    /// before `until`; returns `None` at `until`, when the head does not fit, or when closed.
    pub(crate) async fn pop_more(
        &self,
        room: usize,
        until: Instant,
    ) -> Option<(Arc<ExportBatch>, usize, usize)> {
        loop {
            let notified = self.notify.notified();
            match self.take(Some(room)) {
                Taken::Batch(b, n, bytes) => return Some((b, n, bytes)),
                Taken::NoRoom | Taken::Closed => return None,
                Taken::Empty => {
                    if self.inner.lock().closed {
                        return None;
                    }
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(until.into()) => return None,
                    }
                }
            }
        }
    }

    /// Refuses new batches; the consumer still gets what is queued.
    pub(crate) fn close(&self) {
        self.inner.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Removes everything still queued (for the shutdown deadline).
    pub(crate) fn clear(&self) -> Vec<Arc<ExportBatch>> {
        let mut g = self.inner.lock();
        g.bytes = 0;
        g.items.drain(..).collect()
    }

    /// True when a batch of `bytes` would be queued now (not full, not closed).
    pub(crate) fn has_room(&self, bytes: usize) -> bool {
        let g = self.inner.lock();
        !g.closed && g.items.len() < self.max_batches && g.bytes + bytes <= self.max_bytes
    }

    /// (batches, bytes) waiting.
    pub(crate) fn len(&self) -> (usize, usize) {
        let g = self.inner.lock();
        (g.items.len(), g.bytes)
    }

    /// (max batches, max bytes).
    pub(crate) fn capacity(&self) -> (usize, usize) {
        (self.max_batches, self.max_bytes)
    }
}

enum Taken {
    Batch(Arc<ExportBatch>, usize, usize),
    NoRoom,
    Closed,
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn batch(n: usize) -> Arc<ExportBatch> {
        Arc::new(ExportBatch::new(Bytes::from(vec![0u8; n]), 1))
    }

    #[test]
    fn refuses_past_either_capacity() {
        let q = BatchQueue::new(100, 2);
        assert!(q.try_push(batch(60)).is_ok());
        assert_eq!(q.try_push(batch(50)), Err(PushError::Full));
        assert!(q.try_push(batch(40)).is_ok());
        assert_eq!(q.try_push(batch(0)), Err(PushError::Full));
        assert_eq!(q.len(), (2, 100));
        q.close();
        assert_eq!(q.clear().len(), 2);
        assert_eq!(q.try_push(batch(1)), Err(PushError::Closed));
    }

    #[tokio::test]
    async fn pop_returns_none_when_closed_and_empty() {
        let q = BatchQueue::new(100, 10);
        q.try_push(batch(1)).unwrap();
        q.close();
        assert!(q.pop().await.is_some());
        assert!(q.pop().await.is_none());
    }
}
