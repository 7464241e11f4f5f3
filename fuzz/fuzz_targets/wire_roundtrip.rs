//! Differential fuzzing of the zero-copy wire path against prost: scan accepts exactly what prost
//! accepts, views agree, and rewrites decode to the same structs as editing the decoded request.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tollgate::wire::fuzz::check(data);
});
