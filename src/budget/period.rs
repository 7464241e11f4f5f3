//! Calendar periods in a time zone: the period a moment falls in, as unix milliseconds.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The length of a calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Midnight to midnight.
    Day,
    /// Monday midnight to Monday midnight.
    Week,
    /// The first of the month to the first of the next.
    Month,
}

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
    /// `day`, `week` or `month` in `timezone` (an IANA name; `None`: UTC).
    pub fn parse(period: &str, timezone: Option<&str>) -> Result<Period, String> {
        let length = match period {
            "day" => Length::Day,
            "week" => Length::Week,
            "month" => Length::Month,
            other => {
                return Err(format!(
                    "unknown period {other:?} (use day, week or month; rolling windows are not supported yet)"
                ))
            }
        };
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

    /// The period `now_ms` falls in.
    pub fn bounds(&self, now_ms: u64) -> PeriodBounds {
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

/// `ms` as RFC 3339 in UTC.
pub fn rfc3339(ms: u64) -> String {
    Timestamp::from_millisecond(ms.min(i64::MAX as u64) as i64)
        .unwrap_or(Timestamp::MAX)
        .to_string()
}
