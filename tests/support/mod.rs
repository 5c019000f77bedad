//! Test harness: the real `epr-gateway` binary on a free port and a temporary data directory,
//! spoken to over real HTTP.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running gateway; killed when dropped. Its HTTP helpers are those of [`Api`].
pub struct Gateway {
    child: Child,
    /// The data directory.
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Talks to it.
    pub api: Api,
}

impl std::ops::Deref for Gateway {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// An HTTP client of one gateway.
#[derive(Clone)]
pub struct Api {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub base: String,
    /// Client with no proxy and a timeout.
    pub http: reqwest::Client,
}

/// The path of a component built from `plugins/` (crate name with `_`); panics, saying how to
/// build it, when it is missing.
pub fn wasm_path(crate_name: &str) -> String {
    let path = format!(
        "{}/../plugins/target/wasm32-wasip2/release/{crate_name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: build the plugins first (tests/run does): cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml"
    );
    path
}

/// The bytes of a component built from `plugins/` (crate name with `_`).
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path = wasm_path(crate_name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_epr-gateway")
}

impl Gateway {
    /// A gateway on a fresh data directory.
    pub async fn start() -> Gateway {
        Self::start_with(&[]).await
    }

    /// A gateway on a fresh data directory with extra environment variables.
    pub async fn start_with(env: &[(&str, &str)]) -> Gateway {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut gateway = Self::start_in(&dir, env).await;
        gateway._tmp = Some(tmp);
        gateway
    }

    /// A gateway on `dir` (which the caller keeps), on the port in `EPR_PORT` if `env` has
    /// one, else on a free port.
    pub async fn start_in(dir: &Path, env: &[(&str, &str)]) -> Gateway {
        let port = env
            .iter()
            .find(|(name, _)| *name == "EPR_PORT")
            .map_or("0", |(_, port)| *port);
        let mut child = Command::new(binary())
            .args(["serve", "--port", port, "--data-dir"])
            .arg(dir)
            // EPR_TEST_LOG=debug shows the gateways' logs when a test needs looking into
            .env(
                "EPR_LOG",
                std::env::var("EPR_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start epr-gateway");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("gateway printed its address in time")
        .expect("read stdout")
        .expect("gateway exited before listening");
        let base = line.rsplit(' ').next().expect("address").to_owned();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "unexpected first line: {line}"
        );
        Gateway {
            child,
            data_dir: dir.to_owned(),
            _tmp: None,
            api: Api {
                base,
                http: client(),
            },
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        self.child.wait().await.expect("process reaped");
    }

    /// Sends SIGTERM and waits for the process to exit (at most 30 s).
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("still running") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM sent");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exited within 30 s of SIGTERM")
            .expect("process reaped")
    }
}

impl Api {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; returns the status and the body parsed as JSON (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POST `body` as is, with `headers` (`Content-Type: application/json` unless they name
    /// one).
    pub async fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(path)).body(body.to_owned());
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics");
        response.text().await.expect("metrics text")
    }

    /// Posts events about `unit-<t>` from `tasks` concurrent clients (event `i` of a client has
    /// `success(i)`) until the gateway stops answering 200 or `stop` turns true; returns the
    /// acknowledged ids.
    pub async fn post_load(
        &self,
        receiver: &str,
        tasks: usize,
        success: fn(usize) -> bool,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<String> {
        let posts = (0..tasks).map(|t| {
            let stop = stop.clone();
            async move {
                let mut acked = Vec::new();
                for i in 0.. {
                    if *stop.borrow() {
                        break;
                    }
                    let body = event_body(
                        receiver,
                        &format!("unit-{t}"),
                        success(i),
                        json!({"i": i, "t": t}),
                    );
                    let Ok(response) = self
                        .http
                        .post(self.url("/api/v1/events"))
                        .json(&body)
                        .send()
                        .await
                    else {
                        break;
                    };
                    if response.status() != StatusCode::OK {
                        break;
                    }
                    let Ok(answer) = response.json::<Value>().await else {
                        break;
                    };
                    acked.push(answer["data"].as_str().expect("id").to_owned());
                }
                acked
            }
        });
        futures::future::join_all(posts).await.concat()
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, None).await
    }

    /// POST `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body.to_string()), None)
            .await
    }

    /// POST, expecting 200 and an id in `data`.
    pub async fn create(&self, path: &str, body: &Value) -> String {
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, StatusCode::OK, "POST {path} {body}: {answer}");
        let id = answer["data"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {answer}"));
        assert_eq!(id.len(), 26, "ids are ULIDs: {id}");
        id.to_owned()
    }

    /// Creates a receiver of type `kind` whose schema accepts any object.
    pub async fn receiver(&self, kind: &str) -> String {
        self.create(
            "/api/v1/receivers",
            &receiver_body(kind, json!({"type": "object"})),
        )
        .await
    }

    /// Creates an event for `receiver` about unit `name` (other NVRPP parts fixed).
    pub async fn event(&self, receiver: &str, name: &str, success: bool) -> String {
        self.create(
            "/api/v1/events",
            &event_body(receiver, name, success, json!({})),
        )
        .await
    }

    /// Creates an enabled group of `receivers` whose complete messages have type `kind`.
    pub async fn group(&self, kind: &str, receivers: &[&str]) -> String {
        let body = json!({"name": kind, "type": kind, "version": "1.0.0", "description": "group",
            "enabled": true, "event_receiver_ids": receivers});
        self.create("/api/v1/groups", &body).await
    }

    /// Reads `count` messages of the SSE stream at `query` (e.g. `?type=x`), resuming after
    /// `last_event_id` when given: `(sequence, message)` pairs. Panics after 15 s.
    pub async fn stream(
        &self,
        query: &str,
        last_event_id: Option<u64>,
        count: usize,
    ) -> Vec<(u64, Value)> {
        let mut request = self
            .http
            .get(self.url(&format!("/api/v1/stream{query}")))
            .timeout(Duration::from_secs(60));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("stream opened");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        let mut messages = Vec::new();
        let read = async {
            while messages.len() < count {
                let chunk = body
                    .next()
                    .await
                    .expect("stream still open")
                    .expect("chunk");
                buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut id = None;
                    let mut data = None;
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.parse::<u64>().expect("numeric id"));
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = Some(serde_json::from_str::<Value>(v).expect("JSON data"));
                        }
                    }
                    if let (Some(id), Some(data)) = (id, data) {
                        messages.push((id, data));
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(15), read)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "stream{query} gave only {} of {count} messages",
                    messages.len()
                )
            });
        messages
    }

    /// Last durable log sequence number, from `/healthz/status`.
    pub async fn last_sequence(&self) -> u64 {
        let (_, status) = self.get("/healthz/status").await;
        status["log"]["last_sequence"]
            .as_u64()
            .expect("last_sequence")
    }

    /// Every message in the log so far, in order.
    pub async fn log(&self) -> Vec<(u64, Value)> {
        let n = self.last_sequence().await as usize;
        self.stream("", None, n).await
    }
}

/// An HTTP client that ignores proxy settings of the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A receiver body.
pub fn receiver_body(kind: &str, schema: Value) -> Value {
    json!({"name": format!("{kind}-receiver"), "type": kind, "version": "1.0.0",
        "description": format!("receiver of {kind}"), "schema": schema})
}

/// An event body about unit `name`.
pub fn event_body(receiver: &str, name: &str, success: bool, payload: Value) -> Value {
    json!({"name": name, "version": "1.0.0", "release": "2026.11", "platform_id": "x86_64-linux",
        "package": "oci", "description": "an event", "payload": payload, "success": success,
        "event_receiver_id": receiver})
}

/// The single error message of an envelope.
pub fn error_of(answer: &Value) -> String {
    let errors = answer["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {answer}"));
    assert_eq!(errors.len(), 1, "{answer}");
    errors[0].as_str().expect("string").to_owned()
}

/// A Tansu broker (Kafka protocol) on a loopback port, storing in SQLite in a directory of its
/// own, so that it keeps every record it acknowledged (tests/run checks that first, with
/// tests/python/broker_selfcheck.py); killed when dropped.
pub struct Broker {
    child: Option<Child>,
    /// Where its storage lives.
    dir: tempfile::TempDir,
    /// Its standard error, over every restart.
    log: tempfile::NamedTempFile,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Broker {
    /// Starts a broker on a free port.
    pub async fn start() -> Broker {
        let mut broker = Broker::not_started();
        broker.restart().await;
        broker
    }

    /// An address where no broker listens yet (start it later with [`Broker::restart`]).
    pub fn not_started() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Broker {
            child: None,
            dir: tempfile::tempdir().expect("a directory for the broker"),
            log: tempfile::NamedTempFile::new().expect("a log file for the broker"),
            address: format!("127.0.0.1:{port}"),
        }
    }

    /// (Re)starts the broker on its address, with everything it stored before.
    pub async fn restart(&mut self) {
        self.stop().await;
        let tansu = std::env::var("EPR_TEST_TANSU").expect(
            "EPR_TEST_TANSU names the tansu binary built with SQLite storage (tests/run installs it)",
        );
        let url = format!("tcp://{}", self.address);
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(self.log.reopen().expect("the broker's log"))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {tansu}: {e}"));
        self.child = Some(child);
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(&self.address).await.is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("tansu exited ({status}): {}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "tansu did not listen on {} within 20 s: {}",
            self.address,
            self.log_text()
        );
    }

    /// Panics if the broker itself failed (a thread of it panicked: Tansu 0.6 then stops
    /// serving while it still accepts connections), so that a test blames the broker, not the
    /// gateway.
    pub fn assert_sound(&self) {
        let log = self.log_text();
        if let Some(at) = log.find("panicked at") {
            let excerpt: String = log[at..].lines().take(2).collect::<Vec<_>>().join(" ");
            panic!("the test broker failed, not the gateway: {excerpt}");
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Restarts the broker without its storage: it comes back empty, as a broker that lost its
    /// disk (or ran in memory) does.
    pub async fn restart_empty(&mut self) {
        self.stop().await;
        for entry in std::fs::read_dir(self.dir.path()).expect("broker directory") {
            let path = entry.expect("entry").path();
            std::fs::remove_file(&path)
                .unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
        }
        self.restart().await;
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the broker: a broker that hangs, then recovers
    /// with everything it had.
    pub fn freeze(&self, frozen: bool) {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .expect("broker running");
        let signal = if frozen {
            nix::sys::signal::Signal::SIGSTOP
        } else {
            nix::sys::signal::Signal::SIGCONT
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .expect("signal sent to the broker");
    }

    /// Kills the broker.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// Runs `tests/python/<script>` with the gateway at `base` as its argument (`EPR_TEST_PYTHON`,
/// which tests/run sets up, else `python3`); its standard output, or a panic with its errors.
pub async fn run_python(script: &str, base: &str) -> String {
    let python = std::env::var("EPR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let path = format!("{}/../tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(&python)
        .arg(&path)
        .arg(base)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{python} {path} failed (tests/run installs what it needs):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
