//! `provenance`: a unit's history as a readable timeline (GraphQL's `provenance` query).

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::CliError;
use super::client::{Client, Connection};

const QUERY: &str = "query ($name: String!, $version: String!, $release: String!, \
    $platform_id: String!, $package: String!) { provenance(name: $name, version: $version, \
    release: $release, platform_id: $platform_id, package: $package) { \
    event { id description success created_at } \
    event_receiver { id name type version } \
    completed_groups { id name type version } } }";

/// Options of `provenance`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  epr-gateway provenance checkout-service 2.4.1 2026.11.23 \
    x86_64-linux oci"
)]
pub struct ProvenanceArgs {
    /// Unit name.
    name: String,
    /// Unit version.
    version: String,
    /// Unit release.
    release: String,
    /// Unit platform id.
    platform_id: String,
    /// Unit package.
    package: String,
    /// Print the steps as JSON instead of a timeline.
    #[arg(long)]
    json: bool,
    /// Where the gateway is and the token.
    #[command(flatten)]
    connection: Connection,
}

/// Runs `provenance`.
pub async fn provenance(args: ProvenanceArgs) -> Result<(), CliError> {
    let client = Client::new(&args.connection)?;
    let request = json!({"query": QUERY, "variables": {
        "name": args.name, "version": args.version, "release": args.release,
        "platform_id": args.platform_id, "package": args.package}});
    let answer = client
        .json(Method::POST, "/api/v1/graphql/query", Some(&request))
        .await?;
    if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
        let message = errors
            .iter()
            .filter_map(|e| e.get("message").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(CliError::Api {
            status: 200,
            message,
        });
    }
    let steps = answer
        .pointer("/data/provenance")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&steps).unwrap_or_default()
        );
        return Ok(());
    }
    let unit = [
        &args.name,
        &args.version,
        &args.release,
        &args.platform_id,
        &args.package,
    ]
    .map(String::as_str)
    .join(" ");
    print!("{}", timeline(&unit, &steps));
    Ok(())
}

/// The timeline of `unit`: one block per event, oldest first.
fn timeline(unit: &str, steps: &[Value]) -> String {
    if steps.is_empty() {
        return format!("{unit}: no events recorded\n");
    }
    let text = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut out = format!("{unit}: {} events\n", steps.len());
    for step in steps {
        let outcome = match step.pointer("/event/success").and_then(Value::as_bool) {
            Some(true) => "success",
            _ => "FAILURE",
        };
        out.push_str(&format!(
            "{}  {outcome:<7}  {} ({} {})  event {}\n",
            text(step, "/event/created_at"),
            text(step, "/event_receiver/type"),
            text(step, "/event_receiver/name"),
            text(step, "/event_receiver/version"),
            text(step, "/event/id"),
        ));
        let description = text(step, "/event/description");
        if !description.is_empty() {
            out.push_str(&format!("    {description}\n"));
        }
        for group in step
            .get("completed_groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push_str(&format!(
                "    completed group {} ({}, {})\n",
                text(group, "/name"),
                text(group, "/type"),
                text(group, "/id"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_shows_outcomes_and_completed_groups() {
        let steps = [
            json!({"event": {"id": "E1", "success": false, "created_at": "T1", "description": "tests failed"},
                "event_receiver": {"type": "dev.test", "name": "tests", "version": "1"},
                "completed_groups": []}),
            json!({"event": {"id": "E2", "success": true, "created_at": "T2", "description": ""},
                "event_receiver": {"type": "dev.test", "name": "tests", "version": "1"},
                "completed_groups": [{"id": "G", "name": "ready", "type": "dev.ready"}]}),
        ];
        let text = timeline("app 1 r p k", &steps);
        assert_eq!(
            text,
            "app 1 r p k: 2 events\n\
             T1  FAILURE  dev.test (tests 1)  event E1\n    tests failed\n\
             T2  success  dev.test (tests 1)  event E2\n    completed group ready (dev.ready, G)\n"
        );
        assert_eq!(timeline("u", &[]), "u: no events recorded\n");
    }
}
