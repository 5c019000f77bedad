//! `POST /api/v1/cloudevents`: the CloudEvents HTTP binding (structured, binary, batch), routing
//! to receivers, idempotency, the webhook handshake, and the CloudEvents Python SDK.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support;
use crate::support::{Gateway, error_of};

const STRUCTURED: (&str, &str) = ("content-type", "application/cloudevents+json");

/// POSTs a structured-mode CloudEvent to `/api/v1/cloudevents`.
async fn post_structured(gw: &Gateway, body: &str) -> (StatusCode, Value) {
    gw.post_with("/api/v1/cloudevents", &[STRUCTURED], body)
        .await
}

fn structured(id: &str, kind: &str, extra: Value) -> String {
    let mut event = json!({"specversion": "1.0", "id": id, "source": "/ci/pipeline", "type": kind,
        "time": "2026-11-23T10:00:00Z", "datacontenttype": "application/json", "data": {"commit": "abc1234"}});
    event
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    event.to_string()
}

async fn stored_event(gw: &Gateway, id: &str) -> Value {
    let (status, answer) = gw.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["data"][0].clone()
}

#[tokio::test]
async fn structured_mode_stores_the_event_with_its_nvrpp_from_extensions() {
    let gw = Gateway::start().await;
    let receiver = gw.receiver("dev.build.finished").await;
    let body = structured(
        "b-1",
        "dev.build.finished",
        json!({"eprname": "app", "eprversion": "2.0.1",
        "eprrelease": "r7", "eprplatformid": "linux", "eprpackage": "oci", "eprsuccess": "false"}),
    );
    let (status, answer) = post_structured(&gw, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let event = stored_event(&gw, answer["data"].as_str().unwrap()).await;
    assert_eq!(event["event_receiver_id"], receiver);
    assert_eq!(
        fields(
            &event,
            &["name", "version", "release", "platform_id", "package"]
        ),
        json!(["app", "2.0.1", "r7", "linux", "oci"])
    );
    assert_eq!(event["success"], false);
    assert_eq!(event["payload"]["id"], "b-1");
    assert_eq!(event["payload"]["data"], json!({"commit": "abc1234"}));

    // without extensions: the documented defaults
    let (_, answer) = post_structured(
        &gw,
        &structured("b-2", "dev.build.finished", json!({"subject": "app"})),
    )
    .await;
    let event = stored_event(&gw, answer["data"].as_str().unwrap()).await;
    assert_eq!(
        fields(
            &event,
            &[
                "name",
                "version",
                "release",
                "platform_id",
                "package",
                "success",
                "description"
            ]
        ),
        json!([
            "app",
            "0",
            "0",
            "/ci/pipeline",
            "cloudevents",
            true,
            "dev.build.finished"
        ])
    );
}

/// The values of `names` in `event`, as a JSON array.
fn fields(event: &Value, names: &[&str]) -> Value {
    names.iter().map(|k| event[k].clone()).collect()
}

#[tokio::test]
async fn binary_mode_reads_percent_encoded_case_insensitive_headers() {
    let gw = Gateway::start().await;
    gw.receiver("dev.test.finished").await;
    let headers = [
        ("CE-SpecVersion", "1.0"),
        ("Ce-Id", "t-1"),
        ("ce-source", "/ci/r%C3%A9sultats%20nightly"),
        ("ce-type", "dev.test.finished"),
        ("ce-eprname", "app"),
        ("content-type", "application/json"),
    ];
    let (status, answer) = gw
        .post_with("/api/v1/cloudevents", &headers, r#"{"passed": 12}"#)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let event = stored_event(&gw, answer["data"].as_str().unwrap()).await;
    assert_eq!(event["payload"]["source"], "/ci/résultats nightly");
    assert_eq!(event["payload"]["datacontenttype"], "application/json");
    assert_eq!(event["payload"]["data"], json!({"passed": 12}));
    assert_eq!(event["name"], "app");

    let headers = [
        ("ce-specversion", "1.0"),
        ("ce-id", "t-2"),
        ("ce-source", "/ci"),
        ("ce-type", "dev.test.finished"),
        ("content-type", "application/octet-stream"),
    ];
    let (status, answer) = gw
        .post_with("/api/v1/cloudevents", &headers, "raw\u{0}bytes")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let event = stored_event(&gw, answer["data"].as_str().unwrap()).await;
    assert_eq!(event["payload"]["data_base64"], "cmF3AGJ5dGVz");
}

#[tokio::test]
async fn every_required_attribute_failure_is_a_400_naming_it_and_stores_nothing() {
    let gw = Gateway::start().await;
    gw.receiver("dev.x").await;
    let before = gw.last_sequence().await;
    let valid = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "dev.x"});
    let with = |k: &str, v: Value| {
        let mut e = valid.clone();
        e[k] = v;
        e.to_string()
    };
    let without = |k: &str| {
        let mut e = valid.clone();
        e.as_object_mut().unwrap().remove(k);
        e.to_string()
    };
    let cases = [
        (without("specversion"), "specversion"),
        (with("specversion", json!("0.3")), "specversion"),
        (without("id"), "id"),
        (with("id", json!("")), "id"),
        (without("source"), "source"),
        (with("source", json!("")), "source"),
        (without("type"), "type"),
        (with("type", json!(7)), "type"),
        (with("time", json!("yesterday")), "time"),
        (
            {
                let mut e = valid.clone();
                e["data"] = json!(1);
                e["data_base64"] = json!("AQ==");
                e.to_string()
            },
            "data_base64",
        ),
        (with("Bad-Name", json!("x")), "Bad-Name"),
        (with("nested", json!({"a": 1})), "nested"),
    ];
    for (body, attribute) in cases {
        let (status, answer) = post_structured(&gw, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = error_of(&answer);
        assert!(
            message.starts_with(&format!(
                "invalid input: invalid CloudEvent: attribute {attribute}: "
            )),
            "{body}: {message}"
        );
    }
    // binary mode without ce-specversion
    let (status, answer) = gw
        .post_with(
            "/api/v1/cloudevents",
            &[
                ("ce-id", "1"),
                ("ce-source", "/s"),
                ("ce-type", "dev.x"),
                ("content-type", "application/json"),
            ],
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&answer).contains("attribute specversion: is required"),
        "{answer}"
    );
    // unsupported formats
    for media in [
        "application/cloudevents+avro",
        "application/cloudevents-batch+protobuf",
    ] {
        let (status, answer) = gw
            .post_with("/api/v1/cloudevents", &[("content-type", media)], "{}")
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{media}");
        assert!(error_of(&answer).contains(media), "{answer}");
    }
    assert_eq!(gw.last_sequence().await, before, "nothing stored or logged");
}

#[tokio::test]
async fn the_same_source_and_id_is_stored_once() {
    let gw = Gateway::start().await;
    gw.receiver("dev.x").await;
    let body = structured("dup-1", "dev.x", json!({}));
    let (first, a) = post_structured(&gw, &body).await;
    let (second, b) = post_structured(&gw, &body).await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["data"], b["data"]);
    // same id from another source is another event
    let other = structured("dup-1", "dev.x", json!({"source": "/elsewhere"}));
    let (status, c) = post_structured(&gw, &other).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(a["data"], c["data"]);
    let (_, events) = gw.get("/api/v1/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2);
    assert_eq!(gw.last_sequence().await, 3, "receiver + two events");
    // duplicates answered together (one writer batch holding no write) leave the store working
    let again = futures::future::join_all((0..8).map(|_| post_structured(&gw, &body))).await;
    assert!(
        again
            .iter()
            .all(|(s, b)| *s == StatusCode::OK && b["data"] == a["data"])
    );
    let (status, _) = gw.get("/healthz/readiness").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post_structured(&gw, &structured("dup-2", "dev.x", json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_batch_is_answered_item_by_item_and_rejected_items_leave_no_trace() {
    let gw = Gateway::start().await;
    gw.receiver("dev.x").await;
    let batch = ("content-type", "application/cloudevents-batch+json");
    let (status, answer) = gw.post_with("/api/v1/cloudevents", &[batch], "[]").await;
    assert_eq!(
        (status, answer["data"].clone()),
        (StatusCode::OK, json!([]))
    );
    let items = json!([
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "dev.x"},
        {"specversion": "1.0", "id": "", "source": "/s", "type": "dev.x"},
        {"specversion": "1.0", "id": "3", "source": "/s", "type": "dev.unknown"},
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "dev.x"},
        "not an object",
    ]);
    let (status, answer) = gw
        .post_with("/api/v1/cloudevents", &[batch], &items.to_string())
        .await;
    assert_eq!(status, StatusCode::OK);
    let results = answer["data"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 400, 400, 200, 400]);
    assert_eq!(
        results[0]["id"], results[3]["id"],
        "a duplicate within the batch is the same event"
    );
    assert!(
        results[1]["error"]
            .as_str()
            .unwrap()
            .contains("attribute id")
    );
    assert!(
        results[2]["error"]
            .as_str()
            .unwrap()
            .contains("no receiver has type dev.unknown")
    );
    let log = gw.log().await;
    assert_eq!(
        log.len(),
        2,
        "receiver created + the one stored event: {log:?}"
    );
}

#[tokio::test]
async fn routing_by_type_by_explicit_receiver_and_on_the_fly() {
    let gw = Gateway::start().await;
    let a1 = gw.receiver("dev.shared").await;
    let a2 = gw
        .create(
            "/api/v1/receivers",
            &support::receiver_body("dev.shared", json!({"type": "object"})),
        )
        .await;
    let (status, answer) = post_structured(&gw, &structured("1", "dev.shared", json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error_of(&answer);
    assert!(
        message.contains("2 receivers have type dev.shared")
            && message.contains(&a1)
            && message.contains(&a2),
        "{message}"
    );
    let (status, answer) = post_structured(
        &gw,
        &structured("1", "dev.shared", json!({"eprreceiverid": a2})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        stored_event(&gw, answer["data"].as_str().unwrap()).await["event_receiver_id"],
        a2
    );

    // the receiver's schema applies
    let strict = gw
        .create(
            "/api/v1/receivers",
            &support::receiver_body("dev.strict", json!({"required": ["data"]})),
        )
        .await;
    let no_data =
        json!({"specversion": "1.0", "id": "n", "source": "/s", "type": "dev.strict"}).to_string();
    let (status, answer) = post_structured(&gw, &no_data).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&answer).contains("did not match event receiver schema"),
        "{answer} for {strict}"
    );

    let (status, answer) = post_structured(&gw, &structured("new-1", "dev.new", json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&answer).contains("no receiver has type dev.new"));

    let auto = Gateway::start_with(&[("EPR_AUTO_RECEIVERS", "true")]).await;
    let (status, answer) = post_structured(&auto, &structured("1", "dev.new", json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (_, receivers) = auto.get("/api/v1/receivers?type=dev.new").await;
    assert_eq!(receivers["data"].as_array().unwrap().len(), 1);
    post_structured(&auto, &structured("2", "dev.new", json!({}))).await;
    let (_, receivers) = auto.get("/api/v1/receivers?type=dev.new").await;
    assert_eq!(
        receivers["data"].as_array().unwrap().len(),
        1,
        "created once"
    );
}

#[tokio::test]
async fn the_webhook_handshake_is_answered_on_every_ingest_url() {
    let gw = Gateway::start().await;
    for path in [
        "/api/v1/cloudevents",
        "/api/v1/events",
        "/webhook/000-cdevents",
    ] {
        let response = gw
            .http
            .request(Method::OPTIONS, gw.url(path))
            .header("WebHook-Request-Origin", "eventemitter.example.com")
            .header("WebHook-Request-Rate", "120")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()["webhook-allowed-origin"],
            "eventemitter.example.com",
            "{path}"
        );
        assert_eq!(response.headers()["webhook-allowed-rate"], "*");
        assert!(
            response.headers()["allow"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
    }
}

#[tokio::test]
async fn the_ingest_token_guards_cloudevents() {
    let gw = Gateway::start_with(&[("EPR_INGEST_TOKEN", "in-secret")]).await;
    gw.receiver("dev.x").await;
    let body = structured("1", "dev.x", json!({}));
    let (status, _) = post_structured(&gw, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = gw
        .post_with(
            "/api/v1/cloudevents",
            &[STRUCTURED, ("authorization", "Bearer in-secret")],
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_cloudevents_python_sdk_posts_structured_and_binary_events() {
    let gw = Gateway::start().await;
    gw.receiver("dev.sdk.python").await;
    let stdout = support::run_python("cloudevents_sdk.py", &gw.base).await;
    let ids: Vec<&str> = stdout.lines().collect();
    assert_eq!(ids.len(), 2, "{stdout}");
    for (id, mode) in ids.iter().zip(["structured", "binary"]) {
        let event = stored_event(&gw, id).await;
        assert_eq!(event["payload"]["type"], "dev.sdk.python");
        assert_eq!(event["payload"]["data"]["mode"], mode);
        assert_eq!(event["name"], "python-app");
    }
}
