//! Medians, spreads, percentiles and the machine they were measured on.

use std::time::Duration;

/// `median (min..max)` of `values`.
pub(crate) fn summary(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    format!("{median:.0} ({:.0}..{:.0})", values[0], values[values.len() - 1])
}

/// The `p`th percentile (0..=100) of `durations`.
pub(crate) fn percentile(durations: &mut [Duration], p: usize) -> Duration {
    durations.sort();
    let index = (durations.len() * p / 100).min(durations.len() - 1);
    durations[index]
}

pub(crate) fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// The value in KiB of `field` (`"VmHWM:"`, `"MemTotal:"`, ...) in a `/proc` file of
/// `name: value kB` lines, such as `/proc/meminfo` or `/proc/<pid>/status`.
pub(crate) fn proc_kib(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok().and_then(|text| {
        text.lines()
            .find(|line| line.starts_with(field))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
    })
}

/// Cores and memory, from /proc.
pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |cores| cores.get());
    let memory = proc_kib("/proc/meminfo", "MemTotal:")
        .map_or_else(|| "?".to_owned(), |kib| format!("{} GiB", kib / (1 << 20)));
    format!("machine: {cores} cores, {memory}")
}

/// The process's peak resident memory so far, from /proc/self/status (VmHWM).
pub(crate) fn peak_rss_mib() -> u64 {
    proc_kib("/proc/self/status", "VmHWM:").map_or(0, |kib| kib / 1024)
}

/// CPU seconds (user and system) that process `pid` has used so far, from `/proc/<pid>/stat`.
/// Both processes share the two cores, so these tell who spent them.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // USER_HZ: 100 on every Linux the kernel's ABI promises to user space.
    ticks as f64 / 100.0
}
