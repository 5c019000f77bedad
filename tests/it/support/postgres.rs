//! The PostgreSQL server of the tests: Debian's binaries (`EPR_TEST_PG_BIN`, which tests/run
//! sets), a cluster made by `initdb` in a temporary directory, on a free loopback port. As root
//! (CI) initdb and the server run as the `postgres` user, since PostgreSQL refuses to run as
//! root. The server runs in a process group of its own, so that [`Postgres::kill9`] crashes the
//! postmaster and every backend at once.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};

/// The database role the tests connect as (trusted, on loopback only).
const ROLE: &str = "epr";

/// A PostgreSQL server; killed when dropped.
pub struct Postgres {
    bin: PathBuf,
    child: Option<Child>,
    /// Holds the cluster (`data/`) and the server's socket and log.
    dir: tempfile::TempDir,
    /// Its loopback port.
    pub port: u16,
}

/// The uid and gid of the `postgres` user, which the server runs as when the tests run as
/// root; `None` otherwise (it runs as the tests' user).
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let output = std::process::Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("the postgres user exists (Debian's postgresql package makes it)")
    };
    Some((id("-u"), id("-g")))
}

/// `bin/program`, to run as the server's user.
fn command(bin: &Path, program: &str) -> std::process::Command {
    let mut command = std::process::Command::new(bin.join(program));
    if let Some((uid, gid)) = server_user() {
        command.uid(uid).gid(gid);
    }
    command
}

impl Postgres {
    /// A fresh cluster, started.
    pub async fn start() -> Postgres {
        let bin = PathBuf::from(std::env::var("EPR_TEST_PG_BIN").expect(
            "EPR_TEST_PG_BIN names PostgreSQL's bin directory (tests/run installs Debian's postgresql)",
        ));
        let dir = tempfile::tempdir().expect("a directory for the cluster");
        if let Some((uid, gid)) = server_user() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("the cluster's directory given to the postgres user");
        }
        let output = command(&bin, "initdb")
            .args(["--username", ROLE, "--auth", "trust", "--no-sync", "-D"])
            .arg(dir.path().join("data"))
            .output()
            .expect("initdb runs");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut postgres = Postgres {
            bin,
            child: None,
            dir,
            port,
        };
        postgres.restart().await;
        postgres
    }

    /// The connection URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/postgres", self.port)
    }

    /// (Re)starts the server on its port with everything it committed before (crash recovery
    /// after [`Postgres::kill9`]); waits until it accepts connections.
    pub async fn restart(&mut self) {
        self.kill9().await;
        let dir = self.dir.path();
        let mut server = command(&self.bin, "postgres");
        server
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-k")
            .arg(dir)
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("server.log"))
                    .expect("a log file"),
            )
            .process_group(0);
        self.child = Some(
            Command::from(server)
                .kill_on_drop(true)
                .spawn()
                .expect("postgres starts"),
        );
        for _ in 0..300 {
            let ready = std::process::Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("PostgreSQL did not start in 30 s:\n{}", self.log());
    }

    /// Kills the server and all its backends with SIGKILL at once (no shutdown checkpoint).
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let group = nix::unistd::Pid::from_raw(-(pid as i32));
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = child.wait().await;
            // the backends of the group are gone when the postmaster's lock file is free
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `sql` with psql (stops at the first error); what it printed, unaligned, no headers.
    pub fn psql(&self, sql: &str) -> String {
        let output = std::process::Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(),
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// What the server wrote to its log so far (over every restart).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}
