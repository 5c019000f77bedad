//! Python scripts of `tests/python`, run against a gateway.

use tokio::process::Command;

/// Runs `tests/python/<script>` with the gateway at `base` as its argument (`EPR_TEST_PYTHON`,
/// which tests/run sets up, else `python3`); its standard output, or a panic with its errors.
pub async fn run_python(script: &str, base: &str) -> String {
    let python = std::env::var("EPR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let path = format!("{}/../tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(&python)
        .arg(&path)
        .arg(base)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{python} {path} failed (tests/run installs what it needs):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
