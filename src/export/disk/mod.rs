//! A persistent exporter queue: an append-only log of segment files, one checksummed record per
//! batch, and a small `ack` file holding where the oldest undelivered record starts.
//!
//! Layout of the queue directory:
//! - `NNNNNNNNNNNNNNNNNNNN.seg`: segments, numbered in write order; a new one is started when the
//!   current one reaches the segment size, and on every start (old files are never appended to,
//!   so a torn tail stays where it is). A segment is deleted once every record in it is delivered.
//! - `ack`: `segment u64 | offset u64 | crc32 u32` (little-endian): everything before that
//!   position was delivered (or given up on, counted as dropped). Rewritten in place after each
//!   delivery; losing it (crash between delivery and write) only means re-sending, never losing.
//! - `lock`: held with an exclusive file lock while the queue is open (one process per queue).
//!
//! A record is `magic u32 | len u32 | spans u32 | crc32(previous 12 bytes) u32 |
//! crc32(payload) u32 | payload`, the payload being the encoded request exactly as it was queued
//! (priced and edited: replay does no processing again). A record that fails its checks (torn
//! write, flipped bits) is skipped, counted in `tollgate_exporter_queue_corrupt_records_total`
//! and logged with its file and offset; reading resumes at the next valid header.
//!
//! Writes happen on the request path (a `write` into the page cache); with `durability =
//! "synced"` a syncer thread fsyncs in groups and the request is answered once its bytes are
//! synced. The newest batches are also kept in memory (bounded) so a reader that keeps up does
//! not read them back from the file.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::{Condvar, Mutex};
use prometheus::{IntCounter, IntGauge};
use tokio::sync::{watch, Notify};
use tracing::{error, info, warn};

use super::config::Durability;
use super::queue::{Item, PushError, Pushed, SyncWait};
use super::ExportBatch;

mod open;
mod read;
mod record;
#[cfg(test)]
mod tests;

use record::*;
const MAGIC: u32 = 0x3151_4754; // "TGQ1" little-endian
/// Bytes of a record header.
pub(crate) const HEADER: usize = 20;
/// Largest segment file before a new one is started.
const MAX_SEGMENT: u64 = 64 << 20;
/// Most bytes of recent batches also kept in memory for the reader.
const MAX_CACHE: usize = 16 << 20;

/// What a disk queue is opened with.
#[derive(Debug, Clone)]
pub(crate) struct DiskOptions {
    pub dir: PathBuf,
    pub max_size: u64,
    pub durability: Durability,
    pub sync_max_delay: Duration,
}

/// The counters a disk queue keeps.
pub(crate) struct DiskMetrics {
    pub corrupt: IntCounter,
    pub disk_bytes: IntGauge,
}

struct Writer {
    file: Arc<File>,
    seg: u64,
    len: u64,
    /// Bytes appended since open, over all segments (sync positions).
    logical: u64,
    closed: bool,
    /// Rolled-over segments not yet fsync'ed, and whether the directory needs one.
    to_sync: Vec<Arc<File>>,
    dir_dirty: bool,
}

struct Cached {
    seg: u64,
    off: u64,
    end: u64,
    batch: Arc<ExportBatch>,
}

struct State {
    write_seg: u64,
    write_len: u64,
    /// Final length of every segment before `write_seg` still on disk.
    sealed: BTreeMap<u64, u64>,
    disk_bytes: u64,
    unread_batches: usize,
    unread_bytes: usize,
    /// A contiguous run of the newest unread records, starting at the reader's position.
    cache: VecDeque<Cached>,
    cache_bytes: usize,
    closed: bool,
}

struct Flight {
    id: u64,
    seg: u64,
    end: u64,
    acked: bool,
}

struct Reader {
    seg: u64,
    off: u64,
    file: Option<(u64, File)>,
    inflight: VecDeque<Flight>,
    next_id: u64,
    cursor: (u64, u64),
    ack_file: File,
}

struct SyncState {
    wanted: u64,
    stop: bool,
}

/// Where syncs stand: everything up to `upto` was fsync'ed, except the `failed` ranges.
#[derive(Debug, Clone, Default)]
pub(crate) struct Synced {
    upto: u64,
    failed: Vec<(u64, u64)>,
}

struct Inner {
    name: String,
    opts: DiskOptions,
    metrics: DiskMetrics,
    w: Mutex<Writer>,
    s: Mutex<State>,
    r: Mutex<Reader>,
    notify: Notify,
    sync: Mutex<SyncState>,
    sync_cv: Condvar,
    synced: watch::Sender<Synced>,
    _lock: File,
}

/// A persistent, bounded, multi-producer single-consumer queue of batches.
pub(crate) struct DiskQueue {
    inner: Arc<Inner>,
    syncer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl DiskQueue {
    /// Appends a batch unless the queue is closed or `max_size` would be passed. Never waits for
    /// the disk beyond the `write` itself; with `synced`, the answer carries what to wait for.
    pub(crate) fn try_push(&self, batch: Arc<ExportBatch>) -> Result<Pushed, PushError> {
        let i = &*self.inner;
        let len = batch.bytes.len();
        let (Ok(plen), Ok(spans)) = (u32::try_from(len), u32::try_from(batch.spans)) else {
            return Err(PushError::Full);
        };
        let rec = (HEADER + len) as u64;
        let mut w = i.w.lock();
        if w.closed {
            return Err(PushError::Closed);
        }
        if i.s.lock().disk_bytes + rec > i.opts.max_size {
            return Err(PushError::Full);
        }
        if w.len > 0 && w.len + rec > MAX_SEGMENT.min(i.opts.max_size / 4).max(1) {
            self.roll(&mut w)?;
        }
        let h = header(plen, spans, &batch.bytes);
        let write = (&*w.file)
            .write_all(&h)
            .and_then(|()| (&*w.file).write_all(&batch.bytes));
        if let Err(e) = write {
            // Leave no partial record behind (best effort; the reader skips one anyway).
            let _ignored = w.file.set_len(w.len);
            warn!(exporter = %i.name, error = %e, "Cannot write to the disk queue; refusing the request with a retryable answer.");
            return Err(PushError::Io);
        }
        let off = w.len;
        w.len += rec;
        w.logical += rec;
        let seg = w.seg;
        let end = w.len;
        let ticket = w.logical;
        let (batches, bytes) = {
            let mut s = i.s.lock();
            s.write_seg = seg;
            s.write_len = end;
            s.disk_bytes += rec;
            i.metrics
                .disk_bytes
                .set(i64::try_from(s.disk_bytes).unwrap_or(i64::MAX));
            if s.cache.len() == s.unread_batches && s.cache_bytes + len <= MAX_CACHE {
                s.cache_bytes += len;
                s.cache.push_back(Cached {
                    seg,
                    off,
                    end,
                    batch,
                });
            }
            s.unread_batches += 1;
            s.unread_bytes += len;
            (s.unread_batches, s.unread_bytes)
        };
        drop(w);
        i.notify.notify_one();
        let wait = if i.opts.durability == Durability::Synced {
            let mut st = i.sync.lock();
            st.wanted = st.wanted.max(ticket);
            drop(st);
            i.sync_cv.notify_one();
            Some(SyncWait::new(i.synced.subscribe(), ticket))
        } else {
            None
        };
        Ok(Pushed {
            batches,
            bytes,
            wait,
        })
    }

    fn roll(&self, w: &mut Writer) -> Result<(), PushError> {
        let i = &*self.inner;
        let next = w.seg + 1;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(seg_path(&i.opts.dir, next))
            .map_err(|e| {
                warn!(exporter = %i.name, error = %e, "Cannot start a disk queue segment; refusing the request with a retryable answer.");
                PushError::Io
            })?;
        let old = std::mem::replace(&mut w.file, Arc::new(file));
        if i.opts.durability == Durability::Synced {
            w.to_sync.push(old);
            w.dir_dirty = true;
        }
        let mut s = i.s.lock();
        s.sealed.insert(w.seg, w.len);
        s.write_seg = next;
        s.write_len = 0;
        w.seg = next;
        w.len = 0;
        Ok(())
    }

    /// Marks batches delivered (or given up on): once every earlier one is too, the ack file
    /// moves past them and fully delivered segments are deleted.
    pub(crate) fn ack(&self, ids: impl IntoIterator<Item = u64>) {
        let i = &*self.inner;
        let mut r = i.r.lock();
        for id in ids {
            let Some(front) = r.inflight.front().map(|f| f.id) else {
                break;
            };
            if let Some(f) = id
                .checked_sub(front)
                .and_then(|k| r.inflight.get_mut(k as usize))
            {
                f.acked = true;
            }
        }
        let mut moved = false;
        while r.inflight.front().is_some_and(|f| f.acked) {
            let f = r.inflight.pop_front().expect("non-empty");
            r.cursor = (f.seg, f.end);
            moved = true;
        }
        if !moved {
            return;
        }
        let (cseg, coff) = r.cursor;
        if let Err(e) = r.ack_file.write_all_at(&ack_bytes(cseg, coff), 0) {
            warn!(exporter = %i.name, error = %e, "Cannot write the disk queue's ack file (delivered batches may be sent again after a restart).");
        }
        drop(r);
        let mut s = i.s.lock();
        let gone: Vec<(u64, u64)> = s
            .sealed
            .iter()
            .filter(|(id, len)| **id < cseg || (**id == cseg && coff >= **len))
            .map(|(id, len)| (*id, *len))
            .collect();
        for (id, len) in &gone {
            s.sealed.remove(id);
            s.disk_bytes -= len;
        }
        i.metrics
            .disk_bytes
            .set(i64::try_from(s.disk_bytes).unwrap_or(i64::MAX));
        drop(s);
        for (id, _) in gone {
            if let Err(e) = std::fs::remove_file(seg_path(&i.opts.dir, id)) {
                warn!(exporter = %i.name, error = %e, "Cannot remove a delivered disk queue segment.");
            }
        }
    }

    /// Refuses new batches; the reader still gets what is queued.
    pub(crate) fn close(&self) {
        let i = &*self.inner;
        i.w.lock().closed = true;
        i.s.lock().closed = true;
        i.notify.notify_waiters();
        i.notify.notify_one();
    }

    /// After the worker stopped: syncs the files so what stays queued survives power loss too,
    /// and logs what stays.
    pub(crate) fn finish(&self) {
        let i = &*self.inner;
        {
            let w = i.w.lock();
            if let Err(e) = w.file.sync_data() {
                warn!(exporter = %i.name, error = %e, "Cannot sync the disk queue.");
            }
        }
        if let Err(e) = i.r.lock().ack_file.sync_data() {
            warn!(exporter = %i.name, error = %e, "Cannot sync the disk queue's ack file.");
        }
        self.stop_syncer();
        let s = i.s.lock();
        let inflight = i.r.lock().inflight.iter().filter(|f| !f.acked).count();
        let left = s.unread_batches + inflight;
        if left > 0 {
            info!(exporter = %i.name, dir = %i.opts.dir.display(), batches = left, disk_bytes = s.disk_bytes, "Undelivered batches stay queued on disk for the next start.");
        }
    }

    fn stop_syncer(&self) {
        let i = &*self.inner;
        i.sync.lock().stop = true;
        i.sync_cv.notify_all();
        if let Some(t) = self.syncer.lock().take() {
            if t.join().is_err() {
                warn!(exporter = %i.name, "The disk queue's fsync thread panicked.");
            }
        }
    }

    /// True when a batch of `bytes` would be queued now.
    pub(crate) fn has_room(&self, bytes: usize) -> bool {
        let s = self.inner.s.lock();
        !s.closed && s.disk_bytes + (HEADER + bytes) as u64 <= self.inner.opts.max_size
    }

    /// (batches, bytes) not yet read.
    pub(crate) fn len(&self) -> (usize, usize) {
        let s = self.inner.s.lock();
        (s.unread_batches, s.unread_bytes)
    }

    /// The size limit.
    pub(crate) fn max_size(&self) -> u64 {
        self.inner.opts.max_size
    }
}

impl Drop for DiskQueue {
    fn drop(&mut self) {
        self.stop_syncer();
    }
}

impl Reader {
    fn flight(&mut self, seg: u64, end: u64, acked: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.inflight.push_back(Flight {
            id,
            seg,
            end,
            acked,
        });
        id
    }
}

impl Inner {
    fn run_syncer(&self) {
        let mut done = 0u64;
        loop {
            {
                let mut st = self.sync.lock();
                while st.wanted <= done && !st.stop {
                    self.sync_cv.wait(&mut st);
                }
                if st.wanted <= done && st.stop {
                    return;
                }
            }
            if !self.opts.sync_max_delay.is_zero() {
                std::thread::sleep(self.opts.sync_max_delay);
            }
            let (file, old, dir_dirty, target) = {
                let mut w = self.w.lock();
                (
                    w.file.clone(),
                    std::mem::take(&mut w.to_sync),
                    std::mem::take(&mut w.dir_dirty),
                    w.logical,
                )
            };
            let mut result = Ok(());
            for f in old.iter().chain(std::iter::once(&file)) {
                result = result.and_then(|()| f.sync_data());
            }
            if dir_dirty {
                result = result.and_then(|()| sync_dir(&self.opts.dir));
            }
            let from = done;
            done = target;
            self.synced.send_modify(|s| {
                if let Err(e) = &result {
                    error!(exporter = %self.name, error = %e, "fsync of the disk queue failed; the requests it covered are refused with a retryable answer.");
                    s.failed.push((from, target));
                    if s.failed.len() > 64 {
                        s.failed.remove(0);
                    }
                }
                s.upto = target;
            });
        }
    }
}

impl Synced {
    /// Whether `ticket` was synced: `None` while not yet, else success.
    pub(crate) fn outcome(&self, ticket: u64) -> Option<bool> {
        if self.upto < ticket {
            return None;
        }
        Some(!self.failed.iter().any(|&(a, b)| ticket > a && ticket <= b))
    }
}

enum Taken {
    Item(Item, usize, usize),
    NoRoom,
    Closed,
    Empty,
}
