//! Printing what was measured.

use std::path::Path;

use crate::workload::RunResult;

/// What a phase sent.
#[derive(Clone, Copy)]
pub enum Phase {
    /// `GET /healthz/liveness`.
    Baseline,
    /// `POST /api/v1/events`, each durable before its answer.
    Events,
    /// `POST /webhook/000-cdevents`, each durable before its answer.
    CdEvents,
}

/// Prints the column titles.
pub fn print_header() {
    println!(
        "{:<28} {:>5} {:>9} {:>11} {:>9} {:>9} {:>9} {:>7} {:>9}",
        "phase", "conc", "requests", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "vs base"
    );
}

/// Prints one phase, with its throughput as a ratio of the baseline's when there is one.
pub fn print(phase: Phase, concurrency: usize, r: &RunResult, baseline: Option<&RunResult>) {
    let name = match phase {
        Phase::Baseline => "baseline GET /healthz/liveness",
        Phase::Events => "POST /api/v1/events (durable)",
        Phase::CdEvents => "POST /webhook CDEvent (durable)",
    };
    let rate = RunResult::rate;
    let ms = |q: f64| r.latency_us.value_at_quantile(q) as f64 / 1000.0;
    let ratio = baseline.map_or_else(|| "-".to_owned(), |b| format!("{:.2}", rate(r) / rate(b)));
    println!(
        "{:<28} {:>5} {:>9} {:>11.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>9}",
        name,
        concurrency,
        r.ok,
        rate(r),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        r.failed,
        ratio
    );
}

/// Prints the bytes the data directory occupies on disk, per event posted.
pub fn print_disk(dir: &Path, events: u64) -> anyhow::Result<()> {
    let bytes = disk_bytes(dir)?;
    println!(
        "disk: {bytes} bytes in {} for {events} events = {:.0} bytes/event",
        dir.display(),
        bytes as f64 / events.max(1) as f64
    );
    Ok(())
}

/// Bytes allocated on disk for every file under `dir`.
fn disk_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            disk_bytes(&entry.path())?
        } else {
            meta.blocks() * 512
        };
    }
    Ok(total)
}
