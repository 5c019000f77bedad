//! The command line's client commands: EPR's (`receiver`, `event`, `group`, `status`) with its
//! flag names, and ours (`plugin`, `tail`, `provenance`). Each talks to a running gateway.

mod client;
mod output;
mod plugin_cmds;
mod provenance;
mod registry_cmds;
mod tail;

use clap::{Args, Subcommand};
use reqwest::Method;
use thiserror::Error;

pub use client::Connection;
pub use output::Format;
pub use plugin_cmds::PluginCommand;
pub use provenance::ProvenanceArgs;
pub use registry_cmds::{EventCommand, GroupCommand, ReceiverCommand};
pub use tail::TailArgs;

/// Options every EPR-style command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Where the gateway is and the token.
    #[command(flatten)]
    connection: Connection,
    /// How to print the answer.
    #[command(flatten)]
    format: Format,
    /// Print what would be sent (the body, or the curl command) and send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// A client command.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Receivers: kinds of events and the JSON Schemas their payloads must match.
    #[command(subcommand)]
    Receiver(ReceiverCommand),
    /// Events: what happened to a unit (name, version, release, platform id, package).
    #[command(subcommand)]
    Event(EventCommand),
    /// Groups: receivers whose joint success for a unit completes the group.
    #[command(subcommand)]
    Group(GroupCommand),
    /// The gateway's status: version, uptime, store, log, Kafka relay.
    #[command(after_help = "Example:\n  EPR_URL=http://epr.internal:8042 epr-gateway status")]
    Status(Common),
    /// Plugins: upload, list, enable, disable, delete, dead letters.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Follows the log as it grows, optionally only some types of messages.
    Tail(TailArgs),
    /// The history of one unit: its events, oldest first, and the groups they completed.
    Provenance(ProvenanceArgs),
}

/// Why a command failed.
#[derive(Debug, Error)]
pub enum CliError {
    /// The gateway could not be reached.
    #[error("cannot reach the gateway at {url} (is it running? set --url or EPR_URL): {reason}")]
    Unreachable {
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The gateway refused the request.
    #[error("the gateway answered {status}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// One item of a `generate` file failed (the ones before it were created).
    #[error("item {n} of {total}: {source} (items before it were created)")]
    Item {
        /// Its position, from 1.
        n: usize,
        /// How many items the file has.
        total: usize,
        /// Why.
        source: Box<CliError>,
    },
    /// A file could not be used.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// An argument is wrong.
    #[error("{0}")]
    Usage(String),
}

/// Runs a client command.
pub async fn run(command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Receiver(c) => registry_cmds::receiver(c).await,
        ClientCommand::Event(c) => registry_cmds::event(c).await,
        ClientCommand::Group(c) => registry_cmds::group(c).await,
        ClientCommand::Status(common) => {
            registry_cmds::send_or_show(&common, Method::GET, "/healthz/status", None).await
        }
        ClientCommand::Plugin(c) => plugin_cmds::plugin(c).await,
        ClientCommand::Tail(args) => tail::tail(args).await,
        ClientCommand::Provenance(args) => provenance::provenance(args).await,
    }
}
