//! Bounded label cardinality for metrics whose label values come from span data.
//!
//! Two guards, both cheap on the hot path (a hash and a shared read lock, no allocation once a
//! value or label set has been seen):
//! - [`ValueCap`] admits at most `cap` distinct values of one label; later values fold into
//!   [`OTHER`].
//! - [`SeriesCache`] admits at most `max_series` distinct label sets for one group of metrics and
//!   caches the per-series metric handles; past the cap the whole label set folds into
//!   `__other__` for every label.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// The value a label takes once its cap (or the series cap) is reached.
pub const OTHER: &str = "__other__";
/// The value a label takes when the span carries no value for it.
pub const UNKNOWN: &str = "unknown";
/// Longest label value kept, in bytes; longer values are cut at a character boundary.
pub const MAX_VALUE_BYTES: usize = 128;

const SHARDS: usize = 16;

/// Cuts `value` to at most [`MAX_VALUE_BYTES`] bytes without splitting a character.
fn truncate(value: &str) -> &str {
    if value.len() <= MAX_VALUE_BYTES {
        return value;
    }
    let mut end = MAX_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Admits at most `cap` distinct values of one label.
#[derive(Debug)]
pub struct ValueCap {
    cap: usize,
    seen: RwLock<HashSet<Box<str>>>,
}

impl ValueCap {
    /// A guard admitting `cap` distinct values.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            seen: RwLock::new(HashSet::new()),
        }
    }

    /// The value to export for `value`, and whether it was folded into [`OTHER`].
    ///
    /// An empty value becomes [`UNKNOWN`] and a value that is literally `__other__` stays as is;
    /// neither uses a slot of the cap.
    pub fn admit<'v>(&self, value: &'v str) -> (&'v str, bool) {
        let value = truncate(value);
        if value.is_empty() {
            return (UNKNOWN, false);
        }
        if value == OTHER {
            return (OTHER, false);
        }
        {
            let seen = self.seen.read();
            if seen.contains(value) {
                return (value, false);
            }
            if seen.len() >= self.cap {
                return (OTHER, true);
            }
        }
        let mut seen = self.seen.write();
        if seen.contains(value) {
            return (value, false);
        }
        if seen.len() >= self.cap {
            return (OTHER, true);
        }
        seen.insert(value.into());
        (value, false)
    }

    /// How many distinct values have been admitted.
    pub fn len(&self) -> usize {
        self.seen.read().len()
    }

    /// True when no value has been admitted yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

type Bucket<S> = Vec<(Box<[Box<str>]>, Arc<S>)>;
type Shard<S> = RwLock<HashMap<u64, Bucket<S>>>;

/// At most `max_series` label sets for a group of metrics, each with its cached handles `S`.
///
/// `max_series` includes the overflow series (every label `__other__`), so a group never exports
/// more than `max_series` label sets.
#[derive(Debug)]
pub struct SeriesCache<S> {
    max_series: usize,
    hasher: RandomState,
    shards: Box<[Shard<S>]>,
    admitted: AtomicUsize,
}

/// The outcome of [`SeriesCache::get`].
#[derive(Debug)]
pub struct Series<S> {
    /// The handles to update.
    pub handles: Arc<S>,
    /// True when the label set was over the cap and folded into the overflow series.
    pub folded: bool,
}

impl<S> SeriesCache<S> {
    /// A cache admitting `max_series` label sets (at least 2: one real and the overflow one).
    pub fn new(max_series: usize) -> Self {
        Self {
            max_series: max_series.max(2),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            admitted: AtomicUsize::new(0),
        }
    }

    /// The handles for the label set `values`, creating them with `make` the first time.
    /// Past the cap, the handles of the all-`__other__` label set (`others`, as many values as
    /// `values`) are returned instead.
    pub fn get(&self, values: &[&str], others: &[&str], make: impl Fn(&[&str]) -> S) -> Series<S> {
        if let Some(handles) = self.lookup(values) {
            return Series {
                handles,
                folded: false,
            };
        }
        if let Some(handles) = self.insert(values, &make, false) {
            return Series {
                handles,
                folded: false,
            };
        }
        let handles = self
            .lookup(others)
            .or_else(|| self.insert(others, &make, true))
            .unwrap_or_else(|| Arc::new(make(others)));
        Series {
            handles,
            folded: true,
        }
    }

    /// Label sets currently held (the overflow one included once used).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// True when no label set is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn hash(&self, values: &[&str]) -> (u64, usize) {
        let h = self.hasher.hash_one(values);
        (h, (h >> 60) as usize % SHARDS)
    }

    fn lookup(&self, values: &[&str]) -> Option<Arc<S>> {
        let (h, shard) = self.hash(values);
        let map = self.shards[shard].read();
        find(map.get(&h)?, values)
    }

    /// Inserts `values` if the cap allows (`force` bypasses it, for the overflow series).
    fn insert(&self, values: &[&str], make: &impl Fn(&[&str]) -> S, force: bool) -> Option<Arc<S>> {
        let (h, shard) = self.hash(values);
        let mut map = self.shards[shard].write();
        if let Some(found) = map.get(&h).and_then(|b| find(b, values)) {
            return Some(found);
        }
        if !force {
            // Keep one slot free for the overflow series.
            let limit = self.max_series - 1;
            let reserved = self
                .admitted
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < limit).then_some(n + 1)
                });
            if reserved.is_err() {
                return None;
            }
        }
        let handles = Arc::new(make(values));
        let key: Box<[Box<str>]> = values.iter().map(|v| Box::<str>::from(*v)).collect();
        map.entry(h).or_default().push((key, handles.clone()));
        Some(handles)
    }
}

fn find<S>(bucket: &Bucket<S>, values: &[&str]) -> Option<Arc<S>> {
    bucket
        .iter()
        .find(|(key, _)| {
            key.len() == values.len() && key.iter().zip(values).all(|(k, v)| &**k == *v)
        })
        .map(|(_, s)| s.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_cap_folds_past_cap_and_keeps_admitted_values() {
        let cap = ValueCap::new(2);
        assert_eq!(cap.admit("a"), ("a", false));
        assert_eq!(cap.admit("b"), ("b", false));
        assert_eq!(cap.admit("c"), (OTHER, true));
        assert_eq!(cap.admit("a"), ("a", false));
        assert_eq!(cap.admit(""), (UNKNOWN, false));
        assert_eq!(cap.admit(OTHER), (OTHER, false));
        assert_eq!(cap.len(), 2);
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let cap = ValueCap::new(10);
        let long = "é".repeat(100); // 200 bytes
        let (v, folded) = cap.admit(&long);
        assert!(!folded);
        assert!(v.len() <= MAX_VALUE_BYTES);
        assert_eq!(v.chars().count(), MAX_VALUE_BYTES / 2);
    }

    #[test]
    fn series_cache_caps_label_sets_including_overflow() {
        let cache: SeriesCache<String> = SeriesCache::new(3);
        let others = [OTHER, OTHER];
        let make = |v: &[&str]| v.join("|");
        assert!(!cache.get(&["a", "1"], &others, make).folded);
        assert!(!cache.get(&["b", "1"], &others, make).folded);
        let s = cache.get(&["c", "1"], &others, make);
        assert!(s.folded);
        assert_eq!(*s.handles, "__other__|__other__");
        // Admitted sets stay admitted and return the same handles.
        let again = cache.get(&["a", "1"], &others, make);
        assert!(!again.folded);
        assert_eq!(*again.handles, "a|1");
        for i in 0..1000 {
            cache.get(&["x", &i.to_string()], &others, make);
        }
        assert_eq!(cache.len(), 3);
    }
}
