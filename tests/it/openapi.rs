//! `GET /api/v1/openapi`: a valid OpenAPI 3.1 document listing every route the gateway serves.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support;
use crate::support::{Gateway, run_python};

/// Every route of the gateway, as a user finds them in the README.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/receivers"),
    ("get", "/api/v1/receivers"),
    ("get", "/api/v1/receivers/{id}"),
    ("post", "/api/v1/events"),
    ("get", "/api/v1/events"),
    ("options", "/api/v1/events"),
    ("get", "/api/v1/events/{id}"),
    ("post", "/api/v1/groups"),
    ("get", "/api/v1/groups"),
    ("get", "/api/v1/groups/{id}"),
    ("patch", "/api/v1/groups/{id}"),
    ("post", "/api/v1/cloudevents"),
    ("options", "/api/v1/cloudevents"),
    ("post", "/webhook/{id}"),
    ("options", "/webhook/{id}"),
    ("get", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{id}"),
    ("put", "/api/v1/webhooks/{id}"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("get", "/api/v1/plugins"),
    ("post", "/api/v1/plugins"),
    ("get", "/api/v1/plugins/{name}"),
    ("patch", "/api/v1/plugins/{name}"),
    ("put", "/api/v1/plugins/{name}"),
    ("delete", "/api/v1/plugins/{name}"),
    ("get", "/api/v1/plugins/{name}/dead-letters"),
    ("post", "/api/v1/plugins/{name}/dead-letters/redrive"),
    ("get", "/api/v1/stream"),
    ("get", "/api/v1/graphql"),
    ("post", "/api/v1/graphql/query"),
    ("get", "/api/v1/openapi"),
    ("get", "/healthz/liveness"),
    ("get", "/healthz/readiness"),
    ("get", "/healthz/status"),
    ("get", "/metrics"),
];

/// The (method, path) pairs of the document.
fn operations(document: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            found.push((method.clone(), path.clone()));
        }
    }
    found
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let gw = Gateway::start().await;
    let version = run_python("openapi_validate.py", &gw.url("")).await;
    assert!(version.trim().starts_with("3.1"), "{version}");
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let gw = Gateway::start().await;
    let (status, document) = gw.get("/api/v1/openapi").await;
    assert_eq!(status, StatusCode::OK);
    let documented = operations(&document);
    for (method, path) in ROUTES {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not in the document"
        );
    }
    assert_eq!(documented.len(), ROUTES.len(), "{documented:?}");

    // the other way round: the gateway answers every documented operation with its own handler,
    // not with the unknown-route or wrong-method fallbacks
    let http = support::client();
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "no-such").replace("{name}", "no-such");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = http
            .request(method.clone(), gw.url(&concrete))
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        if concrete == "/api/v1/stream" {
            assert_eq!(status, StatusCode::OK);
            continue; // an endless stream: the headers are the answer
        }
        let body = response.text().await.unwrap_or_default();
        assert!(
            !body.contains("no route for") && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {concrete}: {status} {body}"
        );
    }
}

#[tokio::test]
async fn the_document_describes_epr_bodies_and_tokens() {
    let gw = Gateway::start().await;
    let (_, document) = gw.get("/api/v1/openapi").await;
    let schemas = &document["components"]["schemas"];
    for field in [
        "name",
        "version",
        "release",
        "platform_id",
        "package",
        "payload",
    ] {
        assert!(
            schemas["NewEvent"]["properties"].get(field).is_some(),
            "NewEvent lacks {field}: {}",
            schemas["NewEvent"]
        );
    }
    assert!(schemas["Receiver"]["properties"].get("type").is_some());
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let create_receiver = &document["paths"]["/api/v1/receivers"]["post"];
    assert_eq!(
        create_receiver["security"][0]["bearer"],
        serde_json::json!([])
    );
    let search = &document["paths"]["/api/v1/events"]["get"]["parameters"];
    let names: Vec<&str> = search
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"platform_id") && names.contains(&"after"),
        "{names:?}"
    );
}

/// schemathesis (PyPI, installed by tests/run next to `EPR_TEST_PYTHON`) run against the
/// gateway's own document: generated requests to every operation, bounded in examples and
/// time; no answer may be a 5xx, and every status, content type and body must be the
/// documented ones. The two uploads of `application/wasm` bodies are left out (schemathesis
/// cannot make components; tests/it/plugins.rs sends real and broken ones).
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let gw = Gateway::start().await;
    // a message in the log, so that the stream's events are checked against the document too
    gw.receiver("dev.schemathesis").await;
    let python = std::env::var("EPR_TEST_PYTHON").expect("EPR_TEST_PYTHON (tests/run sets it)");
    let schemathesis = std::path::Path::new(&python).with_file_name("schemathesis");
    let output = tokio::process::Command::new(&schemathesis)
        .args([
            "run",
            &gw.url("/api/v1/openapi"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            "20",
            "--max-time",
            "90",
            "--workers",
            "2",
            "--exclude-name",
            "POST /api/v1/plugins",
            "--exclude-name",
            "PUT /api/v1/plugins/{name}",
        ])
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", schemathesis.display()));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("Tested: 32"),
        "every other operation was tested:\n{report}"
    );
    let (status, _) = gw.get("/healthz/readiness").await;
    assert_eq!(status, StatusCode::OK);
}
