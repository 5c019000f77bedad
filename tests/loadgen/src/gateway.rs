//! A gateway started by the load generator on a temporary data directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running gateway; killed when dropped.
pub struct Spawned {
    /// Its base URL.
    pub url: String,
    dir: tempfile::TempDir,
    _child: Child,
}

impl Spawned {
    /// Starts `bin serve` on port 0 and waits for the address it prints.
    pub async fn start(bin: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("epr-loadgen-").tempdir()?;
        let mut child = Command::new(bin)
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("EPR_LOG", "warn")
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
        Ok(Spawned {
            url,
            dir,
            _child: child,
        })
    }

    /// Its data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}
