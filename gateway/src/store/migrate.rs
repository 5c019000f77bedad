//! `epr-gateway migrate`: copies an embedded store into PostgreSQL, everything as it is (ids,
//! times, the log with its sequence numbers, cursors, dead letters, plugins with their
//! components), then verifies the copy: counts and a SHA-256 over every key and value, read back
//! from both. Each batch is its own transaction, in key order, so an interrupted run leaves a
//! prefix of each kind, and the next run goes on after it. Group memberships are derived from
//! the copied groups.

use std::ops::Bound;
use std::path::Path;

use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use super::codec::decode;
use super::keys;
use super::postgres::{PgOpenError, PgOptions, PgStore};
use super::sled_store::{OpenError, SledOptions, SledStore};
use super::trees::{TreeId, Trees};
use crate::registry::error::StoreError;
use crate::registry::model::{Event, Receiver};

/// Rows copied per transaction.
const BATCH: usize = 1000;

/// Why a migration failed.
#[derive(Debug, Error)]
pub enum MigrateError {
    /// The embedded store could not be opened (e.g. a gateway runs on it).
    #[error(transparent)]
    Source(#[from] OpenError),
    /// The database could not be opened.
    #[error(transparent)]
    Target(#[from] PgOpenError),
    /// Reading or writing failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database holds a log this store did not write.
    #[error(
        "the database's log goes to sequence number {target}, the embedded store's to {embedded}: it holds another store's data (migrate into an empty database)"
    )]
    Foreign {
        /// The database's last sequence number.
        target: u64,
        /// The embedded store's.
        embedded: u64,
    },
}

/// One kind of object, as copied and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// What it is (`events`, `log`...).
    pub kind: &'static str,
    /// How many the embedded store holds.
    pub source: u64,
    /// How many the database holds after the copy.
    pub target: u64,
    /// How many this run copied.
    pub copied: u64,
}

/// What a migration did.
#[derive(Debug)]
pub struct Report {
    /// Per kind.
    pub kinds: Vec<Copied>,
    /// SHA-256 over every key and value of the embedded store, hex.
    pub source_checksum: String,
    /// The same over the database, read back.
    pub target_checksum: String,
}

impl Report {
    /// Whether the database holds exactly what the embedded store holds.
    pub fn verified(&self) -> bool {
        self.source_checksum == self.target_checksum
            && self.kinds.iter().all(|k| k.source == k.target)
    }
}

/// The kinds of object, in the order they are copied.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Receivers,
    Groups,
    Events,
    Dedup,
    Settings,
    Blobs,
    Log,
}

const KINDS: [Kind; 7] = [
    Kind::Receivers,
    Kind::Groups,
    Kind::Events,
    Kind::Dedup,
    Kind::Settings,
    Kind::Blobs,
    Kind::Log,
];

type Row = Vec<Box<dyn ToSql + Sync + Send>>;

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Receivers => "receivers",
            Kind::Groups => "groups",
            Kind::Events => "events",
            Kind::Dedup => "ingestion origins",
            Kind::Settings => "settings",
            Kind::Blobs => "blobs",
            Kind::Log => "log",
        }
    }

    fn tree(self) -> TreeId {
        match self {
            Kind::Receivers => TreeId::Receivers,
            Kind::Groups => TreeId::Groups,
            Kind::Events => TreeId::Events,
            Kind::Dedup => TreeId::Dedup,
            Kind::Settings => TreeId::Settings,
            Kind::Blobs => TreeId::Blobs,
            Kind::Log => TreeId::Log,
        }
    }

    /// Every row as (key, value) bytes in key order, as the embedded store has them.
    fn read_back(self) -> &'static str {
        match self {
            Kind::Receivers => {
                "SELECT convert_to(id, 'UTF8'), convert_to(doc, 'UTF8') FROM epr_receivers ORDER BY id"
            }
            Kind::Groups => {
                "SELECT convert_to(id, 'UTF8'), convert_to(doc, 'UTF8') FROM epr_groups ORDER BY id"
            }
            Kind::Events => {
                "SELECT convert_to(id, 'UTF8'), convert_to(doc, 'UTF8') FROM epr_events ORDER BY id"
            }
            Kind::Dedup => {
                "SELECT origin, convert_to(value, 'UTF8') FROM epr_dedup ORDER BY origin"
            }
            Kind::Settings => {
                "SELECT convert_to(key, 'UTF8'), convert_to(value, 'UTF8') FROM epr_settings ORDER BY key"
            }
            Kind::Blobs => "SELECT convert_to(key, 'UTF8'), value FROM epr_blobs ORDER BY key",
            Kind::Log => {
                "SELECT int8send(seq), convert_to(entry, 'UTF8') FROM epr_log WHERE seq IS NOT NULL ORDER BY seq"
            }
        }
    }

    /// The greatest key copied so far, as the embedded store's key bytes (no row: none).
    fn last_copied(self) -> &'static str {
        match self {
            Kind::Receivers => {
                "SELECT convert_to(id, 'UTF8') FROM epr_receivers ORDER BY id DESC LIMIT 1"
            }
            Kind::Groups => {
                "SELECT convert_to(id, 'UTF8') FROM epr_groups ORDER BY id DESC LIMIT 1"
            }
            Kind::Events => {
                "SELECT convert_to(id, 'UTF8') FROM epr_events ORDER BY id DESC LIMIT 1"
            }
            Kind::Dedup => "SELECT origin FROM epr_dedup ORDER BY origin DESC LIMIT 1",
            Kind::Settings => {
                "SELECT convert_to(key, 'UTF8') FROM epr_settings ORDER BY key DESC LIMIT 1"
            }
            Kind::Blobs => {
                "SELECT convert_to(key, 'UTF8') FROM epr_blobs ORDER BY key DESC LIMIT 1"
            }
            Kind::Log => {
                "SELECT int8send(seq) FROM epr_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
            }
        }
    }

    fn insert(self) -> &'static str {
        match self {
            Kind::Receivers => {
                "INSERT INTO epr_receivers (id, kind, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
            }
            Kind::Groups => {
                "INSERT INTO epr_groups (id, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            }
            Kind::Events => {
                "INSERT INTO epr_events (id, receiver_id, name, version, release, platform_id, package, success, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
            }
            Kind::Dedup => {
                "INSERT INTO epr_dedup (origin, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            }
            Kind::Settings => {
                "INSERT INTO epr_settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            }
            Kind::Blobs => {
                "INSERT INTO epr_blobs (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            }
            Kind::Log => {
                "INSERT INTO epr_log (id, seq, entry) VALUES ($1, $1, $2) ON CONFLICT DO NOTHING"
            }
        }
    }

    /// The parameters of [`Self::insert`] for one entry of the embedded store.
    fn row(self, key: &[u8], value: &[u8]) -> Result<Row, StoreError> {
        let text = |bytes: &[u8]| {
            String::from_utf8(bytes.to_vec())
                .map_err(|e| StoreError::new(format!("a {} entry is not UTF-8: {e}", self.name())))
        };
        Ok(match self {
            Kind::Receivers => {
                let receiver: Receiver = decode(value)?;
                vec![
                    Box::new(receiver.id),
                    Box::new(receiver.kind),
                    Box::new(text(value)?),
                ]
            }
            Kind::Events => {
                let event: Event = decode(value)?;
                vec![
                    Box::new(event.id),
                    Box::new(event.event_receiver_id),
                    Box::new(event.name),
                    Box::new(event.version),
                    Box::new(event.release),
                    Box::new(event.platform_id),
                    Box::new(event.package),
                    Box::new(event.success),
                    Box::new(text(value)?),
                ]
            }
            Kind::Groups | Kind::Settings => vec![Box::new(text(key)?), Box::new(text(value)?)],
            Kind::Dedup => vec![Box::new(key.to_vec()), Box::new(text(value)?)],
            Kind::Blobs => vec![Box::new(text(key)?), Box::new(value.to_vec())],
            Kind::Log => vec![Box::new(keys::log_seq(key) as i64), Box::new(text(value)?)],
        })
    }
}

/// Feeds one (key, value) pair into a checksum: lengths first, so pairs cannot run together.
fn absorb(hash: &mut Sha256, key: &[u8], value: &[u8]) {
    hash.update((key.len() as u64).to_be_bytes());
    hash.update(key);
    hash.update((value.len() as u64).to_be_bytes());
    hash.update(value);
}

/// Copies the embedded store in `from` into the PostgreSQL database at `to` (its tables made
/// if missing), then verifies the copy; `progress` hears what is happening.
pub async fn migrate(
    from: &Path,
    to: &str,
    progress: &dyn Fn(&str),
) -> Result<Report, MigrateError> {
    let source = SledStore::open(from, &SledOptions::default())?;
    let target = PgStore::open(
        to,
        &PgOptions {
            read_connections: 1,
            writers: 1,
        },
    )
    .await?;
    target.close().await;
    let mut client = connect(to).await?;
    let trees = source.trees();
    let source_head = trees
        .last(TreeId::Log)?
        .map_or(0, |(key, _)| keys::log_seq(&key));
    let target_head = client
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM epr_log", &[])
        .await
        .map_err(super::postgres::pg_error)?
        .get::<_, i64>(0) as u64;
    if target_head > source_head {
        return Err(MigrateError::Foreign {
            target: target_head,
            embedded: source_head,
        });
    }
    let mut copied = Vec::new();
    for kind in KINDS {
        let n = copy(trees, &mut client, kind).await?;
        progress(&format!("{}: {n} copied", kind.name()));
        copied.push(n);
    }
    client
        .batch_execute(DERIVE)
        .await
        .map_err(super::postgres::pg_error)?;
    let (mut source_hash, mut target_hash) = (Sha256::new(), Sha256::new());
    let mut kinds = Vec::new();
    for (kind, copied) in KINDS.into_iter().zip(copied) {
        source_hash.update(kind.name());
        target_hash.update(kind.name());
        let mut source_count = 0;
        for item in trees.range(kind.tree(), Bound::Unbounded, Bound::Unbounded) {
            let (key, value) = item?;
            absorb(&mut source_hash, &key, &value);
            source_count += 1;
        }
        // streamed: a table may not fit in memory
        let rows = client
            .query_raw(kind.read_back(), std::iter::empty::<i32>())
            .await
            .map_err(super::postgres::pg_error)?;
        futures::pin_mut!(rows);
        let mut target_count = 0;
        while let Some(row) = futures::StreamExt::next(&mut rows).await {
            let row = row.map_err(super::postgres::pg_error)?;
            absorb(&mut target_hash, row.get(0), row.get(1));
            target_count += 1;
        }
        kinds.push(Copied {
            kind: kind.name(),
            source: source_count,
            target: target_count,
            copied,
        });
    }
    source.close().await;
    Ok(Report {
        kinds,
        source_checksum: hex::encode(source_hash.finalize()),
        target_checksum: hex::encode(target_hash.finalize()),
    })
}

/// What is derived rather than copied: group memberships and the log's row counter.
const DERIVE: &str = "
INSERT INTO epr_group_members (receiver_id, group_id)
    SELECT jsonb_array_elements_text(doc::jsonb -> 'event_receiver_ids'), id FROM epr_groups
    ON CONFLICT DO NOTHING;
SELECT setval('epr_log_id_seq', GREATEST((SELECT MAX(id) FROM epr_log), 1));
";

/// Copies the entries of `kind` after the last one copied before; how many it copied.
async fn copy(trees: &Trees, client: &mut Client, kind: Kind) -> Result<u64, MigrateError> {
    let pg = super::postgres::pg_error;
    let last: Option<Vec<u8>> = client
        .query_opt(kind.last_copied(), &[])
        .await
        .map_err(pg)?
        .map(|row| row.get(0));
    let lower = match &last {
        Some(key) => Bound::Excluded(key.as_slice()),
        None => Bound::Unbounded,
    };
    let insert = client.prepare(kind.insert()).await.map_err(pg)?;
    let mut entries = trees.range(kind.tree(), lower, Bound::Unbounded).peekable();
    let mut copied = 0;
    while entries.peek().is_some() {
        let mut rows = Vec::with_capacity(BATCH);
        for item in entries.by_ref().take(BATCH) {
            let (key, value) = item?;
            rows.push(kind.row(&key, &value)?);
        }
        let tx = client.transaction().await.map_err(pg)?;
        let inserts = rows.iter().map(|row| {
            let params: Vec<&(dyn ToSql + Sync)> = row
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let (tx, insert) = (&tx, &insert);
            async move { tx.execute(insert, &params).await }
        });
        // sent together: the connection pipelines them
        futures::future::try_join_all(inserts).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        copied += rows.len() as u64;
    }
    Ok(copied)
}

/// A connection of its own to the database at `url`.
async fn connect(url: &str) -> Result<Client, StoreError> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::new(format!("invalid database URL: {e}")))?;
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(super::postgres::pg_error)?;
    tokio::spawn(connection);
    Ok(client)
}
