//! The JSON parser's working memory stays within `parse_memory_bound`, measured with a counting
//! allocator over hostile shapes (dense arrays, empty objects, unknown keys, enum names that send
//! the body down the fallback path). The HTTP receiver reserves that bound before it parses.

//! (This test binary links `allocation-counter`, which counts this thread's allocations; the
//! peak is `bytes_max`.)

fn wrap_spans(spans: &str) -> String {
    format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#)
}

fn wrap_attrs(attrs: &str) -> String {
    wrap_spans(&format!(
        r#"{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_SERVER","attributes":[{attrs}]}}"#
    ))
}

fn rep(item: &str, n: usize) -> String {
    vec![item; n].join(",")
}

fn shapes() -> Vec<(&'static str, String)> {
    let n = 50_000;
    vec![
        ("empty spans", wrap_spans(&rep("{}", n))),
        (
            "spans with enum kind",
            wrap_spans(&rep(r#"{"kind":"SPAN_KIND_SERVER"}"#, n)),
        ),
        (
            "spans with null fields",
            wrap_spans(&rep(r#"{"name":null}"#, n)),
        ),
        ("empty attributes", wrap_attrs(&rep("{}", n))),
        (
            "int array values",
            wrap_attrs(&format!(
                r#"{{"key":"k","value":{{"arrayValue":{{"values":[{}]}}}}}}"#,
                rep("1", n)
            )),
        ),
        (
            "empty-object array values",
            wrap_attrs(&format!(
                r#"{{"key":"k","value":{{"arrayValue":{{"values":[{}]}}}}}}"#,
                rep("{}", n)
            )),
        ),
        (
            "nested empty arrays",
            wrap_attrs(&format!(
                r#"{{"key":"k","value":{{"arrayValue":{{"values":[{}]}}}}}}"#,
                rep("[]", n)
            )),
        ),
        (
            "short strings",
            wrap_attrs(&format!(
                r#"{{"key":"k","value":{{"arrayValue":{{"values":[{}]}}}}}}"#,
                rep(r#""a""#, n)
            )),
        ),
        (
            "unknown keys in AnyValue",
            wrap_attrs(&format!(
                r#"{{"key":"k","value":{{{}}}}}"#,
                (0..n)
                    .map(|i| format!(r#""{i}":1"#))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        ),
        (
            "unknown keys in a span",
            wrap_spans(&format!(
                r#"{{"kind":"SPAN_KIND_SERVER",{}}}"#,
                (0..n)
                    .map(|i| format!(r#""{i}":0"#))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        ),
        (
            "many scope spans",
            format!(
                r#"{{"resourceSpans":[{}]}}"#,
                rep(r#"{"scopeSpans":[{}]}"#, n / 4)
            ),
        ),
        (
            "events and links",
            wrap_spans(&rep(r#"{"kind":2,"events":[{}],"links":[{}]}"#, n / 4)),
        ),
        ("tiny", wrap_spans("{}")),
        ("not JSON", "{\"resourceSpans\":[tru".to_string()),
        (
            "realistic attributes",
            wrap_attrs(&rep(
                r#"{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o-mini"}}"#,
                n / 8,
            )),
        ),
    ]
}

#[test]
fn parser_memory_stays_within_the_stated_bound() {
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (name, body) in shapes() {
        let bound = tollgate::wire::json::parse_memory_bound(body.as_bytes());
        let info = allocation_counter::measure(|| {
            let result = tollgate::wire::json::json_to_protobuf(body.as_bytes());
            std::hint::black_box(&result);
        });
        let peak = info.bytes_max as usize;
        report.push(format!(
            "{name}: len {} peak {peak} ({:.1}x) bound {bound} ({:.1}x)",
            body.len(),
            peak as f64 / body.len() as f64,
            bound as f64 / body.len() as f64
        ));
        if peak > bound {
            failures.push(name);
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "over the bound: {failures:?}\n{}",
        report.join("\n")
    );
}
