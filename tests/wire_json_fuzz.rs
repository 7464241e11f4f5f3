//! Property tests for the OTLP/JSON path: the streaming parser agrees with the reference
//! conversion through opentelemetry-proto's structs on valid, corrupted and restructured inputs
//! (`tollgate::wire::fuzz::check_json`), and JSON rendered from a request parses back to exactly
//! the bytes prost encodes.

mod common;

use proptest::prelude::*;
use prost::Message;
use serde_json::{json, Value};
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::wire::fuzz::check_json;
use tollgate::wire::json::{json_to_protobuf, protobuf_to_json};
use tollgate::wire::testdata::TraceGen;

fn seed_pb() -> Vec<u8> {
    common::rich_request(2).encode_to_vec()
}

fn seed() -> Vec<u8> {
    protobuf_to_json(&seed_pb()).unwrap()
}

#[test]
fn rendered_json_parses_back_to_the_same_bytes() {
    let mut tracegen = TraceGen::new(7);
    let cases = [
        seed_pb(),
        common::rich_request(1).encode_to_vec(),
        common::rich_request(3).encode_to_vec(),
        tracegen.encoded(1).to_vec(),
        tracegen.encoded(200).to_vec(),
        ExportTraceServiceRequest::default().encode_to_vec(),
    ];
    for pb in cases {
        let json = protobuf_to_json(&pb).unwrap();
        assert_eq!(json_to_protobuf(&json).unwrap().as_ref(), &pb[..]);
        assert!(check_json(&json));
    }
}

#[test]
fn proto3_json_forms_beyond_the_reference() {
    // Proto field names, NaN/Infinity and numeric strings for doubles, URL-safe unpadded base64:
    // proto3 JSON allows them; the struct path does not.
    let body = r#"{"resource_spans": [{"scope_spans": [{"spans": [{
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "name": "op",
        "kind": "-1",
        "attributes": [
            {"key": "nan", "value": {"doubleValue": "NaN"}},
            {"key": "inf", "value": {"doubleValue": "-Infinity"}},
            {"key": "s", "value": {"double_value": "2.5"}},
            {"key": "b", "value": {"bytesValue": "-_8"}},
            {"key": "last", "value": {"stringValue": "x", "intValue": "3", "boolValue": null}}
        ]
    }]}]}]}"#;
    let pb = json_to_protobuf(body.as_bytes()).unwrap();
    let req = ExportTraceServiceRequest::decode(pb).unwrap();
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id.len(), 16);
    assert_eq!(span.kind, -1);
    use tollgate::otlp::common::v1::any_value::Value as V;
    let v = |i: usize| span.attributes[i].value.as_ref().unwrap().value.clone();
    assert!(matches!(v(0), Some(V::DoubleValue(d)) if d.is_nan()));
    assert_eq!(v(1), Some(V::DoubleValue(f64::NEG_INFINITY)));
    assert_eq!(v(2), Some(V::DoubleValue(2.5)));
    assert_eq!(v(3), Some(V::BytesValue(vec![0xfb, 0xff])));
    assert_eq!(v(4), Some(V::IntValue(3)));
    assert!(check_json(body.as_bytes()));
}

#[test]
fn type_errors_are_refused_with_the_field_name() {
    for (span, field) in [
        (json!({"name": 5}), "name"),
        (json!({"kind": "SPAN_KIND_NOPE"}), "kind"),
        (json!({"kind": 4294967296u64}), "kind"),
        (json!({"flags": -1}), "flags"),
        (json!({"flags": 4294967296u64}), "flags"),
        (json!({"startTimeUnixNano": -1}), "startTimeUnixNano"),
        (json!({"startTimeUnixNano": 1.5}), "startTimeUnixNano"),
        (json!({"attributes": {}}), "attributes"),
        (json!({"attributes": [null]}), "KeyValue"),
        (
            json!({"attributes": [{"key": "k", "value": {"intValue": 1.5}}]}),
            "intValue",
        ),
        (
            json!({"attributes": [{"key": "k", "value": {"intValue": "9223372036854775808"}}]}),
            "intValue",
        ),
        (
            json!({"attributes": [{"key": "k", "value": {"boolValue": "true"}}]}),
            "boolValue",
        ),
        (
            json!({"attributes": [{"key": "k", "value": {"doubleValue": "fast"}}]}),
            "doubleValue",
        ),
        (
            json!({"attributes": [{"key": "k", "value": {"arrayValue": {"values": [null]}}}]}),
            "values",
        ),
        (json!({"status": {"code": "STATUS_CODE_MAYBE"}}), "code"),
    ] {
        let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).to_string();
        let err = json_to_protobuf(body.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(field), "{body}: {err}");
        assert!(!check_json(body.as_bytes()));
    }
    assert!(json_to_protobuf(b"{} x").is_err());
    assert!(json_to_protobuf(b"null").is_err());
    assert!(json_to_protobuf(b"").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn byte_flips(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut data = seed();
        for (at, b) in flips {
            let n = data.len();
            data[at % n] = b;
        }
        check_json(&data);
    }

    #[test]
    fn truncations(cut in any::<usize>()) {
        let data = seed();
        let n = data.len();
        check_json(&data[..cut % n]);
    }

    #[test]
    fn token_insertions(at in any::<usize>(), token in 0usize..TOKENS.len()) {
        let mut data = seed();
        let at = at % data.len();
        data.splice(at..at, TOKENS[token].bytes());
        check_json(&data);
    }
}

/// JSON fragments that make an insertion likely to stay valid JSON or hit a type rule.
const TOKENS: &[&str] = &[
    "null",
    "0",
    "-1",
    "1.5",
    "1e3",
    "\"\"",
    "\"7\"",
    "\" 7 \"",
    "\"NaN\"",
    "{}",
    "[]",
    ",",
    ":",
    "\"",
    "\\u00e9",
    "\\ud800",
    "true",
    "\"0x\"",
    "\"a\":1,",
    "\"x\":null,",
    "18446744073709551616",
    "9223372036854775808",
    "-0",
    "\"AQID\"",
    "\"-Infinity\"",
];

/// Replacement values for the structure-aware loop: each a type rule's edge.
fn replacement(n: u64) -> Value {
    match n % 34 {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(1.5),
        5 => json!(4294967296u64),
        6 => json!(9223372036854775807i64),
        7 => json!(u64::MAX),
        8 => json!(""),
        9 => json!("5"),
        10 => json!(" 7 "),
        11 => json!("-3"),
        12 => json!("abc"),
        13 => json!("NaN"),
        14 => json!("Infinity"),
        15 => json!("0xabcd"),
        16 => json!("abc"),
        17 => json!("AQID"),
        18 => json!([]),
        19 => json!({}),
        20 => json!({"stringValue": "x"}),
        21 => json!({"intValue": "12"}),
        22 => json!({"doubleValue": 2}),
        23 => json!({"arrayValue": {"values": [{"boolValue": false}, {}]}}),
        24 => json!({"kvlistValue": {"values": [{"key": "k"}]}}),
        25 => json!([{}]),
        26 => json!([null]),
        27 => json!("SPAN_KIND_CLIENT"),
        28 => json!("STATUS_CODE_ERROR"),
        29 => json!("5b8efff798038103d269b633813fc60c"),
        30 => json!({"bytesValue": "AQ=="}),
        31 => json!("1.5"),
        32 => json!(-9223372036854775808i64),
        _ => json!({"x": [1, {"y": null}]}),
    }
}

/// Every (parent, key-or-index) position in `v`, depth first.
fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `f` to the `k`-th node (depth first) of `v`.
fn with_node(v: &mut Value, k: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *k == 0 {
        f(v);
        return true;
    }
    *k -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| with_node(c, k, f)),
        Value::Object(o) => o.values_mut().any(|c| with_node(c, k, f)),
        _ => false,
    }
}

/// Structure-aware mutations of OTLP/JSON documents: replace a node with a type edge, rename a
/// key (to its proto spelling, or to an unknown one), drop a key, duplicate an array element;
/// sometimes followed by a byte-level mutation of the text. Every input goes through
/// `check_json`; a failure saves the input under `fuzz-artifacts/`.
/// `TOLLGATE_FUZZ_ITERS` sets the number of inputs.
#[test]
fn json_mutation_fuzz_loop() {
    let iters: u64 = std::env::var("TOLLGATE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut tracegen = TraceGen::new(3);
    let seeds: Vec<Value> = [
        common::rich_request(1).encode_to_vec(),
        common::rich_request(2).encode_to_vec(),
        tracegen.encoded(3).to_vec(),
    ]
    .iter()
    .map(|pb| serde_json::from_slice(&protobuf_to_json(pb).unwrap()).unwrap())
    .collect();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut valid = 0u64;
    for _ in 0..iters {
        let mut doc = seeds[(next() % seeds.len() as u64) as usize].clone();
        for _ in 0..=(next() % 3) {
            let mut k = (next() as usize) % count_nodes(&doc);
            let choice = next();
            let value = replacement(next());
            with_node(&mut doc, &mut k, &mut |node| match choice % 5 {
                0 | 1 => *node = value.clone(),
                2 => {
                    if let Value::Object(o) = node {
                        if let Some(key) = o.keys().nth((choice >> 8) as usize % o.len().max(1)) {
                            let key = key.clone();
                            let v = o.remove(&key).unwrap();
                            let renamed = if choice & 0x100 == 0 {
                                to_snake(&key)
                            } else {
                                format!("{key}X")
                            };
                            o.insert(renamed, v);
                        }
                    }
                }
                3 => {
                    if let Value::Object(o) = node {
                        if let Some(key) = o.keys().nth((choice >> 8) as usize % o.len().max(1)) {
                            let key = key.clone();
                            o.remove(&key);
                        }
                    }
                }
                _ => {
                    if let Value::Array(a) = node {
                        if let Some(first) = a.first().cloned() {
                            a.push(first);
                        }
                    }
                }
            });
        }
        let mut data = doc.to_string().into_bytes();
        if next() % 4 == 0 && !data.is_empty() {
            let at = (next() as usize) % data.len();
            match next() % 3 {
                0 => data[at] = next() as u8,
                1 => {
                    data.remove(at);
                }
                _ => {
                    let token = TOKENS[(next() as usize) % TOKENS.len()];
                    data.splice(at..at, token.bytes());
                }
            }
        }
        let result = std::panic::catch_unwind(|| check_json(&data));
        match result {
            Ok(true) => valid += 1,
            Ok(false) => {}
            Err(e) => {
                let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-artifacts");
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join(format!("json-crash-{:016x}.json", next()));
                std::fs::write(&path, &data).unwrap();
                std::panic::resume_unwind(e);
            }
        }
    }
    assert!(
        valid > iters / 10,
        "only {valid} of {iters} inputs were valid"
    );
}

fn to_snake(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
