//! The MCP server, driven by the official MCP Python SDK (`tests/python/mcp_client.py`) over
//! Streamable HTTP (`/mcp`) and over stdio (`epr-gateway mcp`), on both protocol lifecycles;
//! and the EPR workshop's own FastMCP server (`tests/python/workshop_mcp_server.py`, MCP SDK 1.x)
//! run against the gateway's REST and GraphQL APIs.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, Api, Gateway, binary, event_body, receiver_body};

const ADMIN: &str = "adm1n-t0ken";
const INGEST: &str = "1ngest-t0ken";

/// Runs the Python MCP client against `server` (a URL, or `stdio:<command>`) in `mode`
/// (`auto` or `legacy`) with `token` as EPR_TOKEN and `env`: the negotiated protocol version,
/// one result per step, and what it wrote on stderr.
async fn assistant(
    server: &str,
    mode: &str,
    token: Option<&str>,
    env: &[(&str, &str)],
    steps: Value,
) -> (String, Vec<Value>, String) {
    let mut env = env.to_vec();
    env.extend(token.map(|t| ("EPR_TOKEN", t)));
    let printed = support::run_script(
        &support::python(),
        "mcp_client.py",
        &[server, mode, &steps.to_string()],
        &env,
    )
    .await;
    let out: Value = serde_json::from_str(&printed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", printed.stdout, printed.stderr));
    let results = out["results"].as_array().expect("results").clone();
    let version = out["protocol_version"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (version, results, printed.stderr)
}

/// A tool call step.
fn call(tool: &str, arguments: Value) -> Value {
    json!(["call", tool, arguments])
}

/// The text a tool answered, all blocks joined.
fn text(result: &Value) -> String {
    let blocks = result["text"]
        .as_array()
        .unwrap_or_else(|| panic!("no text in {result}"));
    blocks
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structured content of a successful tool call.
fn ok(result: &Value) -> &Value {
    assert_eq!(result["is_error"], false, "{result}");
    &result["structured"]
}

/// The message of a failed tool call (a tool error, not a protocol error).
fn tool_error(result: &Value) -> String {
    assert_eq!(result["is_error"], true, "a tool error expected: {result}");
    text(result)
}

/// What the release-gate tests start from: receivers `build` (its payloads need a string
/// `artifact`) and `test`, group `release-ready` of both, and a successful build of unit
/// `checkout` 1.0.0 (the other unit parts as `event_body` makes them).
struct ReleaseGate {
    build: String,
    test: String,
    group: String,
    build_event: String,
}

async fn create(gw: &Gateway, path: &str, body: Value, token: &str) -> String {
    let (status, answer) = gw
        .call(Method::POST, path, Some(body.to_string()), Some(token))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {answer}");
    answer["data"].as_str().expect("an id").to_owned()
}

async fn release_gate(gw: &Gateway) -> ReleaseGate {
    let schema = json!({"type": "object", "properties": {"artifact": {"type": "string"}},
        "required": ["artifact"]});
    let build = create(
        gw,
        "/api/v1/receivers",
        receiver_body("dev.mcp.build", schema),
        ADMIN,
    )
    .await;
    let test = create(
        gw,
        "/api/v1/receivers",
        receiver_body("dev.mcp.test", json!({})),
        ADMIN,
    )
    .await;
    let group = json!({"name": "release-ready", "type": "dev.mcp.release-ready", "version": "1",
        "description": "built and tested", "enabled": true, "event_receiver_ids": [build, test]});
    let group = create(gw, "/api/v1/groups", group, ADMIN).await;
    let event = event_body(
        &build,
        "checkout",
        true,
        json!({"artifact": "checkout.tar"}),
    );
    let build_event = create(gw, "/api/v1/events", event, INGEST).await;
    ReleaseGate {
        build,
        test,
        group,
        build_event,
    }
}

fn unit() -> Value {
    json!({"name": "checkout", "version": "1.0.0", "release": "2026.11",
        "platform_id": "x86_64-linux", "package": "oci"})
}

async fn gateway_with_tokens() -> Gateway {
    Gateway::start_with(&[("EPR_ADMIN_TOKEN", ADMIN), ("EPR_INGEST_TOKEN", INGEST)]).await
}

/// Every tool, in the order `tools/list` gives them.
const TOOLS: [&str; 15] = [
    "fetch_event",
    "fetch_receiver",
    "fetch_group",
    "search_events",
    "search_receivers",
    "search_groups",
    "create_event",
    "create_receiver",
    "create_group",
    "provenance",
    "group_status",
    "recent_events",
    "list_plugins",
    "plugin_dead_letters",
    "gateway_status",
];

#[tokio::test]
async fn an_assistant_finds_every_tool_described_and_every_receivers_schema() {
    let gw = gateway_with_tokens().await;
    let r = release_gate(&gw).await;
    let steps = json!([
        ["tools"],
        ["templates"],
        ["resources"],
        ["resource", format!("epr://receivers/{}/schema", r.build)],
    ]);
    let (version, results, _) = assistant(&gw.url("/mcp"), "auto", None, &[], steps).await;
    assert_eq!(
        version, "2026-07-28",
        "the SDK's default is the current revision"
    );
    let tools = results[0]["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, TOOLS);
    for tool in tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(
            tool["description"].as_str().is_some_and(|d| d.len() > 40),
            "{tool}"
        );
    }
    assert_eq!(
        results[1]["resourceTemplates"][0]["uriTemplate"],
        "epr://receivers/{id}/schema"
    );
    let uris: Vec<&Value> = results[2]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| &r["uri"])
        .collect();
    let schema_of = |id: &str| json!(format!("epr://receivers/{id}/schema"));
    assert_eq!(
        uris,
        [&schema_of(&r.test), &schema_of(&r.build)],
        "one per receiver, newest first"
    );
    let schema: Value =
        serde_json::from_str(results[3]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(schema["required"], json!(["artifact"]));
}

#[tokio::test]
async fn an_assistant_fetches_and_searches_the_registry_over_streamable_http() {
    let gw = gateway_with_tokens().await;
    let r = release_gate(&gw).await;
    let steps = json!([
        call("fetch_event", json!({"id": r.build_event})),
        call(
            "fetch_receiver",
            json!({"id": r.test, "epr_url": "http://ignored"})
        ),
        call("fetch_group", json!({"id": r.group})),
        call(
            "search_events",
            json!({"data": {"name": "checkout", "success": true}})
        ),
        call(
            "search_receivers",
            json!({"data": {"type": "dev.mcp.test"}})
        ),
        call("search_groups", json!({"data": {}, "limit": 1})),
        call("gateway_status", json!({})),
    ]);
    let (_, results, _) = assistant(&gw.url("/mcp"), "auto", None, &[], steps).await;
    let event = &ok(&results[0])["event"];
    assert_eq!(
        (&event["id"], &event["payload"]),
        (&json!(r.build_event), &json!({"artifact": "checkout.tar"}))
    );
    assert_eq!(event["EventReceiver"]["type"], "dev.mcp.build");
    assert!(
        text(&results[0]).contains("checkout 1.0.0"),
        "{}",
        results[0]
    );
    assert_eq!(ok(&results[1])["receiver"]["id"], r.test.as_str());
    assert_eq!(
        ok(&results[2])["group"]["event_receiver_ids"],
        json!([r.build, r.test])
    );
    assert_eq!(ok(&results[3])["events"][0]["id"], r.build_event.as_str());
    assert_eq!(ok(&results[4])["receivers"][0]["id"], r.test.as_str());
    let groups = ok(&results[5]);
    assert_eq!(groups["groups"].as_array().map(Vec::len), Some(1));
    assert!(groups["next"].is_null(), "one group only: {groups}");
    let status = ok(&results[6]);
    assert_eq!(
        (&status["status"], &status["kafka"]),
        (&json!("ok"), &Value::Null)
    );
    assert_eq!(status["log"]["last_sequence"], 4);
}

#[tokio::test]
async fn group_status_names_the_receiver_a_gate_waits_for_and_provenance_tells_the_story() {
    let gw = gateway_with_tokens().await;
    let r = release_gate(&gw).await;
    let tested = json!({"event_data": {"name": "checkout", "version": "1.0.0", "release": "2026.11",
        "platform_id": "x86_64-linux", "package": "oci", "description": "tests passed",
        "payload": {}, "success": true, "event_receiver_id": r.test}});
    let steps = json!([
        call("group_status", json!({"group_id": r.group, "unit": unit()})),
        call("create_event", tested),
        call("group_status", json!({"group_id": r.group, "unit": unit()})),
        call("provenance", json!({"unit": unit()})),
        call(
            "recent_events",
            json!({"count": 5, "type_prefix": "dev.mcp.release"})
        ),
        call("recent_events", json!({"count": 2})),
        call(
            "create_event",
            json!({"event_data": event_body(&r.test, "checkout", false, json!({}))})
        ),
        call("group_status", json!({"group_id": r.group, "unit": unit()})),
    ]);
    let (_, results, _) = assistant(&gw.url("/mcp"), "legacy", Some(INGEST), &[], steps).await;

    // half complete: the build is in, the tests are not
    let waiting = ok(&results[0]);
    assert_eq!(waiting["complete"], false);
    assert_eq!(waiting["members"][0]["state"], "satisfied");
    assert_eq!(
        waiting["members"][0]["deciding_event"]["id"],
        r.build_event.as_str()
    );
    assert_eq!(waiting["members"][1]["state"], "waiting");
    let summary = text(&results[0]);
    assert!(
        summary.contains("not complete") && summary.contains("waiting for: dev.mcp.test-receiver"),
        "{summary}"
    );

    let tested = ok(&results[1])["id"]
        .as_str()
        .expect("the new id")
        .to_owned();
    let (status, _) = gw.get(&format!("/api/v1/events/{tested}")).await;
    assert_eq!(status, StatusCode::OK, "the created event is stored");
    let complete = ok(&results[2]);
    assert_eq!(
        (&complete["complete"], &complete["completed_by"]),
        (&json!(true), &json!(tested))
    );

    let steps = ok(&results[3])["steps"].as_array().expect("steps").clone();
    let ids: Vec<&Value> = steps.iter().map(|s| &s["event"]["id"]).collect();
    assert_eq!(ids, [&json!(r.build_event), &json!(tested)], "oldest first");
    assert_eq!(steps[1]["completed_groups"][0]["id"], r.group.as_str());

    let completions = ok(&results[4])["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(completions.len(), 1, "{completions:?}");
    assert_eq!(
        (&completions[0]["type"], &completions[0]["name"]),
        (&json!("dev.mcp.release-ready"), &json!("checkout"))
    );
    let latest: Vec<&Value> = ok(&results[5])["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["type"])
        .collect();
    assert_eq!(
        latest,
        [&json!("dev.mcp.release-ready"), &json!("dev.mcp.test")],
        "newest first"
    );

    // the tests fail later: the gate closes and names the failure and its event
    let failed = ok(&results[6])["id"]
        .as_str()
        .expect("the failure's id")
        .to_owned();
    let closed = ok(&results[7]);
    assert_eq!(
        (&closed["complete"], &closed["members"][1]["state"]),
        (&json!(false), &json!("failed"))
    );
    let summary = text(&results[7]);
    assert!(
        summary.contains(&format!("failed: dev.mcp.test-receiver (event {failed})")),
        "{summary}"
    );
}

#[tokio::test]
async fn bad_arguments_refused_payloads_and_missing_tokens_are_tool_errors_that_change_nothing() {
    let gw = gateway_with_tokens().await;
    let r = release_gate(&gw).await;
    let before = gw.last_sequence().await;
    let bad_build = json!({"event_data": {"name": "checkout", "version": "1", "release": "1",
        "platform_id": "p", "package": "p", "description": "d", "payload": {"artifact": 5},
        "success": true, "event_receiver_id": r.build}});
    let receiver = json!({"receiver_data": receiver_body("dev.mcp.new", json!({}))});
    // nested deeper than the gateway allows, within what a JSON parser takes
    let mut deep = json!({"artifact": "x"});
    for _ in 0..100 {
        deep = json!({"nested": deep});
    }
    let deep_build = json!({"event_data": {"name": "checkout", "version": "1", "release": "1",
        "platform_id": "p", "package": "p", "description": "d", "payload": deep,
        "success": true, "event_receiver_id": r.build}});
    let steps = json!([
        call("create_event", bad_build),
        call("fetch_event", json!({"idx": r.build_event})),
        call("search_events", json!({"data": {"colour": "red"}})),
        call("fetch_group", json!({"id": "01NOSUCHGROUP0000000000000"})),
        ["call", "no_such_tool", {}],
        call("create_event", deep_build),
    ]);
    let (_, results, _) = assistant(&gw.url("/mcp"), "auto", Some(INGEST), &[], steps).await;
    let refused = tool_error(&results[0]);
    assert!(
        refused.contains("did not match") && refused.contains("/artifact"),
        "{refused}"
    );
    assert_eq!(results[0]["structured"]["status"], 400);
    assert!(
        tool_error(&results[1]).contains("unknown field `idx`"),
        "{}",
        results[1]
    );
    assert!(tool_error(&results[2]).contains("colour"), "{}", results[2]);
    assert!(
        tool_error(&results[3]).contains("not found"),
        "{}",
        results[3]
    );
    assert!(
        results[4]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no_such_tool")),
        "{}",
        results[4]
    );
    let deep = tool_error(&results[5]);
    assert!(deep.contains("nested 101 levels deep"), "{deep}");
    assert_eq!(gw.last_sequence().await, before, "nothing stored");

    // creates need the tokens the REST API needs; reads do not
    let tokens: [(Option<&str>, &str); 3] = [
        (None, "ingest"),
        (Some("wrong"), "ingest"),
        (Some(INGEST), "admin"),
    ];
    for (token, needed) in tokens {
        let steps = json!([
            call(
                "create_event",
                json!({"event_data": event_body(&r.test, "checkout", true, json!({}))})
            ),
            call("create_receiver", receiver.clone()),
            call("list_plugins", json!({})),
            call("fetch_receiver", json!({"id": r.test})),
        ]);
        let (_, results, _) = assistant(&gw.url("/mcp"), "auto", token, &[], steps).await;
        let first = match needed {
            "ingest" => 0,
            _ => 1,
        };
        for result in &results[first..3] {
            let message = tool_error(result);
            assert!(message.starts_with("unauthorized"), "{token:?}: {message}");
            assert_eq!(result["structured"]["status"], 401);
        }
        ok(&results[3]);
        if first == 1 {
            ok(&results[0]);
        }
    }
    let (_, receivers) = gw.get("/api/v1/receivers?type=dev.mcp.new").await;
    assert_eq!(
        receivers["data"],
        json!([]),
        "no receiver was created without the admin token"
    );
}

#[tokio::test]
async fn the_admin_sees_plugins_and_their_dead_letters_through_mcp() {
    let gw = gateway_with_tokens().await;
    // nothing listens on port 9: every delivery fails, and one attempt is all it gets
    let grants = json!({"allowed_hosts": ["127.0.0.1:9"], "config": {"url": "http://127.0.0.1:9/"},
        "max_attempts": 1, "subscription": {"types": ["dev.mcp.test"]}});
    let response = gw
        .http
        .post(gw.url("/api/v1/plugins"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/wasm")
        .header("x-epr-grants", grants.to_string())
        .body(support::wasm("webhook_firer"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let r = release_gate(&gw).await;
    let event = create(
        &gw,
        "/api/v1/events",
        event_body(&r.test, "checkout", true, json!({})),
        INGEST,
    )
    .await;
    let mut letters = Value::Null;
    for _ in 0..400 {
        let (_, answer) = gw
            .call(
                Method::GET,
                "/api/v1/plugins/webhook-firer/dead-letters",
                None,
                Some(ADMIN),
            )
            .await;
        letters = answer["data"].clone();
        if letters.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        letters[0]["event_id"],
        event.as_str(),
        "the REST API has the dead letter: {letters}"
    );

    let steps = json!([
        call("list_plugins", json!({})),
        call("plugin_dead_letters", json!({"name": "webhook-firer"})),
        call("plugin_dead_letters", json!({"name": "no-such-plugin"})),
        call("gateway_status", json!({})),
    ]);
    let (_, results, _) = assistant(&gw.url("/mcp"), "auto", Some(ADMIN), &[], steps).await;
    let firer = &ok(&results[0])["plugins"][0];
    assert_eq!(
        (&firer["name"], &firer["world"]),
        (&json!("webhook-firer"), &json!("watcher"))
    );
    assert_eq!(
        (firer["failures"].as_u64(), firer["dead_letters"].as_u64()),
        (Some(1), Some(1))
    );
    let letter = &ok(&results[1])["dead_letters"][0];
    assert_eq!(
        (&letter["event_id"], &letter["attempts"]),
        (&json!(event), &json!(1))
    );
    assert!(
        text(&results[1]).starts_with("1 dead letters of plugin webhook-firer"),
        "{}",
        results[1]
    );
    assert!(tool_error(&results[2]).contains("no plugin is named no-such-plugin"));
    let status = ok(&results[3]);
    assert_eq!(status["plugins"]["installed"], 1);
    assert_eq!(status["plugins"]["troubled"][0]["name"], "webhook-firer");
    assert!(
        text(&results[3]).contains("in trouble: webhook-firer"),
        "{}",
        results[3]
    );
}

#[tokio::test]
async fn epr_gateway_mcp_serves_the_same_tools_on_stdio_with_the_token_and_never_prints_it() {
    let gw = gateway_with_tokens().await;
    let r = release_gate(&gw).await;
    let command = format!("stdio:{} mcp", binary());
    let receiver = json!({"receiver_data": receiver_body("dev.mcp.stdio", json!({}))});
    for mode in ["auto", "legacy"] {
        let env = [("EPR_URL", gw.base.as_str()), ("EPR_LOG", "debug")];
        let steps = json!([
            ["tools"],
            ["resource", format!("epr://receivers/{}/schema", r.build)],
            call("group_status", json!({"group_id": r.group, "unit": unit()})),
            call("create_receiver", receiver.clone()),
            call("fetch_event", json!({"id": "not-an-id"})),
        ]);
        let (version, results, stderr) = assistant(&command, mode, Some(ADMIN), &env, steps).await;
        let expected = if mode == "auto" {
            "2026-07-28"
        } else {
            "2025-11-25"
        };
        assert_eq!(version, expected);
        assert_eq!(
            results[0]["tools"].as_array().map(Vec::len),
            Some(TOOLS.len())
        );
        assert!(
            results[1]["contents"][0]["text"]
                .as_str()
                .unwrap()
                .contains("artifact")
        );
        assert!(
            text(&results[2]).contains("waiting for: dev.mcp.test-receiver"),
            "{}",
            results[2]
        );
        let id = ok(&results[3])["id"]
            .as_str()
            .expect("an id, created with the admin token");
        assert_eq!(id.len(), 26);
        assert!(
            tool_error(&results[4]).contains("not found"),
            "{}",
            results[4]
        );
        assert!(
            stderr.contains("DEBUG"),
            "the bridge's debug log is seen here:\n{stderr}"
        );
        assert!(!stderr.contains(ADMIN), "the token was printed:\n{stderr}");
    }
    // without a running gateway: a clear error, at once
    let steps = json!([["tools"]]);
    let python = support::python();
    let script = support::script_path("mcp_client.py");
    let output = tokio::process::Command::new(&python)
        .args([
            script.as_str(),
            command.as_str(),
            "auto",
            &steps.to_string(),
        ])
        .env("EPR_URL", "http://127.0.0.1:9")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the MCP server of the gateway at http://127.0.0.1:9/mcp"),
        "{stderr}"
    );
}

/// POSTs one JSON-RPC `message` to `/mcp` of `api` as a Streamable HTTP client does, with
/// `headers` too: the status and the body.
async fn rpc(api: &Api, message: &Value, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = api
        .http
        .post(api.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(message.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn mcp_over_http_checks_origin_and_host_and_answers_what_it_does_not_serve() {
    let gw = Gateway::start().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (status, body) = rpc(&gw, &initialize, &[("origin", "https://evil.example")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("EPR_MCP_ORIGINS"), "{body}");
    let (status, body) = rpc(&gw, &initialize, &[("host", "rebound.evil.example")]).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{body}");
    for headers in [&[][..], &[("origin", "http://localhost:6274")][..]] {
        let (status, body) = rpc(&gw, &initialize, headers).await;
        assert_eq!(status, StatusCode::OK, "{headers:?}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["result"]["serverInfo"]["name"], "epr-gateway");
        assert_eq!(answer["result"]["protocolVersion"], "2025-06-18");
    }
    // a message nested beyond what the JSON parser takes is refused, and the gateway goes on
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let message = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "fetch_event", "arguments": {"id": deep}}});
    let (status, body) = rpc(&gw, &message, &[]).await;
    assert!(status.is_client_error(), "{status}: {body}");
    assert!(body.contains("recursion limit exceeded"), "{body}");
    // a 2025 client that sends the session id of another replica (or of none) is served
    let (status, body) = rpc(
        &gw,
        &initialize,
        &[("mcp-session-id", "from-another-replica")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // stateless: no stream to open and no session to end
    for method in [Method::GET, Method::DELETE] {
        let response = gw
            .http
            .request(method.clone(), gw.url("/mcp"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
    }
    let origins = Gateway::start_with(&[("EPR_MCP_ORIGINS", "https://tools.example.com")]).await;
    let (status, body) = rpc(
        &origins,
        &initialize,
        &[("origin", "https://tools.example.com")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a configured origin: {body}");
}

#[tokio::test]
async fn the_workshops_own_mcp_server_fetches_searches_and_creates_against_the_gateway() {
    // the workshop's server sends no token (one of its flaws): an open gateway
    let gw = Gateway::start().await;
    let receiver = gw.receiver("dev.workshop").await;
    let event = gw.event(&receiver, "workshop-app", true).await;
    let workshop = std::env::var("EPR_TEST_WORKSHOP_PYTHON")
        .expect("EPR_TEST_WORKSHOP_PYTHON: a Python with the MCP SDK 1.x (tests/run sets it)");
    let command = format!(
        "stdio:{workshop} {}",
        support::script_path("workshop_mcp_server.py")
    );
    let url = gw.base.as_str();
    let steps = json!([
        call("fetch_event", json!({"epr_url": url, "id": event})),
        call("fetch_receiver", json!({"epr_url": url, "id": receiver})),
        call(
            "search_events",
            json!({"epr_url": url, "data": {"name": "workshop-app"}})
        ),
        call(
            "search_receivers",
            json!({"epr_url": url, "data": {"type": "dev.workshop"}})
        ),
        call(
            "create_receiver",
            json!({"epr_url": url, "receiver_data": receiver_body("dev.workshop.new", json!({}))})
        ),
        call(
            "create_event",
            json!({"epr_url": url, "event_data": event_body(&receiver, "workshop-app", true, json!({}))})
        ),
        call(
            "create_group",
            json!({"epr_url": url, "group_data": {"name": "g", "type": "dev.workshop.done",
            "version": "1", "description": "d", "enabled": true, "event_receiver_ids": [receiver]}})
        ),
        call(
            "search_groups",
            json!({"epr_url": url, "data": {"name": "g"}})
        ),
    ]);
    let (_, results, _) = assistant(&command, "auto", None, &[], steps).await;
    let fetched: Value = serde_json::from_str(&text(&results[0])).unwrap();
    assert_eq!(fetched["data"][0]["id"], event.as_str());
    let fetched: Value = serde_json::from_str(&text(&results[1])).unwrap();
    assert_eq!(fetched["data"][0]["type"], "dev.workshop");
    let found: Value = serde_json::from_str(&text(&results[2])).unwrap();
    assert_eq!(found["data"]["events"][0]["id"], event.as_str(), "{found}");
    let found: Value = serde_json::from_str(&text(&results[3])).unwrap();
    assert_eq!(
        found["data"]["event_receivers"][0]["id"],
        receiver.as_str(),
        "{found}"
    );
    for (i, what) in [
        (4, "Event receiver"),
        (5, "Event"),
        (6, "Event receiver group"),
    ] {
        assert_eq!(
            text(&results[i]),
            format!("{what} created successfully"),
            "{}",
            results[i]
        );
    }
    let found: Value = serde_json::from_str(&text(&results[7])).unwrap();
    assert_eq!(
        found["data"]["event_receiver_groups"][0]["type"], "dev.workshop.done",
        "{found}"
    );
    let (_, events) = gw.get("/api/v1/events?name=workshop-app").await;
    assert_eq!(
        events["data"].as_array().map(Vec::len),
        Some(2),
        "the created event is stored"
    );
}

/// Posts `count` events of `receiver` (unit names `<name>-<i>`), 16 at a time.
async fn post_many(gw: &Gateway, receiver: &str, name: &str, count: usize) {
    let bodies: Vec<Value> = (0..count)
        .map(|i| event_body(receiver, &format!("{name}-{i}"), true, json!({})))
        .collect();
    let posts = futures::stream::iter(&bodies).map(|body| gw.post("/api/v1/events", body));
    let answers: Vec<(StatusCode, Value)> = posts.buffer_unordered(16).collect().await;
    for (status, answer) in answers {
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
}

#[tokio::test]
async fn recent_events_reach_back_through_a_long_log_newest_first() {
    let gw = Gateway::start().await;
    // the log: 1 and 3 receivers, 2, 347 and 348 the early events, the rest busy ones (the
    // log is read backwards in steps: whichever they are, none may be skipped)
    let early = gw.receiver("dev.mcp.early").await;
    let first = gw.event(&early, "early-app", true).await;
    let busy = gw.receiver("dev.mcp.busy").await;
    post_many(&gw, &busy, "busy", 343).await;
    let middle = [
        gw.event(&early, "early-app", true).await,
        gw.event(&early, "early-app", true).await,
    ];
    post_many(&gw, &busy, "late", 255).await;
    assert_eq!(gw.last_sequence().await, 603);
    let steps = json!([
        call(
            "recent_events",
            json!({"type_prefix": "dev.mcp.early", "count": 5})
        ),
        call(
            "recent_events",
            json!({"type_prefix": "dev.mcp.busy", "count": 100})
        ),
        call("recent_events", json!({"count": 101})),
    ]);
    let (_, results, _) = assistant(&gw.url("/mcp"), "auto", None, &[], steps).await;
    let found: Vec<(Value, Value)> = ok(&results[0])["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["seq"].clone(), m["id"].clone()))
        .collect();
    let expected = [(348, &middle[1]), (347, &middle[0]), (2, &first)]
        .map(|(seq, id)| (json!(seq), json!(id)));
    assert_eq!(found, expected, "every early event, newest first");
    let busy = ok(&results[1])["messages"]
        .as_array()
        .expect("messages")
        .clone();
    let seqs: Vec<u64> = busy.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    let newest: Vec<u64> = (349..=603).rev().take(100).collect();
    assert_eq!(seqs, newest, "the 100 latest, newest first, none skipped");
    assert!(
        tool_error(&results[2]).contains("count must be between 1 and 100"),
        "{}",
        results[2]
    );
}
