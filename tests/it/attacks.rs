//! A running gateway attacked as a hostile client would, over real HTTP and raw TCP: each attack
//! is refused (status and message) with nothing stored, or contained (the gateway keeps
//! answering).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Gateway, binary, error_of, event_body, receiver_body};

const INGEST: &str = "ingest-s3cret";

/// A CDEvent for the built-in webhook, with `id`.
fn cdevent(id: &str) -> String {
    json!({"context": {"specversion": "0.5.0", "id": id, "source": "/ci/attack",
        "type": "dev.cdevents.pipelinerun.finished.0.3.0", "timestamp": "2026-11-23T10:00:00Z"},
        "subject": {"id": "pipeline/1", "content": {"pipelineName": "p", "outcome": "success"}}})
    .to_string()
}

/// A structured CloudEvent of type `kind` from `source` with `id`, carrying `data`.
fn cloudevent(kind: &str, source: &str, id: &str, data: Value) -> String {
    json!({"specversion": "1.0", "id": id, "source": source, "type": kind, "data": data})
        .to_string()
}

/// Events stored, as counted by the log's length.
async fn stored(gw: &Gateway) -> u64 {
    gw.last_sequence().await
}

/// Sends `request` (raw HTTP/1.1) and returns what the gateway answered until it closed.
async fn raw(gw: &Gateway, request: &str) -> String {
    let mut stream = TcpStream::connect(address(gw)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    // every request here asks to close (or is refused, then closed); a reset after the answer
    // (request bytes left unread) still leaves the answer read
    assert!(
        read.is_ok(),
        "the gateway closed the connection within 10 s"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

fn address(gw: &Gateway) -> String {
    gw.base.trim_start_matches("http://").to_owned()
}

/// `/healthz/liveness` answers, and how long it took.
async fn liveness(gw: &Gateway) -> Duration {
    let started = Instant::now();
    let (status, _) = gw.get("/healthz/liveness").await;
    assert_eq!(status, StatusCode::OK);
    started.elapsed()
}

#[tokio::test]
async fn the_builtin_webhook_needs_the_ingest_token_once_one_is_set() {
    let gw = Gateway::start_with(&[("EPR_INGEST_TOKEN", INGEST)]).await;
    let before = stored(&gw).await;
    let (status, answer) = gw
        .post_with("/webhook/000-cdevents", &[], &cdevent("a-1"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(error_of(&answer).contains("ingest token"), "{answer}");
    assert_eq!(stored(&gw).await, before, "nothing stored");
    let bearer = format!("Bearer {INGEST}");
    let (status, answer) = gw
        .post_with(
            "/webhook/000-cdevents",
            &[("authorization", &bearer)],
            &cdevent("a-1"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // a signed source takes its signature, or the ingest token from senders that cannot sign
    let admin = gw
        .call(
            Method::PUT,
            "/api/v1/webhooks/signed",
            Some(json!({"accept": "cdevents", "signature": "github", "secret": "gh"}).to_string()),
            None,
        )
        .await;
    assert_eq!(admin.0, StatusCode::CREATED, "{:?}", admin.1);
    let body = cdevent("s-1");
    let signature = crate::support::github_signature("gh", body.as_bytes());
    let (status, _) = gw
        .post_with(
            "/webhook/signed",
            &[("x-hub-signature-256", &signature)],
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = gw
        .post_with(
            "/webhook/signed",
            &[("authorization", &bearer)],
            &cdevent("s-2"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the ingest token instead of a signature"
    );
    let before = stored(&gw).await;
    let (status, answer) = gw
        .post_with(
            "/webhook/signed",
            &[("authorization", "Bearer wrong")],
            &cdevent("s-3"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(error_of(&answer).contains("signature"), "{answer}");
    assert_eq!(stored(&gw).await, before, "nothing stored");
}

#[tokio::test]
async fn one_path_cannot_claim_another_paths_ids_and_a_changed_resubmission_is_a_conflict() {
    let gw = Gateway::start_with(&[("EPR_AUTO_RECEIVERS", "true")]).await;
    let (status, _) = gw
        .call(
            Method::PUT,
            "/api/v1/webhooks/ci",
            Some(
                json!({"accept": "cloudevents", "signature": "github", "secret": "ci-secret"})
                    .to_string(),
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let structured = [("content-type", "application/cloudevents+json")];
    // the attacker, on the open path, posts first with the id the real producer will use
    let forged = cloudevent(
        "dev.ci.build",
        "/ci/real",
        "build-7",
        json!({"forged": true}),
    );
    let (status, answer) = gw
        .post_with("/api/v1/cloudevents", &structured, &forged)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let forged_id = answer["data"].as_str().unwrap().to_owned();
    // the real producer, on its signed path, is stored anyway, under its own id
    let real = cloudevent("dev.ci.build", "/ci/real", "build-7", json!({"real": true}));
    let signature = crate::support::github_signature("ci-secret", real.as_bytes());
    let signed = [
        ("content-type", "application/cloudevents+json"),
        ("x-hub-signature-256", signature.as_str()),
    ];
    let (status, answer) = gw.post_with("/webhook/ci", &signed, &real).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let real_id = answer["data"].as_str().unwrap().to_owned();
    assert_ne!(real_id, forged_id);
    let (_, event) = gw.get(&format!("/api/v1/events/{real_id}")).await;
    assert_eq!(event["data"][0]["payload"]["data"]["real"], true, "{event}");
    // a resubmission is a duplicate; the same origin with other content is a conflict
    let (status, answer) = gw.post_with("/webhook/ci", &signed, &real).await;
    assert_eq!(
        (status, answer["data"].as_str()),
        (StatusCode::OK, Some(real_id.as_str()))
    );
    let before = stored(&gw).await;
    let changed = cloudevent("dev.ci.build", "/ci/real", "build-7", json!({"forged": 2}));
    let (status, answer) = gw
        .post_with("/api/v1/cloudevents", &structured, &changed)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let error = error_of(&answer);
    assert!(
        error.contains("build-7") && error.contains("other content"),
        "{error}"
    );
    assert_eq!(stored(&gw).await, before, "nothing stored");
}

/// Starts `epr-gateway serve` with `args` and `env` and returns its exit status and stderr
/// once it exits (or kills it after 5 s and returns what it printed then).
async fn serve_once(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(binary())
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(args)
        .env("EPR_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let code = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(status) => status.unwrap().code(),
        Err(_) => {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            None
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    (code, out, err)
}

#[tokio::test]
async fn empty_tokens_and_an_open_bind_without_an_admin_token_stop_the_gateway_at_start() {
    let (code, _, err) = serve_once(&[], &[("EPR_ADMIN_TOKEN", "")]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("EPR_ADMIN_TOKEN") && err.contains("empty"),
        "{err}"
    );
    let (code, _, err) = serve_once(&[], &[("EPR_INGEST_TOKEN", "  ")]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("EPR_INGEST_TOKEN"), "{err}");
    let (code, _, err) = serve_once(&["--host", "0.0.0.0"], &[]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("refusing to listen on 0.0.0.0 without an admin token")
            && err.contains("--insecure"),
        "{err}"
    );
    // with --insecure it serves, and says loudly what that means
    let (code, out, err) = serve_once(&["--host", "0.0.0.0", "--insecure"], &[]).await;
    assert_eq!(code, None, "still serving after 5 s: {err}");
    assert!(out.contains("listening on http://0.0.0.0:"), "{out}");
    assert!(err.contains("WITHOUT an admin token"), "{err}");
    // with an admin token it serves quietly
    let (code, out, _) = serve_once(&["--host", "0.0.0.0"], &[("EPR_ADMIN_TOKEN", "a")]).await;
    assert_eq!(code, None);
    assert!(out.contains("listening"), "{out}");
}

#[tokio::test]
async fn a_web_page_can_neither_change_state_nor_read_through_dns_rebinding() {
    let gw = Gateway::start().await;
    let before = stored(&gw).await;
    let receiver = receiver_body("dev.csrf", json!({})).to_string();
    let simple_types = [
        None,
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ];
    for (path, body) in [
        ("/api/v1/receivers", receiver.as_str()),
        (
            "/api/v1/graphql/query",
            r#"{"query":"mutation { create_event_receiver(event_receiver: {name: \"x\", type: \"x\", version: \"1\", description: \"x\", schema: \"{}\"}) }"}"#,
        ),
        ("/api/v1/plugins", "\0asm"),
    ] {
        for content_type in simple_types {
            // what a form, or fetch(url, {method: "POST", mode: "no-cors", body}), sends
            let mut request = gw
                .http
                .post(gw.url(path))
                .header("origin", "https://evil.example")
                .body(body.to_owned());
            if let Some(t) = content_type {
                request = request.header("content-type", t);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let answer: Value = response.json().await.unwrap();
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} {content_type:?}: {answer}"
            );
            assert!(
                error_of(&answer).contains("Content-Type: application/json"),
                "{answer}"
            );
        }
    }
    assert_eq!(stored(&gw).await, before, "nothing stored");
    // EPR's clients send JSON: still fine
    gw.receiver("dev.csrf").await;

    // DNS rebinding: the page's own host name reaches 127.0.0.1, and is refused
    let answer = raw(
        &gw,
        "GET /api/v1/receivers HTTP/1.1\r\nHost: rebind.evil.example:8042\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(answer.contains("rebind.evil.example"), "{answer}");
    assert!(!answer.contains("dev.csrf"), "no data: {answer}");
    for host in ["localhost:8042", "127.0.0.1", "[::1]:8042"] {
        let answer = raw(
            &gw,
            &format!("GET /healthz/liveness HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    let allowed = Gateway::start_with(&[("EPR_ALLOWED_HOSTS", "epr.internal")]).await;
    let answer = raw(
        &allowed,
        "GET /healthz/liveness HTTP/1.1\r\nHost: epr.internal\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn every_body_is_bounded_graphql_included_and_the_body_deadline_is_total() {
    let gw = Gateway::start_with(&[
        ("EPR_MAX_BODY_BYTES", "10000"),
        ("EPR_BODY_TIMEOUT_SECS", "2"),
    ])
    .await;
    let big = json!({"query": "{ events(event: {}) { id } }", "pad": "x".repeat(20_000)});
    let (status, answer) = gw.post("/api/v1/graphql/query", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(error_of(&answer).contains("10000 bytes"), "{answer}");

    // slowloris: one byte every 300 ms keeps an idle timer alive forever, not a deadline
    let mut stream = TcpStream::connect(address(&gw)).await.unwrap();
    stream
        .write_all(b"POST /api/v1/receivers HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = async {
        for _ in 0..100 {
            if stream.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    // the gateway keeps answering others meanwhile
    let others = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(liveness(&gw).await < Duration::from_secs(2));
        }
    };
    // the client trickles for 8 s at most (the gateway may keep reading what it sends after
    // its 408); the answer below is what counts
    let _trickled_for_8_s_or_refused = tokio::time::timeout(Duration::from_secs(8), async {
        tokio::join!(trickle, others)
    })
    .await;
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered")
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("within 2 s"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut at the deadline, not after the trickle"
    );
    liveness(&gw).await;
}

#[tokio::test]
async fn connections_and_streams_are_capped_and_the_gateway_keeps_answering() {
    let gw = Gateway::start_with(&[("EPR_MAX_CONNECTIONS", "8"), ("EPR_MAX_STREAMS", "1")]).await;
    // connections that say nothing, held open up to the cap (first, while no other is open)
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(address(&gw)).await.unwrap());
    }
    let answer = raw(
        &gw,
        "GET /healthz/liveness HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("EPR_MAX_CONNECTIONS"), "{answer}");
    drop(idle);
    let mut served = false;
    for _ in 0..50 {
        let answer = raw(
            &gw,
            "GET /healthz/liveness HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        if answer.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "served again once the connections closed");
    assert!(
        gw.metrics()
            .await
            .contains("epr_http_connections_refused_total"),
        "counted"
    );

    // the one stream allowed, held open; a second one is refused
    let first = gw.http.get(gw.url("/api/v1/stream")).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let (status, answer) = gw.get("/api/v1/stream").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(error_of(&answer).contains("EPR_MAX_STREAMS"), "{answer}");
    drop(first);
    liveness(&gw).await;
}

#[tokio::test]
async fn a_signature_header_cannot_make_verification_expensive() {
    let gw = Gateway::start().await;
    let secret = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=";
    let (status, _) = gw
        .call(
            Method::PUT,
            "/api/v1/webhooks/sw",
            Some(
                json!({"accept": "cdevents", "signature": "standard-webhooks", "secret": secret})
                    .to_string(),
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let body = cdevent("sw-1");
    let now = chrono::Utc::now().timestamp().to_string();
    let good = standard_signature("secret-key-for-tests", "msg-1", &now, &body);
    // 5,000 wrong entries before the right one: only the first few are looked at
    let flood = format!("{}v1,{good}", "v1,AAAA ".repeat(5000));
    let headers = |signature: &str| {
        vec![
            ("webhook-id".to_owned(), "msg-1".to_owned()),
            ("webhook-timestamp".to_owned(), now.clone()),
            ("webhook-signature".to_owned(), signature.to_owned()),
        ]
    };
    let post = |signature: String| {
        let gw = &gw;
        let body = body.clone();
        let headers = headers(&signature);
        async move {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            gw.post_with("/webhook/sw", &h, &body).await
        }
    };
    let (status, answer) = post(flood).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, answer) = post(format!("v1,AAAA v1,{good}")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

/// `base64(HMAC-SHA256(key, id.timestamp.body))`, as Standard Webhooks signs.
fn standard_signature(key: &str, id: &str, timestamp: &str, body: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn searches_look_at_a_bounded_number_of_events_and_miss_none() {
    let gw = Gateway::start_with(&[("EPR_AUTO_RECEIVERS", "true")]).await;
    let receiver = gw.receiver("dev.many").await;
    let failed = gw.event(&receiver, "the-one", false).await;
    // more events than one search looks at, posted 1,000 per CloudEvents batch
    let scanned = epr_gateway::registry::query::MAX_SCANNED;
    for batch in 0..=(scanned / 1000) {
        let items: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"specversion": "1.0", "id": format!("{batch}-{i}"), "source": "/load",
                    "type": "dev.many", "eprreceiverid": receiver, "data": {}})
            })
            .collect();
        let (status, answer) = gw
            .post_with(
                "/api/v1/cloudevents",
                &[("content-type", "application/cloudevents-batch+json")],
                &Value::Array(items).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // the only failed event is the oldest: the first page stops early and says where
    let mut after = None::<String>;
    let mut pages = 0;
    let found = loop {
        pages += 1;
        let query = match &after {
            Some(a) => format!("/api/v1/events?success=false&limit=1&after={a}"),
            None => "/api/v1/events?success=false&limit=1".to_owned(),
        };
        let (status, answer) = gw.get(&query).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        if let Some(event) = answer["data"].as_array().and_then(|d| d.first()) {
            break event["id"].as_str().unwrap().to_owned();
        }
        after = Some(
            answer["next"]
                .as_str()
                .unwrap_or_else(|| panic!("an empty page that stopped early says where: {answer}"))
                .to_owned(),
        );
        assert!(pages < 10, "{pages} pages");
    };
    assert_eq!(found, failed);
    assert!(pages >= 2, "the first page stopped at the scan limit");
}

#[tokio::test]
async fn graphql_aliases_cannot_multiply_large_pages() {
    let gw = Gateway::start().await;
    let aliases: String = (0..10)
        .map(|i| format!("a{i}: events(event: {{}}, limit: 1000) {{ id payload }} "))
        .collect();
    let (status, answer) = gw
        .post(
            "/api/v1/graphql/query",
            &json!({"query": format!("{{ {aliases} }}")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let error = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(error.to_lowercase().contains("complex"), "{answer}");
    assert!(
        error.contains("at most 5000"),
        "the limit is named: {answer}"
    );
    // an ordinary query of EPR's clients still runs
    let (_, answer) = gw
        .post(
            "/api/v1/graphql/query",
            &json!({"query": "{ events(event: {name: \"x\"}) { id name version release platform_id package description payload success created_at } }"}),
        )
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
}

#[tokio::test]
async fn invented_methods_add_no_metric_series() {
    let gw = Gateway::start().await;
    for i in 0..20 {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let response = gw
            .http
            .request(method, gw.url("/healthz/liveness"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let metrics = gw.metrics().await;
    assert!(!metrics.contains("INVENTED"), "{metrics}");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}

#[tokio::test]
async fn payloads_and_schemas_nested_too_deep_are_refused_naming_the_limit() {
    let gw = Gateway::start().await;
    let receiver = gw.receiver("dev.deep").await;
    let before = stored(&gw).await;
    let deep = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    for depth in [65, 127, 129, 5000] {
        let body = event_body(&receiver, "app", true, json!("P"))
            .to_string()
            .replace(r#""P""#, &deep(depth));
        let (status, answer) = gw
            .call(Method::POST, "/api/v1/events", Some(body), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "depth {depth}: {answer}");
        assert!(error_of(&answer).contains("limit is 64"), "{answer}");
        let schema = receiver_body("dev.deeper", json!("S"))
            .to_string()
            .replace(r#""S""#, &format!(r#"{{"allOf":{}}}"#, deep(depth)));
        let (status, answer) = gw
            .call(Method::POST, "/api/v1/receivers", Some(schema), None)
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "schema depth {depth}: {answer}"
        );
        assert!(error_of(&answer).contains("limit is 64"), "{answer}");
    }
    assert_eq!(stored(&gw).await, before, "nothing stored");
    gw.create(
        "/api/v1/events",
        &event_body(&receiver, "app", true, json!({"ok": [[[1]]]})),
    )
    .await;
}
