//! The ledger's tables and views, created and migrated by tollgate.
//!
//! `<schema>.schema_migrations` records each applied migration (version, name, time). On its
//! first connection the exporter applies, in one transaction under an advisory lock (so several
//! replicas starting at once migrate once), every migration whose version is not recorded. A
//! database migrated by a newer tollgate (a version this one does not know) is written to as
//! long as the columns it inserts exist; that is logged.
//!
//! Money columns are integer nano-USD (`bigint`); the views sum them as `numeric` (exact) and
//! also show USD as `numeric(30, 9)`.

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Applied in increasing order; never reused.
    pub version: i32,
    /// What it does.
    pub name: &'static str,
    /// The SQL, with `{schema}` for the schema name.
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "usage table",
        sql: r#"
CREATE TABLE {schema}.usage (
    trace_id text NOT NULL,
    span_id text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL,
    task_id text NOT NULL,
    service text NOT NULL,
    task_type text NOT NULL,
    user_id text,
    attributes jsonb NOT NULL DEFAULT '{}',
    provider text,
    model text,
    price_entry text,
    price_effective_from text,
    tier bigint,
    batch boolean NOT NULL,
    status text NOT NULL,
    input_uncached_tokens bigint,
    cache_read_tokens bigint,
    cache_write_5m_tokens bigint,
    cache_write_1h_tokens bigint,
    output_tokens bigint,
    reasoning_tokens bigint,
    cache_write_lifetime_unknown boolean NOT NULL DEFAULT false,
    cost_input_nano_usd bigint,
    cost_cache_read_nano_usd bigint,
    cost_cache_write_5m_nano_usd bigint,
    cost_cache_write_1h_nano_usd bigint,
    cost_output_nano_usd bigint,
    cost_total_nano_usd bigint,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trace_id, span_id),
    CONSTRAINT usage_priced_has_cost CHECK ((status = 'priced') = (cost_total_nano_usd IS NOT NULL))
);
CREATE INDEX usage_started_at ON {schema}.usage (started_at);
CREATE INDEX usage_user_started_at ON {schema}.usage (user_id, started_at);
COMMENT ON TABLE {schema}.usage IS 'One row per LLM call seen by tollgate: priced (status = priced, costs in integer nano-USD) or not (status = the reason, costs NULL).';
"#,
    },
    Migration {
        version: 2,
        name: "spend views",
        sql: r#"
CREATE VIEW {schema}.spend_by_user_day AS
SELECT (started_at AT TIME ZONE 'UTC')::date AS day, user_id,
       count(*) AS calls,
       count(*) FILTER (WHERE status <> 'priced') AS unpriced_calls,
       coalesce(sum(input_uncached_tokens), 0) AS input_uncached_tokens,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
       coalesce(sum(cache_write_5m_tokens + cache_write_1h_tokens), 0) AS cache_write_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cost_total_nano_usd), 0) AS cost_nano_usd,
       (coalesce(sum(cost_total_nano_usd), 0) / 1000000000.0)::numeric(30, 9) AS cost_usd
FROM {schema}.usage GROUP BY 1, 2;
CREATE VIEW {schema}.spend_by_task_type_month AS
SELECT date_trunc('month', started_at AT TIME ZONE 'UTC')::date AS month, task_type,
       count(*) AS calls,
       count(*) FILTER (WHERE status <> 'priced') AS unpriced_calls,
       coalesce(sum(input_uncached_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cost_total_nano_usd), 0) AS cost_nano_usd,
       (coalesce(sum(cost_total_nano_usd), 0) / 1000000000.0)::numeric(30, 9) AS cost_usd
FROM {schema}.usage GROUP BY 1, 2;
CREATE VIEW {schema}.spend_by_model AS
SELECT provider, model, price_entry,
       count(*) AS calls,
       count(*) FILTER (WHERE status <> 'priced') AS unpriced_calls,
       coalesce(sum(input_uncached_tokens), 0) AS input_uncached_tokens,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
       coalesce(sum(cache_write_5m_tokens + cache_write_1h_tokens), 0) AS cache_write_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cost_total_nano_usd), 0) AS cost_nano_usd,
       (coalesce(sum(cost_total_nano_usd), 0) / 1000000000.0)::numeric(30, 9) AS cost_usd
FROM {schema}.usage GROUP BY 1, 2, 3;
"#,
    },
];

/// The columns the exporter inserts, in the order of [`insert_sql`]'s arrays.
pub const INSERT_COLUMNS: &[(&str, &str)] = &[
    ("trace_id", "text"),
    ("span_id", "text"),
    ("started_at", "timestamptz"),
    ("ended_at", "timestamptz"),
    ("task_id", "text"),
    ("service", "text"),
    ("task_type", "text"),
    ("user_id", "text"),
    ("attributes", "jsonb"),
    ("provider", "text"),
    ("model", "text"),
    ("price_entry", "text"),
    ("price_effective_from", "text"),
    ("tier", "int8"),
    ("batch", "bool"),
    ("status", "text"),
    ("input_uncached_tokens", "int8"),
    ("cache_read_tokens", "int8"),
    ("cache_write_5m_tokens", "int8"),
    ("cache_write_1h_tokens", "int8"),
    ("output_tokens", "int8"),
    ("reasoning_tokens", "int8"),
    ("cache_write_lifetime_unknown", "bool"),
    ("cost_input_nano_usd", "int8"),
    ("cost_cache_read_nano_usd", "int8"),
    ("cost_cache_write_5m_nano_usd", "int8"),
    ("cost_cache_write_1h_nano_usd", "int8"),
    ("cost_output_nano_usd", "int8"),
    ("cost_total_nano_usd", "int8"),
];

/// One multi-row insert: each parameter is an array holding one column of every row, unnested
/// into rows; a row whose (trace id, span id) is already there is skipped.
pub fn insert_sql(schema: &str) -> String {
    let cols: Vec<&str> = INSERT_COLUMNS.iter().map(|(c, _)| *c).collect();
    let arrays: Vec<String> = INSERT_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, t))| format!("${}::{t}[]", i + 1))
        .collect();
    format!(
        "INSERT INTO {schema}.usage ({}) SELECT * FROM unnest({}) \
         ON CONFLICT (trace_id, span_id) DO NOTHING",
        cols.join(", "),
        arrays.join(", ")
    )
}

/// A schema name tollgate may write into SQL: lower-case letters, digits and `_`, not starting
/// with a digit, at most 63 bytes.
pub fn check_identifier(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "schema {name:?} must be lower-case letters, digits and _ (not starting with a digit, at most 63)"
        ))
    }
}

/// Creates the schema and applies every migration not yet applied; answers the versions applied
/// now (empty when the database was up to date).
pub async fn migrate(
    client: &mut tokio_postgres::Client,
    schema: &str,
) -> Result<Vec<i32>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // One migrator at a time across replicas (a transaction-level lock, released at commit).
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('tollgate.ledger.migrate.' || $1))",
        &[&schema],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now());"
    ))
    .await?;
    let applied: Vec<i32> = tx
        .query(
            &format!("SELECT version FROM {schema}.schema_migrations"),
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut now = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        tx.batch_execute(&m.sql.replace("{schema}", schema)).await?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[&m.version, &m.name],
        )
        .await?;
        now.push(m.version);
    }
    tx.commit().await?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(v) = applied.iter().copied().filter(|v| *v > known).max() {
        tracing::warn!(
            schema,
            version = v,
            known,
            "The ledger schema was migrated by a newer tollgate; writing with this version's columns."
        );
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_in_order_and_never_reuse_a_version() {
        for w in MIGRATIONS.windows(2) {
            assert!(w[0].version < w[1].version);
        }
        assert_eq!(MIGRATIONS[0].version, 1);
    }

    #[test]
    fn insert_lists_every_column_once_with_an_array_each() {
        let sql = insert_sql("tollgate");
        assert!(sql.contains("$29::int8[]"), "{sql}");
        assert!(!sql.contains("$30"), "{sql}");
        assert!(sql.ends_with("ON CONFLICT (trace_id, span_id) DO NOTHING"));
        for (c, _) in INSERT_COLUMNS {
            assert!(MIGRATIONS[0].sql.contains(&format!("    {c} ")), "{c}");
        }
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(check_identifier("tollgate").is_ok());
        assert!(check_identifier("billing_2").is_ok());
        for bad in ["", "Tollgate", "a-b", "1abc", "a;drop", &"x".repeat(64)] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
    }
}
