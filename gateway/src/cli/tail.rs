//! `tail`: follows the gateway's log (the SSE stream), resuming where it left off after a drop.

use std::time::Duration;

use clap::Args;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

use super::CliError;
use super::client::{Client, Connection};

/// Options of `tail`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  epr-gateway tail --type dev.cdevents.build\n  \
    epr-gateway tail --after 0 --count 10 --json"
)]
pub struct TailArgs {
    /// Only messages whose type starts with this.
    #[arg(long = "type")]
    type_prefix: Option<String>,
    /// Start after this log sequence number (0: from the beginning; default: new messages only).
    #[arg(long)]
    after: Option<u64>,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<u64>,
    /// Print each message as the JSON the Kafka topic carries, one per line.
    #[arg(long)]
    json: bool,
    /// Where the gateway is and the token.
    #[command(flatten)]
    connection: Connection,
}

/// Runs `tail`.
pub async fn tail(args: TailArgs) -> Result<(), CliError> {
    let client = Client::new(&args.connection)?;
    let mut after = match args.after {
        Some(after) => after,
        None => current_sequence(&client).await?,
    };
    let mut printed = 0;
    let mut connected_once = false;
    loop {
        let mut pairs = vec![("after", after.to_string())];
        pairs.extend(args.type_prefix.clone().map(|prefix| ("type", prefix)));
        let request = client.request(Method::GET, &client.with_query("/api/v1/stream", &pairs)?);
        let response = match client.open(request).await {
            Ok(response) => response,
            Err(e @ CliError::Unreachable { .. }) if connected_once => {
                eprintln!("tail: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        connected_once = true;
        let mut events = response.bytes_stream().eventsource();
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            let Ok(seq) = event.id.parse::<u64>() else {
                continue;
            };
            after = seq;
            let message: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
            if args.json {
                println!("{message}");
            } else {
                println!("{}", line(seq, &message));
            }
            printed += 1;
            if args.count.is_some_and(|count| printed >= count) {
                return Ok(());
            }
        }
        eprintln!("tail: the stream ended; resuming after {after}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The sequence number of the last durable message (new messages come after it).
async fn current_sequence(client: &Client) -> Result<u64, CliError> {
    let status = client.json(Method::GET, "/healthz/status", None).await?;
    Ok(status
        .pointer("/log/last_sequence")
        .and_then(Value::as_u64)
        .unwrap_or(0))
}

/// A readable line for a message: sequence, type, unit, success.
fn line(seq: u64, message: &Value) -> String {
    let field = |name: &str| message.get(name).and_then(Value::as_str).unwrap_or("-");
    let outcome = match message.get("success").and_then(Value::as_bool) {
        Some(true) => "success",
        Some(false) => "failure",
        None => "-",
    };
    format!(
        "{seq:>8} {:<40} {} {} {} {} {} {outcome}",
        field("type"),
        field("name"),
        field("version"),
        field("release"),
        field("platform_id"),
        field("package"),
    )
}
