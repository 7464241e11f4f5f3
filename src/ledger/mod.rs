//! The usage ledger: one row per LLM call in PostgreSQL, for billing.
//!
//! The llm stage prices a call once; the pipeline turns what it computed into a [`LedgerRow`]
//! (no re-pricing) and hands the rows of a request, encoded as a [`LedgerBatch`], to every
//! `kind = "postgres"` exporter as their own variant of the request. Encoded rows are
//! `LedgerBatch.rows` fields, so batches merge by concatenation exactly as span requests do: the
//! exporters' queues (memory or disk), batching and retries carry them unchanged.
//!
//! The exporter (`export/postgres.rs`) inserts a batch in one statement with
//! `ON CONFLICT (trace_id, span_id) DO NOTHING`: a span re-sent by a client, or a batch replayed
//! from a disk queue after a crash, never bills twice. [`schema`] creates and migrates the
//! tables and views; [`usage`] is `tollgate usage`.

pub mod schema;
pub mod usage;

use std::collections::BTreeMap;

use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::Secret;

/// One key attribute of a call (looked up on the span, then its resource).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RowAttribute {
    /// The attribute key, e.g. `user.id`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Its value as text (integers, doubles and booleans written out).
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One LLM call as the ledger records it: what the llm stage concluded, nothing recomputed.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LedgerRow {
    /// The span's trace id (16 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// The span's id (8 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    /// Span start, nanoseconds since the epoch.
    #[prost(uint64, tag = "3")]
    pub start_unix_nano: u64,
    /// Span end, nanoseconds since the epoch.
    #[prost(uint64, tag = "4")]
    pub end_unix_nano: u64,
    /// The task the call belongs to (`[tasks] key_attribute`, else the trace id).
    #[prost(string, tag = "5")]
    pub task_id: String,
    /// `service.name`.
    #[prost(string, tag = "6")]
    pub service: String,
    /// The task type (`[tasks] task_type_attribute`), `""` when unknown.
    #[prost(string, tag = "7")]
    pub task_type: String,
    /// The key attributes found (every ledger exporter's `user_attribute` and `attributes`).
    #[prost(message, repeated, tag = "8")]
    pub attributes: Vec<RowAttribute>,
    /// Provider family.
    #[prost(string, optional, tag = "9")]
    pub provider: Option<String>,
    /// Model id as reported.
    #[prost(string, optional, tag = "10")]
    pub model: Option<String>,
    /// The price-table entry used.
    #[prost(string, optional, tag = "11")]
    pub price_entry: Option<String>,
    /// The `effective_from` of the entry version used.
    #[prost(string, optional, tag = "12")]
    pub price_effective_from: Option<String>,
    /// The long-context tier applied (its `above_input_tokens`); `None`: the base tier.
    #[prost(uint64, optional, tag = "13")]
    pub tier: Option<u64>,
    /// A batch-API call.
    #[prost(bool, tag = "14")]
    pub batch: bool,
    /// `priced`, or why not: `unknown_model`, `incomplete_price`, `invalid_usage`.
    #[prost(string, tag = "15")]
    pub status: String,
    /// True when the usage was valid (the token fields mean something).
    #[prost(bool, tag = "16")]
    pub has_usage: bool,
    /// Uncached input tokens.
    #[prost(uint64, tag = "17")]
    pub input_uncached_tokens: u64,
    /// Cache-read tokens.
    #[prost(uint64, tag = "18")]
    pub cache_read_tokens: u64,
    /// 5-minute (or unknown-lifetime) cache-write tokens.
    #[prost(uint64, tag = "19")]
    pub cache_write_5m_tokens: u64,
    /// 1-hour cache-write tokens.
    #[prost(uint64, tag = "20")]
    pub cache_write_1h_tokens: u64,
    /// Output tokens (reasoning included).
    #[prost(uint64, tag = "21")]
    pub output_tokens: u64,
    /// Reasoning tokens (part of output).
    #[prost(uint64, tag = "22")]
    pub reasoning_tokens: u64,
    /// The cost by component, nano-USD; `None` when not priced.
    #[prost(message, optional, tag = "23")]
    pub cost: Option<RowCost>,
    /// The call wrote to the cache without saying which writes were 1-hour (priced at 5 m).
    #[prost(bool, tag = "24")]
    pub cache_write_lifetime_unknown: bool,
}

/// A priced call's cost by component, integer nano-USD (the total is their sum).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct RowCost {
    /// Uncached input.
    #[prost(int64, tag = "1")]
    pub input: i64,
    /// Cache reads.
    #[prost(int64, tag = "2")]
    pub cache_read: i64,
    /// 5-minute cache writes.
    #[prost(int64, tag = "3")]
    pub cache_write_5m: i64,
    /// 1-hour cache writes.
    #[prost(int64, tag = "4")]
    pub cache_write_1h: i64,
    /// Output.
    #[prost(int64, tag = "5")]
    pub output: i64,
}

impl RowCost {
    /// The total: the sum of the components.
    pub fn total(&self) -> i64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write_5m)
            .saturating_add(self.cache_write_1h)
            .saturating_add(self.output)
    }
}

/// Rows as queued: concatenated encoded rows are one `LedgerBatch`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LedgerBatch {
    /// The rows.
    #[prost(message, repeated, tag = "1")]
    pub rows: Vec<LedgerRow>,
}

impl LedgerRow {
    /// Appends this row to `out` as one `LedgerBatch.rows` field.
    pub fn encode_into_batch(&self, out: &mut Vec<u8>) {
        prost::encoding::message::encode(1, self, out);
    }

    /// The value of key attribute `key`, when the span (or resource) had it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
    }

    /// The attributes of `keys` this row has, as a JSON object.
    pub fn attributes_json(&self, keys: &[String]) -> serde_json::Value {
        let map: BTreeMap<&str, &str> = keys
            .iter()
            .filter_map(|k| self.attribute(k).map(|v| (k.as_str(), v)))
            .collect();
        serde_json::json!(map)
    }
}

/// What the `postgres` exporter and `tollgate usage` share: where the ledger is.
#[derive(Debug, Clone)]
pub struct LedgerTarget {
    /// The connection URL (`postgres://user:password@host:port/db`), secret.
    pub url: Secret,
    /// The schema holding the tables and views (default `tollgate`).
    pub schema: String,
    /// The attribute stored in the `user_id` column (default `user.id`).
    pub user_attribute: String,
    /// More key attributes stored in the `attributes` JSON column.
    pub attributes: Vec<String>,
    /// Extra CA certificates (PEM) trusted for TLS, beside the webpki roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// An error and its causes, `: `-separated (the driver's top-level messages, such as "error
/// performing TLS handshake", say little on their own). Never includes the URL.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// The default schema.
pub const DEFAULT_SCHEMA: &str = "tollgate";
/// The default user attribute.
pub const DEFAULT_USER_ATTRIBUTE: &str = "user.id";

impl LedgerTarget {
    /// Checks the URL, schema name and attribute names without connecting.
    pub fn check(&self) -> Result<tokio_postgres::Config, String> {
        schema::check_identifier(&self.schema)?;
        let cfg: tokio_postgres::Config = self
            .url
            .expose()
            .parse()
            // The driver's message never quotes the URL (it holds the password).
            .map_err(|e| format!("`url` is not a PostgreSQL connection URL: {e}"))?;
        if cfg.get_hosts().is_empty() {
            return Err("`url` names no host".into());
        }
        if self.user_attribute.is_empty() || self.attributes.iter().any(String::is_empty) {
            return Err("`user_attribute` and `attributes` must not be empty names".into());
        }
        Ok(cfg)
    }

    /// Every key attribute a row should carry.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = vec![self.user_attribute.clone()];
        for a in &self.attributes {
            if !keys.contains(a) {
                keys.push(a.clone());
            }
        }
        keys
    }

    /// TLS for the connection: `None` with `sslmode=disable`; otherwise rustls, verifying the
    /// server's certificate and host name against the webpki roots and `ca_file`
    /// (`sslmode=prefer`, the default, falls back to plain text when the server has no TLS;
    /// `require` never does).
    fn tls(&self, cfg: &tokio_postgres::Config) -> Result<Option<MakeRustlsConnect>, String> {
        if cfg.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            return Ok(None);
        }
        // An error only means a provider is already installed.
        let _already = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
            let mut found = 0;
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                found += 1;
            }
            if found == 0 {
                return Err(format!("ca_file {} holds no certificate", path.display()));
            }
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(MakeRustlsConnect::new(config)))
    }

    /// A connection pool of at most `size` connections (connects lazily).
    pub fn pool(&self, size: usize) -> Result<deadpool_postgres::Pool, String> {
        let cfg = self.check()?;
        let mc = deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        };
        let manager = match self.tls(&cfg)? {
            Some(tls) => deadpool_postgres::Manager::from_config(cfg, tls, mc),
            None => deadpool_postgres::Manager::from_config(cfg, tokio_postgres::NoTls, mc),
        };
        deadpool_postgres::Pool::builder(manager)
            .max_size(size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| format!("cannot build the connection pool: {e}"))
    }

    /// One connection (for `tollgate usage`), its driver task spawned.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, String> {
        let cfg = self.check()?;
        let fail =
            |e: tokio_postgres::Error| format!("cannot connect to the ledger: {}", error_chain(&e));
        match self.tls(&cfg)? {
            Some(tls) => {
                let (client, conn) = cfg.connect(tls).await.map_err(fail)?;
                tokio::spawn(conn);
                Ok(client)
            }
            None => {
                let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.map_err(fail)?;
                tokio::spawn(conn);
                Ok(client)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn row(span: u8, cost: Option<RowCost>) -> LedgerRow {
        LedgerRow {
            trace_id: vec![1; 16],
            span_id: vec![span; 8],
            status: if cost.is_some() {
                "priced"
            } else {
                "unknown_model"
            }
            .into(),
            cost,
            attributes: vec![RowAttribute {
                key: "user.id".into(),
                value: format!("u{span}"),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn encoded_rows_concatenate_into_one_batch() {
        let a = row(
            1,
            Some(RowCost {
                input: 3,
                output: 4,
                ..Default::default()
            }),
        );
        let b = row(2, None);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.encode_into_batch(&mut x);
        b.encode_into_batch(&mut y);
        x.extend_from_slice(&y);
        let batch = LedgerBatch::decode(&x[..]).unwrap();
        assert_eq!(batch.rows, vec![a, b]);
        assert_eq!(batch.rows[0].cost.unwrap().total(), 7);
        assert_eq!(batch.rows[1].cost, None);
    }

    #[test]
    fn attributes_json_keeps_only_the_asked_keys() {
        let r = row(3, None);
        let keys = vec!["user.id".to_string(), "tenant.id".to_string()];
        assert_eq!(
            r.attributes_json(&keys),
            serde_json::json!({"user.id": "u3"})
        );
        assert_eq!(r.attributes_json(&[]), serde_json::json!({}));
    }

    fn target(url: &str) -> LedgerTarget {
        LedgerTarget {
            url: Secret::new(url),
            schema: DEFAULT_SCHEMA.into(),
            user_attribute: DEFAULT_USER_ATTRIBUTE.into(),
            attributes: vec!["tenant.id".into(), "user.id".into()],
            ca_file: None,
        }
    }

    #[test]
    fn check_refuses_what_cannot_work_and_never_quotes_the_password() {
        assert!(target("postgres://u:pw@127.0.0.1:5432/db").check().is_ok());
        let mut t = target("postgres://u:pw@127.0.0.1:5432/db?sslmode=require");
        assert!(t.check().is_ok());
        t.ca_file = Some("/nonexistent/ca.pem".into());
        let e = t.pool(1).unwrap_err();
        assert!(e.contains("ca_file") && !e.contains("pw@"), "{e}");
        t.ca_file = None;
        assert!(t.pool(1).is_ok());
        let e = target("postgres://u:s3cret@127.0.0.1:notaport/db")
            .check()
            .unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let mut t = target("postgres://u@127.0.0.1/db");
        t.schema = "bad-name".into();
        assert!(t.check().is_err());
        assert_eq!(
            target("postgres://h/db").keys(),
            vec!["user.id", "tenant.id"]
        );
    }
}
