//! The README's tour (`examples/tour.sh`) runs as written against a real gateway.

use crate::support::Gateway;

#[tokio::test]
async fn the_curl_tour_runs_and_completes_its_group() {
    let gw = Gateway::start_with(&[("EPR_ADMIN_TOKEN", "tour-token")]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tour.sh");
    let output = tokio::process::Command::new("bash")
        .arg(script)
        .env("EPR_URL", &gw.base)
        .env("EPR_ADMIN_TOKEN", "tour-token")
        .output()
        .await
        .expect("bash runs the tour");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tour failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("event payload did not match event receiver schema"),
        "{stdout}"
    );
    assert!(stdout.contains("/commit: "), "{stdout}");
    assert!(
        stdout.contains("dev.example.release.ready"),
        "the stream shows the group completing:\n{stdout}"
    );
    let (_, groups) = gw.get("/api/v1/groups?name=release-ready").await;
    assert_eq!(groups["data"].as_array().map(Vec::len), Some(1));
}
