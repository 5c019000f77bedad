//! Group completion as EPR-API.md states it, observed where users see it: the log's
//! group-complete messages.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::Gateway;

/// Group-complete messages of type `kind` in the log: (triggering event id, unit name, message id).
async fn completions(gw: &Gateway, kind: &str) -> Vec<(String, String, String)> {
    gw.log()
        .await
        .into_iter()
        .filter(|(_, m)| m["type"] == kind)
        .map(|(_, m)| {
            assert!(m["data"]["event_receivers"].is_null(), "{m}");
            let group = &m["data"]["event_receiver_groups"][0];
            assert_eq!(group["type"], kind);
            assert_eq!(m["success"], true);
            let event = &m["data"]["events"][0];
            assert_eq!(m["name"], event["name"]);
            (
                event["id"].as_str().unwrap().to_owned(),
                m["name"].as_str().unwrap().to_owned(),
                m["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn triggers(found: &[(String, String, String)]) -> Vec<&str> {
    found.iter().map(|(e, _, _)| e.as_str()).collect()
}

#[tokio::test]
async fn groups_sharing_a_receiver_complete_independently() {
    let gw = Gateway::start().await;
    let (a, b, c) = (
        gw.receiver("dev.a").await,
        gw.receiver("dev.b").await,
        gw.receiver("dev.c").await,
    );
    gw.group("g1.done", &[&a, &b]).await;
    gw.group("g2.done", &[&a, &c]).await;
    gw.event(&b, "app", true).await;
    let e_a = gw.event(&a, "app", true).await;
    assert_eq!(triggers(&completions(&gw, "g1.done").await), [e_a.as_str()]);
    assert!(
        completions(&gw, "g2.done").await.is_empty(),
        "g2 still waits for c"
    );
    let e_c = gw.event(&c, "app", true).await;
    assert_eq!(triggers(&completions(&gw, "g2.done").await), [e_c.as_str()]);
    assert_eq!(completions(&gw, "g1.done").await.len(), 1, "c is not in g1");
}

#[tokio::test]
async fn a_later_failure_revokes_and_a_later_success_restores() {
    let gw = Gateway::start().await;
    let (a, b) = (gw.receiver("dev.a").await, gw.receiver("dev.b").await);
    gw.group("g.done", &[&a, &b]).await;
    gw.event(&a, "app", true).await;
    let first = gw.event(&b, "app", true).await;
    gw.event(&b, "app", false).await;
    gw.event(&a, "app", true).await; // b's most recent is a failure: not complete
    let restored = gw.event(&b, "app", true).await;
    assert_eq!(
        triggers(&completions(&gw, "g.done").await),
        [first.as_str(), restored.as_str()]
    );
}

#[tokio::test]
async fn a_disabled_group_is_silent_and_enabling_fires_nothing_by_itself() {
    let gw = Gateway::start().await;
    let a = gw.receiver("dev.a").await;
    let g = gw.group("g.done", &[&a]).await;
    let patch = |enabled: bool| format!(r#"{{"enabled":{enabled}}}"#);
    let (status, _) = gw
        .call(
            Method::PATCH,
            &format!("/api/v1/groups/{g}"),
            Some(patch(false)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    gw.event(&a, "app", true).await;
    let (status, _) = gw
        .call(
            Method::PATCH,
            &format!("/api/v1/groups/{g}"),
            Some(patch(true)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(completions(&gw, "g.done").await.is_empty());
    let after = gw.event(&a, "app", true).await;
    assert_eq!(
        triggers(&completions(&gw, "g.done").await),
        [after.as_str()]
    );
}

#[tokio::test]
async fn only_events_about_the_same_unit_count() {
    let gw = Gateway::start().await;
    let (a, b) = (gw.receiver("dev.a").await, gw.receiver("dev.b").await);
    gw.group("g.done", &[&a, &b]).await;
    gw.event(&a, "app", true).await;
    gw.event(&b, "lib", true).await;
    assert!(completions(&gw, "g.done").await.is_empty());
    let e = gw.event(&b, "app", true).await;
    let found = completions(&gw, "g.done").await;
    assert_eq!(triggers(&found), [e.as_str()]);
    assert_eq!(found[0].1, "app", "the message carries the unit's NVRPP");
}

#[tokio::test]
async fn a_complete_group_fires_again_with_a_fresh_message_id() {
    let gw = Gateway::start().await;
    let a = gw.receiver("dev.a").await;
    gw.group("g.done", &[&a]).await;
    let events = [
        gw.event(&a, "app", true).await,
        gw.event(&a, "app", true).await,
        gw.event(&a, "app", true).await,
    ];
    let found = completions(&gw, "g.done").await;
    assert_eq!(
        triggers(&found),
        events.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let mut ids: Vec<&str> = found.iter().map(|(_, _, id)| id.as_str()).collect();
    assert!(
        ids.iter()
            .all(|id| id.len() == 26 && !events.iter().any(|e| e == id)),
        "{ids:?}"
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every group-complete message has its own id");
}

#[tokio::test]
async fn completion_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let gw = Gateway::start_in(&dir, &[]).await;
    let (a, b) = (gw.receiver("dev.a").await, gw.receiver("dev.b").await);
    gw.group("g.done", &[&a, &b]).await;
    gw.event(&a, "app", true).await;
    let mut gw = gw;
    assert!(gw.terminate().await.success());
    let gw = Gateway::start_in(&dir, &[]).await;
    let e = gw.event(&b, "app", true).await;
    assert_eq!(triggers(&completions(&gw, "g.done").await), [e.as_str()]);
    let messages: Vec<Value> = gw.log().await.into_iter().map(|(_, m)| m).collect();
    assert_eq!(messages.len(), 6, "3 created + 2 events + 1 complete");
}
