//! epr-loadgen: posts EPR events to an epr-gateway over keep-alive connections and reports
//! throughput, latency percentiles and bytes on disk per event, beside a baseline run in the
//! same command (a no-op `GET /healthz/liveness` at the same concurrency).

mod gateway;
mod report;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;

use report::Phase;
use workload::{Request, Target};

/// Load generator for epr-gateway.
///
/// Example (builds nothing; start from a release build of the gateway):
///   cargo build --release -p epr-gateway
///   cargo run --release -p epr-loadgen -- --spawn target/release/epr-gateway -c 1 -c 64 --cdevents
#[derive(Parser)]
#[command(name = "epr-loadgen", version, about, verbatim_doc_comment)]
struct Args {
    /// Start this epr-gateway binary on a fresh temporary data directory and a free port, and
    /// measure its disk use. Without it, --url is used.
    #[arg(long)]
    spawn: Option<PathBuf>,

    /// Gateway to load when not spawning one.
    #[arg(long, default_value = "http://127.0.0.1:8042")]
    url: String,

    /// Data directory of the gateway at --url, to report bytes on disk per event.
    #[arg(long)]
    data_dir: Option<PathBuf>,

    /// Concurrent keep-alive connections, each sending one request at a time. Repeat the flag
    /// to run several phases in one command.
    #[arg(short = 'c', long = "concurrency", default_values_t = [64])]
    concurrency: Vec<usize>,

    /// Seconds each phase runs.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,

    /// Size of each event's payload in bytes (spread over the 10 properties of the schema).
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,

    /// Bearer token sent with every request (admin token if one is configured).
    #[arg(long, env = "EPR_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Also post CDEvents to /webhook/000-cdevents after each EPR-event phase, and print the
    /// ratio of the two rates.
    #[arg(long)]
    cdevents: bool,

    /// Skip the baseline phases.
    #[arg(long)]
    no_baseline: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency.contains(&0) {
        bail!("--concurrency must be at least 1");
    }
    let duration = Duration::from_secs_f64(args.duration);
    let spawned = match &args.spawn {
        Some(bin) => Some(gateway::Spawned::start(bin).await?),
        None => None,
    };
    let (url, data_dir) = match &spawned {
        Some(g) => (g.url.clone(), Some(g.data_dir().to_owned())),
        None => (
            args.url.trim_end_matches('/').to_owned(),
            args.data_dir.clone(),
        ),
    };
    let target = Target::connect(&url, args.token.clone())
        .await
        .with_context(|| format!("cannot reach the gateway at {url}"))?;
    let receiver_id = target.create_receiver().await?;
    let event = Request::event(&receiver_id, args.payload_bytes);
    let cdevent = Request::cdevent(args.payload_bytes);
    println!(
        "epr-loadgen: {url}, {} s per phase, payload {} bytes",
        args.duration, args.payload_bytes
    );
    report::print_header();
    let mut events_posted = 0u64;
    for &concurrency in &args.concurrency {
        let baseline = if args.no_baseline {
            None
        } else {
            let result = target
                .run(&Request::liveness(), concurrency, duration)
                .await?;
            report::print(Phase::Baseline, concurrency, &result, None);
            Some(result)
        };
        let result = target.run(&event, concurrency, duration).await?;
        events_posted += result.ok;
        report::print(Phase::Events, concurrency, &result, baseline.as_ref());
        if args.cdevents {
            let cdevents = target.run(&cdevent, concurrency, duration).await?;
            events_posted += cdevents.ok;
            report::print(Phase::CdEvents, concurrency, &cdevents, baseline.as_ref());
            println!(
                "{:<28} {:>5} CDEvent rate / EPR-event rate = {:.2}",
                "",
                concurrency,
                cdevents.rate() / result.rate()
            );
        }
    }
    if let Some(dir) = data_dir {
        report::print_disk(&dir, events_posted)?;
    }
    Ok(())
}
