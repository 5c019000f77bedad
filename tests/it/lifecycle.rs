//! The process: clean shutdown, one process per data directory, and no acknowledged write lost
//! or half-written when the process is killed.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::time::Duration;

use reqwest::StatusCode;

use crate::support::{Api, Gateway, Until, binary, serve_refused};

/// Posts events from `tasks` concurrent clients until the server stops answering; returns the
/// ids that were acknowledged with 200 (every third event of a client is a failure).
async fn post_until_gone(api: Api, receiver: String, tasks: usize) -> Vec<String> {
    api.post_load(&receiver, tasks, |i| i % 3 != 0, Until::Gone)
        .await
}

/// Every event id the search API returns for `filter` (e.g. `success=true&`).
async fn event_ids(api: &Api, filter: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut query = format!("/api/v1/events?{filter}limit=1000");
    loop {
        let (status, page) = api.get(&query).await;
        assert_eq!(status, StatusCode::OK);
        for e in page["data"].as_array().unwrap() {
            ids.insert(e["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => query = format!("/api/v1/events?{filter}limit=1000&after={next}"),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn kill_9_under_load_loses_no_acknowledged_event_and_half_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut gw = Gateway::start_in(&dir, &[]).await;
    let receiver = gw.receiver("dev.crash").await;
    gw.group("dev.crash.done", &[&receiver]).await;
    let load = tokio::spawn(post_until_gone(gw.api.clone(), receiver.clone(), 16));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gw.kill9().await;
    let acked = load.await.unwrap();
    assert!(
        acked.len() > 100,
        "the load ran: {} events acknowledged",
        acked.len()
    );

    let gw = Gateway::start_in(&dir, &[]).await;
    for id in &acked {
        let (status, answer) = gw.get(&format!("/api/v1/events/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged event {id} is readable after kill -9: {answer}"
        );
    }
    let stored = event_ids(&gw, "").await;
    let log = gw.log().await;
    let seqs: Vec<u64> = log.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "the log has no gaps"
    );
    let logged: Vec<String> = log
        .iter()
        .filter(|(_, m)| m["type"] == "dev.crash")
        .map(|(_, m)| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        logged.len(),
        stored.len(),
        "one log message per stored event"
    );
    assert_eq!(
        stored,
        logged.into_iter().collect::<BTreeSet<_>>(),
        "every stored event has its log message and no message lacks its event"
    );
    assert!(acked.iter().all(|id| stored.contains(id)));
    // the group has one member: every stored success completed it, in the same write
    let completes = log
        .iter()
        .filter(|(_, m)| m["type"] == "dev.crash.done")
        .count();
    let successes = event_ids(&gw, "success=true&").await.len();
    assert!(successes > 0);
    assert_eq!(
        completes, successes,
        "group-complete messages are written with their event"
    );
    // the restarted gateway keeps working
    gw.event(&receiver, "after-crash", true).await;
    println!(
        "kill -9 under load: {} acknowledged, {} stored (acknowledged or in flight)",
        acked.len(),
        stored.len()
    );
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut gw = Gateway::start_in(&dir, &[]).await;
    let receiver = gw.receiver("dev.stop").await;
    // an open SSE stream must not hold up the shutdown
    let api = gw.api.clone();
    let follower = tokio::spawn(async move {
        api.http
            .get(api.url("/api/v1/stream"))
            .send()
            .await
            .map(|r| r.status())
    });
    let load = tokio::spawn(post_until_gone(gw.api.clone(), receiver.clone(), 8));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = gw.terminate().await;
    assert_eq!(status.code(), Some(0), "clean exit after SIGTERM");
    let acked = load.await.unwrap();
    assert!(!acked.is_empty());
    assert_eq!(follower.await.unwrap().unwrap(), StatusCode::OK);

    let gw = Gateway::start_in(&dir, &[]).await;
    let stored = event_ids(&gw, "").await;
    assert!(
        acked.iter().all(|id| stored.contains(id)),
        "every acknowledged event survived the shutdown"
    );
}

#[tokio::test]
async fn a_second_process_on_the_same_data_directory_is_refused() {
    let gw = Gateway::start().await;
    let stderr = serve_refused([OsStr::new("--data-dir"), gw.data_dir.as_os_str()]).await;
    assert!(stderr.contains("is in use by another process"), "{stderr}");
    assert!(
        !stderr.contains("backtrace"),
        "a clear error, not a panic: {stderr}"
    );
    let (status, _) = gw.get("/healthz/readiness").await;
    assert_eq!(status, StatusCode::OK, "the first gateway is unharmed");
}

#[tokio::test]
async fn a_store_larger_than_its_cache_keeps_every_event_and_a_cache_too_small_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut gw = Gateway::start_embedded(&data, &[("EPR_CACHE_MB", "16")]).await;
    let receiver = gw.receiver("dev.cache").await;
    // 3,000 events of ~8 KiB: 24 MiB of payloads, more than the 16 MiB cache holds
    let payload = serde_json::json!({"pad": "c".repeat(8 * 1024)});
    let mut ids = Vec::new();
    for i in 0..3000 {
        let body =
            crate::support::event_body(&receiver, &format!("unit-{i}"), true, payload.clone());
        ids.push(gw.create("/api/v1/events", &body).await);
    }
    assert_eq!(gw.terminate().await.code(), Some(0));

    let gw = Gateway::start_embedded(&data, &[("EPR_CACHE_MB", "32")]).await;
    for id in [&ids[0], &ids[1500], &ids[2999]] {
        let (status, event) = gw.get(&format!("/api/v1/events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id} is still stored");
        assert_eq!(event["data"][0]["payload"], payload);
    }
    assert_eq!(event_ids(&gw, "").await.len(), 3000);

    let other = dir.path().join("other");
    let stderr = serve_refused([
        OsStr::new("--cache-mb"),
        "4".as_ref(),
        "--data-dir".as_ref(),
        other.as_os_str(),
    ])
    .await;
    assert!(
        stderr.contains("--cache-mb") && stderr.contains("16"),
        "the error names the setting and its least value: {stderr}"
    );
}

#[tokio::test]
async fn help_explains_every_setting() {
    let output = tokio::process::Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "EPR_HOST",
        "EPR_PORT",
        "EPR_DATA_DIR",
        "EPR_ADMIN_TOKEN",
        "EPR_INGEST_TOKEN",
        "EPR_MAX_BODY_BYTES",
        "EPR_CACHE_MB",
        "8042",
    ] {
        assert!(
            help.contains(needle),
            "serve --help mentions {needle}:\n{help}"
        );
    }
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = Gateway::start_with(&[("EPR_HEADER_TIMEOUT_SECS", "1")]).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let closed = |mut s: tokio::net::TcpStream| async move {
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
            .await
            .expect("the server closed the connection")
            .expect("read");
        buf
    };
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz/liveness HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz/liveness HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert!(closed(silent).await.is_empty());
    let slow_answer = String::from_utf8(closed(slow).await).unwrap();
    assert!(!slow_answer.contains("200 OK"), "{slow_answer}");
    let answered = String::from_utf8(closed(idle).await).unwrap();
    assert!(
        answered.starts_with("HTTP/1.1 200 OK"),
        "answered, then closed when idle: {answered}"
    );
}
