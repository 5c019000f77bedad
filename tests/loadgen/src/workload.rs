//! The requests sent and the workers that send them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

/// Properties of the receiver's schema (and of every payload).
const PROPERTIES: usize = 10;

/// One kind of request, sent over and over.
pub struct Request {
    method: Method,
    path: String,
    body: Bytes,
}

impl Request {
    /// The baseline: a no-op health check.
    pub fn liveness() -> Self {
        Request {
            method: Method::GET,
            path: "/healthz/liveness".into(),
            body: Bytes::new(),
        }
    }

    /// An EPR event for `receiver_id` whose payload is about `payload_bytes` long.
    pub fn event(receiver_id: &str, payload_bytes: usize) -> Self {
        let value_len = (payload_bytes / PROPERTIES).saturating_sub(8).max(1);
        let payload: serde_json::Map<String, Value> = (0..PROPERTIES)
            .map(|i| (format!("p{i}"), Value::String("x".repeat(value_len))))
            .collect();
        let body = json!({
            "name": "loadgen-unit", "version": "1.0.0", "release": "2026.11",
            "platform_id": "x86_64-linux", "package": "oci",
            "description": "event posted by epr-loadgen", "payload": payload,
            "success": true, "event_receiver_id": receiver_id,
        });
        Request {
            method: Method::POST,
            path: "/api/v1/events".into(),
            body: Bytes::from(body.to_string()),
        }
    }
}

/// What one phase measured.
pub struct RunResult {
    /// Requests answered 200.
    pub ok: u64,
    /// Requests answered otherwise.
    pub failed: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Latency of the successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
}

/// A gateway to send requests to.
pub struct Target {
    addr: String,
    host: String,
    token: Option<String>,
}

impl Target {
    /// Checks that the gateway at `url` answers.
    pub async fn connect(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let host = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("only http:// URLs are supported, got {url}"))?
            .to_owned();
        let target = Target {
            addr: host.clone(),
            host,
            token,
        };
        let mut conn = target.open().await?;
        let (status, _) = target.send(&mut conn, &Request::liveness()).await?;
        if status != StatusCode::OK {
            bail!("/healthz/liveness answered {status}");
        }
        Ok(target)
    }

    /// Creates the receiver the events are posted to: a 10-property schema.
    pub async fn create_receiver(&self) -> anyhow::Result<String> {
        let properties: serde_json::Map<String, Value> = (0..PROPERTIES)
            .map(|i| {
                (
                    format!("p{i}"),
                    json!({"type": "string", "maxLength": 4096}),
                )
            })
            .collect();
        let required: Vec<String> = (0..PROPERTIES).map(|i| format!("p{i}")).collect();
        let body = json!({
            "name": "loadgen", "type": "dev.epr.loadgen", "version": "1.0.0",
            "description": "receiver made by epr-loadgen",
            "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                "properties": properties, "required": required, "additionalProperties": false},
        });
        let request = Request {
            method: Method::POST,
            path: "/api/v1/receivers".into(),
            body: Bytes::from(body.to_string()),
        };
        let mut conn = self.open().await?;
        let (status, body) = self.send(&mut conn, &request).await?;
        let answer: Value = serde_json::from_slice(&body).context("receiver answer is not JSON")?;
        if status != StatusCode::OK {
            bail!("creating the receiver failed with {status}: {answer}");
        }
        answer["data"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no receiver id in {answer}"))
    }

    async fn open(&self) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }

    async fn send(
        &self,
        conn: &mut http1::SendRequest<Full<Bytes>>,
        request: &Request,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut builder = hyper::Request::builder()
            .method(request.method.clone())
            .uri(&request.path)
            .header("host", &self.host)
            .header("content-type", "application/json");
        if let Some(token) = &self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let req = builder.body(Full::new(request.body.clone()))?;
        conn.ready().await?;
        let response = conn.send_request(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Sends `request` from `concurrency` connections for `duration`.
    pub async fn run(
        self: &Target,
        request: &Request,
        concurrency: usize,
        duration: Duration,
    ) -> anyhow::Result<RunResult> {
        let mut conns = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            conns.push(self.open().await?);
        }
        let target = Arc::new(Target {
            addr: self.addr.clone(),
            host: self.host.clone(),
            token: self.token.clone(),
        });
        let request = Arc::new(Request {
            method: request.method.clone(),
            path: request.path.clone(),
            body: request.body.clone(),
        });
        let started = Instant::now();
        let deadline = started + duration;
        let workers: Vec<_> = conns
            .into_iter()
            .map(|mut conn| {
                let (target, request) = (target.clone(), request.clone());
                tokio::spawn(async move {
                    let mut latency = Histogram::<u64>::new(3)?;
                    let (mut ok, mut failed) = (0u64, 0u64);
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let (status, _) = target.send(&mut conn, &request).await?;
                        if status == StatusCode::OK {
                            latency.record(sent.elapsed().as_micros() as u64)?;
                            ok += 1;
                        } else {
                            failed += 1;
                        }
                    }
                    anyhow::Ok((ok, failed, latency))
                })
            })
            .collect();
        let mut result = RunResult {
            ok: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            latency_us: Histogram::new(3)?,
        };
        for worker in workers {
            let (ok, failed, latency) = worker.await??;
            result.ok += ok;
            result.failed += failed;
            result.latency_us.add(latency)?;
        }
        result.elapsed = started.elapsed();
        Ok(result)
    }
}
