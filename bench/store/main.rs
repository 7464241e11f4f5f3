// Throwaway measurement for tollgate BENCHMARKS.md ("disk queues are a segment log"): redb vs an
// append-only segment file with a CRC32 per record, as a FIFO of encoded batches (write, then read
// back and remove). Not part of the tollgate crate. To run it: copy this file to src/main.rs of a
// new crate with `redb = "2"` and `crc32fast = "1"` as dependencies, then
//   cargo run --release -- 4000 32768     # records, bytes per record
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use redb::{Database, Durability, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("q");

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(4000);
    let size: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(32 << 10);
    let group: u64 = 16;
    let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let dir = std::env::temp_dir().join("qstore-bench-data");
    let mb = (n as f64 * size as f64) / 1e6;
    for synced in [false, true] {
        // redb: one transaction per record (written) / per `group` records, fsync'ed (synced).
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Database::create(dir.join("q.redb")).unwrap();
        let t0 = Instant::now();
        let per = if synced { group } else { 1 };
        let mut i = 0;
        while i < n {
            let mut tx = db.begin_write().unwrap();
            tx.set_durability(if synced { Durability::Immediate } else { Durability::None });
            {
                let mut t = tx.open_table(T).unwrap();
                for k in i..(i + per).min(n) {
                    t.insert(k, payload.as_slice()).unwrap();
                }
            }
            tx.commit().unwrap();
            i += per;
        }
        let w = t0.elapsed();
        let t0 = Instant::now();
        for k in 0..n {
            let mut tx = db.begin_write().unwrap();
            tx.set_durability(Durability::None);
            {
                let mut t = tx.open_table(T).unwrap();
                let v = t.remove(k).unwrap().unwrap();
                assert_eq!(v.value().len(), size);
            }
            tx.commit().unwrap();
        }
        let r = t0.elapsed();
        let disk = std::fs::metadata(dir.join("q.redb")).unwrap().len();
        println!("redb    synced={synced}: write {:.0} MB/s, read+remove {:.0} MB/s, file {} MB after",
            mb / w.as_secs_f64(), mb / r.as_secs_f64(), disk / 1_000_000);
        drop(db);

        // Segment log: header + payload appended; fdatasync per `group` records when synced.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("0.seg");
        let mut f = OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let t0 = Instant::now();
        for k in 0..n {
            let mut h = [0u8; 20];
            h[4..8].copy_from_slice(&(size as u32).to_le_bytes());
            let c = crc32fast::hash(&h[0..12]);
            h[12..16].copy_from_slice(&c.to_le_bytes());
            h[16..20].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            f.write_all(&h).unwrap();
            f.write_all(&payload).unwrap();
            if synced && (k + 1) % group == 0 {
                f.sync_data().unwrap();
            }
        }
        if synced { f.sync_data().unwrap(); }
        let w = t0.elapsed();
        let rf = std::fs::File::open(&path).unwrap();
        let t0 = Instant::now();
        let mut off = 0u64;
        let mut buf = vec![0u8; size];
        for _ in 0..n {
            let mut h = [0u8; 20];
            rf.read_exact_at(&mut h, off).unwrap();
            rf.read_exact_at(&mut buf, off + 20).unwrap();
            assert_eq!(crc32fast::hash(&buf).to_le_bytes(), h[16..20]);
            off += 20 + size as u64;
        }
        std::fs::remove_file(&path).unwrap();
        let r = t0.elapsed();
        println!("segment synced={synced}: write {:.0} MB/s, read+remove {:.0} MB/s",
            mb / w.as_secs_f64(), mb / r.as_secs_f64());
    }
}
