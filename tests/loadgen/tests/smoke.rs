#![allow(clippy::unwrap_used)] // a test fails by panicking
//! The load generator runs every phase of its default and `--cdevents --mcp` modes against the
//! real gateway (the debug build `cargo test --workspace` makes) without a failed request: the
//! figures in the README come from a tool that works against the current API.

use std::path::PathBuf;
use std::process::Command;

/// The `epr-gateway` binary next to this test's target directory.
fn gateway() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let gateway = dir.join("epr-gateway");
    assert!(
        gateway.exists(),
        "{} is missing: build it first (cargo build -p epr-gateway; cargo test --workspace does)",
        gateway.display()
    );
    gateway
}

#[test]
fn every_phase_runs_against_the_gateway_without_a_failed_request() {
    let output = Command::new(env!("CARGO_BIN_EXE_epr-loadgen"))
        .arg("--spawn")
        .arg(gateway())
        .args(["-c", "2", "-d", "0.5", "--cdevents", "--mcp"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for phase in [
        "baseline GET /healthz/liveness",
        "POST /api/v1/events (durable)",
        "POST /webhook CDEvent (durable)",
        "GET /api/v1/events/{id}",
        "MCP fetch_event on /mcp",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(phase))
            .unwrap_or_else(|| panic!("no {phase} phase in:\n{stdout}"));
        // phase name, concurrency, requests, req/s, p50, p99, p99.9, errors, ratio
        let columns: Vec<&str> = line[phase.len()..].split_whitespace().collect();
        let requests: u64 = columns[1].parse().unwrap();
        assert!(requests > 0, "{line}");
        assert_eq!(columns[6], "0", "no failed request: {line}");
    }
    assert!(
        stdout.contains("MCP fetch_event rate / REST GET rate = "),
        "{stdout}"
    );
    assert!(stdout.contains("bytes/event"), "{stdout}");
}
