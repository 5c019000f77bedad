//! An HTTP client of one gateway, with the calls tests make again and again.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// When a load ends.
#[derive(Clone)]
pub enum Until {
    /// When this turns true; the gateway must answer every request until then.
    Stopped(tokio::sync::watch::Receiver<bool>),
    /// When the gateway stops answering (it is killed or shut down meanwhile).
    Gone,
}

/// An HTTP client of one gateway.
#[derive(Clone)]
pub struct Api {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub base: String,
    /// Client with no proxy and a timeout.
    pub http: reqwest::Client,
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
    /// `success(i)`) until `until`; returns the acknowledged ids. Every answer must be 200 with
    /// an id (anything else panics: a 5xx under load is a failure, not the end of the load); a
    /// request that gets no answer panics too, unless the gateway is expected to go away.
    pub async fn post_load(
        &self,
        receiver: &str,
        tasks: usize,
        success: fn(usize) -> bool,
        until: Until,
    ) -> Vec<String> {
        let posts = (0..tasks).map(|t| {
            let until = until.clone();
            async move {
                let mut acked = Vec::new();
                for i in 0.. {
                    if let Until::Stopped(stop) = &until
                        && *stop.borrow()
                    {
                        break;
                    }
                    let body = event_body(
                        receiver,
                        &format!("unit-{t}"),
                        success(i),
                        json!({"i": i, "t": t}),
                    );
                    let answer = async {
                        let response = self
                            .http
                            .post(self.url("/api/v1/events"))
                            .json(&body)
                            .send()
                            .await?;
                        let status = response.status();
                        Ok::<_, reqwest::Error>((status, response.text().await?))
                    };
                    let (status, text) = match (answer.await, &until) {
                        (Ok(answer), _) => answer,
                        (Err(_), Until::Gone) => break,
                        (Err(e), Until::Stopped(_)) => {
                            panic!("event {i} of client {t} got no answer under load: {e}")
                        }
                    };
                    assert_eq!(
                        status,
                        StatusCode::CREATED,
                        "event {i} of client {t} under load: {text}"
                    );
                    let answer: Value = serde_json::from_str(&text).expect("a JSON answer");
                    acked.push(answer["data"].as_str().expect("an id").to_owned());
                }
                acked
            }
        });
        futures::future::join_all(posts).await.concat()
    }

    /// Starts [`Self::post_load`] of successful events from `tasks` clients in the background
    /// until the returned sender says stop; the handle gives the acknowledged ids.
    pub fn spawn_load(
        &self,
        receiver: &str,
        tasks: usize,
    ) -> (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<Vec<String>>,
    ) {
        let (api, receiver) = (self.clone(), receiver.to_owned());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let load = tokio::spawn(async move {
            api.post_load(&receiver, tasks, |_| true, Until::Stopped(stopped))
                .await
        });
        (stop, load)
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

    /// POST, expecting 201 Created and an id in `data`.
    pub async fn create(&self, path: &str, body: &Value) -> String {
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path} {body}: {answer}");
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
        let response = self.open_stream(query, last_event_id).await;
        read_messages(response, query, count).await
    }

    /// Opens the SSE stream at `query`: once this returns, the gateway is following the log
    /// for this reader (read it with [`read_messages`]).
    pub async fn open_stream(&self, query: &str, last_event_id: Option<u64>) -> reqwest::Response {
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
        response
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

/// Reads `count` messages from an open SSE stream (opened at `query`): `(sequence, message)`
/// pairs. Panics after 15 s.
pub async fn read_messages(
    response: reqwest::Response,
    query: &str,
    count: usize,
) -> Vec<(u64, Value)> {
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
