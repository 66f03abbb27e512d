//! Operational counters in Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::Service;

impl Service {
    /// Renders the counters (served to loopback callers only).
    pub fn render_metrics(&self) -> String {
        let stats = self.inner.reader.stats();
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {value}");
        };
        counter(
            "lakeshare_log_replays_total",
            "Delta log replays that listed a snapshot's active files.",
            stats.log_replays.load(Ordering::Relaxed),
        );
        counter(
            "lakeshare_snapshot_cache_hits_total",
            "Active-file lists answered from the snapshot cache.",
            stats.file_list_cache_hits.load(Ordering::Relaxed),
        );
        counter(
            "lakeshare_incremental_file_list_updates_total",
            "Active-file lists advanced from an older list by reading only newer commits.",
            stats.incremental_file_list_updates.load(Ordering::Relaxed),
        );
        counter(
            "lakeshare_commit_range_reads_total",
            "Commit ranges read for change and startingVersion queries.",
            stats.commit_range_reads.load(Ordering::Relaxed),
        );
        counter(
            "lakeshare_async_queries_started_total",
            "Async queries started (duplicates of a running query are not counted).",
            self.inner.async_started.load(Ordering::Relaxed),
        );
        counter(
            "lakeshare_snapshot_cache_misses_total",
            "Active-file lists computed (full log replays and incremental updates).",
            stats.log_replays.load(Ordering::Relaxed)
                + stats.incremental_file_list_updates.load(Ordering::Relaxed),
        );
        counter(
            "lakeshare_log_replay_microseconds_total",
            "Time spent computing active-file lists, in microseconds.",
            stats.file_list_micros.load(Ordering::Relaxed),
        );
        counter(
            "lakeshare_snapshot_builds_total",
            "Snapshots built or refreshed.",
            stats.snapshot_builds.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP lakeshare_async_queries_running Async queries running now."
        );
        let _ = writeln!(out, "# TYPE lakeshare_async_queries_running gauge");
        let _ = writeln!(
            out,
            "lakeshare_async_queries_running {}",
            self.inner.async_running.load(Ordering::Relaxed)
        );
        self.inner.telemetry.render(&mut out);
        out
    }
}
