//! `tollgate usage --from DATE --to DATE --by user.id [--format table|csv|json]`: invoice lines
//! from the ledger — per key, the calls, unpriced calls, tokens by kind and the exact cost.
//!
//! Dates are UTC calendar days, both included (`--from 2026-11-01 --to 2026-11-30` is November).
//! `--by` takes `user.id` (or whatever `user_attribute` is: the indexed `user_id` column),
//! `service`, `task_type`, `task`, `model`, `provider`, `price_entry`, `status`, `day`, `month`,
//! or any key attribute the exporter stores in `attributes`; several keys, comma-separated or
//! repeated, give one line per combination.

use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};

use super::LedgerTarget;

/// How `tollgate usage` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Aligned columns with a total line.
    #[default]
    Table,
    /// CSV with a header row (no total line).
    Csv,
    /// One JSON document: the period, the keys, the lines and the total.
    Json,
}

/// `tollgate usage`.
#[derive(Debug, Clone, Args)]
pub struct UsageArgs {
    /// First day, `YYYY-MM-DD` (UTC, included).
    #[arg(long, value_parser = parse_date)]
    pub from: time::Date,
    /// Last day, `YYYY-MM-DD` (UTC, included).
    #[arg(long, value_parser = parse_date)]
    pub to: time::Date,
    /// What one invoice line is per: `user.id`, `service`, `task_type`, `model`, `day`, any key
    /// attribute... (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', default_value = "user.id")]
    pub by: Vec<String>,
    /// `table`, `csv` or `json`.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Which `postgres` exporter's ledger to read (default: the only one).
    #[arg(long)]
    pub exporter: Option<String>,
}

fn parse_date(s: &str) -> Result<time::Date, String> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, f).map_err(|e| format!("{s:?} is not a date YYYY-MM-DD: {e}"))
}

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The key values, in `--by` order (`None`: the call did not carry it).
    pub keys: Vec<Option<String>>,
    /// Calls, priced or not.
    pub calls: i64,
    /// Of them, calls without a cost.
    pub unpriced_calls: i64,
    /// Uncached input, cache read, cache write, output tokens.
    pub tokens: [i64; 4],
    /// Exact cost, nano-USD.
    pub cost_nano_usd: i128,
}

/// The SQL expression for one `--by` key; `params` collects attribute names.
fn key_expr(key: &str, user_attribute: &str, params: &mut Vec<String>) -> String {
    match key {
        k if k == user_attribute => "user_id".into(),
        "service" | "service.name" => "service".into(),
        "task_type" => "task_type".into(),
        "task" | "task_id" => "task_id".into(),
        "model" | "provider" | "price_entry" | "status" => key.into(),
        "day" => "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')".into(),
        "month" => "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM')".into(),
        attr => {
            params.push(attr.to_owned());
            format!("attributes->>(${}::text)", params.len() + 2)
        }
    }
}

/// The query for `args` over `schema`, and its attribute parameters (after `$1` from, `$2` to).
pub fn query(args: &UsageArgs, schema: &str, user_attribute: &str) -> (String, Vec<String>) {
    let mut params = Vec::new();
    let keys: Vec<String> = args
        .by
        .iter()
        .map(|k| key_expr(k.trim(), user_attribute, &mut params))
        .collect();
    let groups: Vec<String> = (1..=keys.len()).map(|i| i.to_string()).collect();
    let select: Vec<String> = keys.iter().map(|k| format!("{k}::text")).collect();
    let sql = format!(
        "SELECT {keys}count(*), count(*) FILTER (WHERE status <> 'priced'), \
         coalesce(sum(input_uncached_tokens), 0)::int8, coalesce(sum(cache_read_tokens), 0)::int8, \
         coalesce(sum(cache_write_5m_tokens + cache_write_1h_tokens), 0)::int8, \
         coalesce(sum(output_tokens), 0)::int8, coalesce(sum(cost_total_nano_usd), 0)::text \
         FROM {schema}.usage WHERE started_at >= $1 AND started_at < $2 \
         {group} ORDER BY {order}",
        keys = select.iter().map(|k| format!("{k}, ")).collect::<String>(),
        group = if groups.is_empty() {
            String::new()
        } else {
            format!("GROUP BY {}", groups.join(", "))
        },
        order = if groups.is_empty() {
            "1".into()
        } else {
            groups.join(", ")
        },
    );
    (sql, params)
}

fn midnight(d: time::Date) -> SystemTime {
    let secs = d.midnight().assume_utc().unix_timestamp();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Reads the invoice lines of `args` from the ledger at `target`.
pub async fn lines(target: &LedgerTarget, args: &UsageArgs) -> Result<Vec<Line>, String> {
    if args.to < args.from {
        return Err(format!("--to {} is before --from {}", args.to, args.from));
    }
    let end = args
        .to
        .next_day()
        .ok_or("--to is the last representable day")?;
    let client = target.connect().await?;
    let (sql, attrs) = query(args, &target.schema, &target.user_attribute);
    let (from, to) = (midnight(args.from), midnight(end));
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&from, &to];
    params.extend(
        attrs
            .iter()
            .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync)),
    );
    let rows = client
        .query(&sql, &params)
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!(
                "reading the ledger: {} ({})",
                db.message(),
                db.code().code()
            ),
            None => format!("reading the ledger: {e}"),
        })?;
    drop(client);
    let k = args.by.len();
    rows.iter()
        .map(|r| {
            let cost: String = r.get(k + 6);
            Ok(Line {
                keys: (0..k).map(|i| r.get::<_, Option<String>>(i)).collect(),
                calls: r.get(k),
                unpriced_calls: r.get(k + 1),
                tokens: [r.get(k + 2), r.get(k + 3), r.get(k + 4), r.get(k + 5)],
                cost_nano_usd: cost
                    .parse()
                    .map_err(|_| format!("the ledger's cost sum {cost:?} is not an integer"))?,
            })
        })
        .collect()
}

/// Exact decimal USD with nine decimals.
pub fn usd(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let a = nanos.unsigned_abs();
    format!("{sign}{}.{:09}", a / 1_000_000_000, a % 1_000_000_000)
}

fn total(lines: &[Line]) -> Line {
    let mut t = Line {
        keys: Vec::new(),
        calls: 0,
        unpriced_calls: 0,
        tokens: [0; 4],
        cost_nano_usd: 0,
    };
    for l in lines {
        t.calls += l.calls;
        t.unpriced_calls += l.unpriced_calls;
        for (a, b) in t.tokens.iter_mut().zip(l.tokens) {
            *a += b;
        }
        t.cost_nano_usd += l.cost_nano_usd;
    }
    t
}

const HEAD: [&str; 8] = [
    "calls",
    "unpriced_calls",
    "input_uncached_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "cost_usd",
    "cost_nano_usd",
];

fn figures(l: &Line) -> [String; 8] {
    [
        l.calls.to_string(),
        l.unpriced_calls.to_string(),
        l.tokens[0].to_string(),
        l.tokens[1].to_string(),
        l.tokens[2].to_string(),
        l.tokens[3].to_string(),
        usd(l.cost_nano_usd),
        l.cost_nano_usd.to_string(),
    ]
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Prints `lines` as `args.format` asks.
pub fn render(args: &UsageArgs, lines: &[Line]) -> String {
    let mut out = String::new();
    match args.format {
        Format::Csv => {
            let head: Vec<String> = args
                .by
                .iter()
                .map(|k| csv_field(k))
                .chain(HEAD.iter().map(|h| (*h).to_owned()))
                .collect();
            out.push_str(&head.join(","));
            out.push('\n');
            for l in lines {
                let cells: Vec<String> = l
                    .keys
                    .iter()
                    .map(|k| csv_field(k.as_deref().unwrap_or("")))
                    .chain(figures(l))
                    .collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
        }
        Format::Json => {
            let line = |l: &Line| {
                let mut m = serde_json::Map::new();
                for (k, v) in args.by.iter().zip(&l.keys) {
                    m.insert(k.clone(), serde_json::json!(v));
                }
                for (h, f) in HEAD.iter().zip(figures(l)) {
                    let v = match *h {
                        // Exact: strings, never floats.
                        "cost_usd" | "cost_nano_usd" => serde_json::json!(f),
                        _ => serde_json::json!(f.parse::<i64>().unwrap_or(0)),
                    };
                    m.insert((*h).to_owned(), v);
                }
                serde_json::Value::Object(m)
            };
            let doc = serde_json::json!({
                "from": args.from.to_string(),
                "to": args.to.to_string(),
                "by": args.by,
                "lines": lines.iter().map(line).collect::<Vec<_>>(),
                "total": line(&total(lines)),
            });
            out = serde_json::to_string_pretty(&doc).unwrap_or_default();
            out.push('\n');
        }
        Format::Table => {
            let mut rows: Vec<Vec<String>> = vec![args
                .by
                .iter()
                .cloned()
                .chain(HEAD.iter().map(|h| (*h).to_owned()))
                .collect()];
            for l in lines {
                rows.push(
                    l.keys
                        .iter()
                        .map(|k| k.clone().unwrap_or_else(|| "(none)".into()))
                        .chain(figures(l))
                        .collect(),
                );
            }
            let mut t: Vec<String> = vec![String::new(); args.by.len()];
            if let Some(first) = t.first_mut() {
                *first = "TOTAL".into();
            }
            rows.push(t.into_iter().chain(figures(&total(lines))).collect());
            let cols = rows[0].len();
            let width: Vec<usize> = (0..cols)
                .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                .collect();
            let keys = args.by.len();
            for r in &rows {
                let mut line = String::new();
                for (c, cell) in r.iter().enumerate() {
                    let w = width[c];
                    if c < keys {
                        line.push_str(&format!("{cell:<w$}  "));
                    } else {
                        line.push_str(&format!("{cell:>w$}  "));
                    }
                }
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: UsageArgs,
    }

    fn args(v: &[&str]) -> UsageArgs {
        T::try_parse_from(std::iter::once("t").chain(v.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn by_keys_map_to_columns_or_attributes() {
        let a = args(&[
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--by",
            "user.id,tenant.id",
            "--by",
            "day",
        ]);
        let (sql, params) = query(&a, "tollgate", "user.id");
        assert!(
            sql.starts_with("SELECT user_id::text, attributes->>($3::text)::text, to_char("),
            "{sql}"
        );
        assert!(sql.contains("GROUP BY 1, 2, 3"), "{sql}");
        assert_eq!(params, vec!["tenant.id"]);
    }

    #[test]
    fn bad_dates_are_refused() {
        assert!(T::try_parse_from(["t", "--from", "2026-13-01", "--to", "2026-12-01"]).is_err());
        assert!(T::try_parse_from(["t", "--from", "yesterday", "--to", "2026-12-01"]).is_err());
    }

    #[test]
    fn money_is_printed_exactly() {
        assert_eq!(usd(0), "0.000000000");
        assert_eq!(usd(9_240_000), "0.009240000");
        assert_eq!(usd(12_345_678_901_234_567_891), "12345678901.234567891");
        assert_eq!(usd(-1), "-0.000000001");
    }

    fn sample() -> Vec<Line> {
        vec![
            Line {
                keys: vec![Some("u,1".into())],
                calls: 2,
                unpriced_calls: 1,
                tokens: [10, 2, 0, 5],
                cost_nano_usd: 105,
            },
            Line {
                keys: vec![None],
                calls: 1,
                unpriced_calls: 0,
                tokens: [1, 0, 0, 1],
                cost_nano_usd: 1_000_000_001,
            },
        ]
    }

    #[test]
    fn csv_quotes_and_json_keeps_money_as_strings() {
        let mut a = args(&[
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--format",
            "csv",
        ]);
        let csv = render(&a, &sample());
        assert_eq!(csv.lines().next().unwrap(), "user.id,calls,unpriced_calls,input_uncached_tokens,cache_read_tokens,cache_write_tokens,output_tokens,cost_usd,cost_nano_usd");
        assert_eq!(
            csv.lines().nth(1).unwrap(),
            "\"u,1\",2,1,10,2,0,5,0.000000105,105"
        );
        assert_eq!(
            csv.lines().nth(2).unwrap(),
            ",1,0,1,0,0,1,1.000000001,1000000001"
        );
        a.format = Format::Json;
        let j: serde_json::Value = serde_json::from_str(&render(&a, &sample())).unwrap();
        assert_eq!(j["total"]["cost_nano_usd"], "1000000106");
        assert_eq!(j["total"]["cost_usd"], "1.000000106");
        assert_eq!(j["lines"][1]["user.id"], serde_json::Value::Null);
        assert_eq!(j["lines"][0]["calls"], 2);
        a.format = Format::Table;
        let t = render(&a, &sample());
        assert!(t.lines().last().unwrap().starts_with("TOTAL"), "{t}");
        assert!(t.contains("(none)"), "{t}");
    }
}
