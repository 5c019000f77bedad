//! epr-loadgen: posts EPR events to an epr-gateway over keep-alive connections and reports
//! throughput, latency percentiles and bytes on disk per event, beside a baseline run in the
//! same command (a no-op `GET /healthz/liveness` at the same concurrency). With `--brokers`, a
//! second gateway relays to Kafka and the relay's throughput, end-to-end latency and CPU cost are
//! reported beside the gateway without a broker. With `--plugins`, a gateway running three
//! webhook watchers and a transform is loaded the same way, and its throughput, delivery and CPU
//! reported beside the gateway without plugins. With `--mcp`, one stored event is read over REST
//! and through MCP's `fetch_event`, and the two rates compared. With `--db`, gateways on
//! PostgreSQL (one, then several sharing a database) are loaded beside the embedded one.

mod fill;
mod gateway;
mod plugged;
mod relay;
mod replicated;
mod report;
mod versus;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use gateway::Spawned;
use report::Phase;
use workload::{Request, Target};

/// Load generator for epr-gateway.
///
/// Example (builds nothing; start from a release build of the gateway):
///   cargo build --release -p epr-gateway
///   cargo run --release -p epr-loadgen -- --spawn target/release/epr-gateway -c 1 -c 64 --cdevents
///
/// With a Kafka broker (here Tansu, as the tests use it):
///   tansu broker --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092 &
///   epr-loadgen --spawn target/release/epr-gateway --brokers 127.0.0.1:9092 -c 64
///
/// Against cdviz-collector (both relaying the same CDEvents to that broker):
///   epr-loadgen --spawn target/release/epr-gateway --brokers 127.0.0.1:9092 --versus ~/.cache/epr-gateway/cdviz-collector-0.47.1/bin/cdviz-collector -c 64
///
/// With plugins (built first: cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml):
///   epr-loadgen --spawn target/release/epr-gateway --plugins plugins/target/wasm32-wasip2/release -c 64
///
/// How the store's size moves the rates and the memory (here 10 million events):
///   epr-loadgen --spawn target/release/epr-gateway --fill 10000000
///
/// With PostgreSQL (one gateway, then three, each set on a database made on that server):
///   epr-loadgen --spawn target/release/epr-gateway --db postgres://epr@127.0.0.1:5432/postgres --replicas 3 -c 64
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

    /// Requests per second to send in each phase (all connections together); without it, each
    /// connection sends its next request as soon as the previous one is answered. A fixed rate
    /// compares CPU per event at the same load.
    #[arg(short, long)]
    rate: Option<f64>,

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

    /// Also read one stored event after each EPR-event phase, over REST (`GET
    /// /api/v1/events/{id}`) and through MCP (`fetch_event` on `/mcp`), and print the ratio of
    /// the two rates.
    #[arg(long)]
    mcp: bool,

    /// Skip the baseline phases.
    #[arg(long)]
    no_baseline: bool,

    /// Kafka bootstrap servers (needs --spawn): a second gateway relaying to a fresh topic
    /// there is loaded after each EPR-event phase; reports events/s from POST to Kafka, the
    /// end-to-end latency (event stored to message readable) and the relay's CPU per event.
    #[arg(long, requires = "spawn")]
    brokers: Option<String>,

    /// Directory holding the built first-party plugins (`webhook_firer.wasm`,
    /// `cdevents_to_epr.wasm`; needs --spawn): a second gateway with three webhook-firer
    /// watchers POSTing every event to a local sink and cdevents-to-epr as a transform on every
    /// event is loaded after each EPR-event phase; reports its events/s as a ratio of the
    /// gateway without plugins, the time the watchers take to deliver everything, and CPU per
    /// event.
    #[arg(long, requires = "spawn", value_name = "DIR")]
    plugins: Option<PathBuf>,

    /// A PostgreSQL server (a URL of any database on it; needs --spawn): one gateway, then
    /// --replicas gateways, each set on a fresh database made there (dropped at the end), are
    /// loaded after each EPR-event phase with the same connections spread over them; reports
    /// their events/s as a ratio of the embedded gateway's, PostgreSQL's share of the CPU, and
    /// bytes per event and per index in the database.
    #[arg(long, requires = "spawn", value_name = "URL")]
    db: Option<String>,

    /// A cdviz-collector binary (needs --brokers): after each EPR-event phase, unique CDEvents
    /// are posted at the same concurrency for the same time to the relaying gateway's
    /// /webhook/000-cdevents and to this peer's /webhook/000 (a webhook source, a Kafka sink to
    /// a fresh topic on the same broker); prints both rates and p99s, and how many of the
    /// events each acknowledged reached Kafka. Install it with
    /// `cargo install cdviz-collector --version 0.47.1 --features sink_kafka --locked` (needs
    /// cmake).
    #[arg(long, requires = "brokers", value_name = "BIN")]
    versus: Option<PathBuf>,

    /// Gateways of the second set on --db.
    #[arg(long, default_value_t = 3, requires = "db")]
    replicas: usize,

    /// Instead of the phases: post events (at the first --concurrency) until the spawned
    /// gateway's store holds N, printing at every tenth the ingest rate, a lookup's p99, the
    /// gateway's resident memory and the disk bytes per event (its cache: EPR_CACHE_MB).
    #[arg(long, requires = "spawn", value_name = "N", conflicts_with_all = ["brokers", "plugins", "db"])]
    fill: Option<u64>,
}

/// The receiver type the load generator's events have.
const KIND: &str = "dev.epr.loadgen";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency.contains(&0) {
        bail!("--concurrency must be at least 1");
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be a positive number of requests per second");
    }
    let duration = Duration::from_secs_f64(args.duration);
    let spawned = match &args.spawn {
        Some(bin) => Some(Spawned::start(bin, &[]).await?),
        None => None,
    };
    let relaying = match (&args.spawn, &args.brokers) {
        (Some(bin), Some(brokers)) => {
            Some(Relaying::start(bin, brokers, args.token.clone()).await?)
        }
        _ => None,
    };
    let peer = match &args.versus {
        Some(bin) => {
            let brokers = args.brokers.as_deref().unwrap_or_default();
            Some(versus::Peer::start(bin, brokers, args.payload_bytes).await?)
        }
        None => None,
    };
    let plugged = match (&args.spawn, &args.plugins) {
        (Some(bin), Some(dir)) => {
            Some(plugged::Plugged::start(bin, dir, args.token.clone()).await?)
        }
        _ => None,
    };
    let replicated = match (&args.spawn, &args.db) {
        (Some(bin), Some(db)) => Some(
            replicated::Replicated::start(
                bin,
                db,
                args.replicas.max(1),
                args.payload_bytes,
                args.token.clone(),
            )
            .await?,
        ),
        _ => None,
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
    if let (Some(total), Some(gateway)) = (args.fill, &spawned) {
        println!(
            "epr-loadgen: filling {url} with {total} events of {} bytes at concurrency {}",
            args.payload_bytes, args.concurrency[0]
        );
        return fill::run(&target, gateway, &event, args.concurrency[0], total).await;
    }
    println!(
        "epr-loadgen: {url}, {} s per phase, payload {} bytes",
        args.duration, args.payload_bytes
    );
    let reads = match args.mcp {
        true => {
            let id = target.stored_event(&event).await?;
            Some((Request::get_event(&id), Request::mcp_fetch_event(&id)))
        }
        false => None,
    };
    report::print_header();
    let mut events_posted = reads.is_some().into();
    for &concurrency in &args.concurrency {
        let baseline = if args.no_baseline {
            None
        } else {
            let result = target
                .run(&Request::liveness(), concurrency, duration, args.rate)
                .await?;
            report::print(Phase::Baseline, concurrency, &result, None);
            Some(result)
        };
        let cpu_before = spawned.as_ref().map(Spawned::cpu_time).transpose()?;
        let result = target.run(&event, concurrency, duration, args.rate).await?;
        events_posted += result.ok;
        report::print(Phase::Events, concurrency, &result, baseline.as_ref());
        let cpu_per_event = match (&spawned, cpu_before) {
            (Some(g), Some(before)) => Some((g.cpu_time()? - before) / result.ok.max(1) as u32),
            _ => None,
        };
        if let (Some(relaying), Some(cpu_per_event)) = (&relaying, cpu_per_event) {
            relaying
                .run(&args, concurrency, duration, &result, cpu_per_event)
                .await?;
        }
        if let (Some(relaying), Some(peer)) = (&relaying, &peer) {
            let rate = args.rate;
            let ours = relaying
                .cdevents(args.payload_bytes, concurrency, duration, rate)
                .await?;
            let theirs = peer.run(concurrency, duration, rate).await?;
            versus::print(concurrency, &ours, &theirs);
        }
        if let (Some(plugged), Some(cpu_per_event)) = (&plugged, cpu_per_event) {
            plugged
                .run(
                    args.payload_bytes,
                    (concurrency, duration, args.rate),
                    &result,
                    cpu_per_event,
                )
                .await?;
        }
        if let Some(replicated) = &replicated {
            replicated
                .run((concurrency, duration, args.rate), &result)
                .await?;
        }
        if args.cdevents {
            let cdevents = target
                .run(&cdevent, concurrency, duration, args.rate)
                .await?;
            events_posted += cdevents.ok;
            report::print(Phase::CdEvents, concurrency, &cdevents, baseline.as_ref());
            report::print_ratio(
                concurrency,
                "CDEvent rate / EPR-event rate",
                &cdevents,
                &result,
            );
        }
        if let Some((rest, mcp)) = &reads {
            let by_rest = target.run(rest, concurrency, duration, args.rate).await?;
            report::print(Phase::RestGet, concurrency, &by_rest, baseline.as_ref());
            let by_mcp = target.run(mcp, concurrency, duration, args.rate).await?;
            report::print(Phase::McpFetch, concurrency, &by_mcp, baseline.as_ref());
            report::print_ratio(
                concurrency,
                "MCP fetch_event rate / REST GET rate",
                &by_mcp,
                &by_rest,
            );
        }
    }
    if let Some(dir) = data_dir {
        report::print_disk(&dir, events_posted)?;
    }
    if let Some(replicated) = replicated {
        replicated.finish().await?;
    }
    Ok(())
}

/// A second gateway relaying to Kafka, its topic's reader, and the events it is sent.
struct Relaying {
    gateway: Spawned,
    target: Target,
    reader: relay::Reader,
    /// Reads the CDEvents' messages (`--versus`).
    cdevents: relay::Reader,
    receiver_id: String,
}

impl Relaying {
    /// Starts a gateway relaying to a fresh topic on `brokers` and a reader of that topic.
    async fn start(
        bin: &std::path::Path,
        brokers: &str,
        token: Option<String>,
    ) -> anyhow::Result<Self> {
        let topic = format!("epr-loadgen-{}", workload::run_id());
        let env = [
            ("EPR_BROKERS", brokers.to_owned()),
            ("EPR_TOPIC", topic.clone()),
        ];
        let gateway = Spawned::start(bin, &env).await?;
        let target = Target::connect(&gateway.url, token).await?;
        relay::wait_connected(&target).await?;
        let receiver_id = target.create_receiver().await?;
        let reader = relay::Reader::start(brokers, &topic, Some(KIND))?;
        let cdevents = relay::Reader::start(brokers, &topic, Some(workload::CDEVENT_TYPE))?;
        Ok(Relaying {
            gateway,
            target,
            reader,
            cdevents,
            receiver_id,
        })
    }

    /// Posts CDEvents to the built-in webhook source for `duration` and waits until they all
    /// reached Kafka.
    async fn cdevents(
        &self,
        payload_bytes: usize,
        concurrency: usize,
        duration: Duration,
        rate: Option<f64>,
    ) -> anyhow::Result<versus::Side> {
        let already = self.cdevents.events();
        let result = self
            .target
            .run(
                &Request::cdevent(payload_bytes),
                concurrency,
                duration,
                rate,
            )
            .await?;
        relay::wait_drained(&self.target, Duration::from_secs(300)).await?;
        // the reader may trail the broker's acknowledgement by a fetch
        for _ in 0..100 {
            if self.cdevents.events() - already >= result.ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(versus::Side {
            delivered: self.cdevents.events() - already,
            result,
        })
    }

    /// Posts events for `duration`, waits until all reached Kafka and prints the figures beside
    /// `without` (the same phase on the gateway without a broker, which used `cpu_without` per
    /// event).
    async fn run(
        &self,
        args: &Args,
        concurrency: usize,
        duration: Duration,
        without: &workload::RunResult,
        cpu_without: Duration,
    ) -> anyhow::Result<()> {
        let event = Request::event(&self.receiver_id, args.payload_bytes);
        let already = self.reader.events();
        self.reader.take_latency()?;
        let cpu_before = self.gateway.cpu_time()?;
        let started = std::time::Instant::now();
        let result = self
            .target
            .run(&event, concurrency, duration, args.rate)
            .await?;
        let lag_at_end = relay::wait_drained(&self.target, Duration::from_secs(300)).await?;
        let relayed_in = started.elapsed();
        let cpu_per_event = (self.gateway.cpu_time()? - cpu_before) / result.ok.max(1) as u32;
        // the reader may trail the broker's acknowledgement by a fetch
        for _ in 0..100 {
            if self.reader.events() - already >= result.ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        report::print(Phase::Relayed, concurrency, &result, None);
        report::print_relay(&report::RelayFigures {
            posted: result.ok,
            read: self.reader.events() - already,
            relayed_in,
            lag_at_end,
            latency_us: self.reader.take_latency()?,
            rate_without: without.rate(),
            cpu_per_event,
            cpu_without,
        });
        Ok(())
    }
}
