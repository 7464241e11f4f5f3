//! Opening a queue directory: the lock, the ack position, what is still undelivered, and a
//! fresh segment for new writes.

use super::*;

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
}
