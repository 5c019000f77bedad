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
    /// Copy an embedded store (a stopped gateway's --data-dir) into PostgreSQL, then verify it.
    ///
    /// Copies receivers, events with their ids and times, groups, the log with its sequence
    /// numbers, cursors, dead letters, webhook sources and plugins; makes the tables when
    /// missing. Resumable: run it again after an interruption and it goes on where it stopped.
    /// Prints the counts of both stores and a SHA-256 of each; exits 1 unless they agree.
    #[command(
        after_help = "Example:\n  epr-gateway migrate --from /var/lib/epr --to postgres://epr@db:5432/epr"
    )]
    Migrate(MigrateArgs),
    #[command(flatten)]
    Client(ClientCommand),
}

/// Where `migrate` copies from and to.
#[derive(clap::Args)]
struct MigrateArgs {
    /// The embedded store's data directory (no gateway may run on it meanwhile).
    #[arg(long, value_name = "DIR")]
    from: std::path::PathBuf,
    /// The PostgreSQL database (postgres://user[:password]@host[:port]/database).
    #[arg(long, env = "EPR_DB", value_name = "URL")]
    to: String,
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
        Command::Migrate(args) => {
            log_to_stderr("warn");
            migrate(&args)
        }
        Command::Client(command) => Ok(client_runtime()?.block_on(epr_gateway::cli::run(command))?),
    }
}

/// Copies, prints the counts and checksums, fails unless the copy is verified.
fn migrate(args: &MigrateArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    let progress = |line: &str| println!("{line}");
    let report = runtime.block_on(epr_gateway::store::migrate::migrate(
        &args.from, &args.to, &progress,
    ))?;
    println!(
        "{:<18} {:>10} {:>10} {:>10}",
        "", "embedded", "database", "copied"
    );
    for kind in &report.kinds {
        println!(
            "{:<18} {:>10} {:>10} {:>10}",
            kind.kind, kind.source, kind.target, kind.copied
        );
    }
    println!("checksum embedded  {}", report.source_checksum);
    println!("checksum database  {}", report.target_checksum);
    anyhow::ensure!(
        report.verified(),
        "the database does not hold what the embedded store holds (see the counts above)"
    );
    println!("verified: the database holds exactly what the embedded store holds");
    Ok(())
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
