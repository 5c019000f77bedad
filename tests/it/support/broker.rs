//! The Kafka-protocol broker of the tests.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A Tansu broker (Kafka protocol) on a loopback port, storing in SQLite in a directory of its
/// own, so that it keeps every record it acknowledged (tests/run checks that first, with
/// tests/python/broker_selfcheck.py); killed when dropped.
pub struct Broker {
    child: Option<Child>,
    /// Where its storage lives.
    dir: tempfile::TempDir,
    /// Its standard error, over every restart.
    log: tempfile::NamedTempFile,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Broker {
    /// Starts a broker on a free port.
    pub async fn start() -> Broker {
        let mut broker = Broker::not_started();
        broker.restart().await;
        broker
    }

    /// An address where no broker listens yet (start it later with [`Broker::restart`]).
    pub fn not_started() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Broker {
            child: None,
            dir: tempfile::tempdir().expect("a directory for the broker"),
            log: tempfile::NamedTempFile::new().expect("a log file for the broker"),
            address: format!("127.0.0.1:{port}"),
        }
    }

    /// (Re)starts the broker on its address, with everything it stored before.
    pub async fn restart(&mut self) {
        self.stop().await;
        let tansu = std::env::var("EPR_TEST_TANSU").expect(
            "EPR_TEST_TANSU names the tansu binary built with SQLite storage (tests/run installs it)",
        );
        let url = format!("tcp://{}", self.address);
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(self.log.reopen().expect("the broker's log"))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {tansu}: {e}"));
        self.child = Some(child);
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(&self.address).await.is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("tansu exited ({status}): {}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "tansu did not listen on {} within 20 s: {}",
            self.address,
            self.log_text()
        );
    }

    /// Panics if the broker itself failed (a thread of it panicked: Tansu 0.6 then stops
    /// serving while it still accepts connections), so that a test blames the broker, not the
    /// gateway.
    pub fn assert_sound(&self) {
        let log = self.log_text();
        if let Some(at) = log.find("panicked at") {
            let excerpt: String = log[at..].lines().take(2).collect::<Vec<_>>().join(" ");
            panic!("the test broker failed, not the gateway: {excerpt}");
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Restarts the broker without its storage: it comes back empty, as a broker that lost its
    /// disk (or ran in memory) does.
    pub async fn restart_empty(&mut self) {
        self.stop().await;
        for entry in std::fs::read_dir(self.dir.path()).expect("broker directory") {
            let path = entry.expect("entry").path();
            std::fs::remove_file(&path)
                .unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
        }
        self.restart().await;
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the broker: a broker that hangs, then recovers
    /// with everything it had.
    pub fn freeze(&self, frozen: bool) {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .expect("broker running");
        let signal = if frozen {
            nix::sys::signal::Signal::SIGSTOP
        } else {
            nix::sys::signal::Signal::SIGCONT
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .expect("signal sent to the broker");
    }

    /// Kills the broker.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}
