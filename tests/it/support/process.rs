//! The gateway under test as a process: the real `epr-gateway` binary on a free port and a
//! temporary data directory; and the plugin components built from `plugins/`.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use epr_gateway::registry::port::Store;
use epr_gateway::store::postgres::{PgOptions, PgStore};
use epr_gateway::store::{SledOptions, SledStore};

use super::api::{Api, client};

/// A running gateway; killed when dropped. Its HTTP helpers are those of [`Api`].
pub struct Gateway {
    child: Child,
    /// The data directory.
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Talks to it.
    pub api: Api,
}

impl std::ops::Deref for Gateway {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The path of a component built from `plugins/` (crate name with `_`); panics, saying how to
/// build it, when it is missing.
pub fn wasm_path(crate_name: &str) -> String {
    let path = format!(
        "{}/../plugins/target/wasm32-wasip2/release/{crate_name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: build the plugins first (tests/run does): cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml"
    );
    path
}

/// The bytes of a component built from `plugins/` (crate name with `_`).
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path = wasm_path(crate_name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_epr-gateway")
}

/// Runs `epr-gateway serve` with `args`, which must make it refuse to start; its stderr.
pub async fn serve_refused<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let output = Command::new(binary())
        .arg("serve")
        .args(["--port", "0"])
        .args(args)
        .output()
        .await
        .expect("run epr-gateway serve");
    assert!(!output.status.success(), "serve refused to start");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

impl Gateway {
    /// A gateway on a fresh data directory.
    pub async fn start() -> Gateway {
        Self::start_with(&[]).await
    }

    /// A gateway on a fresh data directory with extra environment variables.
    pub async fn start_with(env: &[(&str, &str)]) -> Gateway {
        Self::start_fresh(env, &[]).await
    }

    /// A gateway on `dir` (which the caller keeps), on the port in `EPR_PORT` if `env` has
    /// one, else on a free port.
    pub async fn start_in(dir: &Path, env: &[(&str, &str)]) -> Gateway {
        Self::start_at(dir, env, super::postgres::store_is_postgres(), &[]).await
    }

    /// A gateway on the embedded store in `dir`, whichever store the run's gateways use.
    pub async fn start_embedded(dir: &Path, env: &[(&str, &str)]) -> Gateway {
        Self::start_at(dir, env, false, &[]).await
    }

    /// A gateway on a fresh data directory, run by the command `wrapper` (e.g. `prlimit` and
    /// its options, ending with `--`).
    pub async fn start_under(wrapper: &[&str]) -> Gateway {
        Self::start_fresh(&[], wrapper).await
    }

    /// A gateway on a fresh data directory (kept until it is dropped), on the run's store.
    async fn start_fresh(env: &[(&str, &str)], wrapper: &[&str]) -> Gateway {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let on_postgres = super::postgres::store_is_postgres();
        let mut gateway = Self::start_at(&dir, env, on_postgres, wrapper).await;
        gateway._tmp = Some(tmp);
        gateway
    }

    async fn start_at(
        dir: &Path,
        env: &[(&str, &str)],
        on_postgres: bool,
        wrapper: &[&str],
    ) -> Gateway {
        let port = env
            .iter()
            .find(|(name, _)| *name == "EPR_PORT")
            .map_or("0", |(_, port)| *port);
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary());
                command
            }
            None => Command::new(binary()),
        };
        if on_postgres {
            // the test's own variables come after, so a test may name another database
            command.env("EPR_DB", super::postgres::database_for(dir));
        }
        let mut child = command
            .args(["serve", "--port", port, "--data-dir"])
            .arg(dir)
            // EPR_TEST_LOG=debug shows the gateways' logs when a test needs looking into
            .env(
                "EPR_LOG",
                std::env::var("EPR_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start epr-gateway");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("gateway printed its address in time")
        .expect("read stdout")
        .expect("gateway exited before listening");
        let base = line.rsplit(' ').next().expect("address").to_owned();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "unexpected first line: {line}"
        );
        Gateway {
            child,
            data_dir: dir.to_owned(),
            _tmp: None,
            api: Api {
                base,
                http: client(),
            },
        }
    }

    /// The store this gateway keeps its data in, opened by the test (the gateway must be
    /// stopped first when it is the embedded store): what the gateway on `dir` used.
    pub async fn open_store(dir: &Path) -> Arc<dyn Store> {
        match super::postgres::store_is_postgres() {
            true => {
                let options = PgOptions {
                    read_connections: 2,
                    writers: 1,
                };
                let url = super::postgres::database_for(dir);
                Arc::new(
                    PgStore::open(&url, &options)
                        .await
                        .expect("the store opens"),
                )
            }
            false => {
                Arc::new(SledStore::open(dir, &SledOptions::default()).expect("the store opens"))
            }
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        self.child.wait().await.expect("process reaped");
    }

    /// Sends SIGTERM and waits for the process to exit (at most 30 s).
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("still running") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM sent");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exited within 30 s of SIGTERM")
            .expect("process reaped")
    }
}
