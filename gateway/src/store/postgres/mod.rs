//! [`PgStore`]: the registry's [`Store`] on PostgreSQL, which any number of gateway replicas
//! share. Units of work run on writer threads, one transaction each (`writer.rs`); the log is
//! numbered after commit by one sequencer step at a time (`sequencer.rs`); reads go through a
//! pool of connections. A 2xx means the transaction committed, as durable as the server's
//! `synchronous_commit` makes commits.

mod errors;
mod leases;
pub(crate) mod locks;
mod schema;
mod sequencer;
mod writer;

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use super::codec::decode;
use crate::registry::error::{RegistryError, StoreError};
use crate::registry::model::{Event, Group, Nvrpp, Receiver};
use crate::registry::port::{Committed, Lease, LogEntry, Store, Work};
use crate::registry::query::{DefinitionFilter, EventFilter, Gather, Page, PageBytes, Scan};
pub(crate) use errors::pg_error;
use errors::pool_error;

/// Most rows one query of a search reads.
const MAX_CHUNK: i64 = 1000;
/// How long the database's size is taken as known (reading it walks the database's files, and
/// `/healthz/status` and `/metrics` are open endpoints).
const SIZE_KNOWN_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// How a PostgreSQL store is set up.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections of the read pool.
    pub read_connections: usize,
    /// Writer threads (each with a connection): units of work in flight at once.
    pub writers: usize,
}

/// Why the store could not be opened.
#[derive(Debug, Error)]
pub enum PgOpenError {
    /// The URL does not parse.
    #[error("invalid database URL (expected postgres://user[:password]@host[:port]/database): {0}")]
    Url(String),
    /// The server could not be reached or refused the connection, or the schema could not be
    /// made.
    #[error("cannot open the PostgreSQL store: {0}")]
    Store(#[from] StoreError),
    /// A thread could not be started.
    #[error("cannot start the PostgreSQL writers: {0}")]
    Thread(#[from] std::io::Error),
}

/// Receivers, events, groups and the log in a PostgreSQL database.
pub struct PgStore {
    location: String,
    config: tokio_postgres::Config,
    pool: deadpool_postgres::Pool,
    progress: Arc<sequencer::Progress>,
    writer: Mutex<Option<mpsc::Sender<writer::Job>>>,
    /// The database's size and when it was read.
    size: Mutex<Option<(std::time::Instant, u64)>>,
    durable: watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
}

impl PgStore {
    /// Connects to the database at `url`, creates or migrates its tables, and starts the
    /// writers and the sequencer.
    pub async fn open(url: &str, options: &PgOptions) -> Result<Self, PgOpenError> {
        let config =
            tokio_postgres::Config::from_str(url).map_err(|e| PgOpenError::Url(e.to_string()))?;
        let (mut client, connection) = config.connect(NoTls).await.map_err(pg_error)?;
        let driver = tokio::spawn(connection);
        let encoding: String = client
            .query_one("SHOW server_encoding", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        if encoding != "UTF8" {
            return Err(StoreError::new(format!(
                "the database's encoding is {encoding}: the gateway needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8')"
            ))
            .into());
        }
        schema::migrate(&mut client).await?;
        let head: i64 = client
            .query_one(sequencer::HEAD, &[])
            .await
            .map_err(pg_error)?
            .get(0);
        drop(client);
        driver.abort();

        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let timeout = Some(std::time::Duration::from_secs(10));
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(options.read_connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .build()
            .map_err(|e| StoreError::new(format!("cannot make the connection pool: {e}")))?;
        let (durable_tx, durable) = watch::channel(head as u64);
        let progress = Arc::new(sequencer::Progress::default());
        let writers = Arc::new(writer::Writers {
            config: config.clone(),
            ids: Mutex::new(ulid::Generator::new()),
        });
        let writer = writer::spawn(options.writers.max(1), writers)?;
        let tasks = vec![
            tokio::spawn(sequencer::number(
                pool.clone(),
                progress.clone(),
                durable_tx.clone(),
            )),
            tokio::spawn(sequencer::follow(config.clone(), durable_tx)),
        ];
        Ok(PgStore {
            location: location(&config),
            config,
            progress,
            pool,
            writer: Mutex::new(Some(writer)),
            size: Mutex::new(None),
            durable,
            tasks,
        })
    }

    /// Where the database is, as a URL without the password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// The rows of `sql` with `params` (prepared once per pooled connection).
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
        client.query(&statement, params).await.map_err(pg_error)
    }

    /// The object in the first column of the first row of `sql`, if any; `key` is the text
    /// the row is looked up by (nothing is stored under a key holding a NUL).
    async fn one<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        key: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, StoreError> {
        if !storable(key) {
            return Ok(None);
        }
        let rows = self.query(sql, params).await?;
        rows.first()
            .map(|row| decode(row.get::<_, &str>(0).as_bytes()))
            .transpose()
    }

    /// Objects of `table` (columns `id`, `doc`) with `conditions` on its columns (`$1`...,
    /// from `params`), newest first, gathered into one page (see [`Gather`]) of those that
    /// `keep` accepts. Reads in
    /// chunks along the index the conditions select: the first as large as the page, each
    /// next one four times larger (up to [`MAX_CHUNK`]), so that a filter that the index does
    /// not serve (few matches among many rows) costs a few queries, not hundreds.
    async fn scan<T: serde::de::DeserializeOwned + PageBytes>(
        &self,
        table: &str,
        conditions: &[&str],
        params: &[&(dyn ToSql + Sync)],
        page: &Page,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Scan<T>, StoreError> {
        let mut chunk = (page.limit as i64 + 1).clamp(16, MAX_CHUNK);
        let mut before = page.after.clone();
        let mut gather = Gather::new(page);
        loop {
            // no stored id holds a NUL: below `abc\0...` is at most `abc`
            let bound = before.as_deref().map(|b| match b.split_once('\0') {
                Some((head, _)) => ("<=", head),
                None => ("<", b),
            });
            let mut all: Vec<String> = conditions.iter().map(|c| c.to_string()).collect();
            let mut values: Vec<&(dyn ToSql + Sync)> = params.to_vec();
            let bound_text;
            if let Some((operator, text)) = bound {
                bound_text = text.to_owned();
                values.push(&bound_text);
                all.push(format!("id {operator} ${}", values.len()));
            }
            values.push(&chunk);
            let filter = match all.is_empty() {
                true => String::new(),
                false => format!("WHERE {}", all.join(" AND ")),
            };
            let sql = format!(
                "SELECT id, doc FROM {table} {filter} ORDER BY id DESC LIMIT ${}",
                values.len()
            );
            let rows = self.query(&sql, &values).await?;
            for row in &rows {
                let id: &str = row.get(0);
                let object: T = decode(row.get::<_, &str>(1).as_bytes())?;
                let matched = keep(&object).then_some(object);
                if let Some(scan) = gather.look_at(id, matched) {
                    return Ok(scan);
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == chunk => {
                    before = Some(last.get(0));
                    chunk = (chunk * 4).min(MAX_CHUNK);
                }
                _ => return Ok(gather.finish()),
            }
        }
    }

    /// Stops the writers (after the units of work they run) and the sequencer.
    pub async fn close(&self) {
        drop(crate::sync::lock(&self.writer).take());
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Whether `text` can be in a text column: PostgreSQL's text holds no NUL, so a key, id or
/// name with one is stored nowhere (the registry refuses them in what it stores) and a read of
/// it finds nothing, without asking the server, which would refuse the query.
fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// Whether a filter of exact matches can match nothing stored (one of its fields holds a NUL).
fn unmatchable<'a>(fields: impl IntoIterator<Item = &'a Option<String>>) -> bool {
    fields
        .into_iter()
        .any(|field| field.as_deref().is_some_and(|f| !storable(f)))
}

/// `config` as a URL without its password.
fn location(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or_default();
    let database = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{database}")
}

/// The smallest string greater than every string that starts with `prefix`, in the byte (code
/// point) order of `COLLATE "C"`; `None` when there is none.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn receiver(&self, id: &str) -> Result<Option<Receiver>, StoreError> {
        self.one("SELECT doc FROM epr_receivers WHERE id = $1", id, &[&id])
            .await
    }

    async fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        self.one("SELECT doc FROM epr_events WHERE id = $1", id, &[&id])
            .await
    }

    async fn group(&self, id: &str) -> Result<Option<Group>, StoreError> {
        self.one("SELECT doc FROM epr_groups WHERE id = $1", id, &[&id])
            .await
    }

    async fn find_receivers(
        &self,
        filter: &DefinitionFilter,
        page: &Page,
    ) -> Result<Scan<Receiver>, StoreError> {
        let keep = |r: &Receiver| filter.matches_receiver(r);
        if unmatchable(filter.fields()) {
            return Ok(Scan::complete(Vec::new()));
        }
        match &filter.id {
            Some(id) => Ok(Scan::complete(
                self.receiver(id).await?.into_iter().filter(keep).collect(),
            )),
            None => self.scan("epr_receivers", &[], &[], page, keep).await,
        }
    }

    async fn find_events(
        &self,
        filter: &EventFilter,
        page: &Page,
    ) -> Result<Scan<Event>, StoreError> {
        let keep = |e: &Event| filter.matches(e);
        if unmatchable(filter.fields()) {
            return Ok(Scan::complete(Vec::new()));
        }
        if let Some(id) = &filter.id {
            return Ok(Scan::complete(
                self.event(id).await?.into_iter().filter(keep).collect(),
            ));
        }
        // the most selective index the filter allows, as in the embedded store
        let (conditions, params): (&[&str], Vec<&(dyn ToSql + Sync)>) = match filter {
            EventFilter {
                name: Some(n),
                version: Some(v),
                release: Some(r),
                platform_id: Some(p),
                package: Some(k),
                ..
            } => (
                &[
                    "name = $1",
                    "version = $2",
                    "release = $3",
                    "platform_id = $4",
                    "package = $5",
                ],
                vec![n, v, r, p, k],
            ),
            EventFilter {
                event_receiver_id: Some(r),
                ..
            } => (&["receiver_id = $1"], vec![r]),
            EventFilter { name: Some(n), .. } => (&["name = $1"], vec![n]),
            _ => (&[], vec![]),
        };
        self.scan("epr_events", conditions, &params, page, keep)
            .await
    }

    async fn find_groups(
        &self,
        filter: &DefinitionFilter,
        page: &Page,
    ) -> Result<Scan<Group>, StoreError> {
        let keep = |g: &Group| filter.matches_group(g);
        if unmatchable(filter.fields()) {
            return Ok(Scan::complete(Vec::new()));
        }
        match &filter.id {
            Some(id) => Ok(Scan::complete(
                self.group(id).await?.into_iter().filter(keep).collect(),
            )),
            None => self.scan("epr_groups", &[], &[], page, keep).await,
        }
    }

    async fn receivers_of_type(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        if !storable(kind) {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                "SELECT id FROM epr_receivers WHERE kind = $1 ORDER BY id",
                &[&kind],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    async fn latest_event(
        &self,
        receiver_id: &str,
        nvrpp: &Nvrpp,
    ) -> Result<Option<Event>, StoreError> {
        let [n, v, r, p, k] = nvrpp.parts();
        if !nvrpp.parts().iter().all(|part| storable(part)) {
            return Ok(None);
        }
        self.one(
            "SELECT doc FROM epr_events WHERE receiver_id = $1 AND name = $2 AND version = $3
             AND release = $4 AND platform_id = $5 AND package = $6 ORDER BY id DESC LIMIT 1",
            receiver_id,
            &[&receiver_id, &n, &v, &r, &p, &k],
        )
        .await
    }

    async fn setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.one(
            "SELECT value FROM epr_settings WHERE key = $1",
            key,
            &[&key],
        )
        .await
    }

    async fn settings(&self, prefix: &str) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        if !storable(prefix) {
            return Ok(Vec::new());
        }
        let rows = match prefix_end(prefix) {
            Some(end) => {
                self.query(
                    "SELECT key, value FROM epr_settings WHERE key >= $1 AND key < $2 ORDER BY key",
                    &[&prefix, &end],
                )
                .await?
            }
            None => {
                self.query(
                    "SELECT key, value FROM epr_settings WHERE key >= $1 ORDER BY key",
                    &[&prefix],
                )
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                let value = decode(row.get::<_, &str>(1).as_bytes())?;
                Ok((row.get(0), value))
            })
            .collect()
    }

    async fn blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !storable(key) {
            return Ok(None);
        }
        let rows = self
            .query("SELECT value FROM epr_blobs WHERE key = $1", &[&key])
            .await?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    fn commit(&self, work: Work) -> BoxFuture<'static, Result<Committed, RegistryError>> {
        let writer = crate::sync::lock(&self.writer).clone();
        let progress = self.progress.clone();
        Box::pin(async move {
            let closed = || RegistryError::Store(StoreError::new("the store is closed"));
            let (reply, answer) = oneshot::channel();
            writer
                .ok_or_else(closed)?
                .send((work, reply))
                .await
                .map_err(|_| closed())?;
            let (result, logged) = answer.await.map_err(|_| closed())?;
            if result.is_ok() && logged {
                progress.numbered().await;
            }
            result
        })
    }

    async fn log_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, LogEntry)>, StoreError> {
        let rows = self
            .query(
                "SELECT seq, entry FROM epr_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&(after as i64), &(limit as i64)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let entry = decode(row.get::<_, &str>(1).as_bytes())?;
                Ok((row.get::<_, i64>(0) as u64, entry))
            })
            .collect()
    }

    fn durable_seq(&self) -> watch::Receiver<u64> {
        self.durable.clone()
    }

    async fn check(&self) -> Result<(), StoreError> {
        if crate::sync::lock(&self.writer).is_none() {
            return Err(StoreError::new("the store is closed"));
        }
        self.query("SELECT 1", &[]).await.map(drop)
    }

    async fn size_on_disk(&self) -> Result<u64, StoreError> {
        if let Some((at, bytes)) = *crate::sync::lock(&self.size)
            && at.elapsed() < SIZE_KNOWN_FOR
        {
            return Ok(bytes);
        }
        let rows = self
            .query("SELECT pg_database_size(current_database())", &[])
            .await?;
        let bytes = rows.first().map_or(0, |row| row.get::<_, i64>(0) as u64);
        *crate::sync::lock(&self.size) = Some((std::time::Instant::now(), bytes));
        Ok(bytes)
    }

    async fn close(&self) {
        PgStore::close(self).await;
    }

    async fn lease(&self, name: &str) -> Lease {
        leases::acquire(&self.config, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_every_string_with_the_prefix() {
        assert_eq!(prefix_end("plugin/"), Some("plugin0".into()));
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_end("\u{D7FF}"), Some("\u{E000}".into()));
        assert_eq!(prefix_end(""), None);
        assert!("plugin/x\u{10FFFF}" < prefix_end("plugin/").unwrap().as_str());
    }
}
