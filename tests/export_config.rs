//! `[[exporters]]` parsing and pure validation.

use std::time::Duration;

use serde::Deserialize;
use tollgate::export::{validate, ExportError, ExporterConfig};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    exporters: Vec<ExporterConfig>,
}

fn parse(toml_text: &str) -> Result<Vec<ExporterConfig>, String> {
    toml::from_str::<File>(toml_text)
        .map(|f| f.exporters)
        .map_err(|e| e.to_string())
}

fn check(toml_text: &str) -> Result<(), String> {
    let cfgs = parse(toml_text)?;
    validate(&cfgs).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn full_example_parses_and_validates() {
    let cfgs = parse(
        r#"
        [[exporters]]
        name = "lf"
        kind = "langfuse"
        public_key = "pk-lf-1"
        secret_key = "sk-lf-1"
        timeout = "5s"
        concurrency = 2
        batch = { max_spans = 1000, max_bytes = 1048576, timeout = "250ms" }
        queue = { max_bytes = 1000000, max_batches = 10 }
        retry = { initial_interval = "500ms", max_interval = "10s", max_elapsed_time = "2m" }

        [[exporters]]
        name = "tempo"
        kind = "tempo"
        endpoint = "https://tempo.example:4317"
        tenant = "team-a"

        [[exporters]]
        name = "hc"
        kind = "honeycomb"
        api_key = "hcaik_abc"
        region = "eu"
        protocol = "http"

        [[exporters]]
        name = "any"
        kind = "otlp_http"
        endpoint = "http://collector:4318"
        insecure = true
        encoding = "json"
        compression = "zstd"
        compression_level = 3
        headers = { authorization = "Bearer x" }

        [[exporters]]
        name = "g"
        kind = "otlp_grpc"
        endpoint = "https://collector:4317"
        compression = "none"

        [[exporters]]
        name = "f"
        kind = "file"
        path = "/tmp/spans.jsonl"

        [[exporters]]
        name = "c"
        kind = "console"
        "#,
    )
    .unwrap();
    assert_eq!(cfgs[0].retry.max_elapsed_time, Duration::from_secs(120));
    assert_eq!(cfgs[0].batch.timeout, Duration::from_millis(250));
    assert_eq!(format!("{:?}", cfgs[0].secret_key), "Some(**REDACTED**)");
    assert_eq!(
        cfgs[1].retry.max_elapsed_time,
        Duration::from_secs(300),
        "default"
    );
    let v = validate(&cfgs).unwrap();
    assert_eq!(v.iter().count(), 7);
}

#[test]
fn unknown_keys_are_errors() {
    let e = check(
        r#"
        [[exporters]]
        name = "x"
        kind = "console"
        colour = "red"
        "#,
    )
    .unwrap_err();
    assert!(e.contains("unknown field"), "{e}");
    assert!(
        check("[[exporters]]\nname = \"x\"\nkind = \"console\"\nbatch = { size = 1 }\n").is_err()
    );
    assert!(check("[[exporters]]\nname = \"x\"\nkind = \"datadog\"\n").is_err());
}

#[test]
fn keys_of_another_kind_are_errors() {
    let e = check(
        r#"
        [[exporters]]
        name = "x"
        kind = "otlp_grpc"
        endpoint = "https://a:4317"
        tenant = "t"
        "#,
    )
    .unwrap_err();
    assert!(e.contains("`tenant`"), "{e}");
}

#[test]
fn rules_are_enforced() {
    let bad = [
        // duplicate names
        "[[exporters]]\nname='a'\nkind='console'\n[[exporters]]\nname='a'\nkind='console'\n",
        // insecure only with http://
        "[[exporters]]\nname='a'\nkind='otlp_grpc'\nendpoint='https://a:4317'\ninsecure=true\n",
        // an endpoint needs a scheme
        "[[exporters]]\nname='a'\nkind='otlp_grpc'\nendpoint='a:4317'\n",
        // langfuse needs keys, and only takes gzip
        "[[exporters]]\nname='a'\nkind='langfuse'\n",
        "[[exporters]]\nname='a'\nkind='langfuse'\npublic_key='p'\nsecret_key='s'\ncompression='zstd'\n",
        // tempo tenant charset and length
        "[[exporters]]\nname='a'\nkind='tempo'\nendpoint='https://t:4317'\ntenant='a b'\n",
        // tempo basic auth needs both halves
        "[[exporters]]\nname='a'\nkind='tempo'\nendpoint='https://t:4317'\nusername='u'\n",
        // honeycomb: dataset with an environment key; classic key without dataset
        "[[exporters]]\nname='a'\nkind='honeycomb'\napi_key='hcaik_x'\ndataset='d'\n",
        "[[exporters]]\nname='a'\nkind='honeycomb'\napi_key='0123456789abcdef0123456789abcdef'\n",
        // compression level out of range
        "[[exporters]]\nname='a'\nkind='otlp_grpc'\nendpoint='https://a:4317'\ncompression_level=12\n",
        // file needs a path; console takes no endpoint
        "[[exporters]]\nname='a'\nkind='file'\n",
        "[[exporters]]\nname='a'\nkind='console'\nendpoint='http://x'\n",
        // zero capacities
        "[[exporters]]\nname='a'\nkind='console'\nqueue={max_batches=0}\n",
    ];
    for t in bad {
        assert!(check(t).is_err(), "should be refused: {t}");
    }
    let long = format!(
        "[[exporters]]\nname='a'\nkind='tempo'\nendpoint='https://t:4317'\ntenant='{}'\n",
        "a".repeat(151)
    );
    assert!(check(&long).is_err());
    assert!(check("[[exporters]]\nname='a'\nkind='honeycomb'\napi_key='0123456789abcdef0123456789abcdef'\ndataset='d'\n").is_ok());
}

#[test]
fn validation_errors_name_the_exporter() {
    let cfgs = parse("[[exporters]]\nname='mine'\nkind='file'\n").unwrap();
    match validate(&cfgs) {
        Err(ExportError::Invalid { name, .. }) => assert_eq!(name, "mine"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn build_reads_ca_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let mk = |kind: &str| {
        format!(
            "[[exporters]]\nname='tls_{kind}'\nkind='{kind}'\nendpoint='https://localhost:1'\nca_file='{}'\n",
            missing.display()
        )
    };
    for kind in ["otlp_grpc", "otlp_http"] {
        let cfgs = parse(&mk(kind)).unwrap();
        let v = validate(&cfgs).expect("validation does no I/O");
        match v.build() {
            Err(ExportError::Tls(e)) => assert!(e.contains("missing.pem"), "{e}"),
            other => panic!("{kind}: {other:?}"),
        }
    }
    // With no ca_file, https endpoints build (webpki + system roots).
    let cfgs = parse(
        "[[exporters]]\nname='tls_ok_g'\nkind='otlp_grpc'\nendpoint='https://localhost:1'\n\
         [[exporters]]\nname='tls_ok_h'\nkind='otlp_http'\nendpoint='https://localhost:1'\n",
    )
    .unwrap();
    let ex = validate(&cfgs).unwrap().build().unwrap();
    ex.drain(std::time::Instant::now()).await;
}

#[test]
fn the_postgres_ledger_is_checked_without_connecting() {
    let ok = r#"
        [[exporters]]
        name = "ledger"
        kind = "postgres"
        url = "postgres://tollgate:pw@127.0.0.1:5432/billing"
        attributes = ["tenant.id"]
        "#;
    check(ok).unwrap();
    let cases = [
        ("", "needs a `url`"),
        (
            "url = \"postgres://u:topsecret@h:notaport/db\"",
            "not a PostgreSQL connection URL",
        ),
        (
            "url = \"postgres://u@h/db\"\nschema = \"Bad-Name\"",
            "schema",
        ),
        (
            "url = \"postgres://u@h/db\"\nspans = \"llm\"",
            "no `spans` filter",
        ),
        (
            "url = \"postgres://u@h/db\"\nendpoint = \"http://x\"",
            "no endpoint, headers or insecure",
        ),
        (
            "url = \"postgres://u@h/db\"\ncompression = \"gzip\"",
            "no compression",
        ),
        (
            "url = \"postgres://u@h/db\"\npath = \"/tmp/x\"",
            "`path` is not a key",
        ),
    ];
    for (extra, want) in cases {
        let text = format!("[[exporters]]\nname = \"l\"\nkind = \"postgres\"\n{extra}\n");
        let e = check(&text).unwrap_err();
        assert!(e.contains(want), "{extra}: {e}");
        assert!(!e.contains("topsecret"), "{e}");
    }
    // A ledger key on another kind is refused.
    let e = check("[[exporters]]\nname = \"f\"\nkind = \"console\"\nurl = \"postgres://h/db\"\n")
        .unwrap_err();
    assert!(e.contains("`url` is not a key"), "{e}");
}
