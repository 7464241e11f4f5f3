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
