//! EPR's REST API over real HTTP: every route, every error of EPR-API.md, search, auth, limits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Gateway, error_of, event_body, receiver_body};

/// Last log sequence number and number of events: together, "was anything stored?".
async fn stored(gw: &Gateway) -> (u64, usize) {
    let (_, status) = gw.get("/healthz/status").await;
    let (_, events) = gw.get("/api/v1/events?limit=1000").await;
    let seq = status["log"]["last_sequence"]
        .as_u64()
        .expect("last_sequence");
    (seq, events["data"].as_array().expect("events").len())
}

#[tokio::test]
async fn receivers_are_created_and_read_back_with_epr_fingerprint() {
    let gw = Gateway::start().await;
    let body = json!({"name": "watcher-workshop", "type": "foo.bar", "version": "1.0.0",
        "description": "The event receiver of Brixton", "schema": {"type": "object"},
        "id": "", "enabled": true, "created_at": "whatever"});
    let id = gw.create("/api/v1/receivers", &body).await;
    let (status, answer) = gw.get(&format!("/api/v1/receivers/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let receivers = answer["data"].as_array().expect("array");
    assert_eq!(receivers.len(), 1);
    let r = &receivers[0];
    assert_eq!(r["id"], id);
    assert_eq!(r["name"], "watcher-workshop");
    assert_eq!(r["type"], "foo.bar");
    assert_eq!(r["version"], "1.0.0");
    assert_eq!(r["description"], "The event receiver of Brixton");
    assert_eq!(r["schema"], json!({"type": "object"}));
    assert_eq!(
        r["fingerprint"],
        "b183c34c7ba56b17f89dfe0c0b22c0a340889cae88d8e87a3f16bc5bdc8f7acb"
    );
    assert!(chrono_like(&r["created_at"]), "{r}");

    // GraphQL habit: the schema sent as a string holding JSON text.
    let as_text = receiver_body("text.schema", json!("{\"type\":\"integer\"}"));
    let id = gw.create("/api/v1/receivers", &as_text).await;
    let (_, answer) = gw.get(&format!("/api/v1/receivers/{id}")).await;
    assert_eq!(answer["data"][0]["schema"], json!({"type": "integer"}));
}

fn chrono_like(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= 20 && s.contains('T') && s.ends_with('Z'))
}

#[tokio::test]
async fn receiver_errors_are_epr_messages_and_store_nothing() {
    let gw = Gateway::start().await;
    let before = stored(&gw).await;
    let cases = [
        (
            json!({"schema": {}}),
            "invalid input: name cannot be blank\ntype cannot be blank\nversion cannot be blank\ndescription cannot be blank",
        ),
        (
            json!({"name": "n", "type": "t", "version": "1", "description": "d"}),
            "invalid input: schema is required",
        ),
        (
            json!({"name": "n", "type": "t", "version": "1", "description": "d", "schema": null}),
            "invalid input: schema is required",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = gw.post("/api/v1/receivers", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_of(&answer), expected);
        assert_eq!(answer["data"], Value::Null);
    }
    let (status, answer) = gw
        .post(
            "/api/v1/receivers",
            &receiver_body("bad", json!({"type": 12})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&answer).starts_with("invalid input: failed to parse schema: "),
        "{answer}"
    );

    let remote = json!({"$ref": "https://schemas.example.com/unit.json"});
    let (status, answer) = gw
        .post("/api/v1/receivers", &receiver_body("remote", remote))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error_of(&answer);
    assert!(
        message.contains("$ref https://schemas.example.com/unit.json cannot be resolved"),
        "{message}"
    );

    let (status, answer) = gw.get("/api/v1/receivers/01J0000000000000000000000X").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_of(&answer),
        "object not found: eventReceiver with id 01J0000000000000000000000X not found"
    );
    assert_eq!(
        stored(&gw).await,
        before,
        "a refused receiver changes nothing"
    );
}

#[tokio::test]
async fn a_ref_resolves_against_a_schema_the_gateway_holds() {
    let gw = Gateway::start().await;
    let unit = json!({"$id": "https://schemas.example.com/unit.json", "type": "object",
        "required": ["name"], "properties": {"name": {"type": "string"}}});
    gw.create("/api/v1/receivers", &receiver_body("unit", unit))
        .await;
    let using = json!({"$ref": "https://schemas.example.com/unit.json"});
    let receiver = gw
        .create("/api/v1/receivers", &receiver_body("uses.unit", using))
        .await;
    let (status, answer) = gw
        .post(
            "/api/v1/events",
            &event_body(&receiver, "u", true, json!({"name": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    gw.create(
        "/api/v1/events",
        &event_body(&receiver, "u", true, json!({"name": "ok"})),
    )
    .await;
}

#[tokio::test]
async fn events_are_stored_and_returned_with_their_receiver_and_exact_payload() {
    let gw = Gateway::start().await;
    let receiver = gw.receiver("dev.build").await;
    let payload_text = r#"{"z":1,  "a":[3,1,2],"m":{"b":true,"a":null},"u":"é\u00e9"}"#;
    let body = format!(
        r#"{{"id":"","name":"app","version":"1.2.3","release":"r1","platform_id":"linux","package":"oci","description":"built","payload":{payload_text},"success":true,"event_receiver_id":"{receiver}","EventReceiver":{{}}}}"#
    );
    let (status, answer) = gw
        .call(Method::POST, "/api/v1/events", Some(body), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["data"].as_str().expect("id").to_owned();

    let raw = gw
        .http
        .get(gw.url(&format!("/api/v1/events/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        raw.contains(&format!(r#""payload":{payload_text}"#)),
        "payload returned as posted: {raw}"
    );
    let answer: Value = serde_json::from_str(&raw).unwrap();
    let e = &answer["data"][0];
    for (k, v) in [
        ("id", json!(id)),
        ("name", json!("app")),
        ("version", json!("1.2.3")),
        ("release", json!("r1")),
        ("platform_id", json!("linux")),
        ("package", json!("oci")),
        ("description", json!("built")),
        ("success", json!(true)),
        ("event_receiver_id", json!(receiver)),
    ] {
        assert_eq!(e[k], v, "{k} in {e}");
    }
    assert!(chrono_like(&e["created_at"]));
    assert_eq!(e["EventReceiver"]["id"], receiver);
    assert_eq!(e["EventReceiver"]["type"], "dev.build");

    // success defaults to false
    let mut no_success = event_body(&receiver, "app", true, json!({}));
    no_success.as_object_mut().unwrap().remove("success");
    let id = gw.create("/api/v1/events", &no_success).await;
    let (_, answer) = gw.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(answer["data"][0]["success"], false);
}

#[tokio::test]
async fn event_errors_are_epr_messages_and_store_nothing() {
    let gw = Gateway::start().await;
    let schema = json!({"type": "object", "required": ["commit"], "additionalProperties": false,
        "properties": {"commit": {"type": "string", "pattern": "^[0-9a-f]{7,40}$"},
        "url": {"type": "string", "format": "uri"}, "count": {"type": "integer", "minimum": 1}}});
    let receiver = gw
        .create("/api/v1/receivers", &receiver_body("dev.strict", schema))
        .await;
    let before = stored(&gw).await;

    let (status, answer) = gw.post("/api/v1/events", &json!({"payload": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_of(&answer),
        "invalid input: name cannot be blank\nversion cannot be blank\nrelease cannot be blank\nplatform id cannot be blank\npackage cannot be blank\ndescription cannot be blank\nevent receiver id cannot be blank"
    );

    let (status, answer) = gw
        .post(
            "/api/v1/events",
            &event_body("01J0000000000000000000000X", "u", true, json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_of(&answer),
        "invalid input: receiver for event does not exist"
    );

    let bad = json!({"commit": "XYZ", "url": "not a uri", "count": 0, "extra": 1});
    let (status, answer) = gw
        .post("/api/v1/events", &event_body(&receiver, "u", true, bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error_of(&answer);
    let mut lines = message.lines();
    assert_eq!(
        lines.next(),
        Some("invalid input: event payload did not match event receiver schema")
    );
    let mut violations: Vec<&str> = lines.collect();
    violations.sort();
    assert_eq!(violations.len(), 4, "{message}");
    assert!(violations[0].starts_with("/: "), "{message}");
    assert!(violations[1].starts_with("/commit: "), "{message}");
    assert!(violations[2].starts_with("/count: "), "{message}");
    assert!(
        violations[3].starts_with("/url: "),
        "format is asserted: {message}"
    );

    for (raw, expected) in [
        ("", "invalid input: EOF"),
        (
            "{",
            "invalid input: EOF while parsing an object at line 1 column 1",
        ),
    ] {
        let (status, answer) = gw
            .call(Method::POST, "/api/v1/events", Some(raw.into()), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&answer), expected);
    }
    let mut wrong_type = event_body(&receiver, "u", true, json!({"commit": "abcdef0"}));
    wrong_type["success"] = json!("yes");
    let (status, answer) = gw.post("/api/v1/events", &wrong_type).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&answer)
            .starts_with("invalid input: invalid type: string \"yes\", expected a boolean"),
        "{answer}"
    );

    let (status, answer) = gw.get("/api/v1/events/01J0000000000000000000000X").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_of(&answer),
        "object not found: event with id 01J0000000000000000000000X not found"
    );
    assert_eq!(stored(&gw).await, before, "refused events change nothing");

    let text = gw.metrics().await;
    assert!(text.contains("epr_validation_failures_total 1"), "{text}");
}

#[tokio::test]
async fn groups_are_created_read_and_enabled_or_disabled() {
    let gw = Gateway::start().await;
    let a = gw.receiver("dev.a").await;
    let b = gw.receiver("dev.b").await;
    let body = json!({"name": "release", "type": "dev.release.ready", "version": "1", "description": "all green",
        "enabled": true, "event_receiver_ids": [a, b, a]});
    let id = gw.create("/api/v1/groups", &body).await;
    let (status, answer) = gw.get(&format!("/api/v1/groups/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let g = &answer["data"][0];
    assert_eq!(g["id"], id);
    assert_eq!(g["type"], "dev.release.ready");
    assert_eq!(g["enabled"], true);
    assert_eq!(
        g["event_receiver_ids"],
        json!([a, b]),
        "duplicates collapse, order kept"
    );
    assert_eq!(g["created_at"], g["updated_at"]);

    let (status, answer) = gw
        .call(
            Method::PATCH,
            &format!("/api/v1/groups/{id}"),
            Some(r#"{"enabled":false}"#.into()),
            None,
        )
        .await;
    assert_eq!(
        (status, answer["data"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    let (_, answer) = gw.get(&format!("/api/v1/groups/{id}")).await;
    assert_eq!(answer["data"][0]["enabled"], false);
    assert_ne!(
        answer["data"][0]["updated_at"], answer["data"][0]["created_at"],
        "PATCH updates updated_at"
    );

    let missing = "01J0000000000000000000000X";
    let (status, answer) = gw
        .call(
            Method::PATCH,
            &format!("/api/v1/groups/{missing}"),
            Some(r#"{"enabled":true}"#.into()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_of(&answer),
        format!("object not found: eventReceiverGroup with id {missing} not found")
    );
    let (status, _) = gw.get(&format!("/api/v1/groups/{missing}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = gw
        .call(
            Method::PATCH,
            &format!("/api/v1/groups/{id}"),
            Some("{}".into()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn group_errors_are_400_naming_the_problem() {
    let gw = Gateway::start().await;
    let a = gw.receiver("dev.a").await;
    let before = stored(&gw).await;
    let base = |ids: Value| json!({"name": "g", "type": "t", "version": "1", "description": "d", "event_receiver_ids": ids});
    let missing = "01J0000000000000000000000X";
    for (body, expected) in [
        (base(json!([])), "invalid input: need at least one event receiver id".to_owned()),
        (json!({"name": "g", "type": "t", "version": "1", "description": "d"}), "invalid input: need at least one event receiver id".to_owned()),
        (base(json!([a, ""])), "invalid input: event receiver ids cannot be blank".to_owned()),
        (base(json!([a, missing])), format!("invalid input: event receiver {missing} does not exist")),
        (json!({"event_receiver_ids": [a]}), "invalid input: name cannot be blank\ntype cannot be blank\nversion cannot be blank\ndescription cannot be blank".to_owned()),
    ] {
        let (status, answer) = gw.post("/api/v1/groups", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_of(&answer), expected);
    }
    assert_eq!(stored(&gw).await, before);
}

#[tokio::test]
async fn search_filters_and_pages_newest_first() {
    let gw = Gateway::start().await;
    let a = gw.receiver("dev.a").await;
    let b = gw.receiver("dev.b").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(gw.event(&a, "app", i % 2 == 0).await);
    }
    let other = gw.event(&b, "lib", true).await;

    let list = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let (_, by_name) = gw.get("/api/v1/events?name=app").await;
    assert_eq!(list(&by_name), newest_first);
    assert!(by_name.get("next").is_none(), "one page only: {by_name}");
    let (_, by_receiver) = gw
        .get(&format!("/api/v1/events?event_receiver_id={b}"))
        .await;
    assert_eq!(list(&by_receiver), [other.as_str()]);
    let (_, by_unit) = gw.get("/api/v1/events?name=app&version=1.0.0&release=2026.11&platform_id=x86_64-linux&package=oci&success=false").await;
    assert_eq!(list(&by_unit), [ids[3].clone(), ids[1].clone()]);
    let (_, by_id) = gw.get(&format!("/api/v1/events?id={other}&name=lib")).await;
    assert_eq!(list(&by_id), [other.as_str()]);
    let (_, none) = gw.get("/api/v1/events?name=nothing").await;
    assert_eq!(list(&none), Vec::<String>::new());

    // pages of 2 cover everything once, newest first
    let mut seen = Vec::new();
    let mut query = "/api/v1/events?limit=2".to_owned();
    loop {
        let (status, page) = gw.get(&query).await;
        assert_eq!(status, StatusCode::OK);
        let items = list(&page);
        assert!(items.len() <= 2);
        seen.extend(items);
        match page["next"].as_str() {
            Some(next) => query = format!("/api/v1/events?limit=2&after={next}"),
            None => break,
        }
    }
    let mut all = ids.clone();
    all.push(other);
    all.reverse();
    assert_eq!(seen, all);

    let (_, receivers) = gw.get("/api/v1/receivers?type=dev.b").await;
    assert_eq!(list(&receivers), [b.as_str()]);
    let (_, receivers) = gw.get("/api/v1/receivers?version=1.0.0").await;
    assert_eq!(list(&receivers), [b.clone(), a.clone()]);
    let g = gw.group("dev.done", &[&a, &b]).await;
    let (_, groups) = gw.get("/api/v1/groups?name=dev.done&type=dev.done").await;
    assert_eq!(list(&groups), [g]);

    for (query, fragment) in [
        ("/api/v1/events?nmae=app", "unknown field `nmae`"),
        ("/api/v1/events?limit=0", "limit must be between 1 and 1000"),
        ("/api/v1/events?success=maybe", "success"),
        (
            "/api/v1/receivers?limit=5000",
            "limit must be between 1 and 1000",
        ),
    ] {
        let (status, answer) = gw.get(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(error_of(&answer).contains(fragment), "{query}: {answer}");
    }
}

#[tokio::test]
async fn trailing_slashes_head_unknown_routes_and_methods() {
    let gw = Gateway::start().await;
    let id = gw.receiver("dev.a").await;
    let (status, answer) = gw.get(&format!("/api/v1/receivers/{id}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["data"][0]["id"], id);
    let id2 = gw
        .create("/api/v1/receivers/", &receiver_body("dev.b", json!({})))
        .await;
    assert_ne!(id, id2);

    let head = gw
        .http
        .head(gw.url(&format!("/api/v1/receivers/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.text().await.unwrap(), "");

    let (status, answer) = gw.get("/api/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_of(&answer),
        "not found: no route for GET /api/v1/nothing"
    );
    let (status, answer) = gw.call(Method::DELETE, "/api/v1/events", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error_of(&answer).contains("DELETE"));
}

#[tokio::test]
async fn health_checks_and_metrics_report_real_state() {
    let gw = Gateway::start().await;
    for path in ["/healthz/liveness", "/healthz/readiness", "/healthz/status"] {
        let (status, answer) = gw.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(answer.is_object(), "{path} answers a JSON object: {answer}");
    }
    let (_, ready) = gw.get("/healthz/readiness").await;
    assert_eq!(ready["store"], "ok");
    let r = gw.receiver("dev.a").await;
    gw.event(&r, "app", true).await;
    gw.event(&r, "app", true).await;
    let (_, status) = gw.get("/healthz/status").await;
    assert_eq!(status["log"]["last_sequence"], 3);
    let text = gw.metrics().await;
    for needle in [
        "epr_events_stored_total 2",
        "epr_log_length 3",
        r#"epr_http_requests_total{method="POST",route="/api/v1/events",status="201"} 2"#,
        "epr_http_request_duration_seconds_bucket{",
        "epr_store_flush_duration_seconds_count ",
        "epr_store_size_bytes ",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
}

#[tokio::test]
async fn admin_token_guards_management_and_ingest_token_guards_events() {
    let gw = Gateway::start_with(&[
        ("EPR_ADMIN_TOKEN", "admin-secret"),
        ("EPR_INGEST_TOKEN", "ingest-secret"),
    ])
    .await;
    // Each call: (method, path, body, token, expected status); later calls use earlier ids.
    let expect = |method: Method,
                  path: String,
                  body: String,
                  token: Option<&'static str>,
                  want: StatusCode| {
        let gw = &gw;
        async move {
            let (status, answer) = gw.call(method.clone(), &path, Some(body), token).await;
            assert_eq!(status, want, "{method} {path} with {token:?}: {answer}");
            if want == StatusCode::UNAUTHORIZED {
                assert!(error_of(&answer).starts_with("unauthorized: "), "{answer}");
            }
            answer["data"].as_str().unwrap_or_default().to_owned()
        }
    };
    let receiver = receiver_body("dev.a", json!({})).to_string();
    for token in [None, Some("wrong"), Some("ingest-secret")] {
        expect(
            Method::POST,
            "/api/v1/receivers".into(),
            receiver.clone(),
            token,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let r = expect(
        Method::POST,
        "/api/v1/receivers".into(),
        receiver,
        Some("admin-secret"),
        StatusCode::CREATED,
    )
    .await;

    let event = event_body(&r, "app", true, json!({})).to_string();
    for (token, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("wrong"), StatusCode::UNAUTHORIZED),
        (Some("ingest-secret"), StatusCode::CREATED),
        (Some("admin-secret"), StatusCode::CREATED),
    ] {
        expect(
            Method::POST,
            "/api/v1/events".into(),
            event.clone(),
            token,
            want,
        )
        .await;
    }

    let group = json!({"name": "g", "type": "t", "version": "1", "description": "d", "event_receiver_ids": [r]}).to_string();
    expect(
        Method::POST,
        "/api/v1/groups".into(),
        group.clone(),
        None,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let g = expect(
        Method::POST,
        "/api/v1/groups".into(),
        group,
        Some("admin-secret"),
        StatusCode::CREATED,
    )
    .await;
    let patch = r#"{"enabled":false}"#.to_owned();
    let group_path = format!("/api/v1/groups/{g}");
    expect(
        Method::PATCH,
        group_path.clone(),
        patch.clone(),
        Some("ingest-secret"),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect(
        Method::PATCH,
        group_path,
        patch,
        Some("admin-secret"),
        StatusCode::OK,
    )
    .await;

    // reads stay open; tokens are never shown
    let (status, _) = gw.get(&format!("/api/v1/receivers/{r}")).await;
    assert_eq!(status, StatusCode::OK);
    let status_page = gw
        .http
        .get(gw.url("/healthz/status"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!status_page.contains("secret"), "{status_page}");
    assert!(
        status_page.contains(r#""admin_token":true"#),
        "{status_page}"
    );
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_store_nothing() {
    let gw = Gateway::start_with(&[("EPR_MAX_BODY_BYTES", "2048")]).await;
    let receiver = gw.receiver("dev.a").await;
    let before = stored(&gw).await;
    let big = event_body(&receiver, "app", true, json!({"blob": "x".repeat(4096)}));
    let (status, answer) = gw.post("/api/v1/events", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        error_of(&answer),
        "request body too large: the limit is 2048 bytes"
    );
    assert_eq!(stored(&gw).await, before);
    gw.event(&receiver, "app", true).await;
}
