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

/// PostgreSQL's bin directory, from `EPR_TEST_PG_BIN`.
fn bin_dir() -> PathBuf {
    PathBuf::from(std::env::var("EPR_TEST_PG_BIN").expect(
        "EPR_TEST_PG_BIN names PostgreSQL's bin directory (tests/run installs Debian's postgresql)",
    ))
}

/// A new cluster in `dir` (given to the server's user), and a free loopback port for it.
fn init_cluster(bin: &Path, dir: &Path) -> u16 {
    if let Some((uid, gid)) = server_user() {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .expect("the cluster's directory given to the postgres user");
    }
    let output = command(bin, "initdb")
        .args(["--username", ROLE, "--auth", "trust", "--no-sync", "-D"])
        .arg(dir.join("data"))
        .output()
        .expect("initdb runs");
    assert!(
        output.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the server on `port` accepts connections.
fn accepts_connections(bin: &Path, port: u16) -> bool {
    std::process::Command::new(bin.join("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `sql` with psql on the database at `url` (stops at the first error); what it printed,
/// unaligned, no headers.
fn psql(bin: &Path, url: &str, sql: &str) -> Result<String, String> {
    let output = std::process::Command::new(bin.join("psql"))
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned()),
        false => Err(format!(
            "psql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

impl Postgres {
    /// A fresh cluster, started.
    pub async fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("a directory for the cluster");
        let port = init_cluster(&bin, dir.path());
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
            if accepts_connections(&self.bin, self.port) {
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
        self.psql_in("postgres", sql)
    }

    /// [`Self::psql`] in database `database`.
    pub fn psql_in(&self, database: &str, sql: &str) -> String {
        let url = format!("postgres://{ROLE}@127.0.0.1:{}/{database}", self.port);
        psql(&self.bin, &url, sql).unwrap_or_else(|e| panic!("{e}\n{}", self.log()))
    }

    /// What the server wrote to its log so far (over every restart).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

/// Whether the gateways under test keep their stores in PostgreSQL (`EPR_TEST_STORE=postgres`,
/// the second pass of tests/run) rather than sled.
pub fn store_is_postgres() -> bool {
    std::env::var("EPR_TEST_STORE").is_ok_and(|s| s == "postgres")
}

/// The cluster that the gateways of a PostgreSQL pass keep their stores in, one database per
/// data directory: started on first use, with `fsync=off` (no test of this pass crashes it; the
/// tests that do have a [`Postgres`] of their own). It stops, and its directory goes, when the
/// test process ends, however it ends: a shell holds the server and waits on a pipe that only
/// this process holds open.
struct SharedCluster {
    bin: PathBuf,
    port: u16,
    /// The shell; never waited for: it ends with this process.
    _shell: std::process::Child,
    _lifeline: std::process::ChildStdin,
}

fn shared_cluster() -> &'static SharedCluster {
    static CLUSTER: std::sync::OnceLock<SharedCluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(|| {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("epr-test-pg-")
            .tempdir()
            .expect("a directory for the cluster")
            .keep();
        let port = init_cluster(&bin, &dir);
        let mut shell = command(Path::new("/bin"), "sh");
        shell
            .arg("-c")
            .arg(
                r#""$1/postgres" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 \
                    -c fsync=off -c max_connections=1000 2>>"$2/server.log" &
                server=$!
                cat >/dev/null
                kill -QUIT "$server"; wait "$server"; rm -rf "$2""#,
            )
            .args(["sh", &bin.display().to_string(), &dir.display().to_string()])
            .arg(port.to_string())
            .stdin(std::process::Stdio::piped());
        let mut child = shell.spawn().expect("the cluster's shell starts");
        let lifeline = child.stdin.take().expect("the shell's stdin");
        let started = (0..300).any(|_| {
            let ready = accepts_connections(&bin, port);
            if !ready {
                std::thread::sleep(Duration::from_millis(100));
            }
            ready
        });
        assert!(
            started,
            "the shared PostgreSQL did not start in 30 s:\n{}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        SharedCluster {
            bin,
            port,
            _shell: child,
            _lifeline: lifeline,
        }
    })
}

/// The URL of the database that the gateway on data directory `dir` keeps its store in, in the
/// shared cluster; created on first use (a gateway restarted on `dir` finds its store again).
pub fn database_for(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let cluster = shared_cluster();
    let mut hash = std::hash::DefaultHasher::new();
    dir.hash(&mut hash);
    let name = format!("epr_{:016x}", hash.finish());
    let admin = format!("postgres://{ROLE}@127.0.0.1:{}/postgres", cluster.port);
    let exists = psql(
        &cluster.bin,
        &admin,
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .expect("the shared cluster answers");
    if exists == "0" {
        psql(&cluster.bin, &admin, &format!("CREATE DATABASE {name}"))
            .expect("a database for the gateway");
    }
    format!("postgres://{ROLE}@127.0.0.1:{}/{name}", cluster.port)
}
