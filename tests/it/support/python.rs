//! Python scripts of `tests/python`, run against a gateway.

use tokio::process::Command;

/// What a script printed.
pub struct Printed {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// The Python of the tests (`EPR_TEST_PYTHON`, which tests/run sets up, else `python3`).
pub fn python() -> String {
    std::env::var("EPR_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The path of `tests/python/<script>`.
pub fn script_path(script: &str) -> String {
    format!("{}/../tests/python/{script}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tests/python/<script>` with the gateway at `base` as its argument; its standard
/// output, or a panic with its errors.
pub async fn run_python(script: &str, base: &str) -> String {
    run_script(&python(), script, &[base], &[]).await.stdout
}

/// Runs `tests/python/<script>` with `python`, `args` and `env` added to the environment; what
/// it printed, or a panic with its errors.
pub async fn run_script(
    python: &str,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Printed {
    let path = script_path(script);
    let output = Command::new(python)
        .arg(&path)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let printed = Printed {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        output.status.success(),
        "{python} {path} failed (tests/run installs what it needs):\n{}\n{}",
        printed.stdout,
        printed.stderr
    );
    printed
}
