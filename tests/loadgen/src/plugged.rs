//! The plugin phase: a second gateway with three `webhook-firer` watchers POSTing every event to
//! a local sink and the `cdevents-to-epr` transform on every event's request path, loaded like
//! the gateway without plugins; then waits until the watchers have delivered everything.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request as HttpRequest, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::KIND;
use crate::gateway::Spawned;
use crate::workload::{Request, RunResult, Target};

/// Names of the watchers; each posts every event to the sink once.
const WATCHERS: [&str; 3] = ["fire-1", "fire-2", "fire-3"];

/// How long the backlog phase posts while the watchers are disabled.
const BACKLOG_POSTING: Duration = Duration::from_secs(2);

/// The transform on the request path.
const TRANSFORM: &str = "cdevents-to-epr";

/// A local HTTP server answering 204 to every request and counting them.
struct Sink {
    port: u16,
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    async fn start() -> anyhow::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                let service = service_fn(move |request: HttpRequest<Incoming>| {
                    let counter = counter.clone();
                    async move {
                        // read the whole body, as a real receiver would
                        let _ = request.into_body().collect().await;
                        counter.fetch_add(1, Ordering::Relaxed);
                        let mut response = Response::new(Empty::<Bytes>::new());
                        *response.status_mut() = hyper::StatusCode::NO_CONTENT;
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Ok(Sink {
            port,
            received,
            task,
        })
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway with the plugins installed, and the sink its watchers post to.
pub struct Plugged {
    gateway: Spawned,
    target: Target,
    sink: Sink,
    receiver_id: String,
}

/// Reads `plugins/<file>.wasm`, saying how to build it when it is missing.
fn component(dir: &Path, file: &str) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(format!("{file}.wasm"));
    std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}: build the plugins first (cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml)",
            path.display()
        )
    })
}

impl Plugged {
    /// Starts a gateway, the sink, and installs the plugins from `dir` (the `.wasm` files of
    /// `plugins/`), all subscribed to the load generator's events.
    pub async fn start(bin: &Path, dir: &Path, token: Option<String>) -> anyhow::Result<Self> {
        let firer = component(dir, "webhook_firer")?;
        let transform = component(dir, "cdevents_to_epr")?;
        let gateway = Spawned::start(bin, &[]).await?;
        let target = Target::connect(&gateway.url, token).await?;
        let sink = Sink::start().await?;
        let subscription = json!({"types": [KIND]});
        for name in WATCHERS {
            let grants = json!({
                "allowed_hosts": [format!("127.0.0.1:{}", sink.port)],
                "config": {"url": format!("http://127.0.0.1:{}/{name}", sink.port)},
                "subscription": subscription,
            });
            target.upload_plugin(name, firer.clone(), &grants).await?;
        }
        let grants = json!({"subscription": subscription});
        target.upload_plugin(TRANSFORM, transform, &grants).await?;
        let receiver_id = target.create_receiver().await?;
        Ok(Plugged {
            gateway,
            target,
            sink,
            receiver_id,
        })
    }

    /// Posts events for `duration`, waits until every watcher has delivered all of them, and
    /// prints the figures beside `without` (the same phase on the gateway without plugins,
    /// which used `cpu_without` per event).
    pub async fn run(
        &self,
        payload_bytes: usize,
        (concurrency, duration, rate): (usize, Duration, Option<f64>),
        without: &RunResult,
        cpu_without: Duration,
    ) -> anyhow::Result<()> {
        let event = Request::event(&self.receiver_id, payload_bytes);
        let received_before = self.sink.received();
        let cpu_before = self.gateway.cpu_time()?;
        let started = Instant::now();
        let result = self.target.run(&event, concurrency, duration, rate).await?;
        let lag_at_end = self.lag().await?;
        let expected = result.ok * WATCHERS.len() as u64;
        self.delivered(received_before + expected, started).await?;
        let delivered_in = started.elapsed();
        let cpu_per_event =
            (self.gateway.cpu_time()? - cpu_before).div_f64(result.ok.max(1) as f64);
        let transform_calls = self.calls(TRANSFORM).await?;
        crate::report::print(
            crate::report::Phase::Plugged,
            concurrency,
            &result,
            Some(without),
        );
        println!(
            "{:<28} events/s {:.2} of the gateway without plugins ({:.1}% lost); transform calls so far: {transform_calls}",
            "  plugins",
            result.rate() / without.rate(),
            100.0 * (1.0 - result.rate() / without.rate()),
        );
        println!(
            "{:<28} {} watchers delivered {} webhooks in {:.1} s from the first POST ({:.0}/s); they trailed by {lag_at_end} events when the load stopped",
            "  plugins",
            WATCHERS.len(),
            self.sink.received() - received_before,
            delivered_in.as_secs_f64(),
            expected as f64 / delivered_in.as_secs_f64(),
        );
        println!(
            "{:<28} gateway CPU per event, deliveries included: {:.1} us with plugins vs {:.1} us without ({:.2}x)",
            "  plugins",
            cpu_per_event.as_secs_f64() * 1e6,
            cpu_without.as_secs_f64() * 1e6,
            cpu_per_event.as_secs_f64() / cpu_without.as_secs_f64().max(1e-9),
        );
        self.backlog(&event, concurrency, cpu_without).await
    }

    /// The watchers' own cost: with the watchers disabled, posts events for [`BACKLOG_POSTING`],
    /// then enables them and measures the gateway's CPU time while they deliver that backlog (the
    /// only work it then does), per delivered webhook.
    async fn backlog(
        &self,
        event: &Request,
        concurrency: usize,
        cpu_without: Duration,
    ) -> anyhow::Result<()> {
        self.set_watchers_enabled(false).await?;
        let received_before = self.sink.received();
        let posted = self
            .target
            .run(event, concurrency, BACKLOG_POSTING, None)
            .await?;
        if posted.ok == 0 {
            bail!(
                "no event was stored in the backlog phase ({} refused)",
                posted.failed
            );
        }
        let expected = posted.ok * WATCHERS.len() as u64;
        let cpu_before = self.gateway.cpu_time()?;
        let started = Instant::now();
        self.set_watchers_enabled(true).await?;
        self.delivered(received_before + expected, started).await?;
        let drained_in = started.elapsed();
        let per_webhook = (self.gateway.cpu_time()? - cpu_before).div_f64(expected as f64);
        println!(
            "{:<28} {} watchers delivered a backlog of {expected} webhooks in {:.1} s ({:.0}/s); gateway CPU per delivered webhook: {:.1} us ({:.2}x the CPU of ingesting an event without plugins)",
            "  plugins backlog",
            WATCHERS.len(),
            drained_in.as_secs_f64(),
            expected as f64 / drained_in.as_secs_f64(),
            per_webhook.as_secs_f64() * 1e6,
            per_webhook.as_secs_f64() / cpu_without.as_secs_f64().max(1e-9),
        );
        Ok(())
    }

    /// Waits until the sink has received `total` webhooks, at most 600 s after `started`.
    async fn delivered(&self, total: u64, started: Instant) -> anyhow::Result<()> {
        let limit = Duration::from_secs(600);
        while self.sink.received() < total {
            if started.elapsed() > limit {
                bail!(
                    "the sink received {} of {total} webhooks within {limit:?}",
                    self.sink.received()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Enables or disables every watcher.
    async fn set_watchers_enabled(&self, enabled: bool) -> anyhow::Result<()> {
        for name in WATCHERS {
            self.target
                .patch_json(
                    &format!("/api/v1/plugins/{name}"),
                    &json!({ "enabled": enabled }),
                )
                .await?;
        }
        Ok(())
    }

    /// How many log entries the slowest watcher still has to handle.
    async fn lag(&self) -> anyhow::Result<u64> {
        let status = self.target.get_json("/healthz/status").await?;
        let last = status["log"]["last_sequence"].as_u64().unwrap_or(0);
        let mut slowest = last;
        for name in WATCHERS {
            let plugin = self.plugin(name).await?;
            slowest = slowest.min(plugin["cursor"].as_u64().unwrap_or(0));
        }
        Ok(last - slowest)
    }

    /// Calls made to plugin `name` since the gateway started.
    async fn calls(&self, name: &str) -> anyhow::Result<u64> {
        Ok(self.plugin(name).await?["calls"].as_u64().unwrap_or(0))
    }

    async fn plugin(&self, name: &str) -> anyhow::Result<Value> {
        let answer = self
            .target
            .get_json(&format!("/api/v1/plugins/{name}"))
            .await?;
        Ok(answer["data"].clone())
    }
}
