//! The memory budget: bytes of span data held anywhere in the pipeline.
//!
//! A request takes a permit for its size before it is accepted; the permit travels with the
//! shared batch and is released when the last exporter is done with it (sent, or dropped and
//! counted). When the budget is spent, receivers refuse with a retryable answer, so memory stays
//! bounded under overload or with a backend down, and nothing accepted is dropped for lack of room.
//!
//! Receivers reserve from the same budget *before* they allocate: the body as it is read, the
//! inflated body as it grows, and the parser's working memory for JSON (see
//! [`crate::wire::json::parse_memory_bound`]). Such a reservation is a [`MemoryPermit`] grown
//! with [`MemoryPermit::try_grow`] and released on drop, so every byte a request holds is in one
//! number, exported as `tollgate_pipeline_memory_bytes` on every change.

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
    /// Mirrors `used` (added to and subtracted from with every change).
    gauge: Option<prometheus::IntGauge>,
}

impl Inner {
    fn add(&self, bytes: usize) {
        if let Some(g) = &self.gauge {
            g.add(bytes as i64);
        }
    }

    fn sub(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        if let Some(g) = &self.gauge {
            g.sub(bytes as i64);
        }
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self::build(limit, None)
    }

    /// A budget of `limit` bytes whose use is mirrored in `gauge` on every change.
    pub fn with_gauge(limit: usize, gauge: prometheus::IntGauge) -> Self {
        Self::build(limit, Some(gauge))
    }

    fn build(limit: usize, gauge: Option<prometheus::IntGauge>) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
                gauge,
            }),
        }
    }

    /// Takes `bytes` from the budget, or returns `None` when that would exceed the limit.
    pub fn try_acquire(&self, bytes: usize) -> Option<MemoryPermit> {
        if !reserve(&self.inner, bytes) {
            return None;
        }
        Some(MemoryPermit {
            inner: self.inner.clone(),
            bytes,
        })
    }

    /// A permit holding nothing yet, to grow with [`MemoryPermit::try_grow`].
    pub fn empty(&self) -> MemoryPermit {
        MemoryPermit {
            inner: self.inner.clone(),
            bytes: 0,
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

/// Adds `bytes` to `used` unless that would pass the limit.
fn reserve(inner: &Inner, bytes: usize) -> bool {
    let mut used = inner.used.load(Ordering::Relaxed);
    loop {
        let Some(new) = used.checked_add(bytes) else {
            return false;
        };
        if new > inner.limit {
            return false;
        }
        match inner
            .used
            .compare_exchange_weak(used, new, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => {
                inner.add(bytes);
                return true;
            }
            Err(actual) => used = actual,
        }
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
            let extra = bytes - self.bytes;
            self.inner.used.fetch_add(extra, Ordering::AcqRel);
            self.inner.add(extra);
        } else {
            self.inner.sub(self.bytes - bytes);
        }
        self.bytes = bytes;
    }

    /// Holds `extra` more bytes, or returns false (holding what it held) when that would pass
    /// the limit: what a receiver calls before it allocates.
    #[must_use]
    pub fn try_grow(&mut self, extra: usize) -> bool {
        if !reserve(&self.inner, extra) {
            return false;
        }
        self.bytes += extra;
        true
    }

    /// A new, empty permit on the same budget (to hold one buffer separately).
    pub fn split_empty(&self) -> MemoryPermit {
        MemoryPermit {
            inner: self.inner.clone(),
            bytes: 0,
        }
    }

    /// The budget's limit (to tell "never fits" from "not now").
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for MemoryPermit {
    fn drop(&mut self) {
        self.inner.sub(self.bytes);
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

    #[test]
    fn grows_within_the_limit_and_mirrors_the_gauge() {
        let gauge = prometheus::IntGauge::new("t", "t").unwrap();
        let budget = MemoryBudget::with_gauge(100, gauge.clone());
        let mut p = budget.empty();
        assert!(p.try_grow(70));
        assert_eq!(gauge.get(), 70);
        assert!(!p.try_grow(31), "past the limit");
        assert_eq!(p.bytes(), 70);
        let q = budget.try_acquire(30).expect("fits exactly");
        assert_eq!(gauge.get(), 100);
        p.resize(10);
        assert_eq!(gauge.get(), 40);
        drop(p);
        drop(q);
        assert_eq!(gauge.get(), 0);
        assert_eq!(budget.used(), 0);
    }
}
