//! Reading another process's CPU time and memory from `/proc` (Linux).

use std::sync::OnceLock;

/// CPU time (user + system, all threads) of `pid`, in seconds.
pub fn cpu_seconds(pid: u32) -> std::io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected /proc/PID/stat")
    })?;
    Ok(ticks as f64 / clock_ticks() as f64)
}

/// utime + stime (fields 14 and 15) from a `/proc/PID/stat` line.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// A `/proc/PID/status` value in kB (e.g. `VmHWM`, `VmRSS`).
pub fn status_kb(pid: u32, key: &str) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_kb(&status, key).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{key} not in status"))
    })
}

fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if k != key {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` once (100 on Linux in practice).
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 17 0 0 20 0 9 0 55 1000 300";
        assert_eq!(parse_cpu_ticks(line), Some(267));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_status_values() {
        let status = "Name:\ttollgate\nVmHWM:\t   19876 kB\nVmRSS:\t   12000 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(19876));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(12000));
        assert_eq!(parse_status_kb(status, "VmPeak"), None);
    }

    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_ok());
        assert!(status_kb(pid, "VmHWM").expect("VmHWM") > 0);
    }
}
