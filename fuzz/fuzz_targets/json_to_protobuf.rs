//! Differential fuzzing of the streaming OTLP/JSON parser against the reference conversion through
//! opentelemetry-proto's structs; every output also goes through the protobuf differential check.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tollgate::wire::fuzz::check_json(data);
});
