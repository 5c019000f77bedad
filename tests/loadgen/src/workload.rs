//! The requests sent and the workers that send them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// Properties of the receiver's schema (and of every payload).
const PROPERTIES: usize = 10;

/// The type of the CDEvents sent (and of the gateway's receiver and messages for them).
pub const CDEVENT_TYPE: &str = "dev.cdevents.build.finished.0.3.0";

/// Where the request number goes in a numbered body.
const NUMBER: &str = "{{n}}";

/// One kind of request, sent over and over.
#[derive(Clone)]
pub struct Request {
    method: Method,
    path: String,
    /// The body; a numbered body holds `{{n}}` where each request puts its own number.
    body: Bytes,
    numbered: bool,
    /// Its content type.
    content_type: &'static str,
    /// Other headers.
    headers: Vec<(&'static str, String)>,
}

impl Request {
    /// A request with a JSON body (numbered or not) and no other header.
    fn json(method: Method, path: &str, body: Bytes, numbered: bool) -> Self {
        Request {
            method,
            path: path.into(),
            body,
            numbered,
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    /// `GET /api/v1/events/{id}`: one stored event with its receiver.
    pub fn get_event(id: &str) -> Self {
        Request::json(
            Method::GET,
            &format!("/api/v1/events/{id}"),
            Bytes::new(),
            false,
        )
    }

    /// The same event through MCP: `tools/call` of `fetch_event` on `/mcp` (Streamable HTTP;
    /// the gateway answers plain JSON).
    pub fn mcp_fetch_event(id: &str) -> Self {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "fetch_event", "arguments": {"id": id}}});
        let mut request = Request::json(Method::POST, "/mcp", Bytes::from(body.to_string()), false);
        request
            .headers
            .push(("accept", "application/json, text/event-stream".into()));
        request
    }

    /// The baseline: a no-op health check.
    pub fn liveness() -> Self {
        Request::json(Method::GET, "/healthz/liveness", Bytes::new(), false)
    }

    /// A CDEvent (`build.finished`, spec 0.5) to the built-in webhook source, with a unique id
    /// per request and about `payload_bytes` of `customData`.
    pub fn cdevent(payload_bytes: usize) -> Self {
        let body = json!({
            "context": {"specversion": "0.5.0", "id": NUMBER, "source": "/loadgen",
                "type": CDEVENT_TYPE, "timestamp": "2026-11-23T10:00:00Z"},
            "subject": {"id": "loadgen-build", "source": "/loadgen", "content": {"artifactId": "pkg:oci/loadgen@1"}},
            "customData": padding(payload_bytes),
        });
        Request::json(
            Method::POST,
            "/webhook/000-cdevents",
            Bytes::from(body.to_string()),
            true,
        )
    }

    /// The same request to `path`.
    pub fn at(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }

    /// The body of request number `n` of run `run`.
    fn body(&self, run: u128, n: u64) -> Bytes {
        if !self.numbered {
            return self.body.clone();
        }
        let text = std::str::from_utf8(&self.body).unwrap_or_default();
        Bytes::from(text.replacen(NUMBER, &format!("{run}-{n}"), 1))
    }

    /// An EPR event for `receiver_id` whose payload is about `payload_bytes` long.
    pub fn event(receiver_id: &str, payload_bytes: usize) -> Self {
        let payload = padding(payload_bytes);
        let body = json!({
            "name": "loadgen-unit", "version": "1.0.0", "release": "2026.11",
            "platform_id": "x86_64-linux", "package": "oci",
            "description": "event posted by epr-loadgen", "payload": payload,
            "success": true, "event_receiver_id": receiver_id,
        });
        Request::json(
            Method::POST,
            "/api/v1/events",
            Bytes::from(body.to_string()),
            false,
        )
    }
}

/// A number unique to this run of the load generator (the time it started, in nanoseconds).
pub fn run_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A JSON object of 10 string properties `p0`..`p9`, about `bytes` long in all.
fn padding(bytes: usize) -> Value {
    let value_len = (bytes / PROPERTIES).saturating_sub(8).max(1);
    let properties: serde_json::Map<String, Value> = (0..PROPERTIES)
        .map(|i| (format!("p{i}"), Value::String("x".repeat(value_len))))
        .collect();
    Value::Object(properties)
}

/// What one phase measured.
pub struct RunResult {
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered otherwise.
    pub failed: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Latency of the successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl RunResult {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// A gateway to send requests to.
pub struct Target {
    addr: String,
    host: String,
    token: Option<String>,
    /// Numbers numbered bodies across every phase of this run.
    counter: Arc<AtomicU64>,
    /// Makes numbered bodies of this run differ from those of earlier runs.
    run: u128,
}

impl Target {
    /// Checks that the gateway at `url` answers.
    pub async fn connect(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let target = Target::unchecked(url, token)?;
        let mut conn = target.open().await?;
        let (status, _) = target.send(&mut conn, &Request::liveness()).await?;
        if status != StatusCode::OK {
            bail!("/healthz/liveness answered {status}");
        }
        Ok(target)
    }

    /// A server at `url` (not necessarily a gateway), not asked anything yet.
    pub fn unchecked(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let host = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("only http:// URLs are supported, got {url}"))?
            .to_owned();
        Ok(Target {
            addr: host.clone(),
            host,
            token,
            counter: Arc::new(AtomicU64::new(0)),
            run: run_id(),
        })
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
        let request = Request::json(
            Method::POST,
            "/api/v1/receivers",
            Bytes::from(body.to_string()),
            false,
        );
        let answer = self
            .expect(&request, StatusCode::CREATED, "creating the receiver")
            .await?;
        answer["data"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no receiver id in {answer}"))
    }

    /// Stores one event of `event` (an events request) and checks that MCP's `fetch_event`
    /// finds it; its id.
    pub async fn stored_event(&self, event: &Request) -> anyhow::Result<String> {
        let id = self.store(event).await?;
        let found = self
            .expect(
                &Request::mcp_fetch_event(&id),
                StatusCode::OK,
                "MCP fetch_event",
            )
            .await?;
        if found["result"]["isError"] != json!(false) {
            bail!("MCP fetch_event failed: {found}");
        }
        Ok(id)
    }

    /// Stores one event of `event` (an events request); its id.
    pub async fn store(&self, event: &Request) -> anyhow::Result<String> {
        let answer = self
            .expect(event, StatusCode::CREATED, "storing an event")
            .await?;
        answer["data"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no event id in {answer}"))
    }

    /// Uploads the component `wasm` as plugin `name` with `grants`.
    pub async fn upload_plugin(
        &self,
        name: &str,
        wasm: Vec<u8>,
        grants: &Value,
    ) -> anyhow::Result<()> {
        let request = Request {
            method: Method::POST,
            path: format!("/api/v1/plugins?name={name}"),
            body: Bytes::from(wasm),
            numbered: false,
            content_type: "application/wasm",
            headers: vec![("x-epr-grants", grants.to_string())],
        };
        self.expect(
            &request,
            StatusCode::CREATED,
            &format!("uploading plugin {name}"),
        )
        .await
        .map(drop)
    }

    /// Sends `request` once, expecting `status` and a JSON answer; `what` names it in errors.
    async fn expect(
        &self,
        request: &Request,
        status: StatusCode,
        what: &str,
    ) -> anyhow::Result<Value> {
        let mut conn = self.open().await?;
        let (answered, body) = self.send(&mut conn, request).await?;
        let answer: Value = serde_json::from_slice(&body)
            .with_context(|| format!("{what}: the answer is not JSON"))?;
        if answered != status {
            bail!("{what} failed with {answered}: {answer}");
        }
        Ok(answer)
    }

    /// `PATCH path` with the JSON `body`, answered 200 with JSON.
    pub async fn patch_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = Request::json(Method::PATCH, path, Bytes::from(body.to_string()), false);
        self.expect(&request, StatusCode::OK, &format!("PATCH {path}"))
            .await
    }

    /// `GET path`, answered 200 with JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let request = Request::json(Method::GET, path, Bytes::new(), false);
        self.expect(&request, StatusCode::OK, &format!("GET {path}"))
            .await
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
        self.send_numbered(conn, request, 0).await
    }

    async fn send_numbered(
        &self,
        conn: &mut http1::SendRequest<Full<Bytes>>,
        request: &Request,
        n: u64,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut builder = hyper::Request::builder()
            .method(request.method.clone())
            .uri(&request.path)
            .header("host", &self.host)
            .header("content-type", request.content_type);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(token) = &self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let req = builder.body(Full::new(request.body(self.run, n)))?;
        conn.ready().await?;
        let response = conn.send_request(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Sends `request` from `concurrency` connections for `duration`, at most `rate` requests
    /// per second in all when a rate is given (each connection then sends on a fixed schedule).
    pub async fn run(
        self: &Target,
        request: &Request,
        concurrency: usize,
        duration: Duration,
        rate: Option<f64>,
    ) -> anyhow::Result<RunResult> {
        let mut conns = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            conns.push(self.open().await?);
        }
        let target = Arc::new(Target {
            addr: self.addr.clone(),
            host: self.host.clone(),
            token: self.token.clone(),
            counter: self.counter.clone(),
            run: self.run,
        });
        let request = Arc::new(request.clone());
        let started = Instant::now();
        let deadline = started + duration;
        let workers: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(i, mut conn)| {
                let (target, request) = (target.clone(), request.clone());
                // with a rate: this connection's requests are `period` apart, staggered
                let period = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r));
                let mut next =
                    started + period.map_or(Duration::ZERO, |p| p * i as u32 / concurrency as u32);
                tokio::spawn(async move {
                    let mut latency = Histogram::<u64>::new(3)?;
                    let (mut ok, mut failed) = (0u64, 0u64);
                    while Instant::now() < deadline {
                        if let Some(period) = period {
                            tokio::time::sleep_until(next.into()).await;
                            next += period;
                        }
                        let sent = Instant::now();
                        let n = target.counter.fetch_add(1, Ordering::Relaxed);
                        let (status, _) = target.send_numbered(&mut conn, &request, n).await?;
                        if status.is_success() {
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
