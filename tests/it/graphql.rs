//! GraphQL at `/api/v1/graphql/query`: EPR's schema and the request shapes its clients send
//! (`$obj` variables, JSON as a string), against the real gateway over HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support;
use crate::support::{Api, Gateway};

const RECEIVER_FIELDS: &str = "id,name,type,version,description,schema,fingerprint,created_at";
const EVENT_FIELDS: &str = "id,name,version,release,platform_id,package,description,payload,event_receiver_id,success,created_at";

/// Sends a GraphQL request (with `token` if given); every answer is HTTP 200.
async fn graphql(api: &Api, query: &str, variables: Value, token: Option<&str>) -> Value {
    let body = json!({"query": query, "variables": variables}).to_string();
    let (status, answer) = api
        .call(Method::POST, "/api/v1/graphql/query", Some(body), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// The data of an answer that must have no errors.
fn data(answer: Value) -> Value {
    assert!(answer.get("errors").is_none(), "{answer}");
    answer["data"].clone()
}

/// The first error's message.
fn error(answer: &Value) -> String {
    answer["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("an error expected: {answer}"))
        .to_owned()
}

async fn create_receiver(api: &Api, name: &str, token: Option<&str>) -> Value {
    let schema =
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
    graphql(
        api,
        "mutation ($obj: CreateEventReceiverInput!){create_event_receiver(event_receiver: $obj)}",
        json!({"obj": {"name": name, "type": "dev.test.graphql", "version": "1.0.0",
            "description": "made over GraphQL", "schema": schema.to_string()}}),
        token,
    )
    .await
}

async fn create_event(api: &Api, receiver: &str, name: &str, payload: Value) -> Value {
    graphql(
        api,
        "mutation ($obj: CreateEventInput!){create_event(event: $obj)}",
        json!({"obj": {"name": name, "version": "1.0.0", "release": "2026.11",
            "platform_id": "x86_64-linux", "package": "oci", "description": "an event",
            "payload": payload, "event_receiver_id": receiver, "success": true}}),
        None,
    )
    .await
}

#[tokio::test]
async fn epr_clients_create_and_find_receivers_events_and_groups() {
    let gw = Gateway::start().await;
    let receiver = data(create_receiver(&gw, "graphql", None).await)["create_event_receiver"]
        .as_str()
        .unwrap()
        .to_owned();

    // the payload as a string holding JSON text, as EPR's clients send it, or as a value
    let as_text = data(create_event(&gw, &receiver, "app", json!(r#"{"name":"joe","z":1}"#)).await);
    let id = as_text["create_event"].as_str().unwrap().to_owned();
    data(create_event(&gw, &receiver, "app", json!({"name": "ann"})).await);
    data(create_event(&gw, &receiver, "other", json!({"name": "bob"})).await);

    let found = data(
        graphql(
            &gw,
            &format!("query ($obj: FindEventInput!){{events(event: $obj) {{{EVENT_FIELDS}}}}}"),
            json!({"obj": {"name": "app", "event_receiver_id": receiver}}),
            None,
        )
        .await,
    );
    let events = found["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{found}");
    let first = events.iter().find(|e| e["id"] == id.as_str()).unwrap();
    assert_eq!(
        first["payload"],
        json!({"name": "joe", "z": 1}),
        "returned as a value"
    );
    assert_eq!(first["platform_id"], "x86_64-linux");
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));

    // by id, and the same event over REST
    let by_id = data(
        graphql(
            &gw,
            &format!("query ($id: ID!){{events_by_id(id: $id) {{{EVENT_FIELDS}}}}}"),
            json!({"id": id}),
            None,
        )
        .await,
    );
    let (_, rest) = gw.get(&format!("/api/v1/events/{id}")).await;
    for field in ["id", "name", "payload", "created_at", "event_receiver_id"] {
        assert_eq!(
            by_id["events_by_id"][0][field], rest["data"][0][field],
            "{field}"
        );
    }

    // receivers by filter and by id
    let receivers = data(
        graphql(
            &gw,
            &format!("query ($obj: FindEventReceiverInput!){{event_receivers(event_receiver: $obj) {{{RECEIVER_FIELDS}}}}}"),
            json!({"obj": {"type": "dev.test.graphql"}}),
            None,
        )
        .await,
    );
    assert_eq!(receivers["event_receivers"][0]["id"], receiver.as_str());
    assert_eq!(
        receivers["event_receivers"][0]["schema"]["required"],
        json!(["name"])
    );
    let one = data(
        graphql(
            &gw,
            "query ($id: ID!){event_receivers_by_id(id: $id) {id,type}}",
            json!({"id": receiver}),
            None,
        )
        .await,
    );
    assert_eq!(one["event_receivers_by_id"][0]["type"], "dev.test.graphql");

    // groups: create, find, disable, enable
    let group = data(
        graphql(
            &gw,
            "mutation ($obj: CreateEventReceiverGroupInput!){create_event_receiver_group(event_receiver_group: $obj)}",
            json!({"obj": {"name": "release", "type": "dev.test.group", "version": "1.0.0",
                "description": "a group", "enabled": true, "event_receiver_ids": [receiver]}}),
            None,
        )
        .await,
    )["create_event_receiver_group"]
        .as_str()
        .unwrap()
        .to_owned();
    let disabled = data(
        graphql(
            &gw,
            "mutation ($id: ID!){set_event_receiver_group_disabled(id: $id)}",
            json!({"id": group}),
            None,
        )
        .await,
    );
    assert_eq!(
        disabled["set_event_receiver_group_disabled"],
        group.as_str()
    );
    let found = data(
        graphql(
            &gw,
            "query ($obj: FindEventReceiverGroupInput!){event_receiver_groups(event_receiver_group: $obj) {id,type,enabled,event_receiver_ids,updated_at}}",
            json!({"obj": {"name": "release"}}),
            None,
        )
        .await,
    );
    let g = &found["event_receiver_groups"][0];
    assert_eq!(
        (g["id"].as_str(), g["enabled"].as_bool()),
        (Some(group.as_str()), Some(false))
    );
    assert_eq!(g["event_receiver_ids"], json!([receiver]));
    data(
        graphql(
            &gw,
            "mutation ($id: ID!){set_event_receiver_group_enabled(id: $id)}",
            json!({"id": group}),
            None,
        )
        .await,
    );
    let by_id = data(
        graphql(
            &gw,
            "query ($id: ID!){event_receiver_groups_by_id(id: $id) {enabled}}",
            json!({"id": group}),
            None,
        )
        .await,
    );
    assert_eq!(by_id["event_receiver_groups_by_id"][0]["enabled"], true);
}

#[tokio::test]
async fn errors_come_in_errors_with_what_was_wrong_and_change_nothing() {
    let gw = Gateway::start().await;
    let receiver = data(create_receiver(&gw, "graphql", None).await)["create_event_receiver"]
        .as_str()
        .unwrap()
        .to_owned();
    // the payload does not match the receiver's schema: the REST API's message
    let answer = create_event(&gw, &receiver, "app", json!(r#"{"age": 3}"#)).await;
    assert!(error(&answer).contains("name"), "{answer}");
    let answer = create_event(&gw, "01NOSUCHRECEIVER0000000000", "app", json!("{}")).await;
    assert!(error(&answer).contains("receiver"), "{answer}");
    // JSON text that is not JSON
    let answer = create_event(&gw, &receiver, "app", json!("{not json")).await;
    assert!(error(&answer).contains("not JSON text"), "{answer}");
    // an output-only field with a value (EPR's Python client sends them empty: accepted)
    let answer = graphql(
        &gw,
        "mutation ($obj: CreateEventInput!){create_event(event: $obj)}",
        json!({"obj": {"id": "01MYOWNID", "name": "app", "version": "1", "release": "1",
            "platform_id": "p", "package": "p", "description": "d", "payload": {"name": "x"},
            "event_receiver_id": receiver, "success": true}}),
        None,
    )
    .await;
    assert!(
        error(&answer).contains("the gateway sets this field itself"),
        "{answer}"
    );
    // a field the input does not have at all
    let answer = graphql(
        &gw,
        "mutation ($obj: CreateEventReceiverInput!){create_event_receiver(event_receiver: $obj)}",
        json!({"obj": {"name": "n", "type": "t", "version": "1", "description": "d",
            "schema": {}, "colour": "red"}}),
        None,
    )
    .await;
    assert!(error(&answer).contains("colour"), "{answer}");
    // an unknown id
    let answer = graphql(
        &gw,
        "{events_by_id(id: \"01NOSUCHEVENT0000000000000\") {id}}",
        json!({}),
        None,
    )
    .await;
    assert!(error(&answer).contains("not found"), "{answer}");
    // nothing was stored
    let (_, events) = gw.get("/api/v1/events").await;
    assert_eq!(events["data"], json!([]), "{events}");
    // a field the schema does not have
    let answer = graphql(&gw, "{events(event: {}) {nosuchfield}}", json!({}), None).await;
    assert!(error(&answer).contains("nosuchfield"), "{answer}");
}

#[tokio::test]
async fn searches_page_with_limit_and_after() {
    let gw = Gateway::start().await;
    let receiver = data(create_receiver(&gw, "graphql", None).await)["create_event_receiver"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in ["a", "b", "c", "d", "e"] {
        data(create_event(&gw, &receiver, name, json!({"name": name})).await);
    }
    let page = |after: Option<String>| {
        let gw = &gw;
        async move {
            let answer = graphql(
                gw,
                "query ($after: ID){events(event: {}, limit: 2, after: $after) {id,name}}",
                json!({"after": after}),
                None,
            )
            .await;
            data(answer)["events"].as_array().unwrap().clone()
        }
    };
    let mut names = Vec::new();
    let mut after = None;
    loop {
        let items = page(after.clone()).await;
        if items.is_empty() {
            break;
        }
        assert!(items.len() <= 2);
        names.extend(items.iter().map(|e| e["name"].as_str().unwrap().to_owned()));
        after = items.last().map(|e| e["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(names, ["e", "d", "c", "b", "a"], "newest first, each once");
    let answer = graphql(&gw, "{events(event: {}, limit: 0) {id}}", json!({}), None).await;
    assert!(
        error(&answer).contains("limit must be between 1"),
        "{answer}"
    );
}

#[tokio::test]
async fn introspection_shows_epr_names_and_big_queries_are_refused() {
    let gw = Gateway::start().await;
    let answer = data(
        graphql(
            &gw,
            "{__type(name: \"EventReceiver\") {fields {name}}}",
            json!({}),
            None,
        )
        .await,
    );
    let fields: Vec<&str> = answer["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "id",
            "name",
            "type",
            "version",
            "description",
            "schema",
            "fingerprint",
            "created_at"
        ]
    );
    // too many fields at once (aliases): refused before anything runs
    let many: String = (0..120)
        .map(|i| format!("e{i}: events(event: {{}}) {{id,name}} "))
        .collect();
    let answer = graphql(&gw, &format!("{{{many}}}"), json!({}), None).await;
    assert!(
        error(&answer).to_lowercase().contains("complex"),
        "{answer}"
    );
}

#[tokio::test]
async fn mutations_need_the_tokens_the_rest_api_needs() {
    let gw = Gateway::start_with(&[("EPR_ADMIN_TOKEN", "adm"), ("EPR_INGEST_TOKEN", "ing")]).await;
    let answer = create_receiver(&gw, "graphql", None).await;
    assert!(error(&answer).contains("admin token"), "{answer}");
    let answer = create_receiver(&gw, "graphql", Some("ing")).await;
    assert!(error(&answer).contains("admin token"), "{answer}");
    let receiver =
        data(create_receiver(&gw, "graphql", Some("adm")).await)["create_event_receiver"]
            .as_str()
            .unwrap()
            .to_owned();
    let answer = create_event(&gw, &receiver, "app", json!({"name": "x"})).await;
    assert!(error(&answer).contains("ingest or admin token"), "{answer}");
    // reads need no token, as over REST
    let found = data(
        graphql(
            &gw,
            "{event_receivers(event_receiver: {}) {id}}",
            json!({}),
            None,
        )
        .await,
    );
    assert_eq!(found["event_receivers"][0]["id"], receiver.as_str());
}

#[tokio::test]
async fn the_playground_is_served() {
    let gw = Gateway::start().await;
    let response = gw.http.get(gw.url("/api/v1/graphql")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("/api/v1/graphql/query"), "{page}");
}

#[tokio::test]
async fn a_client_written_as_eprs_python_client_works_unchanged() {
    let gw = Gateway::start().await;
    let stdout = support::run_python("epr_graphql_client.py", &gw.base).await;
    let found: Value = serde_json::from_str(&stdout).expect("a JSON summary");
    let ids = &found["ids"];
    assert_eq!(found["receivers"][0]["id"], ids["receiver"]);
    assert_eq!(found["receivers"][0]["schema"]["required"], json!(["name"]));
    assert_eq!(found["events"][0]["id"], ids["event"]);
    assert_eq!(found["events"][0]["payload"], json!({"name": "joe"}));
    assert_eq!(found["groups"][0]["id"], ids["group"]);
    assert_eq!(
        found["groups"][0]["event_receiver_ids"],
        json!([ids["receiver"]])
    );
    // what the client made is there over REST too
    let (status, event) = gw
        .get(&format!(
            "/api/v1/events/{}",
            ids["event"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event["data"][0]["name"], "python-app");
}

#[tokio::test]
async fn plugins_and_their_dead_letters_are_queryable_with_the_admin_token() {
    let gw = Gateway::start_with(&[("EPR_ADMIN_TOKEN", "adm")]).await;
    let wasm = support::wasm("webhook_firer");
    // nothing listens on port 9: every delivery fails, and one attempt is all it gets
    let grants = json!({"allowed_hosts": ["127.0.0.1:9"], "config": {"url": "http://127.0.0.1:9/"},
        "max_attempts": 1, "subscription": {"types": ["dev.test.graphql"]}});
    let response = gw
        .http
        .post(gw.url("/api/v1/plugins"))
        .bearer_auth("adm")
        .header("content-type", "application/wasm")
        .header("x-epr-grants", grants.to_string())
        .body(wasm)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let receiver =
        data(create_receiver(&gw, "graphql", Some("adm")).await)["create_event_receiver"]
            .as_str()
            .unwrap()
            .to_owned();
    let event =
        data(create_event(&gw, &receiver, "app", json!({"name": "x"})).await)["create_event"]
            .as_str()
            .unwrap()
            .to_owned();

    let query = "{dead_letters(name: \"webhook-firer\") {seq,event_id,receiver_type,error,attempts,failed_at}}";
    let mut letters = Value::Null;
    for _ in 0..400 {
        letters = data(graphql(&gw, query, json!({}), Some("adm")).await)["dead_letters"].clone();
        if letters.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(letters[0]["event_id"], event.as_str(), "{letters}");
    assert_eq!(letters[0]["receiver_type"], "dev.test.graphql");
    assert_eq!(letters[0]["attempts"], 1);
    assert!(!letters[0]["error"].as_str().unwrap().is_empty());

    let plugins = data(
        graphql(
            &gw,
            "{plugins {name,world,enabled,revision,calls,failures,last_error,dead_letters}}",
            json!({}),
            Some("adm"),
        )
        .await,
    );
    let firer = &plugins["plugins"][0];
    assert_eq!(firer["name"], "webhook-firer");
    assert_eq!(firer["world"], "watcher");
    assert_eq!(
        (firer["failures"].as_u64(), firer["dead_letters"].as_u64()),
        (Some(1), Some(1))
    );
    let answer = graphql(&gw, "{plugins {name}}", json!({}), None).await;
    assert!(error(&answer).contains("admin token"), "{answer}");
}

#[tokio::test]
async fn provenance_tells_a_units_story_in_order_with_the_groups_each_event_completed() {
    let gw = Gateway::start().await;
    let build = gw.receiver("dev.build").await;
    let test = gw.receiver("dev.test").await;
    let group = gw.group("dev.release.ready", &[&build, &test]).await;
    let first = gw.event(&build, "app", true).await;
    let failed = gw.event(&test, "app", false).await;
    let completing = gw.event(&test, "app", true).await;
    gw.event(&build, "another-app", true).await;

    let query = "query ($n: String!){provenance(name: $n, version: \"1.0.0\", release: \"2026.11\",
        platform_id: \"x86_64-linux\", package: \"oci\")
        {event {id success} event_receiver {id type} completed_groups {id type}}}";
    let steps = data(graphql(&gw, query, json!({"n": "app"}), None).await)["provenance"].clone();
    let ids: Vec<&str> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [&first, &failed, &completing],
        "oldest first, only this unit"
    );
    assert_eq!(steps[1]["event_receiver"]["type"], "dev.test");
    assert_eq!(steps[1]["event"]["success"], false);
    assert_eq!(steps[0]["completed_groups"], json!([]));
    assert_eq!(steps[1]["completed_groups"], json!([]));
    assert_eq!(
        steps[2]["completed_groups"],
        json!([{"id": group, "type": "dev.release.ready"}])
    );

    // REST shows the completion on the event too (additive to EPR's shape)
    let (_, event) = gw.get(&format!("/api/v1/events/{completing}")).await;
    assert_eq!(event["data"][0]["completed_group_ids"], json!([group]));

    let unknown = data(graphql(&gw, query, json!({"n": "never-built"}), None).await);
    assert_eq!(unknown["provenance"], json!([]));
    let missing = graphql(
        &gw,
        "{provenance(name: \"app\") {event {id}}}",
        json!({}),
        None,
    )
    .await;
    assert!(error(&missing).contains("version"), "{missing}");
}
