//! How many "Alert fired." lines are logged: under load a rule can fire many times a second, and
//! one WARN line each would flood the log. The first [`PER_SECOND`] alerts of each second are
//! logged one by one; the rest are only counted, and the next line logged says how many were
//! left out. Every alert is still counted in `tollgate_alerts_total`, streamed and delivered
//! to the notifiers: only the log lines are limited.

/// Alerts logged one by one per second.
pub(crate) const PER_SECOND: u32 = 5;

/// What to do with the log line of an alert that just fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogLine {
    /// Log it; `left_out` alerts fired since the last line logged were not logged.
    Log {
        /// Alerts not logged since the previous line.
        left_out: u64,
    },
    /// Count it, do not log it.
    Skip,
}

/// The per-second budget of alert log lines.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    second: u64,
    logged: u32,
    left_out: u64,
}

impl LogBudget {
    /// The decision for an alert fired at `unix_ms`.
    pub(crate) fn admit(&mut self, unix_ms: u64) -> LogLine {
        let second = unix_ms / 1000;
        if second != self.second {
            self.second = second;
            self.logged = 0;
        }
        if self.logged >= PER_SECOND {
            self.left_out += 1;
            return LogLine::Skip;
        }
        self.logged += 1;
        LogLine::Log {
            left_out: std::mem::take(&mut self.left_out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_logged_five_a_second_and_the_rest_is_summed_up() {
        let mut b = LogBudget::default();
        let mut logged = 0;
        for i in 0..1000 {
            // 1000 alerts within one second.
            if let LogLine::Log { left_out } = b.admit(5_000 + i / 10) {
                assert_eq!(left_out, 0);
                logged += 1;
            }
        }
        assert_eq!(logged, PER_SECOND);
        // The next second's first line says how many were left out.
        assert_eq!(b.admit(6_000), LogLine::Log { left_out: 995 });
        assert_eq!(b.admit(6_001), LogLine::Log { left_out: 0 });
    }

    #[test]
    fn a_few_alerts_are_all_logged() {
        let mut b = LogBudget::default();
        for s in 0..20 {
            assert_eq!(b.admit(s * 1000), LogLine::Log { left_out: 0 });
        }
    }
}
