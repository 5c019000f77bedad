//! The `epr-gateway` binary.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use epr_gateway::cli::{ClientCommand, Connection};
use epr_gateway::config::ServeConfig;
use tracing_subscriber::EnvFilter;

/// mimalloc: the request path allocates many small JSON values from several threads at once,
/// which glibc's allocator serves with visible contention.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Event gateway speaking EPR's API: validated, durable, published from a log.
///
/// `serve` runs the gateway; the other commands talk to a running one (EPR_URL, default
/// http://localhost:8042; token in EPR_TOKEN).
#[derive(Parser)]
#[command(
    name = "epr-gateway",
    version,
    about,
    after_help = "Examples:
  epr-gateway serve --data-dir /var/lib/epr
  epr-gateway receiver create --name build --version 1.0.0 --type dev.build --description builds --schema '{}'
  epr-gateway event search --name checkout-service --fields all
  epr-gateway tail --type dev.cdevents
  epr-gateway provenance checkout-service 2.4.1 2026.11.23 x86_64-linux oci"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (sled store in --data-dir; no broker needed).
    ///
    /// Example: EPR_ADMIN_TOKEN=s3cret epr-gateway serve --port 8042 --data-dir /var/lib/epr
    Serve(ServeConfig),
    /// Serve MCP on standard input/output for clients that launch a command (Claude Desktop,
    /// VS Code...), bridged to the running gateway at EPR_URL with the token of EPR_TOKEN.
    ///
    /// The tools are the gateway's own (its /mcp endpoint). Logs go to stderr (EPR_LOG,
    /// default warn); the token is sent as a bearer token and never printed.
    #[command(
        after_help = "Example (the command an MCP client launches):\n  EPR_URL=http://localhost:8042 EPR_TOKEN=s3cret epr-gateway mcp"
    )]
    Mcp(Connection),
    #[command(flatten)]
    Client(ClientCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(config) => serve(config),
        Command::Mcp(connection) => {
            log_to_stderr("warn");
            Ok(client_runtime()?.block_on(epr_gateway::mcp::stdio::run(connection))?)
        }
        Command::Client(command) => Ok(client_runtime()?.block_on(epr_gateway::cli::run(command))?),
    }
}

/// The runtime of a client command: one thread.
fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Logs to stderr, filtered by `EPR_LOG` (`default` without it).
fn log_to_stderr(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("EPR_LOG").unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the gateway until SIGINT or SIGTERM, logging to stderr (`EPR_LOG` filters).
fn serve(config: ServeConfig) -> anyhow::Result<()> {
    log_to_stderr("info,rmcp=warn");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async {
        let metrics =
            epr_gateway::telemetry::install().context("cannot install the metrics recorder")?;
        epr_gateway::server::serve(config, metrics, shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
