//! WebAssembly plugins end to end: real components built from `plugins/` (tests/run builds
//! them) uploaded to the real gateway over HTTP, firing at a real local HTTP server.

use std::future::Future;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support;
use crate::support::{Api, Gateway, error_of, event_body, wasm};

/// Uploads a component with `grants`, under `name` if given.
async fn upload(
    api: &Api,
    bytes: Vec<u8>,
    grants: Value,
    name: Option<&str>,
) -> (StatusCode, Value) {
    let path = match name {
        Some(name) => format!("/api/v1/plugins?name={name}"),
        None => "/api/v1/plugins".to_owned(),
    };
    send(api, Method::POST, &path, bytes, &grants).await
}

async fn send(
    api: &Api,
    method: Method,
    path: &str,
    bytes: Vec<u8>,
    grants: &Value,
) -> (StatusCode, Value) {
    let response = api
        .http
        .request(method, api.url(path))
        .header("content-type", "application/wasm")
        .header("x-epr-grants", grants.to_string())
        .body(bytes)
        .send()
        .await
        .expect("upload sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Uploads, expecting 201.
pub(crate) async fn install(
    api: &Api,
    crate_name: &str,
    grants: Value,
    name: Option<&str>,
) -> Value {
    let (status, answer) = upload(api, wasm(crate_name), grants, name).await;
    assert_eq!(status, StatusCode::CREATED, "upload {crate_name}: {answer}");
    answer["data"].clone()
}

/// Polls `probe` until it yields a value (20 s at most).
async fn until<T, F: Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    for _ in 0..400 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The plugin as `GET /api/v1/plugins/{name}` shows it.
async fn plugin(api: &Api, name: &str) -> Value {
    let (status, answer) = api.get(&format!("/api/v1/plugins/{name}")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["data"].clone()
}

async fn dead_letters(api: &Api, name: &str) -> Vec<Value> {
    let (status, answer) = api
        .get(&format!("/api/v1/plugins/{name}/dead-letters"))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["data"].as_array().expect("a list").clone()
}

/// Events of receiver `receiver`.
async fn events_of(api: &Api, receiver: &str) -> Vec<Value> {
    let (status, answer) = api
        .get(&format!("/api/v1/events?event_receiver_id={receiver}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["data"].as_array().expect("a list").clone()
}

/// A request the hook server received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    path: String,
    pub(crate) headers: HeaderMap,
    body: Bytes,
}

/// Posts `body` to an ingest `path` (a webhook source, CloudEvents) and reads back the event
/// stored.
async fn ingest_and_read(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Value {
    let (status, answer) = gw.post_with(path, headers, &body.to_string()).await;
    assert!(status.is_success(), "{path}: {answer}");
    let id = answer["data"].as_str().expect("an event id");
    let (_, stored) = gw.get(&format!("/api/v1/events/{id}")).await;
    stored["data"][0].clone()
}

/// A local HTTP server recording what it receives and answering `status`.
pub(crate) struct Hook {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Hook {
    /// Answers 500 to the first `fail_first` requests, then 200.
    pub(crate) async fn start(fail_first: u16) -> Hook {
        type Shared = (Arc<Mutex<Vec<Received>>>, Arc<AtomicU16>, Arc<AtomicU16>);
        async fn record(
            State((received, status, fail_first)): State<Shared>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> axum::response::Response {
            use axum::response::IntoResponse;
            received.lock().unwrap().push(Received {
                path: uri.path().to_owned(),
                headers,
                body,
            });
            let failing = fail_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let status = match failing {
                true => AxumStatus::INTERNAL_SERVER_ERROR,
                false => AxumStatus::from_u16(status.load(Ordering::SeqCst)).unwrap(),
            };
            // where a redirect (a 3xx status) would send a client that follows it
            (status, [("location", "/followed")]).into_response()
        }
        let shared: Shared = (
            Arc::default(),
            Arc::new(AtomicU16::new(200)),
            Arc::new(AtomicU16::new(fail_first)),
        );
        let app = axum::Router::new()
            .fallback(record)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Hook {
            port,
            received: shared.0,
            status: shared.1,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Grants for the webhook firer to POST here, signing with `secret`.
    pub(crate) fn grants(&self, path: &str, secret: &str) -> Value {
        json!({
            "allowed_hosts": [format!("127.0.0.1:{}", self.port)],
            "config": {"url": format!("http://127.0.0.1:{}{path}", self.port), "secret": secret},
            "subscription": {"types": ["test.fire*"]},
        })
    }
}

/// The content type of a structured-mode CloudEvent.
const STRUCTURED: (&str, &str) = ("content-type", "application/cloudevents+json");

pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Checks a Standard-Webhooks signature as a receiver would.
fn verify(received: &Received) {
    let header = |name: &str| received.headers[name].to_str().unwrap().to_owned();
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(header("webhook-id").as_bytes());
    mac.update(b".");
    mac.update(header("webhook-timestamp").as_bytes());
    mac.update(b".");
    mac.update(&received.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(
        header("webhook-signature"),
        format!("v1,{expected}"),
        "signature"
    );
}

#[tokio::test]
async fn webhook_firer_posts_signed_cloudevents_and_retries_a_failing_server() {
    let gw = Gateway::start().await;
    let hook = Hook::start(2).await;
    install(&gw, "webhook_firer", hook.grants("/hook", SECRET), None).await;
    let receiver = gw.receiver("test.fire").await;
    let other = gw.receiver("test.other").await;
    let id = gw
        .create(
            "/api/v1/events",
            &event_body(&receiver, "app", true, json!({"build": 7})),
        )
        .await;
    gw.event(&other, "not-subscribed", true).await;

    let received = until("three attempts", || async {
        let r = hook.received();
        (r.len() >= 3).then_some(r)
    })
    .await;
    let last = &received[2];
    assert_eq!(last.path, "/hook");
    assert_eq!(last.headers["ce-id"], id.as_str());
    assert_eq!(last.headers["ce-type"], "test.fire");
    assert_eq!(last.headers["ce-specversion"], "1.0");
    assert_eq!(last.headers["ce-subject"], "app");
    let payload: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(payload, json!({"build": 7}));
    verify(last);
    let view = until("the third call recorded", || async {
        let view = plugin(&gw, "webhook-firer").await;
        (view["calls"] == 3).then_some(view)
    })
    .await;
    assert_eq!(view["failures"], 2, "{view}");
    assert_eq!(
        view["grants"]["config"]["secret"], "<set>",
        "secrets are not shown"
    );
    assert!(
        view["last_error"]
            .as_str()
            .unwrap()
            .contains("answered 500"),
        "{view}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        hook.received().len(),
        3,
        "the other receiver's event is not sent"
    );
    assert!(dead_letters(&gw, "webhook-firer").await.is_empty());
    assert!(
        gw.metrics()
            .await
            .contains("epr_plugin_calls_total{plugin=\"webhook-firer\"} 3")
    );
}

#[tokio::test]
async fn a_watcher_sees_the_cloudevent_an_event_came_in_as() {
    let gw = Gateway::start().await;
    let hook = Hook::start(0).await;
    install(&gw, "webhook_firer", hook.grants("/hook", SECRET), None).await;
    gw.receiver("test.fire").await;
    let cloudevent = json!({"specversion": "1.0", "id": "run-7", "source": "/ci/jenkins",
        "type": "test.fire", "subject": "shop-api", "eprname": "shop-api", "data": {"build": 7}});
    ingest_and_read(&gw, "/api/v1/cloudevents", &[STRUCTURED], &cloudevent).await;
    let received = until("the webhook", || async {
        let r = hook.received();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(
        received[0].headers["ce-source"], "/ci/jenkins",
        "the source it came in with, not the gateway's"
    );
    verify(&received[0]);
}

#[tokio::test]
async fn an_event_failing_every_attempt_is_dead_lettered_then_redriven() {
    let gw = Gateway::start().await;
    let hook = Hook::start(0).await;
    hook.status.store(503, Ordering::SeqCst);
    let mut grants = hook.grants("/hook", SECRET);
    grants["max_attempts"] = json!(3);
    install(&gw, "webhook_firer", grants, None).await;
    let receiver = gw.receiver("test.fire").await;
    let id = gw.event(&receiver, "app", true).await;

    let letters = until("a dead letter", || async {
        let d = dead_letters(&gw, "webhook-firer").await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["event_id"], id.as_str());
    assert_eq!(letters[0]["attempts"], 3);
    assert!(
        letters[0]["error"]
            .as_str()
            .unwrap()
            .contains("answered 503"),
        "{letters:?}"
    );
    assert_eq!(hook.received().len(), 3);

    // the receiving end is fixed: a re-drive delivers the event and clears the dead letter
    hook.status.store(200, Ordering::SeqCst);
    let (status, answer) = gw
        .post(
            "/api/v1/plugins/webhook-firer/dead-letters/redrive",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["data"],
        json!({"tried": 1, "handled": 1, "failed": 0})
    );
    assert_eq!(hook.received().len(), 4);
    assert_eq!(hook.received()[3].headers["ce-id"], id.as_str());
    assert!(dead_letters(&gw, "webhook-firer").await.is_empty());
}

#[tokio::test]
async fn the_rules_watcher_emits_an_event_linked_to_its_cause() {
    let gw = Gateway::start().await;
    let builds = gw.receiver("test.build.finished").await;
    let alerts = gw.receiver("test.alert").await;
    let rules = json!([{"type": "test.build.*", "success": false, "receiver_id": alerts,
        "description": "a build failed"}]);
    install(
        &gw,
        "rules",
        json!({"config": {"rules": rules.to_string()}, "capabilities": ["emit-event"],
            "emit_receivers": [alerts]}),
        None,
    )
    .await;
    gw.event(&builds, "app-ok", true).await;
    let failed = gw.event(&builds, "app-broken", false).await;

    let emitted = until("the alert", || async {
        let e = events_of(&gw, &alerts).await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        events_of(&gw, &alerts).await.len(),
        1,
        "only the failed build matches"
    );
    let alert = &emitted[0];
    assert_eq!(alert["caused_by"], failed.as_str());
    assert_eq!(alert["name"], "app-broken");
    assert_eq!(alert["success"], false);
    assert_eq!(alert["description"], "a build failed");
    assert_eq!(alert["payload"]["event_id"], failed.as_str());
    let (_, one) = gw
        .get(&format!("/api/v1/events/{}", alert["id"].as_str().unwrap()))
        .await;
    assert_eq!(one["data"][0]["caused_by"], failed.as_str(), "{one}");
}

#[tokio::test]
async fn a_watcher_reacting_to_its_own_output_stops_at_the_chain_limit() {
    let gw = Gateway::start().await;
    let echo = gw.receiver("test.echo").await;
    let rules = json!([{"type": "test.echo", "receiver_id": echo}]);
    install(
        &gw,
        "rules",
        json!({"config": {"rules": rules.to_string()}, "max_attempts": 1,
            "capabilities": ["emit-event"], "emit_receivers": [echo]}),
        None,
    )
    .await;
    gw.event(&echo, "loop", true).await;
    let letters = until("the chain to stop", || async {
        let d = dead_letters(&gw, "rules").await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert!(
        letters[0]["error"].as_str().unwrap().contains("chain of 8"),
        "{letters:?}"
    );
    assert_eq!(
        events_of(&gw, &echo).await.len(),
        8,
        "the first event and 7 caused by it"
    );
}

#[tokio::test]
async fn cdevents_to_epr_fills_what_the_client_left_out() {
    let gw = Gateway::start().await;
    cdevents_to_epr_fills_the_unit(&gw).await;

    // a plain event of another type does not go through it, and blank fields stay an error
    let plain = gw.receiver("test.plain").await;
    let (status, answer) = gw
        .post(
            "/api/v1/events",
            &json!({"event_receiver_id": plain, "description": "d"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&answer).contains("name cannot be blank"),
        "{answer}"
    );
}

#[tokio::test]
async fn plugins_run_where_the_instance_pool_cannot_be_reserved() {
    // 256 GiB of address space: less than the instance pool reserves (about 2 TB), so the
    // gateway falls back to instances allocated one by one
    let gw = Gateway::start_under(&["prlimit", "--as=274877906944", "--"]).await;
    cdevents_to_epr_fills_the_unit(&gw).await;
}

/// Installs the `cdevents-to-epr` transform and checks that it derives an event's unit and
/// success from its CDEvent payload.
async fn cdevents_to_epr_fills_the_unit(gw: &Gateway) {
    install(gw, "cdevents_to_epr", json!({}), None).await;
    let receiver = gw.receiver("dev.cdevents.build.finished.0.2.0").await;
    let cdevent = json!({
        "context": {"specversion": "0.4.1", "id": "e1", "source": "/ci/jenkins",
            "type": "dev.cdevents.build.finished.0.2.0", "timestamp": "2026-11-23T10:00:00Z"},
        "subject": {"id": "shop-api", "source": "/ci/jenkins", "content": {"outcome": "failure"}}
    });
    // no NVRPP and no success: the transform derives them from the CDEvent
    let body = json!({"event_receiver_id": receiver, "description": "build", "payload": cdevent});
    let id = gw.create("/api/v1/events", &body).await;
    let (_, answer) = gw.get(&format!("/api/v1/events/{id}")).await;
    let event = &answer["data"][0];
    assert_eq!(event["name"], "shop-api");
    assert_eq!(event["version"], "0.2.0");
    assert_eq!(event["release"], "0.4.1");
    assert_eq!(event["platform_id"], "/ci/jenkins");
    assert_eq!(event["package"], "build");
    assert_eq!(event["success"], false);
}

/// The payload's CDEvent (itself, or the `data` of the CloudEvent carrying it), checked as
/// spec 0.5 by cdevents-sdk: its 0.5 types refuse 0.4's field names and outcomes.
fn cdevent_0_5(payload: &Value) -> Value {
    let cdevent = payload.get("data").unwrap_or(payload).clone();
    let parsed: cdevents_sdk::CDEvent =
        serde_json::from_value(cdevent.clone()).unwrap_or_else(|e| panic!("{e}: {cdevent}"));
    assert_eq!(parsed.version(), "0.5.0", "{cdevent}");
    cdevent
}

#[tokio::test]
async fn cdevents_migrate_turns_0_4_events_into_valid_0_5_ones() {
    let gw = Gateway::start().await;
    install(&gw, "cdevents_migrate", json!({}), None).await;

    // through the CDEvents webhook: stored as a CloudEvent carrying the CDEvent
    let finished = json!({
        "context": {"version": "0.4.1", "id": "run-42", "source": "/ci/tekton",
            "type": "dev.cdevents.pipelinerun.finished.0.2.0", "timestamp": "2026-11-23T10:00:00Z"},
        "subject": {"id": "release-42", "source": "/ci/tekton", "content": {
            "pipelineName": "release", "url": "https://ci.example/runs/42", "outcome": "pass"}}
    });
    let event = &ingest_and_read(&gw, "/webhook/000-cdevents", &[], &finished).await;
    let cdevent = cdevent_0_5(&event["payload"]);
    let kind = "dev.cdevents.pipelinerun.finished.0.3.0";
    assert_eq!(cdevent["context"]["type"], kind);
    assert_eq!(
        event["payload"]["type"], kind,
        "the CloudEvent's type follows"
    );
    assert_eq!(
        cdevent["subject"]["content"],
        json!({"pipelineName": "release", "uri": "https://ci.example/runs/42", "outcome": "success"})
    );
    assert_eq!(cdevent["context"]["id"], "run-42");
    assert_eq!(
        event["version"], "0.3.0",
        "the NVRPP derived from the type follows"
    );
    assert_eq!(event["release"], "0.5.0");
    assert_eq!(event["success"], true);

    // posted to the REST API: the payload is the CDEvent; NVRPP set by the client stays
    let receiver = gw.receiver("dev.cdevents.testcaserun.finished.0.2.0").await;
    let failed = json!({
        "context": {"version": "0.4.1", "id": "t-7", "source": "/ci/tests",
            "type": "dev.cdevents.testcaserun.finished.0.2.0", "timestamp": "2026-11-23T10:00:00Z"},
        "subject": {"id": "login-test", "content": {"environment": {"id": "ci"}, "outcome": "fail",
            "testCase": {"id": "login", "url": "https://tests.example/login"}}}
    });
    let id = gw
        .create(
            "/api/v1/events",
            &event_body(&receiver, "shop-api", false, failed),
        )
        .await;
    let (_, answer) = gw.get(&format!("/api/v1/events/{id}")).await;
    let event = &answer["data"][0];
    let cdevent = cdevent_0_5(&event["payload"]);
    assert_eq!(
        cdevent["context"]["type"],
        "dev.cdevents.testcaserun.finished.0.3.0"
    );
    assert_eq!(cdevent["subject"]["content"]["outcome"], "failure");
    assert_eq!(
        cdevent["subject"]["content"]["testCase"]["uri"], "https://tests.example/login",
        "nested urls are renamed too"
    );
    assert_eq!(event["name"], "shop-api");
    assert_eq!(event["version"], "1.0.0", "set by the client: kept");

    // a 0.5 event is left as it is
    let receiver = gw.receiver("dev.cdevents.build.finished.0.3.0").await;
    let current = json!({
        "context": {"specversion": "0.5.0", "id": "b-1", "source": "/ci/jenkins",
            "type": "dev.cdevents.build.finished.0.3.0", "timestamp": "2026-11-23T10:00:00Z"},
        "subject": {"id": "shop-api", "content": {}}
    });
    let id = gw
        .create(
            "/api/v1/events",
            &event_body(&receiver, "shop-api", true, current.clone()),
        )
        .await;
    let (_, answer) = gw.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(answer["data"][0]["payload"], current);

    // what 0.4.1 does not have cannot be migrated: refused, saying why, nothing stored
    let receiver = gw.receiver("dev.cdevents.build.finished.0.1.1").await;
    let unknown = json!({
        "context": {"version": "0.4.1", "id": "b-2", "source": "/ci/jenkins",
            "type": "dev.cdevents.build.finished.0.1.1", "timestamp": "2026-11-23T10:00:00Z"},
        "subject": {"id": "shop-api", "content": {}}
    });
    let (status, answer) = gw
        .post(
            "/api/v1/events",
            &event_body(&receiver, "shop-api", true, unknown),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let error = error_of(&answer);
    assert!(
        error.contains("cdevents-migrate") && error.contains("has build.finished 0.2.0, not 0.1.1"),
        "{error}"
    );
    assert!(events_of(&gw, &receiver).await.is_empty());
}

#[tokio::test]
async fn a_transform_can_be_limited_to_the_paths_events_are_posted_to() {
    let gw = Gateway::start().await;
    let grants = json!({"subscription": {"paths": ["/webhook/000-*"]}});
    install(
        &gw,
        "hostile_transform",
        grants.clone(),
        Some("webhooks-only"),
    )
    .await;

    // a CDEvent through the built-in webhook source goes through the transform
    let cdevent = json!({
        "context": {"specversion": "0.5.0", "id": "b-9", "source": "/ci/jenkins",
            "type": "dev.cdevents.build.finished.0.3.0", "timestamp": "2026-11-23T10:00:00Z"},
        "subject": {"id": "shop-api", "content": {}}
    });
    let stored = ingest_and_read(&gw, "/webhook/000-cdevents", &[], &cdevent).await;
    assert_eq!(
        stored["description"],
        "dev.cdevents.build.finished.0.3.0 (transformed)"
    );

    // events posted to the REST API or as CloudEvents do not
    let receiver = gw.receiver("test.paths").await;
    let id = gw
        .create(
            "/api/v1/events",
            &event_body(&receiver, "app", true, json!({})),
        )
        .await;
    let (_, stored) = gw.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(stored["data"][0]["description"], "an event");
    let cloudevent = json!({"specversion": "1.0", "id": "c-1", "source": "/ci", "type": "test.paths",
        "eprname": "app", "eprversion": "1", "eprrelease": "r", "eprplatformid": "p",
        "eprpackage": "k", "eprdescription": "as a CloudEvent", "data": {}});
    let stored = ingest_and_read(&gw, "/api/v1/cloudevents", &[STRUCTURED], &cloudevent).await;
    assert_eq!(stored["description"], "as a CloudEvent");

    // a watcher reads the log, which does not keep paths: refused, saying so
    let (status, answer) = upload(&gw, wasm("webhook_firer"), grants, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        error_of(&answer).contains("subscription.paths applies to transforms only"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_misbehaving_transform_refuses_only_its_events() {
    let gw = Gateway::start().await;
    install(&gw, "hostile_transform", json!({"cpu_ms": 500}), None).await;
    let hostile = gw.receiver("test.hostile").await;
    let other = gw.receiver("test.fine").await;
    let post = |description: &str| {
        let mut body = event_body(&hostile, "unit", true, json!({}));
        body["description"] = json!(description);
        let gw = gw.api.clone();
        async move { gw.post("/api/v1/events", &body).await }
    };
    for (description, expected) in [
        ("loop", "CPU time limit of 500 ms exceeded"),
        ("trap", "unreachable"),
        ("huge", "returned 1000 events; at most 100"),
        ("refuse", "refused on purpose"),
    ] {
        let (status, answer) = post(description).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{description}: {answer}"
        );
        let error = error_of(&answer);
        assert!(
            error.contains("refused by plugin hostile-transform"),
            "{error}"
        );
        assert!(error.contains(expected), "{description}: {error}");
    }
    assert!(
        events_of(&gw, &hostile).await.is_empty(),
        "refused events store nothing"
    );

    let (status, answer) = post("drop").await;
    assert_eq!((status, &answer["data"]), (StatusCode::OK, &Value::Null));
    let (status, answer) = post("split").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = post("pass").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (_, one) = gw
        .get(&format!(
            "/api/v1/events/{}",
            answer["data"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one["data"][0]["description"], "pass (transformed)");
    let names: Vec<Value> = events_of(&gw, &hostile)
        .await
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(names.len(), 3, "split stored two, pass one: {names:?}");
    assert!(names.contains(&json!("unit-split")));

    // events of other types, and the gateway itself, are untouched
    gw.event(&other, "fine", true).await;
    let (status, _) = gw.get("/healthz/liveness").await;
    assert_eq!(status, StatusCode::OK);
    let view = plugin(&gw, "hostile-transform").await;
    assert_eq!(view["failures"], 4, "{view}");
}

#[tokio::test]
async fn misbehaving_watchers_fail_only_themselves() {
    let gw = Gateway::start().await;
    let hook = Hook::start(0).await;
    install(&gw, "webhook_firer", hook.grants("/fine", SECRET), None).await;
    let modes = [
        ("loop", "CPU time limit of 200 ms exceeded"),
        ("memory", "memory limit of 16 MiB exceeded"),
        ("trap", "unreachable"),
        ("forbidden-host", "host example.com port 80 is not allowed"),
        ("file", "cannot read /etc/passwd"),
        ("env", "cannot read HOME"),
    ];
    for (mode, _) in modes.iter().chain([("huge-log", "")].iter()) {
        let grants = json!({"config": {"mode": mode}, "cpu_ms": 200, "memory_mib": 16,
            "max_attempts": 1, "allowed_hosts": ["allowed.example"]});
        install(
            &gw,
            "hostile_watcher",
            grants,
            Some(&format!("hostile-{mode}")),
        )
        .await;
    }
    let receiver = gw.receiver("test.fire").await;
    let id = gw.event(&receiver, "app", true).await;

    for (mode, expected) in modes {
        let name = format!("hostile-{mode}");
        let letters = until(&format!("{name} to dead-letter"), || async {
            let d = dead_letters(&gw, &name).await;
            (!d.is_empty()).then_some(d)
        })
        .await;
        assert_eq!(letters[0]["event_id"], id.as_str());
        let error = letters[0]["error"].as_str().unwrap();
        assert!(error.contains(expected), "{name}: {error}");
    }
    // a huge log line is cut, not a failure; the well-behaved watcher delivered the event
    let huge = until("hostile-huge-log to handle the event", || async {
        let view = plugin(&gw, "hostile-huge-log").await;
        (view["calls"] == 1).then_some(view)
    })
    .await;
    assert_eq!(huge["failures"], 0, "{huge}");
    let received = until("the well-behaved watcher", || async {
        let r = hook.received();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(received[0].headers["ce-id"], id.as_str());
    let (status, _) = gw.get("/healthz/liveness").await;
    assert_eq!(status, StatusCode::OK);
    gw.event(&receiver, "still-serving", true).await;
}

#[tokio::test]
async fn bad_uploads_are_refused_with_the_reason() {
    let gw = Gateway::start_with(&[("EPR_ADMIN_TOKEN", "s3cret")]).await;
    let refused = |bytes: Vec<u8>, grants: Value| {
        let gw = gw.api.clone();
        async move {
            let response = gw
                .http
                .post(gw.url("/api/v1/plugins"))
                .bearer_auth("s3cret")
                .header("x-epr-grants", grants.to_string())
                .body(bytes)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let answer: Value = response.json().await.unwrap();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            error_of(&answer)
        }
    };
    assert!(
        refused(b"hello".to_vec(), json!({}))
            .await
            .contains("not WebAssembly")
    );
    let core = b"\0asm\x01\0\0\0".to_vec();
    assert!(
        refused(core, json!({}))
            .await
            .contains("core WebAssembly module, not a component")
    );
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    assert!(
        refused(empty_component, json!({}))
            .await
            .contains("neither world")
    );
    let mut truncated = wasm("webhook_firer");
    truncated.truncate(truncated.len() / 2);
    assert!(
        refused(truncated, json!({}))
            .await
            .contains("does not compile")
    );
    let spy = refused(wasm("wrong_imports"), json!({})).await;
    assert!(
        spy.contains("does not offer") && spy.contains("evil:spy/files"),
        "{spy}"
    );
    let bad_grants = refused(wasm("webhook_firer"), json!({"memory_mib": 4096})).await;
    assert!(bad_grants.contains("memory_mib"), "{bad_grants}");

    // without the admin token: 401, and nothing installed
    let (status, _) = upload(&gw, wasm("webhook_firer"), json!({}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = gw
        .call(Method::GET, "/api/v1/plugins", None, Some("s3cret"))
        .await;
    assert_eq!(
        (status, answer["data"].clone()),
        (StatusCode::OK, json!([]))
    );
}

#[tokio::test]
async fn replace_and_delete_while_events_flow() {
    let gw = Gateway::start().await;
    let hook = Hook::start(0).await;
    install(&gw, "webhook_firer", hook.grants("/v1", SECRET), None).await;
    let receiver = gw.receiver("test.fire").await;

    // events flow while the plugin is replaced (new grants: another path)
    let (stop, load) = gw.spawn_load(&receiver, 4);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, answer) = send(
        &gw,
        Method::PUT,
        "/api/v1/plugins/webhook-firer",
        wasm("webhook_firer"),
        &hook.grants("/v2", SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["revision"], 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.send_replace(true);
    let acked = load.await.unwrap();
    assert!(acked.len() > 20, "events flowed: {}", acked.len());

    let all_delivered = || async {
        let delivered: std::collections::HashSet<String> = hook
            .received()
            .iter()
            .map(|r| r.headers["ce-id"].to_str().unwrap().to_owned())
            .collect();
        acked.iter().all(|id| delivered.contains(id)).then_some(())
    };
    until("every acknowledged event delivered", all_delivered).await;
    let paths: Vec<String> = hook.received().iter().map(|r| r.path.clone()).collect();
    assert!(paths.contains(&"/v1".to_owned()) && paths.contains(&"/v2".to_owned()));
    let switched = paths.iter().position(|p| p == "/v2").unwrap();
    assert!(
        paths[switched..].iter().all(|p| p == "/v2"),
        "no call on the old revision after the switch"
    );

    // deleted while events flow: nothing is handled once DELETE has answered. A second
    // firer, kept, shows when the log has been read to its end: a deleted watcher that merely
    // lagged would pass a check without it
    install(
        &gw,
        "webhook_firer",
        hook.grants("/control", SECRET),
        Some("control-firer"),
    )
    .await;
    let (stop, load) = gw.spawn_load(&receiver, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, answer) = gw
        .call(Method::DELETE, "/api/v1/plugins/webhook-firer", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let deleted_ones = || {
        hook.received()
            .iter()
            .filter(|r| r.path != "/control")
            .count()
    };
    let after_delete = deleted_ones();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send_replace(true);
    let acked = load.await.unwrap();
    assert!(acked.len() > 10, "events flowed: {}", acked.len());
    until("the control firer delivered every event", || async {
        let controlled: std::collections::HashSet<String> = hook
            .received()
            .iter()
            .filter(|r| r.path == "/control")
            .map(|r| r.headers["ce-id"].to_str().unwrap().to_owned())
            .collect();
        acked.iter().all(|id| controlled.contains(id)).then_some(())
    })
    .await;
    assert_eq!(
        deleted_ones(),
        after_delete,
        "a deleted plugin handles nothing, though the log was read to its end"
    );
    let (status, _) = gw.get("/api/v1/plugins/webhook-firer").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stored_plugin_that_no_longer_loads_can_be_replaced_or_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut gw = Gateway::start_in(&dir, &[]).await;
    let hook = Hook::start(0).await;
    install(&gw, "webhook_firer", hook.grants("/v1", SECRET), None).await;
    install(
        &gw,
        "webhook_firer",
        hook.grants("/v1", SECRET),
        Some("firer-2"),
    )
    .await;
    assert!(gw.terminate().await.success());
    // what a component built for another contract is to this gateway: one that does not link
    {
        use epr_gateway::plugins::catalog;
        let store = Gateway::open_store(&dir).await;
        let records = catalog::records(store.as_ref()).await.unwrap();
        assert_eq!(records.len(), 2);
        for record in records {
            let stale = (wasm("wrong_imports"), b"not an artifact".to_vec());
            catalog::save(&store, &record, Some(stale)).await.unwrap();
        }
        store.close().await;
    }
    let gw = Gateway::start_in(&dir, &[]).await;
    // shown, with why it runs nothing
    let stale = plugin(&gw, "webhook-firer").await;
    let why = stale["load_error"].as_str().expect("a load error");
    assert!(
        why.contains("imports what the host does not offer"),
        "{why}"
    );
    assert_eq!(stale["granted_capabilities"], json!([]), "{stale}");
    let (_, list) = gw.get("/api/v1/plugins").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["load_error"].is_string())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["firer-2", "webhook-firer"], "{list}");
    let grants = hook.grants("/v2", SECRET);
    let (status, answer) = upload(&gw, wasm("webhook_firer"), grants.clone(), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(error_of(&answer).contains("PUT"), "{answer}");
    let (status, answer) = send(
        &gw,
        Method::PUT,
        "/api/v1/plugins/webhook-firer",
        wasm("webhook_firer"),
        &grants,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["revision"], 2, "{answer}");
    assert_eq!(
        answer["data"]["load_error"],
        Value::Null,
        "loaded now: {answer}"
    );
    let receiver = gw.receiver("test.fire").await;
    let id = gw.event(&receiver, "app", true).await;
    until("the replaced firer fires", || async {
        hook.received()
            .iter()
            .any(|r| r.path == "/v2" && r.headers["ce-id"] == id.as_str())
            .then_some(())
    })
    .await;
    // one that did not load can be deleted too, with everything it kept
    let (status, answer) = gw
        .call(Method::DELETE, "/api/v1/plugins/firer-2", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = gw.get("/api/v1/plugins/firer-2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = upload(&gw, wasm("webhook_firer"), grants, Some("firer-2")).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "its name is free again: {answer}"
    );
}

#[tokio::test]
async fn plugins_survive_a_restart_and_can_be_disabled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut gw = Gateway::start_in(&dir, &[]).await;
    install(&gw, "hostile_transform", json!({}), None).await;
    let receiver = gw.receiver("test.hostile").await;
    gw.terminate().await;

    let gw = Gateway::start_in(&dir, &[]).await;
    let mut refuse = event_body(&receiver, "n", true, json!({}));
    refuse["description"] = json!("refuse");
    let (status, answer) = gw.post("/api/v1/events", &refuse).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "loaded from the store: {answer}"
    );

    let (status, answer) = gw
        .call(
            Method::PATCH,
            "/api/v1/plugins/hostile-transform",
            Some(json!({"enabled": false}).to_string()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["enabled"], false);
    let (status, answer) = gw.post("/api/v1/events", &refuse).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a disabled transform does not run: {answer}"
    );
}

/// Validates `bom` with the CycloneDX 1.5 JSON schema as `cyclonedx-python-lib` bundles it
/// (tests/run installs it); returns the validator's complaint, if any.
fn cyclonedx_complaint(bom: &Value) -> Option<String> {
    let python = std::env::var("EPR_TEST_PYTHON").expect(
        "EPR_TEST_PYTHON: a Python with cyclonedx-python-lib[json-validation] (tests/run sets it)",
    );
    let script = "import sys\n\
        from cyclonedx.schema import SchemaVersion\n\
        from cyclonedx.validation.json import JsonStrictValidator\n\
        error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(sys.stdin.read())\n\
        print(error if error else '', end='')\n";
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bom.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the validator failed to run");
    let complaint = String::from_utf8_lossy(&out.stdout).into_owned();
    (!complaint.is_empty()).then_some(complaint)
}

#[tokio::test]
async fn the_sbom_generator_emits_a_valid_cyclonedx_bom() {
    let gw = Gateway::start().await;
    let artifacts = gw.receiver("test.artifact.packaged").await;
    let sboms = gw.receiver("test.sbom").await;
    install(
        &gw,
        "sbom_generator",
        json!({"config": {"receiver_id": sboms}, "capabilities": ["emit-event"],
            "emit_receivers": [sboms]}),
        None,
    )
    .await;
    let components = json!({"components": [
        {"name": "serde", "version": "1.0.200", "purl": "pkg:cargo/serde@1.0.200"},
        {"name": "tokio", "version": "1.40.0", "type": "library"},
        {"name": "openssl", "type": "not-a-type"},
    ]});
    let packaged = gw
        .create(
            "/api/v1/events",
            &event_body(&artifacts, "shop-api", true, components),
        )
        .await;
    gw.event(&artifacts, "no-components", true).await;

    let emitted = until("the SBOM event", || async {
        let e = events_of(&gw, &sboms).await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    let sbom = &emitted[0];
    assert_eq!(sbom["caused_by"], packaged.as_str());
    assert_eq!(sbom["name"], "shop-api");
    let bom = &sbom["payload"];
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["metadata"]["component"]["name"], "shop-api");
    let names: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["serde", "tokio", "openssl"]);
    assert_eq!(bom["components"][2]["type"], "library");
    assert_eq!(cyclonedx_complaint(bom), None, "valid CycloneDX 1.5: {bom}");
    // the check itself catches a broken BOM
    let mut broken = bom.clone();
    broken["components"][0]["type"] = json!("spaceship");
    assert!(cyclonedx_complaint(&broken).is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        events_of(&gw, &sboms).await.len(),
        1,
        "an event without components gives no SBOM"
    );
}

/// Installs the hostile watcher as `hostile-<mode>` with `grants` (plus its mode, one attempt).
async fn hostile(gw: &Gateway, mode: &str, mut grants: Value) -> Value {
    let config = grants["config"].as_object().cloned().unwrap_or_default();
    let mut config = Value::Object(config);
    config["mode"] = json!(mode);
    grants["config"] = config;
    grants["max_attempts"] = json!(1);
    install(
        gw,
        "hostile_watcher",
        grants,
        Some(&format!("hostile-{mode}")),
    )
    .await
}

/// The first dead letter of `name`'s, once there is one.
async fn first_dead_letter(gw: &Gateway, name: &str) -> Value {
    until(&format!("{name} to dead-letter"), || async {
        dead_letters(gw, name).await.first().cloned()
    })
    .await
}

#[tokio::test]
async fn sleeping_plugins_hold_no_request_and_no_delete_or_shutdown() {
    let mut gw = Gateway::start().await;
    install(&gw, "hostile_transform", json!({}), None).await;
    let hostile = gw.receiver("test.hostile").await;
    let started = std::time::Instant::now();
    let (status, answer) = gw
        .post(
            "/api/v1/events",
            &json!({"name": "u", "version": "1", "release": "r", "platform_id": "p",
                "package": "k", "description": "sleep", "payload": {}, "success": true,
                "event_receiver_id": hostile}),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    // the transform asked for 20 s of sleep: WASI clocks return at once
    assert!(took < Duration::from_secs(10), "answered in {took:?}");
    hostile_watcher_sleeps(&gw).await;
    // one more sleeper, busy with an event when the gateway is stopped
    install(
        &gw,
        "hostile_watcher",
        json!({"config": {"mode": "sleep"}}),
        Some("sleeper"),
    )
    .await;
    let sleepy = gw.receiver("test.sleepy.again").await;
    gw.event(&sleepy, "app", true).await;
    let started = std::time::Instant::now();
    let status = gw.terminate().await;
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown took {:?}",
        started.elapsed()
    );
}

/// A watcher that sleeps 60 s per event handles it at once, and is deleted at once.
async fn hostile_watcher_sleeps(gw: &Gateway) {
    hostile(gw, "sleep", json!({})).await;
    let receiver = gw.receiver("test.sleepy").await;
    gw.event(&receiver, "app", true).await;
    until("the sleeping watcher to handle the event", || async {
        let view = plugin(gw, "hostile-sleep").await;
        (view["calls"] == 1).then_some(view)
    })
    .await;
    gw.event(&receiver, "app", true).await;
    let started = std::time::Instant::now();
    let (status, answer) = gw
        .call(Method::DELETE, "/api/v1/plugins/hostile-sleep", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(gw.get("/healthz/liveness").await.0.is_success());
}

#[tokio::test]
async fn capabilities_come_from_the_grants_and_emitting_is_capped() {
    let gw = Gateway::start().await;
    let allowed = gw.receiver("test.allowed").await;
    let other = gw.receiver("test.other").await;
    let trigger = gw.receiver("test.trigger").await;
    // the manifest asks for emit-event; the grants do not give it
    let view = hostile(
        &gw,
        "emit-flood",
        json!({"config": {"receiver": allowed}, "subscription": {"types": ["test.trigger"]}}),
    )
    .await;
    let asked: Vec<&str> = view["manifest"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(asked.contains(&"emit-event"), "{view}");
    assert_eq!(view["granted_capabilities"], json!([]), "{view}");
    gw.event(&trigger, "app", true).await;
    let letter = first_dead_letter(&gw, "hostile-emit-flood").await;
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("capability emit-event is not granted"),
        "{letter}"
    );
    assert!(events_of(&gw, &allowed).await.is_empty());

    // granted, to one receiver: at most 10 per call there, none elsewhere
    let trigger_only = json!({"types": ["test.trigger"]});
    let grants = |receiver: &str, mode: &str| {
        json!({"config": {"receiver": receiver, "mode": mode}, "capabilities": ["emit-event"],
            "emit_receivers": [allowed], "max_attempts": 1, "subscription": trigger_only})
    };
    let view = install(
        &gw,
        "hostile_watcher",
        grants(&allowed, "emit-flood"),
        Some("granted"),
    )
    .await;
    assert_eq!(
        view["granted_capabilities"],
        json!(["emit-event"]),
        "{view}"
    );
    gw.event(&trigger, "again", true).await;
    let letter = first_dead_letter(&gw, "granted").await;
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.contains("at most 10 events") && error.contains("max_emits_per_call"),
        "{error}"
    );
    assert_eq!(events_of(&gw, &allowed).await.len(), 10);
    install(
        &gw,
        "hostile_watcher",
        grants(&other, "emit-flood"),
        Some("hostile-elsewhere"),
    )
    .await;
    gw.event(&trigger, "third", true).await;
    let letter = first_dead_letter(&gw, "hostile-elsewhere").await;
    assert!(
        letter["error"].as_str().unwrap().contains("emit_receivers"),
        "{letter}"
    );
    assert!(events_of(&gw, &other).await.is_empty());
}

#[tokio::test]
async fn a_plugin_opens_no_socket_and_its_metrics_say_what_it_did() {
    let gw = Gateway::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    // http granted for the address too: sockets are not HTTP, nothing grants them
    hostile(
        &gw,
        "socket",
        json!({"allowed_hosts": [address.clone()], "config": {"address": address}}),
    )
    .await;
    let receiver = gw.receiver("test.sockets").await;
    gw.event(&receiver, "app", true).await;
    let letter = first_dead_letter(&gw, "hostile-socket").await;
    let error = letter["error"].as_str().unwrap();
    assert!(error.starts_with("no socket: "), "{error}");
    assert!(
        listener.accept().is_err(),
        "nothing connected to the listener"
    );
    // the failed call is in every per-plugin metric (the dead-letter counter moves just after
    // the dead letter is stored, which the test saw first)
    let counted = r#"epr_plugin_dead_letters_total{plugin="hostile-socket"} 1"#;
    let metrics = until("the dead letter to be counted", || async {
        let metrics = gw.metrics().await;
        metrics.lines().any(|l| l == counted).then_some(metrics)
    })
    .await;
    for line in [
        r#"epr_plugin_calls_total{plugin="hostile-socket"} 1"#,
        r#"epr_plugin_failures_total{plugin="hostile-socket"} 1"#,
        r#"epr_plugin_dead_letters_total{plugin="hostile-socket"} 1"#,
        r#"epr_plugin_call_duration_seconds_count{plugin="hostile-socket"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let peak = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"epr_plugin_memory_peak_bytes{plugin="hostile-socket"} "#))
        .expect("the memory peak");
    assert!(peak.parse::<f64>().unwrap() > 0.0, "{peak}");
}

#[tokio::test]
async fn a_plugin_gets_a_redirect_as_an_answer_and_is_not_taken_there() {
    let gw = Gateway::start().await;
    let hook = Hook::start(0).await;
    hook.status.store(302, Ordering::SeqCst);
    let url = format!("http://127.0.0.1:{}/first", hook.port);
    hostile(
        &gw,
        "fetch",
        json!({"allowed_hosts": [format!("127.0.0.1:{}", hook.port)], "config": {"url": url}}),
    )
    .await;
    let receiver = gw.receiver("test.redirect").await;
    gw.event(&receiver, "app", true).await;
    let letter = first_dead_letter(&gw, "hostile-fetch").await;
    assert_eq!(letter["error"], "reached it: 302", "{letter}");
    let paths: Vec<String> = hook.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/first"], "the redirect was not followed");
}

#[tokio::test]
async fn a_plugin_tells_host_errors_apart_by_kind() {
    let gw = Gateway::start().await;
    // http granted, key-value not, no receiver to emit to
    hostile(
        &gw,
        "tell-apart",
        json!({"capabilities": ["emit-event", "http"]}),
    )
    .await;
    let receiver = gw.receiver("test.kinds").await;
    gw.event(&receiver, "app", true).await;
    let letter = first_dead_letter(&gw, "hostile-tell-apart").await;
    assert_eq!(
        letter["error"],
        r#"told apart: [Some("not-granted(key-value)"), Some("forbidden"), Some("invalid")]"#,
        "kv-get without the capability, a receiver the grants do not name, a bad URL"
    );
}

#[tokio::test]
async fn a_plugin_cannot_flood_its_store_the_log_or_its_errors() {
    let gw = Gateway::start().await;
    hostile(&gw, "kv-flood", json!({"capabilities": ["key-value"]})).await;
    hostile(&gw, "log-flood", json!({})).await;
    hostile(&gw, "huge-error", json!({})).await;
    let receiver = gw.receiver("test.flood").await;
    gw.event(&receiver, "app", true).await;
    let letter = first_dead_letter(&gw, "hostile-kv-flood").await;
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("key-value store is full"),
        "{letter}"
    );
    let letter = first_dead_letter(&gw, "hostile-huge-error").await;
    let error = letter["error"].as_str().unwrap();
    assert!(error.len() <= 1100, "{} bytes", error.len());
    assert!(
        error.starts_with("eeee") && error.ends_with("..."),
        "cut, and says so"
    );
    let view = until("the log flood to be handled", || async {
        let view = plugin(&gw, "hostile-log-flood").await;
        (view["calls"] == 1).then_some(view)
    })
    .await;
    assert_eq!(view["failures"], 0, "{view}");
    assert!(gw.get("/healthz/liveness").await.0.is_success());
}

#[tokio::test]
async fn http_grants_mean_what_they_say() {
    let gw = Gateway::start().await;
    let hook = Hook::start(0).await;
    let port = hook.port;
    // a name that resolves to loopback is refused, even when granted by name
    hostile(
        &gw,
        "fetch",
        json!({"allowed_hosts": [format!("localhost:{port}")],
            "config": {"url": format!("http://localhost:{port}/x")}}),
    )
    .await;
    // the plugin may not set Host
    hostile(
        &gw,
        "host-header",
        json!({"allowed_hosts": [format!("127.0.0.1:{port}")],
            "config": {"url": format!("http://127.0.0.1:{port}/x")}}),
    )
    .await;
    let receiver = gw.receiver("test.http").await;
    gw.event(&receiver, "app", true).await;
    let letter = first_dead_letter(&gw, "hostile-fetch").await;
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.contains("localhost resolves to") && error.contains("grant the address"),
        "{error}"
    );
    let letter = first_dead_letter(&gw, "hostile-host-header").await;
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("header Host is set by the host"),
        "{letter}"
    );
    assert!(hook.received().is_empty(), "nothing reached the server");
    // granted by address, it is reached (the fixture reports the status as an error)
    let grants = json!({"allowed_hosts": [format!("127.0.0.1:{port}")],
        "config": {"url": format!("http://127.0.0.1:{port}/x"), "mode": "fetch"},
        "max_attempts": 1});
    install(&gw, "hostile_watcher", grants, Some("hostile-by-address")).await;
    gw.event(&receiver, "again", true).await;
    let letter = first_dead_letter(&gw, "hostile-by-address").await;
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("reached it: 200"),
        "{letter}"
    );
    // non-ASCII grants (a PATCH body can carry them; a header cannot) are refused, not a crash
    let (status, answer) = gw
        .call(
            Method::PATCH,
            "/api/v1/plugins/hostile-fetch",
            Some(json!({"grants": {"allowed_hosts": ["é.example", "*é"]}}).to_string()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(error_of(&answer).contains("ASCII host name"), "{answer}");
    assert!(gw.get("/healthz/liveness").await.0.is_success());
}

#[tokio::test]
async fn the_webhook_firers_signatures_pass_the_reference_library_and_the_gateways_verifier() {
    let gw = Gateway::start().await;
    gw.receiver("test.fire").await;
    // the same key as a whsec_ secret and as bare (unpadded) base64
    let bare = SECRET.trim_start_matches("whsec_").trim_end_matches('=');
    for (n, secret) in [SECRET, bare].into_iter().enumerate() {
        let hook = Hook::start(0).await;
        install(
            &gw,
            "webhook_firer",
            hook.grants("/hook", secret),
            Some(&format!("firer-{n}")),
        )
        .await;
        let source = format!("sw-{n}");
        let (status, answer) = gw
            .call(
                Method::PUT,
                &format!("/api/v1/webhooks/{source}"),
                Some(
                    json!({"accept": "cloudevents", "signature": "standard-webhooks",
                    "secret": secret})
                    .to_string(),
                ),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let receiver = gw.receiver(&format!("test.fire.{n}")).await;
        gw.event(&receiver, "app", true).await;
        let received = until("the webhook", || async { hook.received().first().cloned() }).await;
        let header = |name: &str| received.headers[name].to_str().unwrap().to_owned();
        let python = std::env::var("EPR_TEST_PYTHON").expect("EPR_TEST_PYTHON (tests/run sets it)");
        let script = format!(
            "{}/../tests/python/standard_webhooks_verify.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let output = tokio::process::Command::new(&python)
            .args([
                script.as_str(),
                secret,
                &header("webhook-id"),
                &header("webhook-timestamp"),
                &header("webhook-signature"),
                &base64::engine::general_purpose::STANDARD.encode(&received.body),
            ])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{secret}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // the same delivery, replayed to the gateway's own verifier
        let headers: Vec<(String, String)> = received
            .headers
            .iter()
            .filter(|(name, _)| {
                name.as_str().starts_with("ce-")
                    || name.as_str().starts_with("webhook-")
                    || *name == "content-type"
            })
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = String::from_utf8(received.body.to_vec()).unwrap();
        let (status, answer) = gw
            .post_with(&format!("/webhook/{source}"), &headers, &body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{secret}: {answer}");
    }
}

#[tokio::test]
async fn a_transform_cannot_route_an_event_past_its_receivers_schema() {
    let gw = Gateway::start().await;
    install(&gw, "hostile_transform", json!({}), None).await;
    let strict = json!({"type": "object", "required": ["approved_by"]});
    gw.create(
        "/api/v1/receivers",
        &support::receiver_body("test.hostile.strict", strict),
    )
    .await;
    let before = gw.last_sequence().await;
    // the transform empties the receiver id of what it returns
    let cloudevent = json!({"specversion": "1.0", "id": "u-1", "source": "/attacker",
        "type": "test.hostile.strict", "eprdescription": "unroute", "data": {}});
    let (status, answer) = gw
        .post_with(
            "/api/v1/cloudevents",
            &[STRUCTURED],
            &cloudevent.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        error_of(&answer).contains("did not match event receiver schema"),
        "{answer}"
    );
    assert_eq!(gw.last_sequence().await, before, "nothing stored");
}
