//! `[[exporters]]` configuration: one flat, strict struct per entry (unknown keys are errors);
//! [`crate::export::validate`] checks it purely (no I/O), including which keys a kind does not take.
//!
//! ```toml
//! [[exporters]]
//! name = "langfuse"                 # unique; the `exporter` metric label
//! kind = "langfuse"                 # otlp_grpc | otlp_http | langfuse | tempo | honeycomb | file | console | postgres
//! public_key = "${env:LANGFUSE_PUBLIC_KEY}"
//! secret_key = "${env:LANGFUSE_SECRET_KEY}"
//! # endpoint = "https://cloud.langfuse.com"   # base URL; /api/public/otel/v1/traces is appended
//! # Common keys (every kind), with their defaults:
//! # spans = "all"                   # all | llm | llm_traces: which spans this exporter gets
//! # endpoint = "..."                # a base URL for every kind; see ExporterConfig::endpoint
//! # headers = { authorization = "Bearer ..." }
//! # compression = "gzip"            # gzip | zstd | none
//! # compression_level = 1           # gzip 0-9, zstd 1-22
//! # timeout = "10s"                 # per attempt
//! # concurrency = 4                 # requests in flight
//! # insecure = false                # true only with http:// endpoints
//! # ca_file = "/etc/ssl/private-ca.pem"
//! # max_request_bytes = 4194304     # split larger requests (tempo default 4 MiB, else unlimited)
//! # batch = { max_spans = 8192, max_bytes = 4194304, timeout = "200ms" }
//! # queue = { max_bytes = 67108864, max_batches = 1024 }
//! # queue = { kind = "disk", path = "/var/lib/tollgate/queues/langfuse", max_size = "2GiB", durability = "synced" }
//! # retry = { initial_interval = "1s", max_interval = "30s", max_elapsed_time = "300s" }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Secret;

/// What kind of destination an exporter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExporterKind {
    /// Any OTLP/gRPC endpoint.
    OtlpGrpc,
    /// Any OTLP/HTTP endpoint.
    OtlpHttp,
    /// Langfuse's OTLP/HTTP ingestion.
    Langfuse,
    /// Grafana Tempo (or Grafana Cloud traces).
    Tempo,
    /// Honeycomb.
    Honeycomb,
    /// OTLP/JSON lines in a file.
    File,
    /// One human-readable line per span on stdout.
    Console,
    /// The usage ledger: one row per LLM call in PostgreSQL.
    Postgres,
}

/// Wire protocol for presets that speak both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OTLP/gRPC.
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    Http,
}

/// OTLP/HTTP body encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// `application/x-protobuf`.
    #[default]
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip (every OTLP server decodes it).
    #[default]
    Gzip,
    /// zstd.
    Zstd,
    /// No compression.
    None,
}

/// Honeycomb region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// `api.honeycomb.io`.
    #[default]
    Us,
    /// `api.eu1.honeycomb.io`.
    Eu,
}

/// `spans`: which spans an exporter receives.
///
/// An *LLM span* is a span tollgate recognised as one, whatever its `tollgate.pricing.status`
/// (`priced`, `unknown_model`, `no_usage`, `invalid_usage`, `incomplete_price`, and also
/// `aggregate`: agent roots and outer spans that repeat a call's usage are kept, so the backend
/// shows the structure the emitter reported; they carry no cost, so nothing is counted twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SpanFilter {
    /// Every span.
    #[default]
    All,
    /// Only LLM spans.
    Llm,
    /// Every span of a trace known to contain an LLM span. A trace becomes known when its first
    /// LLM span arrives; its spans that passed through before that were not sent to this exporter
    /// and cannot be recalled (children usually arrive before their parents, so send the LLM
    /// span's ancestors late, or use `all`, if every span matters). Known traces are remembered
    /// for `[pipeline] llm_traces_ttl` after their last LLM span, at most
    /// `[pipeline] llm_traces_capacity` of them (the oldest are forgotten first, counted).
    LlmTraces,
}

impl SpanFilter {
    /// The value as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanFilter::All => "all",
            SpanFilter::Llm => "llm",
            SpanFilter::LlmTraces => "llm_traces",
        }
    }
}

/// `batch`: how queued data is grouped into requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Send a request once this many spans are waiting.
    #[serde(default = "default_batch_spans")]
    pub max_spans: usize,
    /// Send a request once this many (uncompressed) bytes are waiting.
    #[serde(default = "default_batch_bytes")]
    pub max_bytes: usize,
    /// Send what is waiting at most this long after the first batch arrived (e.g. "200ms").
    #[serde(
        default = "default_batch_timeout",
        deserialize_with = "crate::config::duration::deserialize"
    )]
    pub timeout: Duration,
}

fn default_batch_spans() -> usize {
    8192
}
fn default_batch_bytes() -> usize {
    4 << 20
}
fn default_batch_timeout() -> Duration {
    Duration::from_millis(200)
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_spans: default_batch_spans(),
            max_bytes: default_batch_bytes(),
            timeout: default_batch_timeout(),
        }
    }
}

/// `queue`: the exporter's own bounded queue. In memory (the default), when full, new batches are
/// dropped for this exporter only (`reason="queue_full"`), and receivers refuse new requests with
/// a retryable answer once every exporter's queue is full. On disk (`kind = "disk"`), a request is
/// acknowledged only once it is written to this queue; when the queue is full (`max_size`) or the
/// disk is, receivers refuse it with a retryable answer — nothing accepted is dropped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// `memory` (default) or `disk`.
    #[serde(default)]
    pub kind: QueueKind,
    /// Memory queue: most bytes of span data waiting for this exporter.
    #[serde(default = "default_queue_bytes")]
    pub max_bytes: usize,
    /// Memory queue: most batches waiting for this exporter.
    #[serde(default = "default_queue_batches")]
    pub max_batches: usize,
    /// Disk queue: its directory (default `<[storage] dir>/queues/<exporter name>`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Disk queue: most bytes its files may take, e.g. `"2GiB"` (default 1 GiB).
    #[serde(default = "default_max_size")]
    pub max_size: bytesize::ByteSize,
    /// Disk queue: `written` (default: acknowledged once in the OS page cache; survives a crash
    /// of tollgate, not of the machine) or `synced` (acknowledged once fsync'ed; survives power
    /// loss). Syncs are grouped: one fsync covers every request written before it.
    #[serde(default)]
    pub durability: Durability,
    /// Disk queue with `synced`: the longest a written request waits before its fsync starts
    /// (a longer wait puts more requests into one fsync), e.g. `"2ms"`.
    #[serde(
        default = "default_sync_delay",
        deserialize_with = "crate::config::duration::deserialize"
    )]
    pub sync_max_delay: Duration,
}

/// Where an exporter's queue lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// In memory: lost on restart.
    #[default]
    Memory,
    /// On disk: survives restarts (`kill -9` included).
    Disk,
}

/// When a disk queue acknowledges a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Once written to the file (the OS page cache).
    #[default]
    Written,
    /// Once fsync'ed.
    Synced,
}

fn default_queue_bytes() -> usize {
    64 << 20
}
fn default_queue_batches() -> usize {
    1024
}
fn default_max_size() -> bytesize::ByteSize {
    bytesize::ByteSize::gib(1)
}
fn default_sync_delay() -> Duration {
    Duration::from_millis(2)
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            kind: QueueKind::default(),
            max_bytes: default_queue_bytes(),
            max_batches: default_queue_batches(),
            path: None,
            max_size: default_max_size(),
            durability: Durability::default(),
            sync_max_delay: default_sync_delay(),
        }
    }
}

/// `retry`: exponential backoff with jitter for retryable failures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// First wait after a failure.
    #[serde(
        default = "default_initial",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub initial_interval: Duration,
    /// Longest wait between attempts (a server's Retry-After may ask for more, up to 10 min).
    #[serde(
        default = "default_max_interval",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub max_interval: Duration,
    /// Give up on a request this long after its first attempt (`reason="retries_exhausted"`).
    #[serde(
        default = "default_max_elapsed",
        deserialize_with = "crate::config::duration::deserialize"
    )]
    pub max_elapsed_time: Duration,
}

fn default_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_max_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_max_elapsed() -> Duration {
    Duration::from_secs(300)
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_interval: default_initial(),
            max_interval: default_max_interval(),
            max_elapsed_time: default_max_elapsed(),
        }
    }
}

/// One `[[exporters]]` entry. Common keys apply to every kind; the kind-specific keys are
/// rejected by [`crate::export::validate`] on a kind that does not use them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExporterConfig {
    /// A unique name (the `exporter` metric label).
    pub name: String,
    /// `otlp_grpc`, `otlp_http`, `langfuse`, `tempo`, `honeycomb`, `file` or `console`.
    pub kind: ExporterKind,
    /// Which spans to send: `all` (default), `llm` (LLM spans only) or `llm_traces` (every span
    /// of a trace that contains an LLM span, from the moment its first LLM span arrived). Spans
    /// left out are counted in `tollgate_exporter_filtered_spans_total`, not as dropped.
    #[serde(default)]
    pub spans: SpanFilter,
    /// Where to send: a base URL, for every kind, to which the kind's traces path is appended
    /// (a URL that already ends with it is used as is). otlp_grpc and gRPC presets:
    /// `http(s)://host:port`; otlp_http, tempo/honeycomb with `protocol = "http"`: `/v1/traces`
    /// is appended; langfuse: `/api/public/otel/v1/traces` is appended (default
    /// `https://cloud.langfuse.com`); honeycomb: default from `region`; tempo: required.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// otlp_http: the full traces URL, used as-is (instead of `endpoint`).
    #[serde(default)]
    pub traces_endpoint: Option<String>,
    /// otlp_http: `protobuf` (default) or `json`.
    #[serde(default)]
    pub encoding: Option<Encoding>,
    /// tempo, honeycomb: `grpc` (default) or `http`.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// Extra request headers (gRPC metadata), e.g. `{ authorization = "Bearer ${env:TOKEN}" }`.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// `gzip` (default), `zstd` or `none`. Langfuse only decodes gzip.
    #[serde(default)]
    pub compression: Option<Compression>,
    /// Compression level: gzip 1–9, zstd 1–22. Default 1 (gzip level 6 is ~5x slower).
    #[serde(default = "default_level")]
    pub compression_level: u32,
    /// Time limit for one request attempt.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub timeout: Duration,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Allow plain-text `http://` endpoints (refused with `https://`).
    #[serde(default)]
    pub insecure: bool,
    /// A PEM file of CA certificates trusted in addition to the system/webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Split requests larger than this many bytes at resource/span boundaries.
    /// Default: 4 MiB for tempo, unlimited otherwise.
    #[serde(default)]
    pub max_request_bytes: Option<usize>,
    /// langfuse: the older name of `endpoint` (the base URL; not both).
    #[serde(default)]
    pub host: Option<String>,
    /// langfuse: the project's public key (`pk-lf-…`).
    #[serde(default)]
    pub public_key: Option<Secret>,
    /// langfuse: the project's secret key (`sk-lf-…`).
    #[serde(default)]
    pub secret_key: Option<Secret>,
    /// tempo: the tenant, sent as `X-Scope-OrgID` (≤150 bytes of `A-Za-z0-9!-_.*'()`).
    #[serde(default)]
    pub tenant: Option<String>,
    /// tempo: basic-auth user (Grafana Cloud instance id).
    #[serde(default)]
    pub username: Option<String>,
    /// tempo: basic-auth password (Grafana Cloud token).
    #[serde(default)]
    pub password: Option<Secret>,
    /// honeycomb: the ingest key (`x-honeycomb-team`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// honeycomb: `us` (default) or `eu`.
    #[serde(default)]
    pub region: Option<Region>,
    /// honeycomb: the dataset; only (and always) with a Classic key.
    #[serde(default)]
    pub dataset: Option<String>,
    /// file: the file OTLP/JSON lines are appended to.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// postgres: the connection URL, e.g.
    /// `postgres://tollgate:${env:LEDGER_PASSWORD}@db.internal:5432/billing` (secret).
    #[serde(default)]
    pub url: Option<Secret>,
    /// postgres: the schema holding the ledger's tables and views (default `tollgate`).
    #[serde(default)]
    pub schema: Option<String>,
    /// postgres: the attribute stored in the `user_id` column (span, then resource; default
    /// `user.id`).
    #[serde(default)]
    pub user_attribute: Option<String>,
    /// postgres: more key attributes stored in the `attributes` JSON column, e.g.
    /// `["tenant.id", "team.id"]`.
    #[serde(default)]
    pub attributes: Option<Vec<String>>,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
    /// The exporter's queue.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Retries.
    #[serde(default)]
    pub retry: RetryConfig,
}

fn default_level() -> u32 {
    1
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_concurrency() -> usize {
    4
}

impl ExporterConfig {
    /// A config of `kind` named `name` with every default (for tests and tools).
    pub fn new(name: &str, kind: ExporterKind) -> Self {
        Self {
            name: name.into(),
            kind,
            spans: SpanFilter::All,
            endpoint: None,
            traces_endpoint: None,
            encoding: None,
            protocol: None,
            headers: BTreeMap::new(),
            compression: None,
            compression_level: default_level(),
            timeout: default_timeout(),
            concurrency: default_concurrency(),
            insecure: false,
            ca_file: None,
            max_request_bytes: None,
            host: None,
            public_key: None,
            secret_key: None,
            tenant: None,
            username: None,
            password: None,
            api_key: None,
            region: None,
            dataset: None,
            path: None,
            url: None,
            schema: None,
            user_attribute: None,
            attributes: None,
            batch: BatchConfig::default(),
            queue: QueueConfig::default(),
            retry: RetryConfig::default(),
        }
    }

    /// Names of the kind-specific keys that are set, for "key not allowed" checks.
    fn set_specific_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut add = |set: bool, k: &'static str| {
            if set {
                keys.push(k)
            }
        };
        add(self.traces_endpoint.is_some(), "traces_endpoint");
        add(self.encoding.is_some(), "encoding");
        add(self.protocol.is_some(), "protocol");
        add(self.host.is_some(), "host");
        add(self.public_key.is_some(), "public_key");
        add(self.secret_key.is_some(), "secret_key");
        add(self.tenant.is_some(), "tenant");
        add(self.username.is_some(), "username");
        add(self.password.is_some(), "password");
        add(self.api_key.is_some(), "api_key");
        add(self.region.is_some(), "region");
        add(self.dataset.is_some(), "dataset");
        add(self.path.is_some(), "path");
        add(self.url.is_some(), "url");
        add(self.schema.is_some(), "schema");
        add(self.user_attribute.is_some(), "user_attribute");
        add(self.attributes.is_some(), "attributes");
        keys
    }

    /// Every kind-specific key that is set but not taken by this kind, each with its reason.
    pub(crate) fn stray_keys(&self) -> Vec<(&'static str, String)> {
        let own = self.kind.own_keys();
        self.set_specific_keys()
            .into_iter()
            .filter(|k| !own.contains(k))
            .map(|k| {
                let takes = if own.is_empty() {
                    "it takes only the common keys".to_owned()
                } else {
                    format!("its own keys are {}", own.join(", "))
                };
                (
                    k,
                    format!("`{k}` is not a key of kind {} ({takes})", self.kind),
                )
            })
            .collect()
    }
}

/// The keys every kind takes.
pub const COMMON_KEYS: &[&str] = &[
    "name",
    "kind",
    "spans",
    "endpoint",
    "headers",
    "compression",
    "compression_level",
    "timeout",
    "concurrency",
    "insecure",
    "ca_file",
    "max_request_bytes",
    "batch",
    "queue",
    "retry",
];

impl ExporterKind {
    /// The keys only this kind takes (besides [`COMMON_KEYS`]).
    pub fn own_keys(self) -> &'static [&'static str] {
        match self {
            ExporterKind::OtlpGrpc => &[],
            ExporterKind::OtlpHttp => &["traces_endpoint", "encoding"],
            ExporterKind::Langfuse => &["host", "public_key", "secret_key"],
            ExporterKind::Tempo => &["protocol", "tenant", "username", "password"],
            ExporterKind::Honeycomb => &["protocol", "api_key", "region", "dataset"],
            ExporterKind::File => &["path"],
            ExporterKind::Console => &[],
            ExporterKind::Postgres => &["url", "schema", "user_attribute", "attributes"],
        }
    }

    /// Every key this kind takes, common keys first, as "`a`, `b`, …".
    pub fn keys_text(self) -> String {
        COMMON_KEYS
            .iter()
            .chain(self.own_keys())
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The kind as written in the config (`otlp_grpc`, `langfuse`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ExporterKind::OtlpGrpc => "otlp_grpc",
            ExporterKind::OtlpHttp => "otlp_http",
            ExporterKind::Langfuse => "langfuse",
            ExporterKind::Tempo => "tempo",
            ExporterKind::Honeycomb => "honeycomb",
            ExporterKind::File => "file",
            ExporterKind::Console => "console",
            ExporterKind::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for ExporterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
