//! `epr-gateway migrate`: an embedded store copied into PostgreSQL is the same store, a gateway
//! on the copy goes on where the embedded one stopped, an interrupted copy resumes, and a
//! database holding another store's log is refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::plugins::{Hook, SECRET, install};
use crate::support::{Gateway, Postgres, binary};

/// Runs `epr-gateway migrate --from dir --to url`: (success, stdout, stderr).
async fn migrate(dir: &std::path::Path, url: &str) -> (bool, String, String) {
    let output = tokio::process::Command::new(binary())
        .args(["migrate", "--from"])
        .arg(dir)
        .args(["--to", url])
        .output()
        .await
        .expect("migrate runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The counts line of `kind` in migrate's table: (embedded, database, copied).
fn counts(stdout: &str, kind: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(kind) && l.split_whitespace().count() >= 4)
        .unwrap_or_else(|| panic!("no {kind} line in:\n{stdout}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .rev()
        .take(3)
        .map(|n| n.parse().expect("a count"))
        .collect();
    (n[2], n[1], n[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_store_is_the_same_store_and_a_gateway_on_it_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let hook = Hook::start(0).await;
    // an embedded store with every kind of thing in it
    let mut embedded = Gateway::start_embedded(&dir, &[]).await;
    install(
        &embedded,
        "webhook_firer",
        hook.grants("/fired", SECRET),
        None,
    )
    .await;
    let a = embedded.receiver("test.fire").await;
    let b = embedded.receiver("test.other").await;
    embedded.group("test.ready", &[&a, &b]).await;
    embedded.event(&b, "app", true).await;
    let completing = embedded.event(&a, "app", true).await;
    let cloud_event = json!({"specversion": "1.0", "id": "build-1", "source": "/ci",
        "type": "test.other", "eprname": "app", "data": {"n": 1}});
    let post_cloud_event = |gw: &Gateway| {
        gw.http
            .post(gw.url("/api/v1/cloudevents"))
            .header("content-type", "application/cloudevents+json")
            .body(cloud_event.to_string())
            .send()
    };
    let first = post_cloud_event(&embedded).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let cloud_id = first.json::<Value>().await.unwrap()["data"].clone();
    for _ in 0..100 {
        if hook.received().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        hook.received().len(),
        1,
        "the watcher fired for the test.fire event"
    );
    let log = embedded.log().await;
    assert!(embedded.terminate().await.success());

    let pg = Postgres::start().await;
    pg.psql("CREATE DATABASE migrated");
    let url = pg.url().replace("/postgres", "/migrated");
    let (ok, stdout, stderr) = migrate(&dir, &url).await;
    assert!(ok, "migrate failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("verified:"), "{stdout}");
    assert_eq!(counts(&stdout, "events"), (3, 3, 3));
    assert_eq!(
        counts(&stdout, "log"),
        (log.len() as u64, log.len() as u64, log.len() as u64)
    );
    // an interrupted copy goes on where it stopped: two events and the log's tail missing
    pg.psql_in(
        "migrated",
        "DELETE FROM epr_events WHERE id IN (SELECT id FROM epr_events ORDER BY id DESC LIMIT 2);
         DELETE FROM epr_log WHERE seq > 3",
    );
    let (ok, stdout, stderr) = migrate(&dir, &url).await;
    assert!(ok, "the resumed migrate failed:\n{stdout}\n{stderr}");
    assert_eq!(counts(&stdout, "events"), (3, 3, 2), "{stdout}");
    assert_eq!(counts(&stdout, "log").2, log.len() as u64 - 3, "{stdout}");

    // a gateway on the copy: the same log, the same objects, and it goes on
    let gw = Gateway::start_with(&[("EPR_DB", &url)]).await;
    assert_eq!(
        gw.log().await,
        log,
        "the same log, the same sequence numbers"
    );
    let (_, event) = gw.get(&format!("/api/v1/events/{completing}")).await;
    assert_eq!(
        event["data"][0]["completed_group_ids"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let again = post_cloud_event(&gw).await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the CloudEvent is a duplicate on the copy too"
    );
    assert_eq!(again.json::<Value>().await.unwrap()["data"], cloud_id);
    let next = gw.event(&a, "app", true).await;
    assert_eq!(
        gw.last_sequence().await,
        log.len() as u64 + 2,
        "event and completion follow"
    );
    for _ in 0..100 {
        if hook.received().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fired: Vec<String> = hook
        .received()
        .iter()
        .map(|r| r.headers["ce-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fired.len(),
        2,
        "the watcher went on from its cursor: {fired:?}"
    );
    assert_eq!(fired[1], next);
}

#[tokio::test]
async fn a_database_holding_another_stores_log_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut embedded = Gateway::start_embedded(&dir, &[]).await;
    embedded.receiver("dev.one").await;
    assert!(embedded.terminate().await.success());
    let pg = Postgres::start().await;
    pg.psql("CREATE DATABASE busy");
    let url = pg.url().replace("/postgres", "/busy");
    let gw = Gateway::start_with(&[("EPR_DB", &url)]).await;
    for n in 0..3 {
        gw.receiver(&format!("dev.other.{n}")).await;
    }
    let (ok, stdout, stderr) = migrate(&dir, &url).await;
    assert!(!ok, "refused: {stdout}");
    assert!(stderr.contains("holds another store's data"), "{stderr}");
}
