//! The memory budget: bytes of span data held anywhere in the pipeline.
//!
//! A request takes a permit for its size before it is accepted; the permit travels with the
//! shared batch and is released when the last exporter is done with it (sent, or dropped and
//! counted). When the budget is spent, receivers refuse with a retryable answer, so memory stays
//! bounded under overload or with a backend down, and nothing accepted is dropped for lack of room.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A shared byte budget.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// Takes `bytes` from the budget, or returns `None` when that would exceed the limit.
    pub fn try_acquire(&self, bytes: usize) -> Option<MemoryPermit> {
        let mut used = self.inner.used.load(Ordering::Relaxed);
        loop {
            let new = used.checked_add(bytes)?;
            if new > self.inner.limit {
                return None;
            }
            match self.inner.used.compare_exchange_weak(
                used,
                new,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(MemoryPermit {
                        inner: self.inner.clone(),
                        bytes,
                    })
                }
                Err(actual) => used = actual,
            }
        }
    }

    /// Bytes currently held.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }
}

/// Bytes held from a [`MemoryBudget`], returned on drop.
#[derive(Debug)]
pub struct MemoryPermit {
    inner: Arc<Inner>,
    bytes: usize,
}

impl MemoryPermit {
    /// Changes the size held (e.g. after enrichment grew the request). Growing may overshoot the
    /// limit slightly: the request was already accepted, and refusing it now would lose it.
    pub fn resize(&mut self, bytes: usize) {
        if bytes >= self.bytes {
            self.inner
                .used
                .fetch_add(bytes - self.bytes, Ordering::AcqRel);
        } else {
            self.inner
                .used
                .fetch_sub(self.bytes - bytes, Ordering::AcqRel);
        }
        self.bytes = bytes;
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for MemoryPermit {
    fn drop(&mut self) {
        self.inner.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_releases_on_drop() {
        let budget = MemoryBudget::new(100);
        let a = budget.try_acquire(60).expect("fits");
        assert!(budget.try_acquire(41).is_none());
        let mut b = budget.try_acquire(40).expect("fits exactly");
        assert_eq!(budget.used(), 100);
        b.resize(10);
        assert_eq!(budget.used(), 70);
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
