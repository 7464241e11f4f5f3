//! `postgres`: the usage ledger. Each queued batch is a [`LedgerBatch`] (one row per LLM call,
//! built by the pipeline from what the llm stage computed); one attempt inserts all its rows in
//! one statement (column arrays unnested into rows) with `ON CONFLICT (trace_id, span_id) DO
//! NOTHING`, so a replayed batch or a client's retried span never bills twice. The schema is
//! created and migrated on the first connection ([`crate::ledger::schema`]).
//!
//! Failures are classified by SQLSTATE ([`classify`]): a lost connection, a server shutting down
//! or out of resources, a serialization failure, a missing table or permission (fixable by an
//! operator) are retried like any exporter's; only data the server can never take is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{IntCounterVec, Opts};
use prost::Message;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::retry::RetryDecision;
use super::transport::{Body, Outcome, Transport};
use super::ExportError;
use crate::ledger::{schema, LedgerBatch, LedgerTarget};

/// Rows skipped because the ledger already had them (replays, client retries), per exporter.
pub const DUPLICATE_ROWS: &str = "tollgate_ledger_duplicate_rows_total";

static DUPLICATES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            DUPLICATE_ROWS,
            "Ledger rows not inserted because a row with the same trace and span id was already there (a replay or a client retry; never billed twice).",
        ),
        &["exporter"],
    )
    .expect("valid metric");
    crate::telemetry::registry()
        .register(Box::new(c.clone()))
        .ok();
    c
});

pub(crate) struct PostgresTransport {
    name: String,
    target: LedgerTarget,
    keys: Vec<String>,
    pool: deadpool_postgres::Pool,
    insert: String,
    migrated: AtomicBool,
}

impl PostgresTransport {
    /// A transport with a pool of `concurrency` connections; connects on the first send.
    pub(crate) fn build(
        name: &str,
        target: &LedgerTarget,
        concurrency: usize,
    ) -> Result<Self, ExportError> {
        let pool = target
            .pool(concurrency)
            .map_err(|reason| ExportError::Invalid {
                name: name.into(),
                reason,
            })?;
        LazyLock::force(&DUPLICATES);
        Ok(Self {
            name: name.into(),
            keys: target.keys(),
            insert: schema::insert_sql(&target.schema),
            target: target.clone(),
            pool,
            migrated: AtomicBool::new(false),
        })
    }

    async fn insert(&self, batch: &LedgerBatch) -> Result<u64, Failure> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| Failure::Connect(e.to_string()))?;
        if !self.migrated.load(Ordering::Acquire) {
            let applied = schema::migrate(&mut client, &self.target.schema).await?;
            if !applied.is_empty() {
                tracing::info!(exporter = %self.name, schema = %self.target.schema, ?applied, "Ledger schema migrated.");
            }
            self.migrated.store(true, Ordering::Release);
        }
        let cols = Columns::of(batch, &self.target.user_attribute, &self.keys);
        let stmt = client.prepare_cached(&self.insert).await?;
        Ok(client.execute(&stmt, &cols.params()).await?)
    }
}

enum Failure {
    Connect(String),
    Sql(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Sql(e)
    }
}

/// What to do after a failed statement, by SQLSTATE class (`None`: no SQLSTATE, i.e. the
/// connection broke).
pub fn classify(code: Option<&str>) -> RetryDecision {
    let Some(code) = code else {
        return RetryDecision::Retryable;
    };
    match code.get(..2).unwrap_or("") {
        // Data exceptions, integrity violations (other than the primary key, which ON CONFLICT
        // absorbs), invalid text representation: this batch can never be taken.
        "22" | "23" => RetryDecision::NonRetryable,
        // Connection, serialization/deadlock, resources, operator intervention (shutdown,
        // cannot connect now), system errors, missing table or privilege, lock timeout:
        // retry — the rows are billing data, and an operator can fix these.
        _ => RetryDecision::Retryable,
    }
}

#[async_trait::async_trait]
impl Transport for PostgresTransport {
    async fn send(&self, body: Body) -> Outcome {
        let batch = match LedgerBatch::decode(&body.to_bytes()[..]) {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Drop {
                    reason: "invalid_data",
                    detail: format!("a queued ledger batch does not decode: {e}"),
                }
            }
        };
        if batch.rows.is_empty() {
            return Outcome::Success;
        }
        match self.insert(&batch).await {
            Ok(inserted) => {
                let dup = (batch.rows.len() as u64).saturating_sub(inserted);
                if dup > 0 {
                    DUPLICATES.with_label_values(&[&self.name]).inc_by(dup);
                }
                Outcome::Success
            }
            Err(Failure::Connect(detail)) => Outcome::Retry {
                delay: None,
                reason: "connect",
                detail: format!("cannot connect to PostgreSQL: {detail}"),
            },
            Err(Failure::Sql(e)) => {
                let code = e.code().map(SqlState::code);
                if e.code() == Some(&SqlState::UNDEFINED_TABLE) {
                    // Someone dropped the table: migrate again on the next attempt.
                    self.migrated.store(false, Ordering::Release);
                }
                let detail = match e.as_db_error() {
                    Some(db) => format!("PostgreSQL: {} ({})", db.message(), db.code().code()),
                    None => format!("PostgreSQL: {}", crate::ledger::error_chain(&e)),
                };
                Outcome::refused(classify(code), "postgres_error", detail)
            }
        }
    }
}

/// The rows of a batch as one array per column, in [`schema::INSERT_COLUMNS`] order.
struct Columns {
    trace_id: Vec<String>,
    span_id: Vec<String>,
    started_at: Vec<SystemTime>,
    ended_at: Vec<SystemTime>,
    task_id: Vec<String>,
    service: Vec<String>,
    task_type: Vec<String>,
    user_id: Vec<Option<String>>,
    attributes: Vec<serde_json::Value>,
    provider: Vec<Option<String>>,
    model: Vec<Option<String>>,
    price_entry: Vec<Option<String>>,
    price_effective_from: Vec<Option<String>>,
    tier: Vec<Option<i64>>,
    batch: Vec<bool>,
    status: Vec<String>,
    tokens: [Vec<Option<i64>>; 6],
    lifetime_unknown: Vec<bool>,
    cost: [Vec<Option<i64>>; 6],
}

fn time(unix_nano: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(unix_nano)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Columns {
    fn of(batch: &LedgerBatch, user_attribute: &str, keys: &[String]) -> Self {
        let n = batch.rows.len();
        let mut c = Columns {
            trace_id: Vec::with_capacity(n),
            span_id: Vec::with_capacity(n),
            started_at: Vec::with_capacity(n),
            ended_at: Vec::with_capacity(n),
            task_id: Vec::with_capacity(n),
            service: Vec::with_capacity(n),
            task_type: Vec::with_capacity(n),
            user_id: Vec::with_capacity(n),
            attributes: Vec::with_capacity(n),
            provider: Vec::with_capacity(n),
            model: Vec::with_capacity(n),
            price_entry: Vec::with_capacity(n),
            price_effective_from: Vec::with_capacity(n),
            tier: Vec::with_capacity(n),
            batch: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            tokens: Default::default(),
            lifetime_unknown: Vec::with_capacity(n),
            cost: Default::default(),
        };
        for r in &batch.rows {
            c.trace_id.push(hex::encode(&r.trace_id));
            c.span_id.push(hex::encode(&r.span_id));
            c.started_at.push(time(r.start_unix_nano));
            c.ended_at
                .push(time(r.end_unix_nano.max(r.start_unix_nano)));
            c.task_id.push(r.task_id.clone());
            c.service.push(r.service.clone());
            c.task_type.push(r.task_type.clone());
            c.user_id
                .push(r.attribute(user_attribute).map(str::to_owned));
            c.attributes.push(r.attributes_json(keys));
            c.provider.push(r.provider.clone());
            c.model.push(r.model.clone());
            c.price_entry.push(r.price_entry.clone());
            c.price_effective_from.push(r.price_effective_from.clone());
            c.tier.push(r.tier.map(int));
            c.batch.push(r.batch);
            c.status.push(r.status.clone());
            let tokens = [
                r.input_uncached_tokens,
                r.cache_read_tokens,
                r.cache_write_5m_tokens,
                r.cache_write_1h_tokens,
                r.output_tokens,
                r.reasoning_tokens,
            ];
            for (col, v) in c.tokens.iter_mut().zip(tokens) {
                col.push(r.has_usage.then(|| int(v)));
            }
            c.lifetime_unknown.push(r.cache_write_lifetime_unknown);
            let cost = r.cost.map(|k| {
                [
                    k.input,
                    k.cache_read,
                    k.cache_write_5m,
                    k.cache_write_1h,
                    k.output,
                    k.total(),
                ]
            });
            for (i, col) in c.cost.iter_mut().enumerate() {
                col.push(cost.map(|k| k[i]));
            }
        }
        c
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut p: Vec<&(dyn ToSql + Sync)> = vec![
            &self.trace_id,
            &self.span_id,
            &self.started_at,
            &self.ended_at,
            &self.task_id,
            &self.service,
            &self.task_type,
            &self.user_id,
            &self.attributes,
            &self.provider,
            &self.model,
            &self.price_entry,
            &self.price_effective_from,
            &self.tier,
            &self.batch,
            &self.status,
        ];
        p.extend(self.tokens.iter().map(|c| c as &(dyn ToSql + Sync)));
        p.push(&self.lifetime_unknown);
        p.extend(self.cost.iter().map(|c| c as &(dyn ToSql + Sync)));
        debug_assert_eq!(p.len(), schema::INSERT_COLUMNS.len());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RetryDecision::*;

    #[test]
    fn sqlstates_classify_as_the_table_says() {
        let table: &[(Option<&str>, RetryDecision)] = &[
            (None, Retryable),             // connection broke
            (Some("08006"), Retryable),    // connection failure
            (Some("40001"), Retryable),    // serialization failure
            (Some("40P01"), Retryable),    // deadlock
            (Some("53300"), Retryable),    // too many connections
            (Some("57P01"), Retryable),    // admin shutdown
            (Some("57P03"), Retryable),    // cannot connect now (starting up)
            (Some("42P01"), Retryable),    // undefined table: migrated again
            (Some("42501"), Retryable),    // insufficient privilege: an operator fixes it
            (Some("55P03"), Retryable),    // lock not available
            (Some("22003"), NonRetryable), // numeric value out of range
            (Some("22P02"), NonRetryable), // invalid text representation
            (Some("23514"), NonRetryable), // check violation
        ];
        for (code, want) in table {
            assert_eq!(classify(*code), *want, "{code:?}");
        }
    }

    #[test]
    fn columns_hold_one_entry_per_row_and_null_where_unknown() {
        use crate::ledger::{LedgerRow, RowAttribute, RowCost};
        let priced = LedgerRow {
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            status: "priced".into(),
            has_usage: true,
            input_uncached_tokens: 10,
            output_tokens: 5,
            cost: Some(RowCost {
                input: 30,
                output: 75,
                ..Default::default()
            }),
            attributes: vec![
                RowAttribute {
                    key: "user.id".into(),
                    value: "u1".into(),
                },
                RowAttribute {
                    key: "tenant.id".into(),
                    value: "t1".into(),
                },
            ],
            ..Default::default()
        };
        let unpriced = LedgerRow {
            span_id: vec![2; 8],
            status: "invalid_usage".into(),
            ..Default::default()
        };
        let batch = LedgerBatch {
            rows: vec![priced, unpriced],
        };
        let keys = vec!["user.id".to_string()];
        let c = Columns::of(&batch, "user.id", &keys);
        assert_eq!(c.trace_id[0], "ab".repeat(16));
        assert_eq!(c.user_id, vec![Some("u1".to_string()), None]);
        assert_eq!(c.attributes[0], serde_json::json!({"user.id": "u1"}));
        assert_eq!(c.tokens[0], vec![Some(10), None]);
        assert_eq!(c.cost[5], vec![Some(105), None]);
        assert_eq!(c.params().len(), schema::INSERT_COLUMNS.len());
    }
}
