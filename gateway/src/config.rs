//! Configuration of `epr-gateway serve`: every setting a flag and an `EPR_*` variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use thiserror::Error;

use crate::bus::kafka::{KafkaConfig, extra_properties};
use crate::ingest::sources::WebhookSource;
use crate::store::{DEFAULT_CACHE_MB, SledOptions};

/// Settings of the server.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "EPR_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one; the address is printed on stdout).
    #[arg(long, env = "EPR_PORT", default_value_t = 8042)]
    pub port: u16,

    /// Directory of the embedded store (created if missing; one gateway per directory).
    /// Unused with --db.
    #[arg(long, env = "EPR_DATA_DIR", default_value = "epr-data")]
    pub data_dir: PathBuf,

    /// MiB of the embedded store's pages kept in memory (sled's page cache; beyond it sled
    /// keeps about 110 to 140 bytes per stored event in memory). Unused with --db.
    #[arg(long, env = "EPR_CACHE_MB", default_value_t = DEFAULT_CACHE_MB, value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    pub cache_mb: u64,

    /// PostgreSQL database to keep everything in, which any number of gateways may share
    /// (postgres://user[:password]@host[:port]/database; the tables are made at start).
    /// Unset: the embedded store in --data-dir. Prefer the environment variable for a
    /// password: flags show up in `ps`.
    #[arg(long, env = "EPR_DB", value_name = "URL")]
    pub db: Option<String>,

    /// Read connections to PostgreSQL, per gateway.
    #[arg(long, env = "EPR_DB_POOL", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub db_pool: u16,

    /// Units of work a gateway runs on PostgreSQL at once (each on a connection of its own).
    #[arg(long, env = "EPR_DB_WRITERS", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub db_writers: u16,

    /// Bearer token required to create receivers and groups and to change groups.
    /// Prefer the environment variable: flags show up in `ps`.
    #[arg(long, env = "EPR_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Bearer token required to post events (the admin token is accepted too).
    #[arg(long, env = "EPR_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,

    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "EPR_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds a client has to send a request's headers (also the keep-alive idle limit).
    #[arg(long, env = "EPR_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a client has to send a request's body.
    #[arg(long, env = "EPR_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Kafka bootstrap servers (`host:port,...`); without them the gateway runs embedded (the
    /// log still feeds the stream). Further librdkafka settings: `EPR_KAFKA_<PROPERTY>`, e.g.
    /// `EPR_KAFKA_SASL_MECHANISM=PLAIN` for `sasl.mechanism`.
    #[arg(long, env = "EPR_BROKERS")]
    pub brokers: Option<String>,

    /// Kafka topic of the messages.
    #[arg(long, env = "EPR_TOPIC", default_value = "epr.dev.events")]
    pub topic: String,

    /// Partitions of the topic when the gateway creates it.
    #[arg(long, env = "EPR_TOPIC_PARTITIONS", default_value_t = 3)]
    pub topic_partitions: i32,

    /// Largest Kafka message value in bytes; a larger message carries a reference to its event
    /// instead of the payload.
    #[arg(long, env = "EPR_MAX_MESSAGE_BYTES", default_value_t = 1_000_000)]
    pub max_message_bytes: usize,

    /// The gateway's public base URL, used in references (default: http://HOST:PORT).
    #[arg(long, env = "EPR_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Optional TOML file with webhook sources (see the README).
    #[arg(long, env = "EPR_CONFIG")]
    pub config: Option<PathBuf>,

    /// Create a receiver on the fly for a CloudEvent whose type no receiver has (its schema
    /// accepts anything). CDEvents on /webhook always get theirs.
    #[arg(long, env = "EPR_AUTO_RECEIVERS")]
    pub auto_receivers: bool,

    /// Seconds to let requests in flight finish after SIGINT/SIGTERM.
    #[arg(long, env = "EPR_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Most connections open at once; further ones get a 503 and are closed.
    #[arg(long, env = "EPR_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Most event streams (`GET /api/v1/stream`) open at once; further ones get a 503.
    #[arg(long, env = "EPR_MAX_STREAMS", default_value_t = 64)]
    pub max_streams: usize,

    /// Host names the gateway answers to (comma-separated; `*` for any), beyond IP addresses,
    /// `localhost` and the host of EPR_PUBLIC_URL: a request naming another host in its `Host`
    /// header gets a 421 (this stops DNS rebinding).
    #[arg(long, env = "EPR_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Web origins (`scheme://host[:port]`, comma-separated; `*` for any) whose pages may call
    /// `/mcp`, beyond loopback origins and the origin of EPR_PUBLIC_URL; requests without an
    /// `Origin` header (assistants, command-line clients) always may. Others get a 403.
    #[arg(long, env = "EPR_MCP_ORIGINS", value_delimiter = ',')]
    pub mcp_origins: Vec<String>,

    /// Allow listening on a non-loopback address without an admin token (anyone who can reach
    /// the port may then manage receivers, groups and plugins).
    #[arg(long, env = "EPR_INSECURE")]
    pub insecure: bool,
}

/// The optional TOML configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Webhook sources, `[[webhooks]]` tables.
    #[serde(default)]
    pub webhooks: Vec<WebhookSource>,
}

/// The configuration file could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A token is set but empty.
    #[error(
        "{0} is set but empty: an empty token is not \"no auth\"; unset it to leave those calls open, or give it a value"
    )]
    EmptyToken(&'static str),
    /// A non-loopback address without an admin token.
    #[error(
        "refusing to listen on {0} without an admin token: anyone who can reach it could upload plugins and change receivers and groups. Set EPR_ADMIN_TOKEN, listen on 127.0.0.1, or pass --insecure (EPR_INSECURE=true) to accept that"
    )]
    OpenToTheNetwork(IpAddr),
    /// It is not valid.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: toml::de::Error,
    },
}

impl ServeConfig {
    /// The Kafka settings, when a broker is configured; `listening` is the bound address.
    pub fn kafka(&self, listening: std::net::SocketAddr) -> Option<KafkaConfig> {
        let brokers = self.brokers.clone().filter(|b| !b.trim().is_empty())?;
        Some(KafkaConfig {
            brokers,
            topic: self.topic.clone(),
            partitions: self.topic_partitions,
            max_message_bytes: self.max_message_bytes,
            public_url: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{listening}")),
            extra: extra_properties(std::env::vars()),
        })
    }

    /// The config file's contents (empty without `--config`).
    pub fn file(&self) -> Result<ConfigFile, ConfigError> {
        let Some(path) = &self.config else {
            return Ok(ConfigFile::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.clone(),
            source,
        })
    }

    /// The tokens, checked: a token set to an empty (or blank) value is an error, and so is a
    /// non-loopback address without an admin token unless `--insecure` is given.
    pub fn tokens(&self) -> Result<(Option<String>, Option<String>), ConfigError> {
        let token = |value: &Option<String>, name| match value {
            Some(t) if t.trim().is_empty() => Err(ConfigError::EmptyToken(name)),
            other => Ok(other.clone()),
        };
        let admin = token(&self.admin_token, "EPR_ADMIN_TOKEN (--admin-token)")?;
        let ingest = token(&self.ingest_token, "EPR_INGEST_TOKEN (--ingest-token)")?;
        if admin.is_none() && !self.host.is_loopback() {
            if !self.insecure {
                return Err(ConfigError::OpenToTheNetwork(self.host));
            }
            tracing::warn!(host = %self.host, "listening on a non-loopback address WITHOUT an admin token (--insecure): anyone who can reach this port can manage receivers, groups and plugins");
        }
        Ok((admin, ingest))
    }

    /// How the embedded store is opened.
    pub fn sled(&self) -> SledOptions {
        SledOptions::with_cache_mb(self.cache_mb)
    }

    /// Header-read timeout.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    /// Body-read timeout.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    /// Grace period at shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}
