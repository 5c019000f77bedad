//! `--fill N`: grows a spawned gateway's store to N events and prints, at every tenth, what
//! the store's size does to it: the ingest rate, a lookup's p99, the resident memory and the
//! bytes on disk per event.

use std::time::Duration;

use crate::gateway::Spawned;
use crate::report;
use crate::workload::{Request, RunResult, Target};

/// How long each burst of posting lasts between two looks at the store.
const BURST: Duration = Duration::from_secs(5);

/// How long a lookup phase at a checkpoint lasts.
const LOOKUPS: Duration = Duration::from_secs(3);

/// Posts `event` from `concurrency` connections until `total` events are stored, printing a
/// row at every tenth of the way.
pub async fn run(
    target: &Target,
    gateway: &Spawned,
    event: &Request,
    concurrency: usize,
    total: u64,
) -> anyhow::Result<()> {
    println!(
        "{:>12} {:>9} {:>12} {:>13} {:>10} {:>12}",
        "events", "events/s", "POST p99 ms", "GET p99 ms", "RSS MB", "disk B/event"
    );
    let step = (total / 10).max(1);
    let (mut stored, mut next) = (0u64, step);
    let mut since_checkpoint: Option<RunResult> = None;
    while stored < total {
        let burst = target.run(event, concurrency, BURST, None).await?;
        if burst.ok == 0 {
            anyhow::bail!("no event was stored in {BURST:?} ({} failed)", burst.failed);
        }
        stored += burst.ok;
        since_checkpoint = Some(match since_checkpoint {
            Some(mut so_far) => {
                so_far.ok += burst.ok;
                so_far.failed += burst.failed;
                so_far.elapsed += burst.elapsed;
                so_far.latency_us.add(&burst.latency_us)?;
                so_far
            }
            None => burst,
        });
        if stored >= next || stored >= total {
            let posted = since_checkpoint.take().expect("a burst ran");
            let id = target.store(event).await?;
            stored += 1;
            let lookups = target
                .run(&Request::get_event(&id), concurrency, LOOKUPS, None)
                .await?;
            let ms = |r: &RunResult| r.latency_us.value_at_quantile(0.99) as f64 / 1000.0;
            println!(
                "{stored:>12} {:>9.0} {:>12.2} {:>13.2} {:>10.0} {:>12.0}",
                posted.rate(),
                ms(&posted),
                ms(&lookups),
                gateway.resident_bytes()? as f64 / 1e6,
                report::disk_bytes(&gateway.data_dir())? as f64 / stored as f64,
            );
            while next <= stored {
                next += step;
            }
        }
    }
    Ok(())
}
