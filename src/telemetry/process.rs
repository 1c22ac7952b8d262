//! The standard `process_*` metrics (CPU, resident memory, start time, open
//! descriptors), read from /proc on each scrape; absent on other systems.
//! `prometheus-client` has no process collector, so this is one.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

#[derive(Debug, Default)]
pub struct ProcessCollector;

/// Clock ticks are 100 per second on every Linux architecture appauth builds for.
const TICKS: f64 = 100.0;

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Unit,
    value: f64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, Some(&unit), MetricType::Gauge)?
        .encode_gauge(&value)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return Ok(());
        };
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        if let (Some(utime), Some(stime)) = (field(14), field(15)) {
            encoder
                .encode_descriptor(
                    "process_cpu",
                    "Total user and system CPU time spent in seconds.",
                    Some(&Unit::Seconds),
                    MetricType::Counter,
                )?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(
                    &((utime + stime) as f64 / TICKS),
                    None,
                )?;
        }
        // VmRSS is in kB whatever the page size (16K and 64K pages exist).
        let rss_kb = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        if let Some(kb) = rss_kb {
            gauge(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size in bytes.",
                Unit::Bytes,
                (kb * 1024) as f64,
            )?;
        }
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        if let (Some(start_ticks), Some(boot)) = (field(22), boot) {
            gauge(
                &mut encoder,
                "process_start_time",
                "Start time of the process since unix epoch in seconds.",
                Unit::Seconds,
                boot as f64 + start_ticks as f64 / TICKS,
            )?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            // Minus the handle reading the directory.
            let open = fds.count().saturating_sub(1) as i64;
            encoder
                .encode_descriptor(
                    "process_open_fds",
                    "Number of open file descriptors.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&open)?;
        }
        Ok(())
    }
}
