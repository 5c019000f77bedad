//! A gateway started by the load generator on a temporary data directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running gateway; killed when dropped.
pub struct Spawned {
    /// Its base URL.
    pub url: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Spawned {
    /// Starts `bin serve` on port 0 with the extra environment `env` and waits for the address
    /// it prints.
    pub async fn start(bin: &Path, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("epr-loadgen-").tempdir()?;
        let mut child = Command::new(bin)
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("EPR_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let line = BufReader::new(stdout)
            .lines()
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("{} exited before listening", bin.display()))?;
        let url = line
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .ok_or_else(|| anyhow!("unexpected first line from the gateway: {line}"))?
            .to_owned();
        Ok(Spawned { url, dir, child })
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time_of(self.pid()?)
    }

    /// Its resident memory in bytes now (`VmRSS`).
    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))?
            .trim()
            .parse::<u64>()?;
        Ok(kib * 1024)
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .ok_or_else(|| anyhow!("the gateway has exited"))
    }

    /// Its data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// CPU time (user + system) process `pid` has used so far.
pub fn cpu_time_of(pid: u32) -> anyhow::Result<Duration> {
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // fields after the command name, which is in parentheses and may hold spaces
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| -> anyhow::Result<u64> {
            Ok(fields
                .get(i)
                .ok_or_else(|| anyhow!("short /proc/{pid}/stat"))?
                .parse()?)
        };
        // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name
        let total = ticks(11)? + ticks(12)?;
        // SAFETY: sysconf has no preconditions
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Ok(Duration::from_secs_f64(total as f64 / per_second as f64))
    }
}
