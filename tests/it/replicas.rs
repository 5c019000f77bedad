//! Several gateways on one PostgreSQL (a server of the test's own, three gateway processes on
//! their own ports): one log in one order for all, group completion and idempotency right when
//! the events race on different replicas, and plugins shared, a deleted watcher silent
//! everywhere once its DELETE is answered.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::kafka::{Collector, kafka_env};
use crate::plugins::{Hook, SECRET, install};
use crate::support::{Broker, Gateway, Postgres, Until};

/// A PostgreSQL server and `n` gateways sharing one database of it.
struct Replicas {
    _pg: Postgres,
    gateways: Vec<Gateway>,
}

/// A PostgreSQL server with an empty database for gateways to share, and its URL.
async fn shared_database() -> (Postgres, String) {
    let pg = Postgres::start().await;
    pg.psql("CREATE DATABASE shared");
    let url = pg.url().replace("/postgres", "/shared");
    (pg, url)
}

impl Replicas {
    /// Starts the server and `n` gateways at once (they migrate the schema concurrently).
    async fn start(n: usize) -> Replicas {
        let (pg, url) = shared_database().await;
        let starts = (0..n).map(|_| {
            let url = url.clone();
            async move { Gateway::start_with(&[("EPR_DB", &url)]).await }
        });
        let gateways = futures::future::join_all(starts).await;
        Replicas { _pg: pg, gateways }
    }

    /// The log as every replica serves it, once each shows `count` messages.
    async fn logs(&self, count: u64) -> Vec<Vec<(u64, Value)>> {
        let mut logs = Vec::new();
        for gw in &self.gateways {
            for _ in 0..200 {
                if gw.last_sequence().await >= count {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            logs.push(gw.stream("", None, count as usize).await);
        }
        logs
    }
}

/// (sequence, message id, type) of each message.
fn entries(log: &[(u64, Value)]) -> Vec<(u64, String, String)> {
    log.iter()
        .map(|(seq, m)| {
            let id = m["id"].as_str().unwrap_or_default().to_owned();
            (*seq, id, m["type"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_serve_one_log_in_one_order_with_no_gap() {
    let replicas = Replicas::start(3).await;
    let receiver = replicas.gateways[0].receiver("dev.replica.event").await;
    // 12 clients, 4 per replica, 25 events each, all at once
    let posts = (0..12).map(|client| {
        let gw = &replicas.gateways[client % 3];
        let receiver = receiver.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                ids.push(
                    gw.event(&receiver, &format!("unit-{client}-{i}"), true)
                        .await,
                );
            }
            ids
        }
    });
    let acked: Vec<String> = futures::future::join_all(posts).await.concat();
    assert_eq!(acked.len(), 300);
    let logs = replicas.logs(301).await;
    let first = entries(&logs[0]);
    let seqs: Vec<u64> = first.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=301).collect::<Vec<u64>>(),
        "numbered 1 to 301, no gap"
    );
    for (n, log) in logs.iter().enumerate().skip(1) {
        assert_eq!(
            entries(log),
            first,
            "replica {n} serves the same log in the same order"
        );
    }
    let logged: HashSet<&str> = first
        .iter()
        .filter(|(_, _, kind)| kind == "dev.replica.event")
        .map(|(_, id, _)| id.as_str())
        .collect();
    let acked: HashSet<&str> = acked.iter().map(String::as_str).collect();
    assert_eq!(
        logged, acked,
        "every acknowledged event is in the log, once"
    );
    // and each replica is live: one more event posted to the last shows up on the first
    let live = replicas.gateways[0]
        .open_stream("?type=dev.replica", Some(301))
        .await;
    let late = replicas.gateways[2].event(&receiver, "late", true).await;
    let seen = crate::support::api::read_messages(live, "?type=dev.replica", 1).await;
    assert_eq!(seen[0].1["id"], late.as_str());
    assert_eq!(seen[0].0, 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_racing_on_two_replicas_complete_their_group_exactly_once() {
    let replicas = Replicas::start(3).await;
    let (r0, r1) = (&replicas.gateways[0], &replicas.gateways[1]);
    let a = r0.receiver("dev.race.a").await;
    let b = r0.receiver("dev.race.b").await;
    r0.group("dev.race.ready", &[&a, &b]).await;
    // for each unit, the last member's event arrives on two replicas at the same moment: one
    // after the other they would complete the group once; READ COMMITTED alone would miss it
    let units = 30;
    for unit in 0..units {
        let name = format!("race-{unit}");
        futures::future::join(r0.event(&a, &name, true), r1.event(&b, &name, true)).await;
    }
    // receivers, group, 2 events per unit, a completion per unit
    let logs = replicas.logs(3 + 3 * units).await;
    let mut completions: BTreeMap<String, usize> = BTreeMap::new();
    for (_, message) in &logs[0] {
        if message["type"] == "dev.race.ready" {
            let unit = message["name"].as_str().unwrap_or_default().to_owned();
            *completions.entry(unit).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = (0..units).map(|u| (format!("race-{u}"), 1)).collect();
    assert_eq!(
        completions, expected,
        "each unit's group completed exactly once"
    );
    assert_eq!(replicas.logs(3 + 3 * units).await[2], logs[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_cloudevent_posted_to_three_replicas_at_once_is_stored_once() {
    let replicas = Replicas::start(3).await;
    replicas.gateways[0].receiver("dev.race.cloudevent").await;
    for n in 0..20 {
        let event = json!({"specversion": "1.0", "id": format!("build-{n}"), "source": "/ci",
            "type": "dev.race.cloudevent", "eprname": format!("ce-{n}"), "data": {"n": n}});
        let posts = replicas.gateways.iter().map(|gw| {
            let event = event.clone();
            async move {
                let response = gw
                    .http
                    .post(gw.url("/api/v1/cloudevents"))
                    .header("content-type", "application/cloudevents+json")
                    .body(event.to_string())
                    .send()
                    .await
                    .expect("an answer");
                let status = response.status();
                let answer: Value = response.json().await.expect("JSON");
                (status, answer["data"].as_str().expect("an id").to_owned())
            }
        });
        let answers = futures::future::join_all(posts).await;
        let ids: HashSet<&str> = answers.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(
            ids.len(),
            1,
            "every replica answers with the one stored id: {answers:?}"
        );
        let created = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .count();
        assert_eq!(created, 1, "one 201, the others 200: {answers:?}");
        let (_, found) = replicas.gateways[1]
            .get(&format!("/api/v1/events?name=ce-{n}"))
            .await;
        assert_eq!(found["data"].as_array().map(Vec::len), Some(1), "{found}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_uploaded_on_one_replica_runs_once_and_a_deleted_one_nowhere() {
    let replicas = Replicas::start(3).await;
    let [r0, r1, r2] = [0, 1, 2].map(|n| &replicas.gateways[n]);
    let hook = Hook::start(0).await;
    install(r0, "webhook_firer", hook.grants("/fired", SECRET), None).await;
    // every replica has it within seconds
    for gw in [r1, r2] {
        let mut listed = false;
        for _ in 0..100 {
            let (_, plugins) = gw.get("/api/v1/plugins").await;
            if plugins["data"].as_array().is_some_and(|p| p.len() == 1) {
                listed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(listed, "the plugin reached {}", gw.base);
    }
    let receiver = r1.receiver("test.fire").await;
    let mut posted = Vec::new();
    for n in 0..30 {
        posted.push(
            replicas.gateways[n % 3]
                .event(&receiver, &format!("fire-{n}"), true)
                .await,
        );
    }
    // each event fired (at least once; one watcher runs, on one replica)
    let fired = |hook: &Hook| -> Vec<String> {
        hook.received()
            .iter()
            .filter_map(|r| r.headers.get("ce-id")?.to_str().ok().map(str::to_owned))
            .collect()
    };
    for _ in 0..200 {
        if posted.iter().all(|id| fired(&hook).contains(id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen: HashSet<String> = fired(&hook).into_iter().collect();
    assert!(
        posted.iter().all(|id| seen.contains(id)),
        "every event fired once: {seen:?}"
    );
    assert_eq!(
        fired(&hook).len(),
        posted.len(),
        "one watcher ran: nothing fired twice"
    );
    // deleted on another replica: once the DELETE is answered, nothing fires anywhere
    let (status, _) = r2
        .call(
            reqwest::Method::DELETE,
            "/api/v1/plugins/webhook-firer",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let after_delete = hook.received().len();
    for n in 0..9 {
        replicas.gateways[n % 3]
            .event(&receiver, &format!("late-{n}"), true)
            .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        hook.received().len(),
        after_delete,
        "a deleted watcher fired"
    );
    for gw in [r0, r1] {
        let (_, plugins) = gw.get("/api/v1/plugins").await;
        assert_eq!(plugins["data"], json!([]), "deleted on {} too", gw.base);
    }
}

/// Waits (60 s at most: a replica that takes a watcher over redelivers from its durable cursor,
/// slowly on a loaded machine) until `missing` finds nothing missing; the panic says how many
/// were missing at the end.
async fn eventually(what: &str, mut missing: impl FnMut() -> usize) {
    let mut left = usize::MAX;
    for _ in 0..1200 {
        left = missing();
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: {left} missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_and_a_watcher_move_to_a_survivor_when_their_replica_is_killed_under_load() {
    let broker = Broker::start().await;
    let (_pg, url) = shared_database().await;
    let mut env = kafka_env(&broker);
    env.push(("EPR_DB", url));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // the first replica takes the relay's lease and, uploaded there, the watcher's
    let mut first = Gateway::start_with(&env).await;
    let hook = Hook::start(0).await;
    install(&first, "webhook_firer", hook.grants("/fired", SECRET), None).await;
    let receiver = first.receiver("test.fire").await;
    let survivors = [
        Gateway::start_with(&env).await,
        Gateway::start_with(&env).await,
    ];
    let collector = Collector::start(&broker.address);
    // load on all three; the first dies under it
    let doomed = first.api.clone();
    let (doomed_receiver, dying) = (receiver.clone(), Until::Gone);
    let on_first =
        tokio::spawn(async move { doomed.post_load(&doomed_receiver, 2, |_| true, dying).await });
    let loads: Vec<_> = survivors
        .iter()
        .map(|gw| gw.spawn_load(&receiver, 2))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill9().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut acked = on_first.await.unwrap();
    for (stop, load) in loads {
        stop.send_replace(true);
        acked.extend(load.await.unwrap());
    }
    assert!(acked.len() > 50, "load ran: {} events", acked.len());
    // every acknowledged event reaches Kafka and the webhook (at least once), from a survivor
    let in_kafka = || -> HashSet<String> {
        collector
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.message.id.clone())
            .collect()
    };
    eventually("every acknowledged event in Kafka", || {
        let relayed = in_kafka();
        acked.iter().filter(|id| !relayed.contains(*id)).count()
    })
    .await;
    let fired = || -> HashSet<String> {
        hook.received()
            .iter()
            .filter_map(|r| r.headers.get("ce-id")?.to_str().ok().map(str::to_owned))
            .collect()
    };
    eventually("every acknowledged event fired", || {
        let fired = fired();
        acked.iter().filter(|id| !fired.contains(*id)).count()
    })
    .await;
    // the survivors agree on the log, which holds every acknowledged event
    let last = survivors[0].last_sequence().await;
    let log = survivors[1].stream("", None, last as usize).await;
    let logged: HashSet<&str> = log.iter().filter_map(|(_, m)| m["id"].as_str()).collect();
    assert!(acked.iter().all(|id| logged.contains(id.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_postgresql_restarts_under_load_writes_answer_503_and_no_2xx_is_lost() {
    let (mut pg, url) = shared_database().await;
    let starts = (0..3).map(|_| {
        let url = url.clone();
        async move { Gateway::start_with(&[("EPR_DB", &url)]).await }
    });
    let gateways = futures::future::join_all(starts).await;
    let receiver = gateways[0].receiver("dev.restart").await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // two clients per replica; a 201 is acknowledged, a 503 is "try again", anything else fails
    let clients = (0..6).map(|client| {
        let (api, receiver, stopped) = (
            gateways[client % 3].api.clone(),
            receiver.clone(),
            stopped.clone(),
        );
        tokio::spawn(async move {
            let (mut acked, mut unavailable) = (Vec::new(), 0);
            for i in 0.. {
                if *stopped.borrow() {
                    break;
                }
                let body = crate::support::event_body(
                    &receiver,
                    &format!("r-{client}-{i}"),
                    true,
                    json!({}),
                );
                let response = api
                    .http
                    .post(api.url("/api/v1/events"))
                    .json(&body)
                    .send()
                    .await;
                let Ok(response) = response else { continue };
                let status = response.status();
                let answer: Value = response.json().await.unwrap_or_default();
                match status {
                    StatusCode::CREATED => {
                        acked.push(answer["data"].as_str().expect("an id").to_owned())
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("event {i} of client {client}: {other} {answer}"),
                }
            }
            (acked, unavailable)
        })
    });
    let clients: Vec<_> = clients.collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    pg.kill9().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.restart().await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    stop.send_replace(true);
    let (mut acked, mut unavailable) = (Vec::new(), 0);
    for client in clients {
        let (a, u) = client.await.unwrap();
        acked.extend(a);
        unavailable += u;
    }
    assert!(unavailable > 0, "the outage was seen as 503s");
    // the replicas carry on: every one takes events again
    for gw in &gateways {
        gw.event(&receiver, "after-restart", true).await;
    }
    // every acknowledged event was committed, and every replica serves it in the log
    for id in &acked {
        let (status, _) = gateways[1].get(&format!("/api/v1/events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "acknowledged event {id} was lost");
    }
    for gw in &gateways {
        let mut logged = HashSet::new();
        for _ in 0..100 {
            let last = gw.last_sequence().await;
            let log = gw.stream("", None, last as usize).await;
            logged = log
                .iter()
                .filter_map(|(_, m)| m["id"].as_str().map(str::to_owned))
                .collect();
            if acked.iter().all(|id| logged.contains(id)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            acked.iter().all(|id| logged.contains(id)),
            "{} lacks acknowledged events in its log",
            gw.base
        );
    }
}
