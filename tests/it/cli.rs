//! The command line (`epr-gateway <noun> <verb>`) against a running gateway: EPR's commands
//! and flags, `generate` files, `--dry-run`, failures, plugins, `tail` and `provenance`.

use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support;
use crate::support::{Gateway, binary};

/// Runs the CLI with `args` against `gw` (token `token`, if any).
async fn cli(gw: &Gateway, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(binary());
    command
        .args(args)
        .env("EPR_URL", gw.url(""))
        .env_remove("EPR_TOKEN");
    if let Some(token) = token {
        command.env("EPR_TOKEN", token);
    }
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("the CLI finishes")
        .expect("the CLI runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON a successful command printed.
fn printed(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}{}",
        stdout(output),
        stderr(output)
    );
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

/// The id in a printed `{"data": "<id>"}`.
fn created(output: &Output) -> String {
    printed(output)["data"].as_str().expect("an id").to_owned()
}

/// A failed command's error message (exit status 1).
fn failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}{}",
        stdout(output),
        stderr(output)
    );
    stderr(output)
}

const UNIT: [&str; 10] = [
    "--name",
    "checkout",
    "--version",
    "2.4.1",
    "--release",
    "2026.11.23",
    "--platform-id",
    "x86_64-linux",
    "--package",
    "oci",
];

/// `receiver create` of receiver `b` of type `dev.b`, up to the `--schema` flag.
const CREATE_RECEIVER_B: [&str; 11] = [
    "receiver",
    "create",
    "--name",
    "b",
    "--version",
    "1",
    "--type",
    "dev.b",
    "--description",
    "d",
    "--schema",
];

async fn create_receiver(gw: &Gateway, kind: &str) -> String {
    let schema = r#"{"type":"object","required":["commit"]}"#;
    created(
        &cli(
            gw,
            None,
            &[
                "receiver",
                "create",
                "--name",
                kind,
                "--version",
                "1.0.0",
                "--type",
                kind,
                "--description",
                "made by the CLI",
                "--schema",
                schema,
            ],
        )
        .await,
    )
}

/// Starts `tail --json` with `args` against `gw`, in the background.
fn follow(gw: &Gateway, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(binary())
        .arg("tail")
        .args(args)
        .arg("--json")
        .env("EPR_URL", gw.url(""))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tail starts")
}

/// The messages a `follow`ed tail printed (it must stop by itself, after its `--count`) and
/// what it said on stderr.
async fn followed(tail: tokio::process::Child) -> (Vec<Value>, String) {
    let output = tokio::time::timeout(Duration::from_secs(30), tail.wait_with_output())
        .await
        .expect("tail stops after --count messages")
        .expect("tail runs");
    let messages = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (messages, stderr(&output))
}

/// `event create` about the unit `UNIT`.
fn event_args<'a>(description: &'a str, payload: &'a str, receiver: &'a str) -> Vec<&'a str> {
    let mut args = vec!["event", "create"];
    args.extend(UNIT);
    args.extend([
        "--description",
        description,
        "--payload",
        payload,
        "--event-receiver-id",
        receiver,
    ]);
    args
}

async fn create_event(gw: &Gateway, receiver: &str, success: &str) -> String {
    let mut args = event_args("a step", r#"{"commit":"9f2c1e7"}"#, receiver);
    args.extend([success]);
    created(&cli(gw, None, &args).await)
}

#[tokio::test]
async fn epr_commands_create_and_search_receivers_events_and_groups() {
    let gw = Gateway::start().await;
    let receiver = create_receiver(&gw, "dev.build").await;
    let (_, stored) = gw.get(&format!("/api/v1/receivers/{receiver}")).await;
    assert_eq!(stored["data"][0]["schema"]["required"], json!(["commit"]));

    let event = create_event(&gw, &receiver, "--success").await;
    let (_, stored) = gw.get(&format!("/api/v1/events/{event}")).await;
    assert_eq!(stored["data"][0]["success"], true);
    assert_eq!(stored["data"][0]["platform_id"], "x86_64-linux");

    let found = printed(
        &cli(
            &gw,
            None,
            &["event", "search", "--name", "checkout", "--success", "true"],
        )
        .await,
    );
    assert_eq!(
        found,
        json!([{"id": event, "name": "checkout", "version": "2.4.1", "release": "2026.11.23",
            "platform_id": "x86_64-linux", "package": "oci", "success": true}])
    );
    let none = printed(
        &cli(
            &gw,
            None,
            &[
                "event",
                "search",
                "--name",
                "checkout",
                "--success",
                "false",
            ],
        )
        .await,
    );
    assert_eq!(none, json!([]));
    let fields = printed(
        &cli(
            &gw,
            None,
            &["event", "search", "--id", &event, "--fields", "id,payload"],
        )
        .await,
    );
    assert_eq!(
        fields,
        json!([{"id": event, "payload": {"commit": "9f2c1e7"}}])
    );
    let ordered = cli(
        &gw,
        None,
        &[
            "event",
            "search",
            "--id",
            &event,
            "--fields",
            "success id",
            "--no-indent",
        ],
    )
    .await;
    assert_eq!(
        stdout(&ordered).trim(),
        format!(r#"[{{"success":true,"id":"{event}"}}]"#),
        "fields in the order asked"
    );

    let group = created(
        &cli(
            &gw,
            None,
            &[
                "group",
                "create",
                "--name",
                "ready",
                "--version",
                "1",
                "--type",
                "dev.ready",
                "--description",
                "ready to ship",
                "--event-receiver-ids",
                &receiver,
            ],
        )
        .await,
    );
    let groups = printed(
        &cli(
            &gw,
            None,
            &[
                "group",
                "search",
                "--name",
                "ready",
                "--fields",
                "id enabled event_receiver_ids",
            ],
        )
        .await,
    );
    assert_eq!(
        groups,
        json!([{"id": group, "enabled": true, "event_receiver_ids": [receiver]}])
    );

    let modified = cli(
        &gw,
        None,
        &[
            "group",
            "modify",
            "--id",
            &group,
            "--disable",
            "--no-indent",
        ],
    )
    .await;
    assert_eq!(stdout(&modified).trim(), format!(r#"{{"data":"{group}"}}"#));
    let (_, stored) = gw.get(&format!("/api/v1/groups/{group}")).await;
    assert_eq!(stored["data"][0]["enabled"], false);
    cli(&gw, None, &["group", "modify", "--id", &group, "--enable"]).await;
    let (_, stored) = gw.get(&format!("/api/v1/groups/{group}")).await;
    assert_eq!(stored["data"][0]["enabled"], true);

    let receivers = printed(&cli(&gw, None, &["receiver", "search", "--type", "dev.build"]).await);
    assert_eq!(receivers[0]["id"], receiver.as_str());
    assert_eq!(
        receivers[0].as_object().unwrap().len(),
        5,
        "default fields: {receivers}"
    );

    let status = printed(&cli(&gw, None, &["status"]).await);
    assert_eq!(status["status"], "ok");
}

#[tokio::test]
async fn generate_creates_what_json_and_yaml_files_describe() {
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let receivers = dir.path().join("receivers.yaml");
    std::fs::write(
        &receivers,
        "- name: build\n  type: dev.build\n  version: 1.0.0\n  description: builds\n  schema: {type: object}\n\
         - name: test\n  type: dev.test\n  version: 1.0.0\n  description: tests\n  schema: {type: object}\n",
    )
    .unwrap();
    let output = cli(
        &gw,
        None,
        &[
            "receiver",
            "generate",
            receivers.to_str().unwrap(),
            "--no-indent",
        ],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let ids: Vec<String> = stdout(&output)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["data"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    let (_, test) = gw.get(&format!("/api/v1/receivers/{}", ids[1])).await;
    assert_eq!(test["data"][0]["type"], "dev.test");

    let events = dir.path().join("event.json");
    let event = json!({"name": "app", "version": "1", "release": "r", "platform_id": "p",
        "package": "k", "description": "d", "payload": {"x": 1}, "success": true,
        "event_receiver_id": ids[0]});
    std::fs::write(&events, event.to_string()).unwrap();
    let id = created(&cli(&gw, None, &["event", "generate", events.to_str().unwrap()]).await);
    let (_, stored) = gw.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(stored["data"][0]["payload"], json!({"x": 1}));

    let groups = dir.path().join("groups.json");
    let group = json!([{"name": "g", "type": "dev.g", "version": "1", "description": "d",
        "enabled": true, "event_receiver_ids": ids}]);
    std::fs::write(&groups, group.to_string()).unwrap();
    let id = created(&cli(&gw, None, &["group", "generate", groups.to_str().unwrap()]).await);
    let (_, stored) = gw.get(&format!("/api/v1/groups/{id}")).await;
    assert_eq!(stored["data"][0]["event_receiver_ids"], json!(ids));

    // the second item is refused: the first was created, and the error says which one failed
    let mixed = dir.path().join("mixed.json");
    let second =
        json!({"name": "", "type": "dev.x", "version": "1", "description": "d", "schema": {}});
    let first =
        json!({"name": "ok", "type": "dev.ok", "version": "1", "description": "d", "schema": {}});
    std::fs::write(&mixed, json!([first, second]).to_string()).unwrap();
    let error = failure(
        &cli(
            &gw,
            None,
            &["receiver", "generate", mixed.to_str().unwrap()],
        )
        .await,
    );
    assert!(
        error.contains("item 2 of 2") && error.contains("name cannot be blank"),
        "{error}"
    );
}

#[tokio::test]
async fn dry_run_prints_what_would_be_sent_and_sends_nothing() {
    let gw = Gateway::start_with(&[("EPR_ADMIN_TOKEN", "adm")]).await;
    let before = gw.last_sequence().await;
    let mut args = CREATE_RECEIVER_B.to_vec();
    args.extend(["{}", "--dry-run", "--no-indent"]);
    let output = cli(&gw, Some("adm"), &args).await;
    assert_eq!(
        printed(&output),
        json!({"name": "b", "type": "dev.b", "version": "1", "description": "d", "schema": {}})
    );
    let mut args = event_args("d", "[1,2]", "X");
    args.extend(["--dry-run"]);
    let event = printed(&cli(&gw, None, &args).await);
    assert_eq!(
        (event["payload"].clone(), event["success"].clone()),
        (json!([1, 2]), json!(false))
    );

    let search = cli(
        &gw,
        Some("adm"),
        &["event", "search", "--name", "a b", "--dry-run"],
    )
    .await;
    assert_eq!(
        stdout(&search).trim(),
        format!(
            "curl -X GET '{}' -H \"authorization: Bearer $EPR_TOKEN\"",
            gw.url("/api/v1/events?name=a+b")
        )
    );
    let shown: [(&[&str], &[&str]); 3] = [
        (
            &["group", "modify", "--id", "G", "--enable", "--dry-run"],
            &["-X PATCH", r#"{"enabled":true}"#],
        ),
        (&["status", "--dry-run"], &["/healthz/status"]),
        (
            &["plugin", "upload", "x.wasm", "--grants", "{}", "--dry-run"],
            &["--data-binary @x.wasm", "x-epr-grants: {}"],
        ),
    ];
    for (args, expected) in shown {
        let printed = stdout(&cli(&gw, None, args).await);
        for part in expected {
            assert!(printed.contains(part), "{args:?}: {printed}");
        }
    }

    assert_eq!(gw.last_sequence().await, before, "a dry run stored nothing");
}

#[tokio::test]
async fn failures_say_what_went_wrong_and_exit_non_zero() {
    let gw = Gateway::start_with(&[("EPR_ADMIN_TOKEN", "adm")]).await;
    let schema_args = CREATE_RECEIVER_B;

    let mut args = schema_args.to_vec();
    args.push(r#"{"type":"object""#);
    let error = failure(&cli(&gw, Some("adm"), &args).await);
    assert!(error.contains("--schema is not JSON"), "{error}");

    let mut args = schema_args.to_vec();
    args.push(r#"{"type":"object"}"#);
    let error = failure(&cli(&gw, None, &args).await);
    assert!(error.contains("401") && error.contains("token"), "{error}");
    let error = failure(&cli(&gw, Some("wrong"), &args).await);
    assert!(error.contains("401"), "{error}");
    let receiver = created(&cli(&gw, Some("adm"), &args).await);

    let event = event_args("d", "3", &receiver);
    let error = failure(&cli(&gw, Some("adm"), &event).await);
    assert!(
        error.contains("400") && error.contains("did not match"),
        "{error}"
    );

    let missing = cli(&gw, None, &["event", "create", "--name", "x"]).await;
    assert_eq!(missing.status.code(), Some(2), "a usage error");
    assert!(
        stderr(&missing).contains("--version"),
        "{}",
        stderr(&missing)
    );
    let neither = cli(&gw, None, &["group", "modify", "--id", "G"]).await;
    assert_eq!(neither.status.code(), Some(2));
    assert!(
        stderr(&neither).contains("--enable"),
        "{}",
        stderr(&neither)
    );

    let error = failure(
        &cli(
            &gw,
            Some("adm"),
            &["group", "modify", "--id", "01NOSUCHGROUP", "--enable"],
        )
        .await,
    );
    assert!(error.contains("404"), "{error}");
    let error = failure(&cli(&gw, None, &["event", "generate", "/no/such/file.json"]).await);
    assert!(error.contains("/no/such/file.json"), "{error}");

    let nowhere = tokio::process::Command::new(binary())
        .args(["status", "--url", "http://127.0.0.1:9"])
        .output()
        .await
        .unwrap();
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(
        stderr(&nowhere).contains("cannot reach the gateway at http://127.0.0.1:9"),
        "{}",
        stderr(&nowhere)
    );
    assert_eq!(gw.log().await.len(), 1, "only the receiver was stored");
}

#[tokio::test]
async fn every_command_has_help_with_an_example() {
    let commands: &[&[&str]] = &[
        &["receiver", "create"],
        &["receiver", "search"],
        &["receiver", "generate"],
        &["event", "create"],
        &["event", "search"],
        &["event", "generate"],
        &["group", "create"],
        &["group", "search"],
        &["group", "generate"],
        &["group", "modify"],
        &["status"],
        &["plugin", "upload"],
        &["plugin", "list"],
        &["plugin", "enable"],
        &["plugin", "disable"],
        &["plugin", "delete"],
        &["plugin", "dead-letters"],
        &["tail"],
        &["provenance"],
        &[],
    ];
    for command in commands {
        let output = tokio::process::Command::new(binary())
            .args(*command)
            .arg("--help")
            .output()
            .await
            .unwrap();
        let help = stdout(&output);
        assert!(output.status.success(), "{command:?}");
        assert!(
            help.contains("Example"),
            "{command:?} --help has no example:\n{help}"
        );
    }
}

#[tokio::test]
async fn plugins_are_managed_from_the_command_line() {
    let gw = Gateway::start_with(&[("EPR_ADMIN_TOKEN", "adm")]).await;
    let wasm = support::wasm_path("webhook_firer");
    // nothing listens on port 9: the one delivery allowed fails and is dead-lettered
    let grants = json!({"allowed_hosts": ["127.0.0.1:9"], "config": {"url": "http://127.0.0.1:9/"},
        "max_attempts": 1, "subscription": {"types": ["dev.cli"]}})
    .to_string();
    let uploaded = printed(
        &cli(
            &gw,
            Some("adm"),
            &[
                "plugin", "upload", &wasm, "--grants", &grants, "--name", "firer",
            ],
        )
        .await,
    );
    assert_eq!(
        (
            uploaded["data"]["name"].clone(),
            uploaded["data"]["world"].clone()
        ),
        (json!("firer"), json!("watcher"))
    );
    let error = failure(&cli(&gw, None, &["plugin", "list"]).await);
    assert!(error.contains("401"), "{error}");

    let receiver = created(
        &cli(
            &gw,
            Some("adm"),
            &[
                "receiver",
                "create",
                "--name",
                "cli",
                "--version",
                "1",
                "--type",
                "dev.cli",
                "--description",
                "d",
                "--schema",
                "{}",
            ],
        )
        .await,
    );
    let event = event_args("d", "{}", &receiver);
    created(&cli(&gw, Some("adm"), &event).await);
    let mut letters = Value::Null;
    for _ in 0..400 {
        letters =
            printed(&cli(&gw, Some("adm"), &["plugin", "dead-letters", "firer"]).await)["data"]
                .clone();
        if letters.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(letters[0]["receiver_type"], "dev.cli", "{letters}");

    let disabled = printed(&cli(&gw, Some("adm"), &["plugin", "disable", "firer"]).await);
    assert_eq!(disabled["data"]["enabled"], false);
    let enabled = printed(&cli(&gw, Some("adm"), &["plugin", "enable", "firer"]).await);
    assert_eq!(enabled["data"]["enabled"], true);
    let listed = printed(&cli(&gw, Some("adm"), &["plugin", "list"]).await);
    assert_eq!(listed["data"][0]["name"], "firer");
    printed(&cli(&gw, Some("adm"), &["plugin", "delete", "firer"]).await);
    let listed = printed(&cli(&gw, Some("adm"), &["plugin", "list"]).await);
    assert_eq!(listed["data"], json!([]));
    let error = failure(&cli(&gw, Some("adm"), &["plugin", "delete", "firer"]).await);
    assert!(error.contains("404"), "{error}");
    let error = failure(&cli(&gw, Some("adm"), &["plugin", "upload", "/no/such.wasm"]).await);
    assert!(error.contains("/no/such.wasm"), "{error}");
}

#[tokio::test]
async fn tail_follows_the_log_filtered_by_type_and_provenance_tells_the_story() {
    let gw = Gateway::start().await;
    let build = gw.receiver("dev.build").await;
    let test = gw.receiver("dev.test").await;
    let ready = gw.group("dev.ready", &[&build, &test]).await;
    create_event(&gw, &build, "--success").await;

    // tail from now on, only test events: started before the events it must see
    let follower = follow(&gw, &["--type", "dev.test", "--count", "2"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let failed = create_event(&gw, &test, "--success=false").await;
    let passed = create_event(&gw, &test, "--success").await;
    let (seen, _) = followed(follower).await;
    let ids: Vec<&Value> = seen.iter().map(|m| &m["data"]["events"][0]["id"]).collect();
    assert_eq!(ids, [&json!(failed), &json!(passed)], "{seen:?}");

    let from_start = cli(&gw, None, &["tail", "--after", "0", "--count", "3"]).await;
    let lines: Vec<String> = stdout(&from_start).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].contains("epr.event.receiver.created"), "{lines:?}");

    let provenance = [
        "provenance",
        "checkout",
        "2.4.1",
        "2026.11.23",
        "x86_64-linux",
        "oci",
    ];
    let story = cli(&gw, None, &provenance).await;
    let text = stdout(&story);
    assert!(story.status.success(), "{}", stderr(&story));
    assert!(
        text.starts_with("checkout 2.4.1 2026.11.23 x86_64-linux oci: 3 events\n"),
        "{text}"
    );
    let failure_at = text.find("FAILURE  dev.test").expect("the failed test");
    let completed = text
        .find(&format!("completed group dev.ready (dev.ready, {ready})"))
        .expect("the group");
    assert!(failure_at < completed, "{text}");
    let mut as_json = provenance.to_vec();
    as_json.push("--json");
    let json_story = printed(&cli(&gw, None, &as_json).await);
    assert_eq!(json_story[2]["event"]["id"], passed.as_str());
    let nothing = cli(&gw, None, &["provenance", "never", "1", "r", "p", "k"]).await;
    assert_eq!(stdout(&nothing), "never 1 r p k: no events recorded\n");
}

#[tokio::test]
async fn tail_resumes_where_it_left_off_when_the_gateway_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let env = [("EPR_PORT", port.as_str())];
    let mut gw = Gateway::start_in(&data, &env).await;
    let receiver = gw.receiver("dev.build").await;
    let follower = follow(&gw, &["--after", "0", "--count", "3"]);
    let before = gw.event(&receiver, "before", true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.terminate().await;

    let gw = Gateway::start_in(&data, &env).await;
    let after = gw.event(&receiver, "after", true).await;
    let (seen, errors) = followed(follower).await;
    let events: Vec<&Value> = seen[1..]
        .iter()
        .map(|m| &m["data"]["events"][0]["id"])
        .collect();
    assert_eq!(seen[0]["type"], "epr.event.receiver.created", "{seen:?}");
    assert_eq!(
        events,
        [&json!(before), &json!(after)],
        "none lost, none twice"
    );
    assert!(errors.contains("resuming after 2"), "{errors}");
}
