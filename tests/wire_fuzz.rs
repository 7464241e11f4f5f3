//! Property tests: the zero-copy wire path agrees with prost on valid and corrupted inputs.

mod common;

use proptest::prelude::*;
use prost::Message;
use tollgate::wire::fuzz::check;

fn seed() -> Vec<u8> {
    common::rich_request(2).encode_to_vec()
}

#[test]
fn seed_is_valid() {
    assert!(check(&seed()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn byte_flips(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut data = seed();
        for (at, b) in flips {
            let n = data.len();
            data[at % n] = b;
        }
        check(&data);
    }

    #[test]
    fn truncations(cut in any::<usize>()) {
        let data = seed();
        let n = data.len();
        check(&data[..cut % n]);
    }

    #[test]
    fn insertions(at in any::<usize>(), bytes in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut data = seed();
        let at = at % data.len();
        data.splice(at..at, bytes);
        check(&data);
    }

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        check(&data);
    }
}

/// A mutation-based fuzz loop that runs on stable Rust (cargo-fuzz needs nightly; the target in
/// `fuzz/` is the same check). Structure-aware seeds, random mutations, and every disagreement
/// with prost panics with the input saved under `target/fuzz-artifacts/`.
/// `TOLLGATE_FUZZ_ITERS` sets the number of inputs (CI runs the default; run longer by hand).
#[test]
fn mutation_fuzz_loop() {
    let iters: u64 = std::env::var("TOLLGATE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seeds = [
        common::rich_request(1).encode_to_vec(),
        common::rich_request(3).encode_to_vec(),
        tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest::default().encode_to_vec(),
    ];
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut valid = 0u64;
    for _ in 0..iters {
        let mut data = seeds[(next() % seeds.len() as u64) as usize].clone();
        for _ in 0..=(next() % 4) {
            let n = data.len().max(1);
            match next() % 6 {
                0 if !data.is_empty() => {
                    let at = (next() as usize) % n;
                    data[at] = next() as u8;
                }
                1 if !data.is_empty() => {
                    let at = (next() as usize) % n;
                    data[at] ^= 1 << (next() % 8);
                }
                2 => {
                    let at = (next() as usize) % (data.len() + 1);
                    data.insert(at, next() as u8);
                }
                3 if !data.is_empty() => {
                    let at = (next() as usize) % n;
                    data.remove(at);
                }
                4 if data.len() > 4 => {
                    // Duplicate a chunk (repeated fields, merged messages).
                    let a = (next() as usize) % data.len();
                    let b = (a + 1 + (next() as usize) % 64).min(data.len());
                    let chunk = data[a..b].to_vec();
                    let at = (next() as usize) % (data.len() + 1);
                    data.splice(at..at, chunk);
                }
                _ => {
                    let cut = (next() as usize) % (data.len() + 1);
                    data.truncate(cut);
                }
            }
        }
        let result = std::panic::catch_unwind(|| check(&data));
        match result {
            Ok(true) => valid += 1,
            Ok(false) => {}
            Err(e) => {
                let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-artifacts");
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join(format!("crash-{:016x}", next()));
                std::fs::write(&path, &data).unwrap();
                std::panic::resume_unwind(e);
            }
        }
    }
    // The loop must exercise the valid path too, or it proves little.
    assert!(
        valid > iters / 20,
        "only {valid} of {iters} inputs were valid"
    );
}
