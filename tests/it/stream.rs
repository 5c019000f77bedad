//! `GET /api/v1/stream`: the log as Server-Sent Events, in order, live, resumable, filterable.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::api::read_messages;
use crate::support::{Gateway, error_of};

#[tokio::test]
async fn every_message_arrives_in_order_with_its_sequence_as_id() {
    let gw = Gateway::start().await;
    let a = gw.receiver("dev.a").await;
    let g = gw.group("dev.done", &[&a]).await;
    let e = gw.event(&a, "app", true).await;
    let messages = gw.stream("", None, 4).await;
    let ids: Vec<u64> = messages.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    let kinds: Vec<&str> = messages
        .iter()
        .map(|(_, m)| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "epr.event.receiver.created",
            "epr.event.receiver.group.created",
            "dev.a",
            "dev.done"
        ]
    );

    let created = &messages[0].1;
    assert_eq!(created["id"], a);
    assert_eq!(created["platform_id"], "event-provenance-registry");
    assert_eq!(created["package"], "event.receiver");
    assert_eq!(
        created["release"],
        created["data"]["event_receivers"][0]["created_at"]
    );
    assert_eq!(messages[1].1["id"], g);
    assert_eq!(messages[1].1["package"], "event.receiver.group");
    let event = &messages[2].1;
    for (k, v) in [
        ("id", json!(e)),
        ("success", json!(true)),
        ("specversion", json!("1.0")),
        ("source", json!("epr")),
        ("api_version", json!("v1")),
        ("name", json!("app")),
        ("version", json!("1.0.0")),
        ("release", json!("2026.11")),
        ("platform_id", json!("x86_64-linux")),
        ("package", json!("oci")),
    ] {
        assert_eq!(event[k], v, "{k} of {event}");
    }
    assert_eq!(event["data"]["events"][0]["id"], e);
    assert_eq!(event["data"]["event_receivers"][0]["id"], a);
    assert!(event["data"]["event_receiver_groups"].is_null());
}

#[tokio::test]
async fn resuming_after_last_event_id_skips_what_was_seen() {
    let gw = Gateway::start().await;
    let a = gw.receiver("dev.a").await;
    for _ in 0..4 {
        gw.event(&a, "app", true).await;
    }
    let all = gw.stream("", None, 5).await;
    let resumed = gw.stream("", Some(2), 3).await;
    assert_eq!(resumed, all[2..].to_vec());
    let by_query = gw.stream("?after=4", None, 1).await;
    assert_eq!(by_query, all[4..].to_vec());

    let (status, answer) = gw
        .http
        .get(gw.url("/api/v1/stream"))
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        error_of(&answer),
        "invalid input: Last-Event-ID must be a log sequence number"
    );
}

#[tokio::test]
async fn new_messages_are_delivered_live() {
    let gw = Gateway::start().await;
    let a = gw.receiver("dev.a").await;
    // connected first: the events are written while the stream is open
    let open = gw.open_stream("?type=dev.", None).await;
    let e1 = gw.event(&a, "app", true).await;
    let e2 = gw.event(&a, "app", false).await;
    let got = read_messages(open, "?type=dev.", 2).await;
    assert_eq!(got[0].1["id"], e1);
    assert_eq!(got[1].1["id"], e2);
    assert_eq!((got[0].0, got[1].0), (2, 3));
}

#[tokio::test]
async fn a_type_prefix_filters_the_stream() {
    let gw = Gateway::start().await;
    let a = gw.receiver("dev.build.finished").await;
    let b = gw.receiver("dev.test.finished").await;
    gw.event(&a, "app", true).await;
    gw.event(&b, "app", true).await;
    gw.event(&a, "app", true).await;
    let builds = gw.stream("?type=dev.build.", None, 2).await;
    assert_eq!(builds.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [3, 5]);
    let epr = gw.stream("?type=epr.", None, 2).await;
    assert_eq!(epr.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test]
async fn every_message_is_one_data_line_even_when_a_payload_spans_lines() {
    let gw = Gateway::start().await;
    let receiver = gw.receiver("dev.multiline").await;
    let body = format!(
        "{{\"name\":\"app\",\"version\":\"1\",\"release\":\"1\",\"platform_id\":\"p\",\"package\":\"k\",\n\"description\":\"d\",\"payload\":{{\n  \"log\": \"line 1\\nline 2\",\r\n  \"n\": 1\n}},\"success\":true,\"event_receiver_id\":\"{receiver}\"}}"
    );
    let (status, _) = gw
        .call(reqwest::Method::POST, "/api/v1/events", Some(body), None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let messages = gw.stream("?type=dev.multiline", None, 1).await;
    assert_eq!(
        messages[0].1["data"]["events"][0]["payload"],
        json!({"log": "line 1\nline 2", "n": 1})
    );
}
