//! EPR's commands: `receiver`, `event` and `group` (create, search, generate; group modify).

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::Client;
use super::output::{objects_in, project, read_text};
use super::{CliError, Common};

/// What `receiver` does.
#[derive(Debug, Subcommand)]
pub enum ReceiverCommand {
    /// Creates a receiver: a kind of event and the JSON Schema its payloads must match.
    #[command(
        after_help = "Example:\n  epr-gateway receiver create --name build-finished \
        --version 1.0.0 --type dev.cdevents.build.finished --description 'finished builds' \
        --schema '{\"type\":\"object\",\"required\":[\"commit\"]}'"
    )]
    Create {
        /// Name, type, version and description.
        #[command(flatten)]
        definition: Definition,
        /// The JSON Schema, as JSON text or `@FILE`.
        #[arg(long)]
        schema: String,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Finds receivers whose given fields all match, newest first.
    #[command(
        after_help = "Example:\n  epr-gateway receiver search --type dev.cdevents.build.finished \
        --fields 'id name version'"
    )]
    Search {
        /// The fields to match.
        #[command(flatten)]
        filter: DefinitionFilter,
        /// Fields to print, separated by spaces or commas, or `all`.
        #[arg(long, default_value = "id name type version description")]
        fields: String,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Creates the receivers described in a JSON or YAML file (an object or an array).
    #[command(after_help = "Example:\n  epr-gateway receiver generate receivers.yaml")]
    Generate {
        /// The file.
        file: PathBuf,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
}

/// What `event` does.
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Records an event about a unit (name, version, release, platform id, package).
    #[command(
        after_help = "Example:\n  epr-gateway event create --name checkout-service \
        --version 2.4.1 --release 2026.11.23 --platform-id x86_64-linux --package oci \
        --description 'build passed' --payload '{\"commit\":\"9f2c1e7\"}' --success \
        --event-receiver-id 01M84CWV9K9R6QMM2DBVK7Q3WW"
    )]
    Create {
        /// The unit (NVRPP) it is about.
        #[command(flatten)]
        unit: Unit,
        /// Free text.
        #[arg(long)]
        description: String,
        /// The payload, as JSON text or `@FILE`; it must match the receiver's schema.
        #[arg(long)]
        payload: String,
        /// The step succeeded (`--success`, or `--success=false`).
        #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
        success: bool,
        /// The receiver the event is for.
        #[arg(long)]
        event_receiver_id: String,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Finds events whose given fields all match, newest first.
    #[command(
        after_help = "Example:\n  epr-gateway event search --name checkout-service \
        --version 2.4.1 --success true --fields all"
    )]
    Search {
        /// The fields to match.
        #[command(flatten)]
        filter: EventFilter,
        /// Fields to print, separated by spaces or commas, or `all`.
        #[arg(
            long,
            default_value = "id name version release platform_id package success"
        )]
        fields: String,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Records the events described in a JSON or YAML file (an object or an array).
    #[command(after_help = "Example:\n  epr-gateway event generate events.json")]
    Generate {
        /// The file.
        file: PathBuf,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
}

/// What `group` does.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Creates a group: it completes for a unit when every member's latest event is a success.
    #[command(
        after_help = "Example:\n  epr-gateway group create --name release-ready \
        --version 1.0.0 --type dev.example.release.ready --description 'ready to ship' \
        --event-receiver-ids 01M84CWV9K9R6QMM2DBVK7Q3WW,01M84CX0J6Y4Z4XJ3V9C7S6T2B"
    )]
    Create {
        /// Name, type, version and description.
        #[command(flatten)]
        definition: Definition,
        /// The member receivers, separated by commas.
        #[arg(long, value_delimiter = ',', required = true)]
        event_receiver_ids: Vec<String>,
        /// Whether the group is enabled (`--enabled=false` creates it disabled).
        #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
        enabled: bool,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Finds groups whose given fields all match, newest first.
    #[command(after_help = "Example:\n  epr-gateway group search --name release-ready")]
    Search {
        /// The fields to match.
        #[command(flatten)]
        filter: DefinitionFilter,
        /// Fields to print, separated by spaces or commas, or `all`.
        #[arg(
            long,
            default_value = "id name type version description enabled event_receiver_ids"
        )]
        fields: String,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Creates the groups described in a JSON or YAML file (an object or an array).
    #[command(after_help = "Example:\n  epr-gateway group generate groups.yaml")]
    Generate {
        /// The file.
        file: PathBuf,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Enables or disables a group.
    #[command(
        group(ArgGroup::new("state").required(true).args(["enable", "disable"])),
        after_help = "Example:\n  epr-gateway group modify --id 01M84D0B7QZ5H0T6S2W3KX1N8C --disable"
    )]
    Modify {
        /// The group.
        #[arg(long)]
        id: String,
        /// Enable it.
        #[arg(long)]
        enable: bool,
        /// Disable it (it stops completing).
        #[arg(long)]
        disable: bool,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
}

/// Name, type, version and description of a receiver or group.
#[derive(Debug, Args)]
pub struct Definition {
    /// Name.
    #[arg(long)]
    name: String,
    /// Version.
    #[arg(long)]
    version: String,
    /// Type (of the events; of a group's complete messages).
    #[arg(long = "type")]
    kind: String,
    /// Free text.
    #[arg(long)]
    description: String,
}

impl Definition {
    fn body(self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("name".into(), self.name.into());
        body.insert("type".into(), self.kind.into());
        body.insert("version".into(), self.version.into());
        body.insert("description".into(), self.description.into());
        body
    }
}

/// The unit an event is about.
#[derive(Debug, Args)]
pub struct Unit {
    /// Unit name.
    #[arg(long)]
    name: String,
    /// Unit version.
    #[arg(long)]
    version: String,
    /// Unit release.
    #[arg(long)]
    release: String,
    /// Unit platform id.
    #[arg(long, alias = "platform_id")]
    platform_id: String,
    /// Unit package.
    #[arg(long)]
    package: String,
}

/// Search filter of receivers and groups.
#[derive(Debug, Args)]
pub struct DefinitionFilter {
    /// Id.
    #[arg(long)]
    id: Option<String>,
    /// Name.
    #[arg(long)]
    name: Option<String>,
    /// Type.
    #[arg(long = "type")]
    kind: Option<String>,
    /// Version.
    #[arg(long)]
    version: Option<String>,
    /// Which page of the results.
    #[command(flatten)]
    page: PageArgs,
}

/// Search filter of events.
#[derive(Debug, Args)]
pub struct EventFilter {
    /// Event id.
    #[arg(long)]
    id: Option<String>,
    /// Unit name.
    #[arg(long)]
    name: Option<String>,
    /// Unit version.
    #[arg(long)]
    version: Option<String>,
    /// Unit release.
    #[arg(long)]
    release: Option<String>,
    /// Unit platform id.
    #[arg(long, alias = "platform_id")]
    platform_id: Option<String>,
    /// Unit package.
    #[arg(long)]
    package: Option<String>,
    /// `true` or `false`.
    #[arg(long)]
    success: Option<bool>,
    /// Receiver id.
    #[arg(long)]
    event_receiver_id: Option<String>,
    /// Which page of the results.
    #[command(flatten)]
    page: PageArgs,
}

/// One page of a search.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// At most this many results (1 to 1000; the gateway's default is 100).
    #[arg(long)]
    limit: Option<u32>,
    /// Results after this cursor (the last id of the previous page).
    #[arg(long)]
    after: Option<String>,
}

/// A query string's pairs: the fields that are given.
type Pairs = Vec<(&'static str, String)>;

/// The pairs of the given fields.
fn given<const N: usize>(fields: [(&'static str, Option<String>); N]) -> Pairs {
    fields
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
}

impl PageArgs {
    fn pairs(self) -> Pairs {
        given([
            ("limit", self.limit.map(|l| l.to_string())),
            ("after", self.after),
        ])
    }
}

impl DefinitionFilter {
    fn pairs(self) -> Pairs {
        let mut pairs = given([
            ("id", self.id),
            ("name", self.name),
            ("type", self.kind),
            ("version", self.version),
        ]);
        pairs.extend(self.page.pairs());
        pairs
    }
}

impl EventFilter {
    fn pairs(self) -> Pairs {
        let mut pairs = given([
            ("id", self.id),
            ("name", self.name),
            ("version", self.version),
            ("release", self.release),
            ("platform_id", self.platform_id),
            ("package", self.package),
            ("success", self.success.map(|s| s.to_string())),
            ("event_receiver_id", self.event_receiver_id),
        ]);
        pairs.extend(self.page.pairs());
        pairs
    }
}

/// Runs a `receiver` command.
pub async fn receiver(command: ReceiverCommand) -> Result<(), CliError> {
    const PATH: &str = "/api/v1/receivers";
    match command {
        ReceiverCommand::Create {
            definition,
            schema,
            common,
        } => {
            let mut body = definition.body();
            body.insert("schema".into(), json_argument("--schema", &schema)?);
            create(&common, PATH, vec![Value::Object(body)]).await
        }
        ReceiverCommand::Search {
            filter,
            fields,
            common,
        } => search(&common, PATH, filter.pairs(), &fields).await,
        ReceiverCommand::Generate { file, common } => generate(&common, PATH, &file).await,
    }
}

/// Runs an `event` command.
pub async fn event(command: EventCommand) -> Result<(), CliError> {
    const PATH: &str = "/api/v1/events";
    match command {
        EventCommand::Create {
            unit,
            description,
            payload,
            success,
            event_receiver_id,
            common,
        } => {
            let body = json!({
                "name": unit.name, "version": unit.version, "release": unit.release,
                "platform_id": unit.platform_id, "package": unit.package,
                "description": description, "payload": json_argument("--payload", &payload)?,
                "success": success, "event_receiver_id": event_receiver_id,
            });
            create(&common, PATH, vec![body]).await
        }
        EventCommand::Search {
            filter,
            fields,
            common,
        } => search(&common, PATH, filter.pairs(), &fields).await,
        EventCommand::Generate { file, common } => generate(&common, PATH, &file).await,
    }
}

/// Runs a `group` command.
pub async fn group(command: GroupCommand) -> Result<(), CliError> {
    const PATH: &str = "/api/v1/groups";
    match command {
        GroupCommand::Create {
            definition,
            event_receiver_ids,
            enabled,
            common,
        } => {
            let mut body = definition.body();
            body.insert("enabled".into(), enabled.into());
            body.insert("event_receiver_ids".into(), event_receiver_ids.into());
            create(&common, PATH, vec![Value::Object(body)]).await
        }
        GroupCommand::Search {
            filter,
            fields,
            common,
        } => search(&common, PATH, filter.pairs(), &fields).await,
        GroupCommand::Generate { file, common } => generate(&common, PATH, &file).await,
        GroupCommand::Modify {
            id,
            enable,
            disable: _,
            common,
        } => {
            let path = format!("{PATH}/{id}");
            let body = json!({ "enabled": enable });
            send_or_show(&common, Method::PATCH, &path, Some(&body)).await
        }
    }
}

/// The value of a JSON argument: JSON text, or `@FILE` holding it.
pub(super) fn json_argument(flag: &str, text: &str) -> Result<Value, CliError> {
    let text = match text.strip_prefix('@') {
        Some(path) => read_text(Path::new(path))?,
        None => text.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("{flag} is not JSON: {e}")))
}

/// Posts each of `bodies` to `path`, printing each answer (`--dry-run`: prints the bodies).
async fn create(common: &Common, path: &str, bodies: Vec<Value>) -> Result<(), CliError> {
    if common.dry_run {
        let shown = match <[Value; 1]>::try_from(bodies) {
            Ok([one]) => one,
            Err(many) => Value::Array(many),
        };
        common.format.print(&shown);
        return Ok(());
    }
    let client = Client::new(&common.connection)?;
    let total = bodies.len();
    for (n, body) in bodies.iter().enumerate() {
        let answer =
            client
                .json(Method::POST, path, Some(body))
                .await
                .map_err(|e| match total {
                    1 => e,
                    _ => CliError::Item {
                        n: n + 1,
                        total,
                        source: Box::new(e),
                    },
                })?;
        common.format.print(&answer);
    }
    Ok(())
}

/// Creates what `file` describes.
async fn generate(common: &Common, path: &str, file: &Path) -> Result<(), CliError> {
    create(common, path, objects_in(file)?).await
}

/// Sends one request and prints the answer (`--dry-run`: prints the equivalent curl command).
pub(super) async fn send_or_show(
    common: &Common,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(), CliError> {
    let client = Client::new(&common.connection)?;
    if common.dry_run {
        println!("{}", client.curl(&method, path, body));
        return Ok(());
    }
    let answer = client.json(method, path, body).await?;
    common.format.print(&answer);
    Ok(())
}

/// Searches `path` with `pairs` and prints the results' `fields` (`--dry-run`: the curl
/// command). The cursor of the next page, if any, goes to stderr.
async fn search(common: &Common, path: &str, pairs: Pairs, fields: &str) -> Result<(), CliError> {
    let client = Client::new(&common.connection)?;
    let path_and_query = client.with_query(path, &pairs)?;
    if common.dry_run {
        println!("{}", client.curl(&Method::GET, &path_and_query, None));
        return Ok(());
    }
    let mut answer = client.json(Method::GET, &path_and_query, None).await?;
    if let Some(next) = answer.get("next").and_then(Value::as_str) {
        eprintln!("more results: add --after {next}");
    }
    let items = match answer.get_mut("data").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    common.format.print(&project(items, fields));
    Ok(())
}
