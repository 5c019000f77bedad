//! `plugin`: upload, list, enable, disable, delete, dead-letters.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::Client;
use super::output::read;
use super::registry_cmds::send_or_show;
use super::{CliError, Common};

/// What `plugin` does.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Uploads a WebAssembly component (a watcher or a transform) with the grants it gets.
    #[command(
        after_help = "Example:\n  epr-gateway plugin upload webhook_firer.wasm \
        --grants '{\"http\":{\"allow\":[\"hooks.example.com\"]},\"config\":{\"url\":\"https://hooks.example.com/ci\"}}'"
    )]
    Upload {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Install under this name instead of the manifest's (the same component twice).
        #[arg(long)]
        name: Option<String>,
        /// The grants, as JSON text or `@FILE` (see the README's plugin guide).
        #[arg(long)]
        grants: Option<String>,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Lists the plugins with their state and counters.
    #[command(after_help = "Example:\n  epr-gateway plugin list --no-indent")]
    List {
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Enables a plugin.
    #[command(after_help = "Example:\n  epr-gateway plugin enable webhook-firer")]
    Enable {
        /// The plugin.
        name: String,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Disables a plugin (a watcher keeps its place in the log).
    #[command(after_help = "Example:\n  epr-gateway plugin disable webhook-firer")]
    Disable {
        /// The plugin.
        name: String,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// Deletes a plugin, its key-value store and its dead letters.
    #[command(after_help = "Example:\n  epr-gateway plugin delete webhook-firer")]
    Delete {
        /// The plugin.
        name: String,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
    /// The events a watcher gave up on, oldest first.
    #[command(after_help = "Example:\n  epr-gateway plugin dead-letters webhook-firer")]
    DeadLetters {
        /// The plugin.
        name: String,
        /// Where the gateway is, the token, and how to print the answer.
        #[command(flatten)]
        common: Common,
    },
}

/// Runs a `plugin` command.
pub async fn plugin(command: PluginCommand) -> Result<(), CliError> {
    match command {
        PluginCommand::Upload {
            file,
            name,
            grants,
            common,
        } => upload(file, name, grants, &common).await,
        PluginCommand::List { common } => {
            send_or_show(&common, Method::GET, "/api/v1/plugins", None).await
        }
        PluginCommand::Enable { name, common } => set_enabled(&name, true, &common).await,
        PluginCommand::Disable { name, common } => set_enabled(&name, false, &common).await,
        PluginCommand::Delete { name, common } => {
            let path = format!("/api/v1/plugins/{}", segment(&name));
            send_or_show(&common, Method::DELETE, &path, None).await
        }
        PluginCommand::DeadLetters { name, common } => {
            let path = format!("/api/v1/plugins/{}/dead-letters", segment(&name));
            send_or_show(&common, Method::GET, &path, None).await
        }
    }
}

async fn set_enabled(name: &str, enabled: bool, common: &Common) -> Result<(), CliError> {
    let path = format!("/api/v1/plugins/{}", segment(name));
    send_or_show(
        common,
        Method::PATCH,
        &path,
        Some(&json!({ "enabled": enabled })),
    )
    .await
}

async fn upload(
    file: PathBuf,
    name: Option<String>,
    grants: Option<String>,
    common: &Common,
) -> Result<(), CliError> {
    let grants = grants
        .map(|g| super::registry_cmds::json_argument("--grants", &g))
        .transpose()?;
    let path = match &name {
        Some(name) => format!("/api/v1/plugins?name={}", segment(name)),
        None => "/api/v1/plugins".to_owned(),
    };
    let client = Client::new(&common.connection)?;
    if common.dry_run {
        let mut command = client.curl(&Method::POST, &path, None);
        command.push_str(&format!(
            " -H 'content-type: application/wasm' --data-binary @{}",
            file.display()
        ));
        if let Some(grants) = &grants {
            command.push_str(&format!(" -H 'x-epr-grants: {grants}'"));
        }
        println!("{command}");
        return Ok(());
    }
    let bytes = read(&file)?;
    let mut request = client
        .request(Method::POST, &path)
        .header("content-type", "application/wasm")
        .body(bytes);
    if let Some(grants) = grants {
        request = request.header("x-epr-grants", grants.to_string());
    }
    let answer = client.send(request).await?;
    common.format.print(&answer);
    Ok(())
}

/// `text` as one URL path segment.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
