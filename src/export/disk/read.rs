//! The read side: the next record from memory or the file, skipping damaged ones.

use super::*;

impl DiskQueue {
    /// Takes the next record (from memory when the reader keeps up, else from the file).
    pub(super) fn take(&self, room: Option<usize>) -> Taken {
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
}
