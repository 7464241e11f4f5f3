//! Budget periods: calendar periods in a time zone (the period a moment falls in, as unix
//! milliseconds) and rolling windows (the last `window`, counted in buckets).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::state::Window;

/// The length of a calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Midnight to midnight.
    Day,
    /// Monday midnight to Monday midnight.
    Week,
    /// The first of the month to the first of the next.
    Month,
    /// The last `buckets × bucket_ms`, sliding by one bucket.
    Rolling(Window),
}

/// Most buckets of a rolling window (each holds a total and its calls' digests).
pub(super) const MAX_BUCKETS: u64 = 1440;

/// Buckets of a rolling window when `bucket` is not given.
const DEFAULT_BUCKETS: u64 = 60;

/// A budget's period: a calendar length in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// Day, week or month.
    pub length: Length,
    /// The zone whose calendar counts (`UTC` by default).
    pub tz: TimeZone,
    /// Its name as configured.
    pub tz_name: String,
}

/// One period: `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodBounds {
    /// Start, unix milliseconds.
    pub start_ms: u64,
    /// End (exclusive), unix milliseconds.
    pub end_ms: u64,
}

impl Period {
    /// `day`, `week` or `month` in `timezone` (an IANA name; `None`: UTC), or `rolling` over
    /// `window` (a duration, whole seconds, at least a minute) in buckets of `bucket` (default:
    /// a sixtieth of the window; it must divide the window).
    pub fn parse(
        period: &str,
        timezone: Option<&str>,
        window: Option<&str>,
        bucket: Option<&str>,
    ) -> Result<Period, String> {
        let length = match period {
            "day" => Length::Day,
            "week" => Length::Week,
            "month" => Length::Month,
            "rolling" => Length::Rolling(rolling(window, bucket)?),
            other => {
                return Err(format!(
                    "unknown period {other:?} (use day, week, month or rolling)"
                ));
            }
        };
        if period != "rolling" && (window.is_some() || bucket.is_some()) {
            return Err(format!(
                "window and bucket apply to period = \"rolling\" only, not {period:?}"
            ));
        }
        let (tz, tz_name) = match timezone {
            None | Some("UTC") => (TimeZone::UTC, "UTC".to_owned()),
            Some(name) => (
                TimeZone::get(name).map_err(|e| format!("unknown timezone {name:?}: {e}"))?,
                name.to_owned(),
            ),
        };
        Ok(Period {
            length,
            tz,
            tz_name,
        })
    }

    /// The rolling window, if this is one.
    pub fn window(&self) -> Option<Window> {
        match self.length {
            Length::Rolling(w) => Some(w),
            _ => None,
        }
    }

    /// The period's name as configured (`day`, `week`, `month`, `rolling`).
    pub fn name(&self) -> &'static str {
        match self.length {
            Length::Day => "day",
            Length::Week => "week",
            Length::Month => "month",
            Length::Rolling(_) => "rolling",
        }
    }

    /// The period `now_ms` falls in; for a rolling window, the buckets counted at `now_ms`
    /// (from the oldest one's start to the current one's end).
    pub fn bounds(&self, now_ms: u64) -> PeriodBounds {
        if let Length::Rolling(w) = self.length {
            return PeriodBounds {
                start_ms: w.first_counted(now_ms),
                end_ms: w.bucket_end(now_ms),
            };
        }
        let now = Timestamp::from_millisecond(now_ms.min(i64::MAX as u64) as i64)
            .unwrap_or(Timestamp::MAX);
        let today = now.to_zoned(self.tz.clone()).date();
        let (start, end) = match self.length {
            Length::Day => (Some(today), today.tomorrow().ok()),
            Length::Week => {
                let back = i64::from(today.weekday().to_monday_zero_offset());
                let monday = today.checked_sub(back.days()).ok();
                (monday, monday.and_then(|m| m.checked_add(7.days()).ok()))
            }
            Length::Month => {
                let first = today.first_of_month();
                (Some(first), first.checked_add(1.month()).ok())
            }
            Length::Rolling(_) => unreachable!("handled above"),
        };
        let ms = |d: Option<Date>, fallback: u64| {
            d.and_then(|d| d.to_zoned(self.tz.clone()).ok())
                .map_or(fallback, |z| z.timestamp().as_millisecond().max(0) as u64)
        };
        PeriodBounds {
            start_ms: ms(start, 0),
            end_ms: ms(end, u64::MAX),
        }
    }
}

fn rolling(window: Option<&str>, bucket: Option<&str>) -> Result<Window, String> {
    let ms = |what: &str, text: &str| -> Result<u64, String> {
        let d =
            crate::config::duration::parse_positive(text).map_err(|e| format!("{what}: {e}"))?;
        if d.subsec_nanos() != 0 {
            return Err(format!("{what} {text:?} must be whole seconds"));
        }
        Ok(d.as_millis().min(u128::from(u64::MAX)) as u64)
    };
    let window = window.ok_or("period = \"rolling\" needs a window, e.g. window = \"24h\"")?;
    let window_ms = ms("window", window)?;
    if window_ms < 60_000 {
        return Err(format!("window {window:?} must be at least 1m"));
    }
    let bucket_ms = match bucket {
        Some(b) => ms("bucket", b)?,
        None => window_ms / DEFAULT_BUCKETS,
    };
    if bucket_ms == 0 || window_ms % bucket_ms != 0 {
        return Err(format!(
            "bucket {} must divide the window {window:?} evenly",
            bucket.unwrap_or("(a sixtieth of the window)")
        ));
    }
    let buckets = window_ms / bucket_ms;
    if buckets > MAX_BUCKETS {
        return Err(format!(
            "window {window:?} in buckets of {} gives {buckets} buckets; at most {MAX_BUCKETS}",
            bucket.unwrap_or("?")
        ));
    }
    Ok(Window { bucket_ms, buckets })
}

/// `ms` as RFC 3339 in UTC.
pub fn rfc3339(ms: u64) -> String {
    Timestamp::from_millisecond(ms.min(i64::MAX as u64) as i64)
        .unwrap_or(Timestamp::MAX)
        .to_string()
}
