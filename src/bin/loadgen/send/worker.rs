//! One closed- or open-loop sender, and sampling the sink and the collector's process.

use super::*;

#[derive(Debug, Default)]
pub(super) struct Sample {
    pub(super) sink: Option<SinkStats>,
    pub(super) cpu: Option<f64>,
    pub(super) peak_rss_kb: Option<u64>,
}

pub(super) async fn sample(sink_url: Option<&str>, pid: Option<u32>) -> Sample {
    let mut s = Sample::default();
    if let Some(pid) = pid {
        s.cpu = procstat::cpu_seconds(pid)
            .inspect_err(|error| warn!(pid, %error, "Cannot read the watched process's CPU time."))
            .ok();
        s.peak_rss_kb = procstat::status_kb(pid, "VmHWM").ok();
    }
    if let Some(url) = sink_url {
        match crate::client::http_get(url).await {
            Ok(body) => match serde_json::from_slice::<SinkStats>(&body) {
                Ok(stats) => s.sink = Some(stats),
                Err(error) => warn!(%url, %error, "The sink's stats are not what was expected."),
            },
            Err(error) => warn!(%url, %error, "Cannot read the sink's stats."),
        }
    }
    s
}

pub(super) async fn worker(shared: Arc<Shared>, mut conn: Conn) -> WorkerResult {
    let plan = &shared.plan;
    let mut res = WorkerResult {
        window: Counts::default(),
        total: Counts::default(),
        hist: new_hist(),
        first_error: None,
    };
    let mut broken = false;
    loop {
        let k = shared.next.fetch_add(1, Relaxed);
        if plan.max_requests.is_some_and(|max| k >= max) {
            break;
        }
        let due = match plan.interval_ns {
            Some(iv) => {
                let due = plan.start + Duration::from_nanos(iv.saturating_mul(k));
                if due >= plan.end {
                    break;
                }
                tokio::time::sleep_until(due).await;
                due
            }
            None => {
                let now = Instant::now();
                if now >= plan.end {
                    break;
                }
                now
            }
        };
        if broken {
            match Conn::open(&shared.target).await {
                Ok(c) => {
                    conn = c;
                    broken = false;
                }
                Err(e) => {
                    count_error(&mut res, plan, &e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let body = shared.pool[(k % shared.pool.len() as u64) as usize].clone();
        let len = body.len() as u64;
        let outcome = conn.send(&shared.target, body).await;
        let done = Instant::now();
        let in_window = done >= plan.warm_end && done < plan.end;
        let mut c = Counts::default();
        match &outcome {
            Ok(Outcome::Accepted { rejected }) => {
                c.requests = 1;
                c.rejected_spans = (*rejected).min(shared.spans);
                c.accepted_spans = shared.spans - c.rejected_spans;
                c.sent_bytes = len;
            }
            Ok(Outcome::Refused) => {
                c.refused_requests = 1;
                c.refused_spans = shared.spans;
            }
            Err(e) => {
                if matches!(e, ClientError::Transport(_)) {
                    broken = true;
                }
                count_error(&mut res, plan, e);
                continue;
            }
        }
        res.total.add(&c);
        if in_window {
            res.window.add(&c);
            let us = (done - due).as_micros().max(1) as u64;
            res.hist.saturating_record(us);
        }
        if c.refused_requests > 0 && !shared.refused_backoff.is_zero() {
            tokio::time::sleep(shared.refused_backoff).await;
        }
    }
    res
}

pub(super) fn count_error(res: &mut WorkerResult, plan: &Plan, e: &ClientError) {
    let now = Instant::now();
    res.total.errors += 1;
    if now >= plan.warm_end && now < plan.end {
        res.window.errors += 1;
    }
    if res.first_error.is_none() {
        warn!(error = %e, "Request failed.");
        res.first_error = Some(e.to_string());
    }
}
