//! Printing what was measured.

use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;

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
    /// `POST /api/v1/events` to a gateway relaying to Kafka.
    Relayed,
    /// `POST /api/v1/events` to a gateway running plugins.
    Plugged,
    /// `GET /api/v1/events/{id}`.
    RestGet,
    /// MCP `tools/call` `fetch_event` on `/mcp`.
    McpFetch,
}

/// What a relay phase measured.
pub struct RelayFigures {
    /// Events acknowledged to the client.
    pub posted: u64,
    /// Their messages read back from the topic.
    pub read: u64,
    /// From the first POST until the relay had no lag.
    pub relayed_in: Duration,
    /// Messages the relay still had to deliver when the load stopped.
    pub lag_at_end: u64,
    /// From each event's storage to its message being read from the broker.
    pub latency_us: Histogram<u64>,
    /// Events/s of the same phase on the gateway without a broker.
    pub rate_without: f64,
    /// Gateway CPU time per event, relaying.
    pub cpu_per_event: Duration,
    /// Gateway CPU time per event, without a broker.
    pub cpu_without: Duration,
}

/// Prints the relay's figures: throughput to Kafka, end-to-end latency, CPU cost.
pub fn print_relay(f: &RelayFigures) {
    let to_kafka = f.posted as f64 / f.relayed_in.as_secs_f64();
    let ms = |q: f64| f.latency_us.value_at_quantile(q) as f64 / 1000.0;
    let added = f.cpu_per_event.as_secs_f64() - f.cpu_without.as_secs_f64();
    println!(
        "{:<28} {to_kafka:.0} events/s POST to Kafka ack ({:.2} of the rate without a broker); lag when the load stopped: {} messages; {} of {} messages read back",
        "  relay",
        to_kafka / f.rate_without,
        f.lag_at_end,
        f.read,
        f.posted,
    );
    println!(
        "{:<28} end to end (stored -> readable in Kafka): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        "  relay",
        ms(0.5),
        ms(0.99),
        f.latency_us.max() as f64 / 1000.0,
    );
    println!(
        "{:<28} gateway CPU per event: {:.1} us relaying vs {:.1} us without a broker ({:.2}x): the relay adds {:.2} cores per 10,000 events/s",
        "  relay",
        f.cpu_per_event.as_secs_f64() * 1e6,
        f.cpu_without.as_secs_f64() * 1e6,
        f.cpu_per_event.as_secs_f64() / f.cpu_without.as_secs_f64().max(1e-9),
        added * 10_000.0,
    );
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
    print_named(phase_name(phase), concurrency, r, baseline);
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Baseline => "baseline GET /healthz/liveness",
        Phase::Events => "POST /api/v1/events (durable)",
        Phase::CdEvents => "POST /webhook CDEvent (durable)",
        Phase::Relayed => "POST /api/v1/events + Kafka",
        Phase::Plugged => "POST /api/v1/events + plugins",
        Phase::RestGet => "GET /api/v1/events/{id}",
        Phase::McpFetch => "MCP fetch_event on /mcp",
    }
}

/// Prints one phase named `name`, with its throughput as a ratio of `baseline`'s when given.
pub fn print_named(name: &str, concurrency: usize, r: &RunResult, baseline: Option<&RunResult>) {
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

/// Prints `what`: the rate of phase `r` as a ratio of phase `of`'s, below them.
pub fn print_ratio(concurrency: usize, what: &str, r: &RunResult, of: &RunResult) {
    println!(
        "{:<28} {:>5} {what} = {:.2}",
        "",
        concurrency,
        r.rate() / of.rate()
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
pub fn disk_bytes(dir: &Path) -> std::io::Result<u64> {
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
