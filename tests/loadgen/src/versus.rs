//! The peer of `--versus`: cdviz-collector, started with a webhook source (`/webhook/000`) and a
//! Kafka sink to a fresh topic, loaded with the same CDEvents as the gateway's built-in webhook
//! source, and the two printed side by side: acknowledged rate, p99, and how many of the
//! acknowledged events each delivered to Kafka.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use tokio::process::{Child, Command};

use crate::relay;
use crate::report;
use crate::workload::{Request, RunResult, Target, run_id};

/// What one side of a comparison measured.
pub struct Side {
    /// The load phase.
    pub result: RunResult,
    /// Acknowledged events read back from its topic.
    pub delivered: u64,
}

/// cdviz-collector, running; killed when dropped.
pub struct Peer {
    target: Target,
    reader: relay::Reader,
    cdevent: Request,
    _dir: tempfile::TempDir,
    _child: Child,
}

impl Peer {
    /// Starts the cdviz-collector binary `bin` (`connect` with a configuration written to a
    /// temporary directory) on a free port, sinking to a fresh topic on `brokers`.
    pub async fn start(bin: &Path, brokers: &str, payload_bytes: usize) -> anyhow::Result<Self> {
        let topic = format!("cdviz-loadgen-{}", run_id());
        create_topic(brokers, &topic).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::Builder::new()
            .prefix("epr-loadgen-cdviz-")
            .tempdir()?;
        let config = dir.path().join("cdviz-collector.toml");
        std::fs::write(&config, configuration(port, brokers, &topic))?;
        let log = std::fs::File::create(dir.path().join("cdviz-collector.log"))?;
        let child = Command::new(bin)
            .arg("connect")
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let target = wait_listening(&url, dir.path()).await?;
        let reader = relay::Reader::start(brokers, &topic, None)?;
        Ok(Peer {
            target,
            reader,
            cdevent: Request::cdevent(payload_bytes).at("/webhook/000"),
            _dir: dir,
            _child: child,
        })
    }

    /// Posts CDEvents for `duration` and waits (at most 60 s) until what it acknowledged is in
    /// its topic or nothing more arrives for 3 s: the peer acknowledges before it sinks, so
    /// what it drops never arrives.
    pub async fn run(
        &self,
        concurrency: usize,
        duration: Duration,
        rate: Option<f64>,
    ) -> anyhow::Result<Side> {
        let already = self.reader.events();
        let result = self
            .target
            .run(&self.cdevent, concurrency, duration, rate)
            .await?;
        let started = Instant::now();
        let (mut seen, mut last_growth) = (self.reader.events(), Instant::now());
        while seen - already < result.ok && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.reader.events();
            if now > seen {
                (seen, last_growth) = (now, Instant::now());
            } else if last_growth.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        Ok(Side {
            delivered: (seen - already).min(result.ok),
            result,
        })
    }
}

/// Prints the two sides and their ratios.
pub fn print(concurrency: usize, gateway: &Side, peer: &Side) {
    report::print_named(
        "CDEvents, gateway + Kafka",
        concurrency,
        &gateway.result,
        None,
    );
    report::print_named("CDEvents, cdviz-collector", concurrency, &peer.result, None);
    let share = |side: &Side| side.delivered as f64 / side.result.ok.max(1) as f64 * 100.0;
    println!(
        "{:<28} {:>5} ack rate / cdviz-collector's = {:.2}; delivered to Kafka: gateway {} of {} ({:.1}%), cdviz-collector {} of {} ({:.1}%)",
        "",
        concurrency,
        gateway.result.rate() / peer.result.rate(),
        gateway.delivered,
        gateway.result.ok,
        share(gateway),
        peer.delivered,
        peer.result.ok,
        share(peer),
    );
}

/// The peer's configuration: HTTP on `port`, the webhook source `000`, the Kafka sink. The
/// strings are written as JSON strings, which TOML reads the same (quotes and backslashes in
/// `--brokers` stay inside the value).
fn configuration(port: u16, brokers: &str, topic: &str) -> String {
    let (brokers, topic) = (quoted(brokers), quoted(topic));
    format!(
        r#"[http]
host = "127.0.0.1"
port = {port}

[sources.cdevents_webhook]
enabled = true

[sources.cdevents_webhook.extractor]
type = "webhook"
id = "000"

[sinks.kafka]
enabled = true
type = "kafka"
brokers = {brokers}
topic = {topic}
"#
    )
}

/// `text` as a quoted string that TOML and JSON both read back as `text` (TOML refuses a raw
/// DEL character: the peer would then refuse its configuration, saying so in its log).
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Creates `topic` (one partition) so that its reader can start before the first message.
async fn create_topic(brokers: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("cannot create the Kafka admin client")?;
    let created = admin
        .create_topics(
            [&NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .with_context(|| format!("cannot create topic {topic} on {brokers}"))?;
    for result in created {
        result.map_err(|(topic, code)| anyhow!("cannot create topic {topic}: {code}"))?;
    }
    Ok(())
}

/// Waits (at most 30 s) until the peer accepts connections on `url`; its log is in `dir`.
async fn wait_listening(url: &str, dir: &Path) -> anyhow::Result<Target> {
    let address = url.trim_start_matches("http://");
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Target::unchecked(url, None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(dir.join("cdviz-collector.log")).unwrap_or_default();
    bail!("cdviz-collector did not listen on {url} within 30 s:\n{log}")
}
