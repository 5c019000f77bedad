//! What the README promises about every route, checked on every route the OpenAPI document
//! lists (so that a new route cannot escape): the admin token on management routes, the body
//! limit on every route that takes a body; and GraphQL's depth limit, a dropped CloudEvent's 202.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Gateway, error_of, wasm};

/// Every (method, path) of the OpenAPI document, with `{...}` parameters filled in, and
/// whether the operation takes a body; plus `POST /mcp`.
async fn operations(gw: &Gateway) -> Vec<(Method, String, bool)> {
    let (status, document) = gw.get("/api/v1/openapi").await;
    assert_eq!(status, StatusCode::OK);
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let filled = path
                .split('/')
                .map(|part| match part.starts_with('{') {
                    true => "probe",
                    false => part,
                })
                .collect::<Vec<_>>()
                .join("/");
            found.push((method, filled, operation.get("requestBody").is_some()));
        }
    }
    // MCP's transport (JSON-RPC over POST) is documented in the README, not in the document
    found.push((Method::POST, "/mcp".into(), true));
    found
}

/// Sends `body` with `content_type` and `token`; the status and the error message, if any.
async fn send(
    gw: &Gateway,
    method: &Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = gw
        .http
        .request(method.clone(), gw.url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_plugin_and_webhook_source_route_needs_the_admin_token() {
    let gw = Gateway::start_with(&[("EPR_ADMIN_TOKEN", "adm1n")]).await;
    let managed: Vec<(Method, String, bool)> = operations(&gw)
        .await
        .into_iter()
        .filter(|(_, path, _)| {
            path.starts_with("/api/v1/plugins") || path.starts_with("/api/v1/webhooks")
        })
        .collect();
    assert!(managed.len() >= 10, "{managed:?}");
    for (method, path, _) in &managed {
        for token in [None, Some("wrong")] {
            let (status, answer) =
                send(&gw, method, path, "application/json", b"{}".to_vec(), token).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with token {token:?}: {answer}"
            );
            assert!(
                error_of(&answer).contains("token"),
                "{method} {path}: {answer}"
            );
        }
    }
    // and the token opens them (a listing, as a check that 401 was about the token)
    let (status, _) = send(
        &gw,
        &Method::GET,
        "/api/v1/plugins",
        "application/json",
        Vec::new(),
        Some("adm1n"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn every_route_that_takes_a_body_answers_413_past_the_limit_and_stores_nothing() {
    let gw = Gateway::start_with(&[("EPR_MAX_BODY_BYTES", "4096")]).await;
    let before = gw.last_sequence().await;
    let with_body: Vec<(Method, String, bool)> = operations(&gw)
        .await
        .into_iter()
        .filter(|(_, _, body)| *body)
        .collect();
    assert!(with_body.len() >= 10, "{with_body:?}");
    for (method, path, _) in &with_body {
        // components have a limit of their own (32 MiB), the rest EPR_MAX_BODY_BYTES
        let component = path.starts_with("/api/v1/plugins") && *method != Method::PATCH;
        let (content_type, limit) = match component {
            true => ("application/wasm", 32 * 1024 * 1024),
            false => ("application/json", 4096),
        };
        let mut body = b"\0asm".to_vec();
        body.resize(limit + 1, b' ');
        let (status, answer) = send(&gw, method, path, content_type, body, None).await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}: {answer}"
        );
        assert!(
            error_of(&answer).contains(&limit.to_string()),
            "{method} {path}: {answer}"
        );
    }
    assert_eq!(gw.last_sequence().await, before, "nothing stored");
    let (_, plugins) = gw.get("/api/v1/plugins").await;
    assert_eq!(plugins["data"], json!([]));
}

#[tokio::test]
async fn every_route_that_takes_a_body_answers_408_when_it_never_comes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = Gateway::start_with(&[("EPR_BODY_TIMEOUT_SECS", "2")]).await;
    let address = gw.base.trim_start_matches("http://").to_owned();
    let with_body: Vec<(Method, String, bool)> = operations(&gw)
        .await
        .into_iter()
        .filter(|(_, _, body)| *body)
        .collect();
    // all at once: headers promising 1000 bytes, then nothing
    let answers = futures::future::join_all(with_body.iter().map(|(method, path, _)| {
        let address = address.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = vec![0; 4096];
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
                .await
                .unwrap_or_else(|_| panic!("{method} {path}: no answer within 10 s"))
                .unwrap_or(0);
            (format!("{method} {path}"), String::from_utf8_lossy(&answer[..n]).into_owned())
        }
    }))
    .await;
    for (route, answer) in answers {
        assert!(answer.starts_with("HTTP/1.1 408"), "{route}: {answer}");
        assert!(answer.contains("within 2 s"), "{route}: {answer}");
    }
}

#[tokio::test]
async fn graphql_queries_deeper_than_8_are_refused_naming_the_limit() {
    let gw = Gateway::start().await;
    // 8 levels answer; 9 are refused (introspection nests as deep as needed)
    let nested = |depth: usize| {
        let mut query = "name".to_owned();
        for _ in 1..depth {
            query = format!("ofType {{ {query} }}");
        }
        json!({"query": format!("{{ __schema {{ types {{ {query} }} }} }}")})
    };
    let (status, answer) = gw.post("/api/v1/graphql/query", &nested(6)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["errors"].is_null(), "{answer}");
    let (status, answer) = gw.post("/api/v1/graphql/query", &nested(8)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["errors"][0]["message"],
        "the query is nested too deep: at most 8 levels of fields"
    );
    assert!(answer["data"].is_null(), "{answer}");
}

#[tokio::test]
async fn a_cloudevent_a_transform_drops_answers_202_and_stores_nothing() {
    let gw = Gateway::start().await;
    let (status, answer) = gw
        .http
        .post(gw.url("/api/v1/plugins"))
        .header("content-type", "application/wasm")
        .body(wasm("hostile_transform"))
        .send()
        .await
        .map(|r| r.status())
        .map(|s| (s, ()))
        .expect("uploaded");
    assert_eq!(status, StatusCode::CREATED, "{answer:?}");
    gw.receiver("test.hostile").await;
    let before = gw.last_sequence().await;
    let cloudevent = json!({"specversion": "1.0", "id": "d1", "source": "/ci", "type": "test.hostile",
        "eprdescription": "drop", "data": {}});
    let (status, answer) = gw
        .post_with(
            "/api/v1/cloudevents",
            &[("content-type", "application/cloudevents+json")],
            &cloudevent.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["data"], Value::Null, "no id: nothing was stored");
    assert_eq!(gw.last_sequence().await, before, "nothing stored");
}
