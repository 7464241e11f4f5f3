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

fn seg_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{seg:020}.seg"))
}

fn header(len: u32, spans: u32, payload: &[u8]) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[8..12].copy_from_slice(&spans.to_le_bytes());
    let hc = crc32fast::hash(&h[0..12]);
    h[12..16].copy_from_slice(&hc.to_le_bytes());
    h[16..20].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

/// A header that passed its own checksum: (payload length, spans, payload crc).
fn parse_header(h: &[u8; HEADER]) -> Option<(u32, u32, u32)> {
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if word(0) != MAGIC || crc32fast::hash(&h[0..12]) != word(12) {
        return None;
    }
    Some((word(4), word(8), word(16)))
}

fn ack_bytes(seg: u64, off: u64) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[0..8].copy_from_slice(&seg.to_le_bytes());
    b[8..16].copy_from_slice(&off.to_le_bytes());
    let c = crc32fast::hash(&b[0..16]);
    b[16..20].copy_from_slice(&c.to_le_bytes());
    b
}

fn parse_ack(b: &[u8]) -> Option<(u64, u64)> {
    if b.len() != 20 {
        return None;
    }
    let c = u32::from_le_bytes(b[16..20].try_into().ok()?);
    if crc32fast::hash(&b[0..16]) != c {
        return None;
    }
    Some((
        u64::from_le_bytes(b[0..8].try_into().ok()?),
        u64::from_le_bytes(b[8..16].try_into().ok()?),
    ))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Counts the records from `off` to the first invalid header (a cheap header-only walk).
fn count_records(path: &Path, off: u64) -> (usize, usize) {
    let Ok(f) = File::open(path) else {
        return (0, 0);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = BufReader::with_capacity(64 << 10, f);
    if r.seek(SeekFrom::Start(off)).is_err() {
        return (0, 0);
    }
    let (mut pos, mut n, mut bytes) = (off, 0, 0);
    let mut h = [0u8; HEADER];
    while pos + HEADER as u64 <= len && r.read_exact(&mut h).is_ok() {
        let Some((plen, _, _)) = parse_header(&h) else {
            break;
        };
        if pos + (HEADER as u64) + u64::from(plen) > len {
            break;
        }
        n += 1;
        bytes += plen as usize;
        pos += HEADER as u64 + u64::from(plen);
        if r.seek_relative(i64::from(plen)).is_err() {
            break;
        }
    }
    (n, bytes)
}

/// What reading one record found.
enum Read1 {
    Record {
        bytes: Bytes,
        spans: usize,
        end: u64,
    },
    /// The record at the position does not fit in `room`.
    NoRoom,
    /// Damaged: skip to `next` (the next valid header, or the segment's end).
    Damaged { next: u64, why: &'static str },
}

impl DiskQueue {
    /// Opens (or creates) the queue in `opts.dir`: finds what is still undelivered and starts a
    /// new segment for new writes.
    pub(crate) fn open(
        name: &str,
        opts: DiskOptions,
        metrics: DiskMetrics,
    ) -> Result<Self, String> {
        let dir = &opts.dir;
        let ctx =
            |what: &str, e: std::io::Error| format!("disk queue {}: {what}: {e}", dir.display());
        std::fs::create_dir_all(dir).map_err(|e| ctx("cannot create the directory", e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| ctx("cannot open the lock file", e))?;
        // fs4's lock (std's needs Rust 1.89; the crate's MSRV is 1.85).
        match fs4::FileExt::try_lock(&lock) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(format!(
                    "disk queue {}: in use by another process",
                    dir.display()
                ))
            }
            Err(fs4::TryLockError::Error(e)) => return Err(ctx("cannot lock", e)),
        }
        let mut segs: BTreeMap<u64, u64> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| ctx("cannot list", e))? {
            let entry = entry.map_err(|e| ctx("cannot list", e))?;
            let file_name = entry.file_name();
            let Some(id) = file_name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            segs.insert(id, len);
        }
        let ack_path = dir.join("ack");
        let ack = std::fs::read(&ack_path).ok();
        let first = segs.keys().next().copied().unwrap_or(0);
        let cursor = match ack.as_deref().map(parse_ack) {
            Some(Some(c)) => c,
            Some(None) => {
                warn!(exporter = %name, path = %ack_path.display(), "Disk queue ack file is damaged; replaying every segment (some batches may be sent twice).");
                (first, 0)
            }
            None => (first, 0),
        };
        // Delivered or empty segments go.
        let gone: Vec<u64> = segs
            .iter()
            .filter(|(id, len)| {
                **id < cursor.0 || **len == 0 || (**id == cursor.0 && cursor.1 >= **len)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            segs.remove(&id);
            if let Err(e) = std::fs::remove_file(seg_path(dir, id)) {
                warn!(exporter = %name, error = %e, "Cannot remove a delivered queue segment.");
            }
        }
        let (read_seg, read_off) = match segs.keys().next() {
            Some(&id) if id == cursor.0 => cursor,
            Some(&id) => (id, 0),
            None => (cursor.0, cursor.1),
        };
        let (mut unread_batches, mut unread_bytes) = (0, 0);
        for &id in segs.keys() {
            let off = if id == read_seg { read_off } else { 0 };
            let (n, b) = count_records(&seg_path(dir, id), off);
            unread_batches += n;
            unread_bytes += b;
        }
        let disk_bytes: u64 = segs.values().sum();
        let write_seg = segs
            .keys()
            .next_back()
            .map_or(cursor.0, |l| *l)
            .max(cursor.0)
            + 1;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(seg_path(dir, write_seg))
            .map_err(|e| ctx("cannot create a segment", e))?;
        if opts.durability == Durability::Synced {
            sync_dir(dir).map_err(|e| ctx("cannot sync the directory", e))?;
        }
        let ack_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&ack_path)
            .map_err(|e| ctx("cannot open the ack file", e))?;
        if unread_batches > 0 {
            info!(exporter = %name, dir = %dir.display(), batches = unread_batches, bytes = unread_bytes, "Disk queue: replaying undelivered batches before new ones.");
        }
        metrics
            .disk_bytes
            .set(i64::try_from(disk_bytes).unwrap_or(i64::MAX));
        let (synced, _) = watch::channel(Synced::default());
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            metrics,
            w: Mutex::new(Writer {
                file: Arc::new(file),
                seg: write_seg,
                len: 0,
                logical: 0,
                closed: false,
                to_sync: Vec::new(),
                dir_dirty: false,
            }),
            s: Mutex::new(State {
                write_seg,
                write_len: 0,
                sealed: segs,
                disk_bytes,
                unread_batches,
                unread_bytes,
                cache: VecDeque::new(),
                cache_bytes: 0,
                closed: false,
            }),
            r: Mutex::new(Reader {
                seg: read_seg,
                off: read_off,
                file: None,
                inflight: VecDeque::new(),
                next_id: 0,
                cursor: (read_seg, read_off),
                ack_file,
            }),
            notify: Notify::new(),
            sync: Mutex::new(SyncState {
                wanted: 0,
                stop: false,
            }),
            sync_cv: Condvar::new(),
            synced,
            opts,
            _lock: lock,
        });
        let syncer = if inner.opts.durability == Durability::Synced {
            let i = inner.clone();
            let t = std::thread::Builder::new()
                .name(format!("tollgate-fsync-{name}"))
                .spawn(move || i.run_syncer())
                .map_err(|e| format!("cannot start the fsync thread: {e}"))?;
            Some(t)
        } else {
            None
        };
        Ok(Self {
            inner,
            syncer: Mutex::new(syncer),
        })
    }

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

    /// Takes the next record (from memory when the reader keeps up, else from the file).
    fn take(&self, room: Option<usize>) -> Taken {
        let i = &*self.inner;
        let mut r = i.r.lock();
        loop {
            let mut s = i.s.lock();
            let seg_end = if r.seg < s.write_seg {
                match s.sealed.get(&r.seg) {
                    Some(&end) if r.off < end => end,
                    _ => {
                        // Past this segment: on to the next one still on disk.
                        let next = s
                            .sealed
                            .range(r.seg + 1..)
                            .next()
                            .map_or(s.write_seg, |(id, _)| *id);
                        r.seg = next;
                        r.off = 0;
                        continue;
                    }
                }
            } else if r.off < s.write_len {
                s.write_len
            } else {
                s.unread_batches = 0;
                s.unread_bytes = 0;
                return if s.closed {
                    Taken::Closed
                } else {
                    Taken::Empty
                };
            };
            while s
                .cache
                .front()
                .is_some_and(|c| (c.seg, c.off) < (r.seg, r.off))
            {
                let c = s.cache.pop_front().expect("non-empty");
                s.cache_bytes -= c.batch.bytes.len();
            }
            if let Some(c) = s.cache.front().filter(|c| (c.seg, c.off) == (r.seg, r.off)) {
                if room.is_some_and(|room| c.batch.bytes.len() > room) {
                    return Taken::NoRoom;
                }
                let c = s.cache.pop_front().expect("non-empty");
                let len = c.batch.bytes.len();
                s.cache_bytes -= len;
                s.unread_batches = s.unread_batches.saturating_sub(1);
                s.unread_bytes = s.unread_bytes.saturating_sub(len);
                let state = (s.unread_batches, s.unread_bytes);
                drop(s);
                let id = r.flight(c.seg, c.end, false);
                r.off = c.end;
                return Taken::Item(
                    Item {
                        batch: c.batch,
                        ack: Some(id),
                    },
                    state.0,
                    state.1,
                );
            }
            drop(s);
            let (seg, off) = (r.seg, r.off);
            match self.read_one(&mut r, seg, off, seg_end, room) {
                Read1::Record { bytes, spans, end } => {
                    let len = bytes.len();
                    let mut s = i.s.lock();
                    s.unread_batches = s.unread_batches.saturating_sub(1);
                    s.unread_bytes = s.unread_bytes.saturating_sub(len);
                    let state = (s.unread_batches, s.unread_bytes);
                    drop(s);
                    let id = r.flight(seg, end, false);
                    r.off = end;
                    return Taken::Item(
                        Item {
                            batch: Arc::new(ExportBatch::new(bytes, spans)),
                            ack: Some(id),
                        },
                        state.0,
                        state.1,
                    );
                }
                Read1::NoRoom => return Taken::NoRoom,
                Read1::Damaged { next, why } => {
                    i.metrics.corrupt.inc();
                    error!(
                        exporter = %i.name,
                        file = %seg_path(&i.opts.dir, seg).display(),
                        offset = off,
                        skipped_bytes = next - off,
                        reason = why,
                        "Damaged disk queue record skipped; delivering the rest."
                    );
                    let mut s = i.s.lock();
                    s.unread_batches = s.unread_batches.saturating_sub(1);
                    drop(s);
                    r.flight(seg, next, true);
                    r.off = next;
                }
            }
        }
    }

    /// Reads the record at `off` of segment `seg` (valid bytes end at `limit`).
    fn read_one(
        &self,
        r: &mut Reader,
        seg: u64,
        off: u64,
        limit: u64,
        room: Option<usize>,
    ) -> Read1 {
        if r.file.as_ref().is_none_or(|(id, _)| *id != seg) {
            match File::open(seg_path(&self.inner.opts.dir, seg)) {
                Ok(f) => r.file = Some((seg, f)),
                Err(_) => {
                    return Read1::Damaged {
                        next: limit,
                        why: "segment file unreadable",
                    }
                }
            }
        }
        let Some((_, f)) = r.file.as_ref() else {
            return Read1::Damaged {
                next: limit,
                why: "segment file unreadable",
            };
        };
        let mut h = [0u8; HEADER];
        if off + HEADER as u64 > limit || f.read_exact_at(&mut h, off).is_err() {
            return Read1::Damaged {
                next: limit,
                why: "truncated header",
            };
        }
        let Some((plen, spans, pcrc)) = parse_header(&h) else {
            return Read1::Damaged {
                next: resync(f, off + 1, limit),
                why: "bad header checksum",
            };
        };
        let end = off + HEADER as u64 + u64::from(plen);
        if end > limit {
            return Read1::Damaged {
                next: resync(f, off + 1, limit),
                why: "truncated record",
            };
        }
        if room.is_some_and(|room| plen as usize > room) {
            return Read1::NoRoom;
        }
        let mut buf = BytesMut::zeroed(plen as usize);
        if f.read_exact_at(&mut buf, off + HEADER as u64).is_err() {
            return Read1::Damaged {
                next: limit,
                why: "unreadable record",
            };
        }
        if crc32fast::hash(&buf) != pcrc {
            return Read1::Damaged {
                next: end,
                why: "bad payload checksum",
            };
        }
        Read1::Record {
            bytes: buf.freeze(),
            spans: spans as usize,
            end,
        }
    }

    /// Waits for the next batch; `None` once the queue is closed and everything was read.
    pub(crate) async fn pop(&self) -> Option<(Item, usize, usize)> {
        loop {
            let notified = self.inner.notify.notified();
            match self.take(None) {
                Taken::Item(b, n, bytes) => return Some((b, n, bytes)),
                Taken::Closed => return None,
                Taken::Empty | Taken::NoRoom => notified.await,
            }
        }
    }

    /// Takes another batch of at most `room` bytes if one arrives before `until`.
    pub(crate) async fn pop_more(
        &self,
        room: usize,
        until: std::time::Instant,
    ) -> Option<(Item, usize, usize)> {
        loop {
            let notified = self.inner.notify.notified();
            match self.take(Some(room)) {
                Taken::Item(b, n, bytes) => return Some((b, n, bytes)),
                Taken::NoRoom | Taken::Closed => return None,
                Taken::Empty => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(until.into()) => return None,
                    }
                }
            }
        }
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

/// The offset of the next valid header in `[from, limit)`, or `limit`.
fn resync(f: &File, from: u64, limit: u64) -> u64 {
    let magic = MAGIC.to_le_bytes();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = from;
    while pos + HEADER as u64 <= limit {
        let n = ((limit - pos) as usize).min(buf.len());
        if f.read_exact_at(&mut buf[..n], pos).is_err() {
            return limit;
        }
        let mut k = 0;
        while k + 4 <= n {
            if buf[k..k + 4] == magic {
                let at = pos + k as u64;
                let mut h = [0u8; HEADER];
                if f.read_exact_at(&mut h, at).is_ok() {
                    if let Some((plen, _, _)) = parse_header(&h) {
                        if at + HEADER as u64 + u64::from(plen) <= limit {
                            return at;
                        }
                    }
                }
            }
            k += 1;
        }
        // Overlap by 3 bytes so a magic split across two reads is found.
        pos += (n as u64).saturating_sub(3).max(1);
    }
    limit
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

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> DiskMetrics {
        DiskMetrics {
            corrupt: IntCounter::new("c", "c").unwrap(),
            disk_bytes: IntGauge::new("g", "g").unwrap(),
        }
    }

    fn open(dir: &Path, max_size: u64) -> (DiskQueue, IntCounter) {
        let m = metrics();
        let corrupt = m.corrupt.clone();
        let opts = DiskOptions {
            dir: dir.to_path_buf(),
            max_size,
            durability: Durability::Written,
            sync_max_delay: Duration::ZERO,
        };
        (DiskQueue::open("t", opts, m).unwrap(), corrupt)
    }

    fn batch(tag: u8, n: usize) -> Arc<ExportBatch> {
        Arc::new(ExportBatch::new(
            Bytes::from(vec![tag; n]),
            usize::from(tag),
        ))
    }

    /// Takes everything readable now; acks it when `ack`.
    fn drain(q: &DiskQueue, ack: bool) -> Vec<u8> {
        let mut out = Vec::new();
        while let Taken::Item(item, _, _) = q.take(None) {
            out.push(item.batch.bytes[0]);
            assert_eq!(item.batch.spans, usize::from(item.batch.bytes[0]));
            if ack {
                q.ack(item.ack);
            }
        }
        out
    }

    #[test]
    fn replays_in_order_after_reopen_and_forgets_what_was_acked() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (q, _) = open(dir.path(), 1 << 30);
            for t in 1..=5 {
                q.try_push(batch(t, 100)).unwrap();
            }
            // Two delivered, one in flight (not acked) when the process goes.
            assert_eq!(drain_n(&q, 2, true), [1, 2]);
            assert_eq!(drain_n(&q, 1, false), [3]);
        }
        {
            let (q, _) = open(dir.path(), 1 << 30);
            assert_eq!(q.len().0, 3);
            q.try_push(batch(6, 100)).unwrap();
            assert_eq!(
                drain(&q, false),
                [3, 4, 5, 6],
                "old first, in order, new after"
            );
        }
        // Nothing acked in the second run: the same again, any number of times.
        let (q, _) = open(dir.path(), 1 << 30);
        assert_eq!(drain(&q, true), [3, 4, 5, 6]);
        drop(q);
        let (q, _) = open(dir.path(), 1 << 30);
        assert!(drain(&q, true).is_empty(), "all delivered");
        let segs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg")
            })
            .count();
        assert_eq!(
            segs, 1,
            "delivered segments are deleted (the new write segment stays)"
        );
    }

    fn drain_n(q: &DiskQueue, n: usize, ack: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..n {
            let Taken::Item(item, _, _) = q.take(None) else {
                panic!("expected an item")
            };
            out.push(item.batch.bytes[0]);
            if ack {
                q.ack(item.ack);
            }
        }
        out
    }

    #[test]
    fn out_of_order_acks_move_the_cursor_only_past_contiguous_ones() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (q, _) = open(dir.path(), 1 << 30);
            for t in 1..=3 {
                q.try_push(batch(t, 10)).unwrap();
            }
            let items: Vec<Item> = (0..3)
                .map(|_| match q.take(None) {
                    Taken::Item(i, _, _) => i,
                    _ => panic!("item"),
                })
                .collect();
            q.ack(items[1].ack);
            q.ack(items[2].ack);
        }
        let (q, _) = open(dir.path(), 1 << 30);
        assert_eq!(
            drain(&q, true),
            [1, 2, 3],
            "the first was never delivered: everything after it is sent again"
        );
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_flipped_bit_skips_one_record_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (q, _) = open(dir.path(), 1 << 30);
            for t in 1..=4 {
                q.try_push(batch(t, 50)).unwrap();
            }
        }
        let seg = segment_files(dir.path()).remove(0);
        let mut data = std::fs::read(&seg).unwrap();
        // A payload bit of record 2, and a header bit of record 3.
        let rec = HEADER + 50;
        data[rec + HEADER + 7] ^= 0x10;
        data[2 * rec + 5] ^= 0x01;
        std::fs::write(&seg, data).unwrap();
        let (q, corrupt) = open(dir.path(), 1 << 30);
        assert_eq!(drain(&q, true), [1, 4]);
        assert_eq!(corrupt.get(), 2);
    }

    #[test]
    fn a_torn_tail_is_skipped_and_later_segments_still_arrive() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (q, _) = open(dir.path(), 1 << 30);
            for t in 1..=3 {
                q.try_push(batch(t, 50)).unwrap();
            }
        }
        let seg = segment_files(dir.path()).remove(0);
        let len = std::fs::metadata(&seg).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 20)
            .unwrap();
        {
            let (q, _) = open(dir.path(), 1 << 30);
            q.try_push(batch(9, 50)).unwrap();
        }
        let (q, corrupt) = open(dir.path(), 1 << 30);
        assert_eq!(drain(&q, true), [1, 2, 9]);
        assert_eq!(corrupt.get(), 1);
    }

    #[test]
    fn max_size_refuses_and_room_returns_after_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = open(dir.path(), 1 << 20);
        let mut n = 0;
        while q.try_push(batch(1, 10_000)).is_ok() {
            n += 1;
        }
        assert!(n > 50 && n < 110, "{n} batches of 10 kB in 1 MiB");
        assert_eq!(q.try_push(batch(1, 10_000)).err(), Some(PushError::Full));
        assert!(!q.has_room(10_000));
        // Delivering frees whole segments (a segment is max_size / 4).
        assert_eq!(drain(&q, true).len(), n);
        assert!(q.has_room(10_000));
        q.try_push(batch(2, 10_000)).unwrap();
    }

    #[test]
    fn a_second_process_cannot_open_the_same_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (_q, _) = open(dir.path(), 1 << 30);
        let opts = DiskOptions {
            dir: dir.path().to_path_buf(),
            max_size: 1 << 30,
            durability: Durability::Written,
            sync_max_delay: Duration::ZERO,
        };
        let err = DiskQueue::open("t", opts, metrics()).err().unwrap();
        assert!(err.contains("in use"), "{err}");
    }

    #[test]
    fn config_needs_a_path_and_one_directory_per_queue() {
        use crate::export::{validate, ExporterConfig, ExporterKind, QueueKind};
        let mut a = ExporterConfig::new("a", ExporterKind::Console);
        a.queue.kind = QueueKind::Disk;
        let err = validate(std::slice::from_ref(&a)).unwrap_err().to_string();
        assert!(err.contains("needs a `path`"), "{err}");
        a.queue.path = Some("/tmp/q".into());
        let mut b = a.clone();
        b.name = "b".into();
        let err = validate(&[a.clone(), b]).unwrap_err().to_string();
        assert!(err.contains("two disk queues"), "{err}");
        assert!(validate(&[a]).is_ok());
        let e: ExporterConfig = toml::from_str(
            "name = \"x\"\nkind = \"console\"\nqueue = { kind = \"disk\", max_size = \"2GiB\", durability = \"synced\" }\n",
        )
        .unwrap();
        let q = &e.queue;
        assert_eq!(q.kind, QueueKind::Disk);
        assert_eq!(q.max_size.as_u64(), 2 << 30);
        assert_eq!(q.durability, Durability::Synced);
    }

    #[tokio::test]
    async fn synced_writes_wait_for_their_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DiskOptions {
            dir: dir.path().to_path_buf(),
            max_size: 1 << 30,
            durability: Durability::Synced,
            sync_max_delay: Duration::from_millis(1),
        };
        let q = DiskQueue::open("t", opts, metrics()).unwrap();
        let waits: Vec<SyncWait> = (1..=20)
            .map(|t| q.try_push(batch(t, 1000)).unwrap().wait.expect("synced"))
            .collect();
        for w in waits {
            assert!(w.wait().await);
        }
    }
}
