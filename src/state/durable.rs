//! A durable [`StateStore`]: a snapshot plus an op log in front of a [`MemoryStore`].
//!
//! Files in the store's directory:
//! - `state.snap`: one CRC-checked record holding the whole store and the generation `G` of the
//!   log that follows it (absent before the first snapshot: `G = 0`);
//! - `state.G.log`: one CRC-checked record per applied batch since that snapshot.
//!
//! Every batch is appended to the log (a `write` into the page cache, under the lock that
//! applies it, so the log's order is the order applied) before its answer is returned: it
//! survives `kill -9` and any crash of the process. The log is fsynced by every
//! [`StateStore::maintain`] call (every few seconds), so an OS crash or power loss loses at most
//! the batches since the last one. The memory store is deterministic given each batch's
//! `now_ms`, so replaying the log over the snapshot rebuilds the state before the restart.
//!
//! **Compaction.** Once the log exceeds `compact_after_bytes`, `maintain` writes a snapshot:
//! the new (empty) log `state.G+1.log` is created, the snapshot naming `G+1` is written to a
//! temporary file, fsynced and renamed over `state.snap` (then the directory is fsynced), and
//! only then is the old log removed. A crash at any point leaves either the old snapshot with
//! its log or the new snapshot with its (empty) log.
//!
//! **Damage.** A record that fails its checksum but whose length fits is skipped; a record cut
//! short (a torn write at the tail) ends the replay and is cut off, so new records follow the
//! last valid one. Each is counted in `tollgate_state_corrupt_records_total` and logged with
//! its offset. A damaged snapshot is logged and counted; the store then starts empty.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use parking_lot::Mutex;
use tracing::{error, info, warn};

use super::codec::{self, Read, LOG_MAGIC, SNAP_MAGIC};
use super::memory::StateLimits;
use super::metrics::METRICS;
use super::{Applied, BudgetKey, Firing, MemoryStore, StateBatch, StateError, StateStore};
use crate::units::{NanoUsd, TaskTotals};

/// How a [`DurableStore`] is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableOptions {
    /// The bounds of the in-memory state.
    pub limits: StateLimits,
    /// Write a snapshot (and start a new log) once the log holds this many bytes.
    pub compact_after_bytes: u64,
}

impl Default for DurableOptions {
    fn default() -> Self {
        Self {
            limits: StateLimits::default(),
            compact_after_bytes: 64 << 20,
        }
    }
}

struct Log {
    file: File,
    generation: u64,
    bytes: u64,
    /// Bytes appended since the last fsync.
    unsynced: bool,
}

/// The durable store (see the module docs).
pub struct DurableStore {
    memory: MemoryStore,
    log: Mutex<Log>,
    dir: PathBuf,
    options: DurableOptions,
}

impl std::fmt::Debug for DurableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("state.{generation}.log"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl DurableStore {
    /// Opens (or creates) the store in `dir` with the default options.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        Self::open_with(dir, DurableOptions::default())
    }

    /// Opens (or creates) the store in `dir`: reads the snapshot, replays its log.
    pub fn open_with(dir: &Path, options: DurableOptions) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let snap_path = dir.join("state.snap");
        let (generation, memory) = match std::fs::read(&snap_path) {
            Ok(buf) => match codec::read(&buf, SNAP_MAGIC) {
                Read::Record(body, _) => match codec::decode_snapshot(body) {
                    Some((generation, snap)) => {
                        (generation, MemoryStore::import(options.limits, snap))
                    }
                    None => damaged_snapshot(&snap_path, options.limits),
                },
                Read::End | Read::Damaged => damaged_snapshot(&snap_path, options.limits),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (0, MemoryStore::with_limits(options.limits))
            }
            Err(e) => return Err(e),
        };
        let path = log_path(dir, generation);
        let (valid_len, batches) = match std::fs::read(&path) {
            Ok(buf) => replay(&buf, &path, &memory),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, 0),
            Err(e) => return Err(e),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        // Drop a torn tail so new records follow the last valid one.
        file.set_len(valid_len)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
        remove_stale(dir, generation);
        if batches > 0 || generation > 0 {
            info!(dir = %dir.display(), generation, batches, tasks = memory.tasks(), "State restored from the snapshot and log.");
        }
        METRICS.log_bytes.set(valid_len as i64);
        Ok(Self {
            memory,
            log: Mutex::new(Log {
                file,
                generation,
                bytes: valid_len,
                unsynced: false,
            }),
            dir: dir.to_path_buf(),
            options,
        })
    }

    /// The in-memory state (for its limits and sizes).
    pub fn memory(&self) -> &MemoryStore {
        &self.memory
    }

    /// Writes a snapshot now and starts a new log (see the module docs).
    pub fn compact(&self) -> std::io::Result<()> {
        let mut log = self.log.lock();
        let next = log.generation + 1;
        let new_log_path = log_path(&self.dir, next);
        let new_log = File::create(&new_log_path)?;
        let snap = self.memory.export();
        let rec = codec::record(SNAP_MAGIC, &codec::encode_snapshot(next, &snap));
        let tmp = self.dir.join("state.snap.tmp");
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&rec)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.dir.join("state.snap"))?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = written {
            std::fs::remove_file(&new_log_path).ok();
            std::fs::remove_file(&tmp).ok();
            return Err(e);
        }
        let old = std::mem::replace(
            &mut *log,
            Log {
                file: new_log,
                generation: next,
                bytes: 0,
                unsynced: false,
            },
        );
        drop(log);
        std::fs::remove_file(log_path(&self.dir, old.generation)).ok();
        METRICS.snapshots.inc();
        METRICS.log_bytes.set(0);
        info!(dir = %self.dir.display(), generation = next, snapshot_bytes = rec.len(), tasks = snap.tasks.len(), "State snapshot written; the log starts over.");
        Ok(())
    }
}

fn damaged_snapshot(path: &Path, limits: StateLimits) -> (u64, MemoryStore) {
    METRICS.corrupt_records.inc();
    error!(path = %path.display(), "The state snapshot is damaged; starting with empty state (task totals, dedupe memory and alert marks are lost).");
    (0, MemoryStore::with_limits(limits))
}

/// Replays the log in `buf` into `memory`: the length of its valid prefix and the batches applied.
fn replay(buf: &[u8], path: &Path, memory: &MemoryStore) -> (u64, u64) {
    let mut at = 0usize;
    let mut batches = 0u64;
    while at < buf.len() {
        match codec::read(&buf[at..], LOG_MAGIC) {
            Read::Record(body, n) => {
                match codec::decode_batch(body) {
                    Some(batch) => {
                        let _results = memory.apply(batch, Instant::now());
                        batches += 1;
                    }
                    None => {
                        METRICS.corrupt_records.inc();
                        warn!(path = %path.display(), offset = at, "Undecodable state log record skipped.");
                    }
                }
                at += n;
            }
            Read::End => break,
            Read::Damaged => {
                METRICS.corrupt_records.inc();
                // A whole record whose body fails its checksum: skip it, keep the rest.
                let rest = &buf[at..];
                let len = (rest.len() >= codec::HEADER)
                    .then(|| u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize)
                    .filter(|len| {
                        rest[..4] == LOG_MAGIC.to_le_bytes()
                            && rest.len() - codec::HEADER >= *len
                            && matches!(
                                codec::read(&rest[codec::HEADER + len..], LOG_MAGIC),
                                Read::Record(..) | Read::End
                            )
                    });
                match len {
                    Some(len) => {
                        warn!(path = %path.display(), offset = at, "Damaged state log record skipped (bad checksum).");
                        at += codec::HEADER + len;
                    }
                    None => {
                        warn!(path = %path.display(), offset = at, bytes = rest.len(), "Torn or damaged tail of the state log cut off; state is restored up to it.");
                        break;
                    }
                }
            }
        }
    }
    (at as u64, batches)
}

/// Removes logs of other generations and a left-over temporary snapshot.
fn remove_stale(dir: &Path, generation: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let current = format!("state.{generation}.log");
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale_log = name.starts_with("state.") && name.ends_with(".log") && name != current;
        if stale_log || name == "state.snap.tmp" {
            std::fs::remove_file(e.path()).ok();
        }
    }
}

impl StateStore for DurableStore {
    fn apply(&self, batch: StateBatch, deadline: Instant) -> Applied {
        if batch.is_empty() {
            return self.memory.apply(batch, deadline);
        }
        let rec = codec::record(LOG_MAGIC, &codec::encode_batch(&batch));
        let mut log = self.log.lock();
        if let Err(e) = log.file.write_all(&rec) {
            return Applied::Ready(Err(StateError::Unavailable(Box::new(e))));
        }
        log.bytes += rec.len() as u64;
        log.unsynced = true;
        let out = self.memory.apply(batch, deadline);
        drop(log);
        METRICS.log_bytes.add(rec.len() as i64);
        out
    }

    fn task_totals(&self, task: &str) -> Option<TaskTotals> {
        self.memory.task_totals(task)
    }

    fn budget_total(&self, key: &BudgetKey, now_ms: u64) -> NanoUsd {
        self.memory.budget_total(key, now_ms)
    }

    fn firing(&self) -> Vec<Firing> {
        self.memory.firing()
    }

    fn maintain(&self, now_ms: u64) {
        self.memory.maintain(now_ms);
        let (bytes, file) = {
            let mut log = self.log.lock();
            let file = log.unsynced.then(|| log.file.try_clone().ok()).flatten();
            log.unsynced = false;
            (log.bytes, file)
        };
        if let Some(f) = file {
            if let Err(error) = f.sync_data() {
                warn!(%error, dir = %self.dir.display(), "Cannot fsync the state log.");
            }
        }
        if bytes >= self.options.compact_after_bytes {
            if let Err(error) = self.compact() {
                warn!(%error, dir = %self.dir.display(), "Cannot write a state snapshot; the log keeps growing.");
            }
        }
    }
}

#[cfg(test)]
mod tests;
