//! CDViz-style webhooks: `POST /webhook/{id}` with CDEvents of spec 0.3, 0.4 and 0.5, raw or in a
//! CloudEvent, signatures, kept headers, and the sources' admin API and config file.

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support;
use crate::support::{Api, Gateway, error_of};

/// A CDEvent of spec `spec` (0.3/0.4 put the version under `context.version`).
fn cdevent(
    spec: &str,
    subject: &str,
    predicate: &str,
    version: &str,
    id: &str,
    content: Value,
) -> Value {
    let version_key = if spec.starts_with("0.5") {
        "specversion"
    } else {
        "version"
    };
    json!({
        "context": {version_key: spec, "id": id, "source": "/ci/jenkins",
            "type": format!("dev.cdevents.{subject}.{predicate}.{version}"), "timestamp": "2026-11-23T10:00:00Z"},
        "subject": {"id": format!("{subject}-42"), "source": "/ci/jenkins", "content": content}
    })
}

async fn post(
    api: &Api,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    api.post_with(path, &headers, body).await
}

/// POSTs a raw CDEvent to the built-in source.
async fn post_cdevent(gw: &Gateway, body: &str) -> (StatusCode, Value) {
    post(gw, "/webhook/000-cdevents", &[], body).await
}

async fn event(gw: &Gateway, id: &Value) -> Value {
    let (status, answer) = gw
        .get(&format!("/api/v1/events/{}", id.as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    answer["data"][0].clone()
}

#[tokio::test]
async fn cdevents_of_every_spec_version_and_several_subjects_are_stored() {
    let gw = Gateway::start().await;
    // (spec, type version per subject)
    let specs = [
        (
            "0.3.0",
            ["0.1.1", "0.1.1", "0.1.1", "0.1.1", "0.1.0", "0.1.1"],
        ),
        ("0.4.1", ["0.2.0"; 6]),
        ("0.5.0", ["0.3.0"; 6]),
    ];
    let subjects = [
        (
            "pipelinerun",
            "finished",
            json!({"pipelineName": "release", "outcome": "success"}),
            true,
        ),
        ("build", "finished", json!({}), true),
        ("artifact", "published", json!({}), true),
        (
            "service",
            "deployed",
            json!({"environment": {"id": "prod"}, "artifactId": "pkg:oci/app@sha256%3Aab12"}),
            true,
        ),
        (
            "testsuiterun",
            "finished",
            json!({"environment": {"id": "ci"}, "outcome": "failure"}),
            false,
        ),
        ("environment", "created", json!({"name": "staging"}), true),
    ];
    for (spec, versions) in specs {
        for ((subject, predicate, content, success), version) in subjects.iter().zip(versions) {
            let mut content = content.clone();
            if *subject == "testsuiterun" && version != "0.3.0" {
                content["outcome"] = json!("fail"); // before 0.3.0 it says pass/fail
            }
            let body = cdevent(
                spec,
                subject,
                predicate,
                version,
                &format!("{spec}-{subject}"),
                content.clone(),
            );
            let (status, answer) = post_cdevent(&gw, &body.to_string()).await;
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{spec} {subject}.{predicate}.{version}: {answer}"
            );
            let e = event(&gw, &answer["data"]).await;
            let kind = format!("dev.cdevents.{subject}.{predicate}.{version}");
            assert_eq!(e["name"], format!("{subject}-42"));
            assert_eq!(e["version"], version);
            assert_eq!(e["release"], spec);
            assert_eq!(e["platform_id"], "/ci/jenkins");
            assert_eq!(e["package"], *subject);
            assert_eq!(e["success"], *success, "{kind}");
            assert_eq!(e["EventReceiver"]["type"], kind);
            assert_eq!(
                e["payload"]["type"], kind,
                "stored as a CloudEvent wrapping the CDEvent"
            );
            assert_eq!(e["payload"]["data"]["subject"]["content"], content);
        }
    }
    let (_, receivers) = gw.get("/api/v1/receivers?limit=100").await;
    assert_eq!(
        receivers["data"].as_array().unwrap().len(),
        18,
        "one receiver per CDEvent type, made on first sight"
    );
    // a second event of a known type reuses its receiver
    let again = cdevent("0.5.0", "build", "finished", "0.3.0", "another", json!({}));
    let (status, _) = post_cdevent(&gw, &again.to_string()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, receivers) = gw
        .get("/api/v1/receivers?type=dev.cdevents.build.finished.0.3.0")
        .await;
    assert_eq!(receivers["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_cdevents_are_refused_naming_the_field() {
    let gw = Gateway::start().await;
    let before = gw.last_sequence().await;
    let pass = cdevent(
        "0.5.0",
        "pipelinerun",
        "finished",
        "0.3.0",
        "x",
        json!({"outcome": "pass"}),
    );
    let (status, answer) = post_cdevent(&gw, &pass.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&answer).starts_with(
            "invalid input: invalid CDEvent: subject.content.outcome: unknown variant `pass`"
        ),
        "{answer}"
    );
    let cases = [
        (
            cdevent(
                "0.5.0",
                "service",
                "deployed",
                "0.3.0",
                "x",
                json!({"environment": {"id": "prod"}}),
            ),
            "missing field `artifactId`",
        ),
        (
            cdevent(
                "0.5.0",
                "nosuchsubject",
                "finished",
                "0.3.0",
                "x",
                json!({}),
            ),
            "dev.cdevents.nosuchsubject",
        ),
        (
            cdevent("0.9.0", "build", "finished", "0.3.0", "x", json!({})),
            "context.specversion",
        ),
        (json!({"context": {"specversion": "0.5.0"}}), "context.type"),
        (json!({"subject": {}}), "context"),
        (json!([1, 2]), "context"),
    ];
    for (body, field) in cases {
        let (status, answer) = post_cdevent(&gw, &body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(error_of(&answer).contains(field), "{body}: {answer}");
    }
    let (status, answer) = post_cdevent(&gw, "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = post(&gw, "/webhook/no-such-source", &[], "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_of(&answer),
        "object not found: webhook source with id no-such-source not found"
    );
    assert_eq!(gw.last_sequence().await, before, "nothing stored");

    // custom types: dev.cdeventsx.* with any content
    let custom = json!({"context": {"specversion": "0.5.0", "id": "c1", "source": "/probe",
        "type": "dev.cdeventsx.probes-ping.done.0.1.0", "timestamp": "2026-11-23T10:00:00Z"},
        "subject": {"id": "p", "content": {"anything": [1, 2]}}});
    let (status, answer) = post_cdevent(&gw, &custom.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[tokio::test]
async fn a_cdevent_without_id_gets_a_content_id_and_a_resubmission_is_a_duplicate() {
    let gw = Gateway::start().await;
    let without_id = cdevent(
        "0.5.0",
        "build",
        "finished",
        "0.3.0",
        "0",
        json!({"artifactId": "pkg:oci/app"}),
    );
    let body = without_id.to_string();
    let (first, a) = post_cdevent(&gw, &body).await;
    let (second, b) = post_cdevent(&gw, &body).await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["data"], b["data"]);
    let e = event(&gw, &a["data"]).await;
    let content_id = e["payload"]["data"]["context"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_id.len(), 32);
    assert_eq!(e["payload"]["id"], content_id.as_str());
    let mut missing = without_id;
    missing["context"].as_object_mut().unwrap().remove("id");
    let (status, c) = post_cdevent(&gw, &missing.to_string()).await;
    assert_eq!(
        (status, &c["data"]),
        (StatusCode::OK, &a["data"]),
        "a missing id and \"0\" are the same content"
    );
}

#[tokio::test]
async fn a_cdevent_wrapped_in_a_cloudevent_is_accepted_in_both_modes() {
    let gw = Gateway::start().await;
    let inner = cdevent(
        "0.4.1",
        "pipelinerun",
        "finished",
        "0.2.0",
        "w-1",
        json!({"outcome": "failure"}),
    );
    let structured = json!({"specversion": "1.0", "id": "w-1", "source": "/ci/jenkins",
        "type": "dev.cdevents.pipelinerun.finished.0.2.0", "datacontenttype": "application/json",
        "subject": "pipeline", "data": inner});
    let (status, a) = post(
        &gw,
        "/webhook/000-cdevents",
        &[("content-type", "application/cloudevents+json".into())],
        &structured.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let e = event(&gw, &a["data"]).await;
    assert_eq!(e["success"], false);
    assert_eq!(
        e["payload"]["subject"], "pipeline",
        "the CloudEvent's own attributes are kept"
    );

    let inner = cdevent(
        "0.4.1",
        "pipelinerun",
        "finished",
        "0.2.0",
        "w-2",
        json!({"outcome": "success"}),
    );
    let headers = [
        ("ce-specversion", "1.0".into()),
        ("ce-id", "w-2".into()),
        ("ce-source", "/ci/jenkins".into()),
        ("ce-type", "dev.cdevents.pipelinerun.finished.0.2.0".into()),
        ("content-type", "application/json".into()),
    ];
    let (status, b) = post(&gw, "/webhook/000-cdevents", &headers, &inner.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert_eq!(event(&gw, &b["data"]).await["success"], true);
}

fn standard_signature(key: &[u8], id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// PUTs webhook source `id` with the admin `token`.
async fn put_source(
    gw: &Gateway,
    id: &str,
    body: Value,
    token: Option<&str>,
) -> (StatusCode, Value) {
    gw.call(
        Method::PUT,
        &format!("/api/v1/webhooks/{id}"),
        Some(body.to_string()),
        token,
    )
    .await
}

/// Creates the Standard Webhooks source `std` with `secret` (admin token `adm`).
async fn put_standard_source(gw: &Gateway, secret: &str) {
    let source = json!({"signature": "standard-webhooks", "secret": secret});
    let (status, answer) = put_source(gw, "std", source, Some("adm")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

/// A gateway with the admin token `adm` and a GitHub-signed source `github` (secret
/// `gh-secret`, keeping `X-GitHub-Delivery`).
async fn with_github_source() -> Gateway {
    let gw = Gateway::start_with(&[("EPR_ADMIN_TOKEN", "adm")]).await;
    let github = json!({"accept": "cdevents", "signature": "github", "secret": "gh-secret", "keep_headers": ["X-GitHub-Delivery"]});
    let (status, _) = put_source(&gw, "github", github.clone(), None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "managing sources needs the admin token"
    );
    let (status, answer) = put_source(&gw, "github", github, Some("adm")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    gw
}

#[tokio::test]
async fn a_github_signed_source_refuses_missing_and_bad_signatures_and_keeps_headers() {
    let gw = with_github_source().await;
    let (status, answer) =
        put_source(&gw, "broken", json!({"signature": "github"}), Some("adm")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&answer).contains("needs a secret"), "{answer}");

    let body = cdevent("0.5.0", "build", "finished", "0.3.0", "s-1", json!({})).to_string();
    let before = gw.last_sequence().await;
    let (status, answer) = post(&gw, "/webhook/github", &[], &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        error_of(&answer).contains("x-hub-signature-256"),
        "{answer}"
    );
    let (status, _) = post(
        &gw,
        "/webhook/github",
        &[("x-hub-signature-256", "sha256=00ff".into())],
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong_secret = crate::support::github_signature("other", body.as_bytes());
    let (status, _) = post(
        &gw,
        "/webhook/github",
        &[("x-hub-signature-256", wrong_secret)],
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        gw.last_sequence().await,
        before,
        "refused bodies are not stored"
    );
    let good = crate::support::github_signature("gh-secret", body.as_bytes());
    let (status, answer) = post(
        &gw,
        "/webhook/github",
        &[
            ("x-hub-signature-256", good),
            ("x-github-delivery", "d-77".into()),
        ],
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        event(&gw, &answer["data"]).await["payload"]["xgithubdelivery"],
        "d-77"
    );
}

#[tokio::test]
async fn a_standard_webhooks_source_refuses_bad_and_stale_signatures() {
    let gw = with_github_source().await;
    let key = b"standard-key";
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    put_standard_source(&gw, &secret).await;
    let body = cdevent("0.5.0", "build", "finished", "0.3.0", "s-2", json!({})).to_string();
    let now = chrono_now();
    let headers = |sig: String, ts: String| {
        vec![
            ("webhook-id", "msg_1".to_owned()),
            ("webhook-timestamp", ts),
            ("webhook-signature", sig),
        ]
    };
    let (status, _) = post(
        &gw,
        "/webhook/std",
        &headers(
            standard_signature(b"wrong", "msg_1", &now, &body),
            now.clone(),
        ),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(
        &gw,
        "/webhook/std",
        &headers(
            standard_signature(key, "msg_1", "1000", &body),
            "1000".into(),
        ),
        &body,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "stale timestamps are refused"
    );
    let (status, answer) = post(
        &gw,
        "/webhook/std",
        &headers(standard_signature(key, "msg_1", &now, &body), now.clone()),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[tokio::test]
async fn the_admin_api_hides_secrets_deletes_sources_and_keeps_config_sources() {
    let gw = with_github_source().await;
    let secret = "whsec_c3RhbmRhcmQta2V5";
    put_standard_source(&gw, secret).await;
    let body = cdevent("0.5.0", "build", "finished", "0.3.0", "s-3", json!({})).to_string();
    // the admin API never shows secrets
    let (status, list) = gw
        .call(Method::GET, "/api/v1/webhooks", None, Some("adm"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    assert!(
        !text.contains("gh-secret") && !text.contains("whsec_"),
        "{text}"
    );
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["000-cdevents", "github", "std"]);
    let (status, _) = gw
        .call(Method::DELETE, "/api/v1/webhooks/std", None, Some("adm"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = post(&gw, "/webhook/std", &[], &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_of(&answer),
        "object not found: webhook source with id std not found",
        "the same words as GET /api/v1/webhooks/std"
    );
    let (status, answer) = gw
        .call(Method::GET, "/api/v1/webhooks/std", None, Some("adm"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_of(&answer),
        "object not found: webhook source with id std not found"
    );
    let (status, answer) = gw
        .call(
            Method::DELETE,
            "/api/v1/webhooks/000-cdevents",
            None,
            Some("adm"),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
}

fn chrono_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

#[tokio::test]
async fn sources_from_the_config_file_and_the_api_survive_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("epr.toml");
    std::fs::write(&config, "[[webhooks]]\nid = \"from-file\"\nsignature = \"github\"\nsecret_env = \"TEST_WEBHOOK_SECRET\"\n").unwrap();
    let dir = tmp.path().join("data");
    let env = [
        ("EPR_CONFIG", config.to_str().unwrap()),
        ("TEST_WEBHOOK_SECRET", "file-secret"),
    ];
    let mut gw = Gateway::start_in(&dir, &env).await;
    let body = cdevent("0.5.0", "build", "finished", "0.3.0", "f-1", json!({})).to_string();
    let sig = crate::support::github_signature("file-secret", body.as_bytes());
    let (status, answer) = post(
        &gw,
        "/webhook/from-file",
        &[("x-hub-signature-256", sig)],
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = gw
        .call(
            Method::PUT,
            "/api/v1/webhooks/from-file",
            Some("{}".into()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, _) = gw
        .call(
            Method::PUT,
            "/api/v1/webhooks/from-api",
            Some(r#"{"accept":"cloudevents"}"#.into()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(gw.terminate().await.success());

    let gw = Gateway::start_in(&dir, &env).await;
    let (_, list) = gw.get("/api/v1/webhooks").await;
    let origins: Vec<(&str, &str)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["origin"].as_str().unwrap()))
        .collect();
    assert_eq!(
        origins,
        [
            ("000-cdevents", "builtin"),
            ("from-api", "api"),
            ("from-file", "config")
        ]
    );
    gw.receiver("dev.x").await;
    let ce = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "dev.x"}).to_string();
    let (status, answer) = post(
        &gw,
        "/webhook/from-api",
        &[("content-type", "application/cloudevents+json".into())],
        &ce,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a cloudevents source routes like /api/v1/cloudevents: {answer}"
    );

    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[[webhooks]]\nid = \"x\"\nsignatur = \"github\"\n").unwrap();
    let other = tmp.path().join("other");
    let stderr = support::serve_refused([
        std::ffi::OsStr::new("--config"),
        bad.as_os_str(),
        "--data-dir".as_ref(),
        other.as_os_str(),
    ])
    .await;
    assert!(
        stderr.contains("invalid config file") && stderr.contains("signatur"),
        "{stderr}"
    );
}
