//! Running the gateway: open the store, serve HTTP with bounded connections, shut down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::PrometheusHandle;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

use crate::bus::kafka::RelayStatus;
use crate::config::{ConfigError, ServeConfig};
use crate::http::guard::AllowedHosts;
use crate::http::{self, AppState, Limits, Shared, Tokens};
use crate::ingest::sources::{SourceError, WebhookSources};
use crate::plugins::{PluginError, PluginManager};
use crate::registry::Registry;
use crate::registry::error::RegistryError;
use crate::registry::port::Store;
use crate::store::postgres::{PgOpenError, PgOptions, PgStore};
use crate::store::{OpenError, SledStore};

/// Why the gateway could not run.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The PostgreSQL store could not be opened.
    #[error(transparent)]
    OpenPostgres(#[from] PgOpenError),
    /// The registry could not load what the store holds.
    #[error("cannot load the registry: {0}")]
    Registry(#[from] RegistryError),
    /// The config file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A webhook source is wrong.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The plugins could not be loaded.
    #[error("cannot start the plugins: {0}")]
    Plugins(#[from] PluginError),
    /// The Kafka client could not be made (bad settings).
    #[error("invalid Kafka settings: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
}

/// Everything a running gateway is made of, built from its configuration.
struct Components {
    store: Arc<dyn Store>,
    /// Where the store lives (no password).
    store_location: String,
    plugins: Arc<PluginManager>,
    relay: Option<(Arc<RelayStatus>, JoinHandle<()>)>,
    listener: TcpListener,
    local: SocketAddr,
    /// The HTTP application.
    service: TowerToHyperService<NormalizePath<axum::Router>>,
    /// Turns true at shutdown (streams, the relay).
    stop: watch::Sender<bool>,
}

/// Serves until `shutdown` resolves, then stops accepting, lets requests in flight finish (up to
/// the grace period), flushes the store and returns.
pub async fn serve(
    config: ServeConfig,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let components = build(&config, metrics).await?;
    println!("epr-gateway listening on http://{}", components.local);
    tracing::info!(local = %components.local, store = %components.store_location, "serving");
    let graceful = accept_until(&config, &components, shutdown).await;
    stop(&config, components, graceful).await;
    Ok(())
}

/// Opens the store the configuration names, and says where it is (no password): PostgreSQL
/// with `--db`, else the embedded store in the data directory.
async fn open_store(config: &ServeConfig) -> Result<(Arc<dyn Store>, String), ServeError> {
    match &config.db {
        Some(url) => {
            let options = PgOptions {
                read_connections: config.db_pool.into(),
                writers: config.db_writers.into(),
            };
            let store = PgStore::open(url, &options).await?;
            let location = store.location().to_owned();
            Ok((Arc::new(store), location))
        }
        None => {
            let store = SledStore::open(&config.data_dir, &config.sled())?;
            Ok((Arc::new(store), config.data_dir.display().to_string()))
        }
    }
}

/// Opens the store, loads the registry, webhook sources and plugins, starts the Kafka relay and
/// binds the listener.
async fn build(config: &ServeConfig, metrics: PrometheusHandle) -> Result<Components, ServeError> {
    let started = Instant::now();
    let (admin_token, ingest_token) = config.tokens()?;
    let file = config.file()?;
    let (store, store_location) = open_store(config).await?;
    let registry = Arc::new(Registry::new(store.clone()).await?);
    let sources = WebhookSources::load(store.clone(), file.webhooks).await?;
    let plugins = PluginManager::start(registry.clone()).await?;
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let (stop, stopped) = watch::channel(false);
    let relay = match config.kafka(local) {
        Some(kafka) => {
            tracing::info!(brokers = %kafka.brokers, topic = %kafka.topic, "relaying the log to Kafka");
            Some(crate::bus::kafka::spawn(registry.clone(), kafka, stopped.clone()).await?)
        }
        None => None,
    };
    let state = AppState(Arc::new(Shared {
        registry,
        tokens: Tokens {
            admin: admin_token,
            ingest: ingest_token,
        },
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.body_timeout(),
            max_streams: config.max_streams,
        },
        hosts: AllowedHosts::new(&config.allowed_hosts, config.public_url.as_deref()),
        streams: Arc::new(Semaphore::new(config.max_streams)),
        mcp_origins: crate::mcp::Origins::new(&config.mcp_origins, config.public_url.as_deref()),
        metrics,
        store_location: store_location.clone(),
        started,
        shutdown: stopped,
        sources,
        auto_receivers: config.auto_receivers,
        relay: relay.as_ref().map(|(status, _)| status.clone()),
        plugins: plugins.clone(),
    }));
    let app = NormalizePathLayer::trim_trailing_slash().layer(http::router(state));
    Ok(Components {
        store,
        store_location,
        plugins,
        relay,
        listener,
        local,
        service: TowerToHyperService::new(app),
        stop,
    })
}

/// Accepts connections (at most `EPR_MAX_CONNECTIONS` at once) until `shutdown` resolves;
/// returns the watch over the connections still open.
async fn accept_until(
    config: &ServeConfig,
    components: &Components,
    shutdown: impl Future<Output = ()>,
) -> GracefulShutdown {
    // HTTP/1.1 only (what EPR's clients speak): its header timeout also covers connections
    // that never send a byte and keep-alive connections left idle.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout());
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(config.max_connections));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = components.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = connections.clone().try_acquire_owned() else {
                        refuse_connection(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), components.service.clone());
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => return graceful,
        }
    }
}

/// Stops accepting, lets requests in flight, watchers and the relay finish (each within the
/// grace period: what is cut short resumes from its cursor), then flushes the store.
async fn stop(config: &ServeConfig, components: Components, graceful: GracefulShutdown) {
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    let Components {
        store,
        plugins,
        relay,
        listener,
        stop,
        ..
    } = components;
    drop(listener);
    stop.send_replace(true);
    let grace = config.shutdown_grace();
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing the remaining connections");
    }
    // a watcher's call in flight ends within its deadline; the gateway does not wait longer
    // than the grace period for it (the watcher resumes from its cursor)
    if tokio::time::timeout(grace, plugins.stop()).await.is_err() {
        tracing::warn!("a watcher did not stop in time; it resumes from its cursor");
    }
    if let Some((_, task)) = relay
        && tokio::time::timeout(grace, task).await.is_err()
    {
        tracing::warn!("the Kafka relay did not stop in time; it resumes from its cursor");
    }
    store.close().await;
    tracing::info!("store flushed; bye");
}

/// Answers a connection beyond `EPR_MAX_CONNECTIONS` with a 503 and closes it at once: one
/// non-blocking write into the fresh socket's empty send buffer, no task and no wait, so that a
/// flood of connections holds nothing.
fn refuse_connection(stream: TcpStream) {
    metrics::counter!(METRIC_CONNECTIONS_REFUSED).increment(1);
    const BODY: &str = r#"{"data":null,"errors":["service unavailable: too many open connections (EPR_MAX_CONNECTIONS); try again"]}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// Metric: connections refused because `EPR_MAX_CONNECTIONS` were open.
pub const METRIC_CONNECTIONS_REFUSED: &str = "epr_http_connections_refused_total";
