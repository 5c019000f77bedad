//! [`SledStore`]: the registry's [`Store`] on sled.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

use super::codec::decode;
use super::keys;
use super::trees::{Entry, TreeId, Trees, sled_error};
use super::writer::{self, Request, WriteHealth};
use crate::registry::error::{RegistryError, StoreError};
use crate::registry::model::{Event, Group, Nvrpp, Receiver};
use crate::registry::port::{Committed, Lease, LogEntry, Store, Work};
use crate::registry::query::{DefinitionFilter, EventFilter, Gather, Page, PageBytes, Scan};

/// Why the store could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// Another process holds the data directory.
    #[error(
        "data directory {0} is in use by another process (is another epr-gateway running on it?)"
    )]
    Locked(PathBuf),
    /// sled could not open the database.
    #[error("cannot open the store in {dir}: {source}")]
    Sled {
        /// The data directory.
        dir: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// The store's contents could not be read.
    #[error("cannot read the store in {dir}: {source}")]
    Store {
        /// The data directory.
        dir: PathBuf,
        /// What went wrong.
        source: StoreError,
    },
    /// The writer thread could not be started.
    #[error("cannot start the store writer: {0}")]
    Thread(#[from] std::io::Error),
}

/// How the embedded store is opened.
#[derive(Debug, Clone, Copy)]
pub struct SledOptions {
    /// Bytes of the store's pages sled keeps in memory (its page cache).
    pub cache_bytes: u64,
}

impl SledOptions {
    /// A page cache of `mb` MiB.
    pub fn with_cache_mb(mb: u64) -> Self {
        SledOptions {
            cache_bytes: mb * 1024 * 1024,
        }
    }
}

impl Default for SledOptions {
    /// The gateway's default cache, [`DEFAULT_CACHE_MB`] MiB.
    fn default() -> Self {
        SledOptions::with_cache_mb(DEFAULT_CACHE_MB)
    }
}

/// The default size of sled's page cache in MiB (`EPR_CACHE_MB`).
pub const DEFAULT_CACHE_MB: u64 = 256;

/// Receivers, events, groups and the log in a sled database in one data directory.
pub struct SledStore {
    trees: Arc<Trees>,
    writer: mpsc::Sender<Request>,
    durable: watch::Receiver<u64>,
    write_health: WriteHealth,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`; fails if another process has it open.
    pub fn open(dir: &Path, options: &SledOptions) -> Result<Self, OpenError> {
        let sled_error = |source: sled::Error| {
            if source.to_string().contains("could not acquire lock") {
                OpenError::Locked(dir.to_owned())
            } else {
                OpenError::Sled {
                    dir: dir.to_owned(),
                    source,
                }
            }
        };
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(sled_error)?;
        let trees = Arc::new(Trees::open(db).map_err(sled_error)?);
        let last_seq = match trees.last(TreeId::Log).map_err(|e| OpenError::Store {
            dir: dir.to_owned(),
            source: e,
        })? {
            Some((key, _)) => keys::log_seq(&key),
            None => 0,
        };
        let (durable_tx, durable) = watch::channel(last_seq);
        let write_health = WriteHealth::default();
        let writer = writer::spawn(trees.clone(), last_seq, durable_tx, write_health.clone())?;
        Ok(SledStore {
            trees,
            writer,
            durable,
            write_health,
        })
    }

    /// The trees, for a copy of the whole store (`migrate`).
    pub(crate) fn trees(&self) -> &Trees {
        &self.trees
    }

    /// Finishes pending work, flushes, and stops the writer; later commits fail.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.writer.send(Request::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }

    /// Objects of tree `tree` in reverse key order among keys starting with `prefix` and, when
    /// `after` is given, below `prefix + after`: (key, value) pairs.
    fn scan_rev<'a>(
        &'a self,
        tree: TreeId,
        prefix: Vec<u8>,
        after: Option<&str>,
    ) -> impl Iterator<Item = Result<Entry, StoreError>> + use<'a> {
        let end = match after {
            Some(after) => Some([prefix.as_slice(), after.as_bytes()].concat()),
            None => keys::prefix_end(&prefix),
        };
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.trees
            .range(tree, Bound::Included(&prefix), upper)
            .rev()
    }

    /// Objects of a main tree (keyed by id) matching `keep`, newest first, gathered into one
    /// page (see [`Gather`]).
    fn find_in<T: serde::de::DeserializeOwned + PageBytes>(
        &self,
        tree: TreeId,
        id: Option<&str>,
        page: &Page,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Scan<T>, StoreError> {
        if let Some(id) = id {
            let found: Option<T> = self.trees.get_json(tree, id.as_bytes())?;
            return Ok(Scan::complete(
                found.into_iter().filter(|t| keep(t)).collect(),
            ));
        }
        let mut gather = Gather::new(page);
        for item in self.scan_rev(tree, Vec::new(), page.after.as_deref()) {
            let (key, value) = item?;
            let object: T = decode(&value)?;
            let matched = keep(&object).then_some(object);
            if let Some(scan) = gather.look_at(&String::from_utf8_lossy(&key), matched) {
                return Ok(scan);
            }
        }
        Ok(gather.finish())
    }
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn receiver(&self, id: &str) -> Result<Option<Receiver>, StoreError> {
        self.trees.get_json(TreeId::Receivers, id.as_bytes())
    }

    async fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        self.trees.get_json(TreeId::Events, id.as_bytes())
    }

    async fn group(&self, id: &str) -> Result<Option<Group>, StoreError> {
        self.trees.get_json(TreeId::Groups, id.as_bytes())
    }

    async fn latest_event(
        &self,
        receiver_id: &str,
        nvrpp: &Nvrpp,
    ) -> Result<Option<Event>, StoreError> {
        let latest = self
            .trees
            .get(TreeId::Latest, &keys::latest(receiver_id, nvrpp))?;
        // the value: the event's id, then its success byte
        match latest.as_deref().and_then(|v| v.split_last()) {
            Some((_, id)) => self.trees.get_json(TreeId::Events, id),
            None => Ok(None),
        }
    }

    async fn find_receivers(
        &self,
        filter: &DefinitionFilter,
        page: &Page,
    ) -> Result<Scan<Receiver>, StoreError> {
        let keep = |r: &Receiver| filter.matches_receiver(r);
        self.find_in(TreeId::Receivers, filter.id.as_deref(), page, keep)
    }

    async fn find_groups(
        &self,
        filter: &DefinitionFilter,
        page: &Page,
    ) -> Result<Scan<Group>, StoreError> {
        let keep = |g: &Group| filter.matches_group(g);
        self.find_in(TreeId::Groups, filter.id.as_deref(), page, keep)
    }

    /// Uses the most selective index the filter allows: the NVRPP index when all five parts are
    /// given, else the receiver index, else the name index, else a scan of all events.
    async fn find_events(
        &self,
        filter: &EventFilter,
        page: &Page,
    ) -> Result<Scan<Event>, StoreError> {
        let index = match filter {
            EventFilter {
                name: Some(n),
                version: Some(v),
                release: Some(r),
                platform_id: Some(p),
                package: Some(k),
                ..
            } if filter.id.is_none() => {
                Some((TreeId::EventsByNvrpp, keys::prefix(&[n, v, r, p, k])))
            }
            EventFilter {
                event_receiver_id: Some(r),
                id: None,
                ..
            } => Some((TreeId::EventsByReceiver, keys::prefix(&[r]))),
            EventFilter {
                name: Some(n),
                id: None,
                ..
            } => Some((TreeId::EventsByName, keys::prefix(&[n]))),
            _ => None,
        };
        let Some((tree, prefix)) = index else {
            let keep = |e: &Event| filter.matches(e);
            return self.find_in(TreeId::Events, filter.id.as_deref(), page, keep);
        };
        let prefix_len = prefix.len();
        let mut gather = Gather::new(page);
        for item in self.scan_rev(tree, prefix, page.after.as_deref()) {
            let (key, _) = item?;
            let id = keys::entry_id(&key, prefix_len);
            let event: Event = self
                .trees
                .get_json(TreeId::Events, id.as_bytes())?
                .ok_or_else(|| StoreError::new(format!("index points to missing event {id}")))?;
            let matched = filter.matches(&event).then_some(event);
            if let Some(scan) = gather.look_at(&id, matched) {
                return Ok(scan);
            }
        }
        Ok(gather.finish())
    }

    async fn receivers_of_type(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        let prefix = keys::prefix(&[kind]);
        self.trees
            .scan_prefix(TreeId::ReceiversByType, &prefix)
            .map(|item| {
                let (key, _) = item?;
                Ok(keys::entry_id(&key, prefix.len()))
            })
            .collect()
    }

    async fn setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.trees.get_json(TreeId::Settings, key.as_bytes())
    }

    async fn settings(&self, prefix: &str) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        self.trees
            .scan_prefix(TreeId::Settings, prefix.as_bytes())
            .map(|item| {
                let (key, value) = item?;
                Ok((String::from_utf8_lossy(&key).into_owned(), decode(&value)?))
            })
            .collect()
    }

    async fn blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .trees
            .get(TreeId::Blobs, key.as_bytes())?
            .map(|v| v.to_vec()))
    }

    fn commit(&self, work: Work) -> BoxFuture<'static, Result<Committed, RegistryError>> {
        let writer = self.writer.clone();
        Box::pin(async move {
            let closed = || RegistryError::Store(StoreError::new("the store is closed"));
            let (reply, answer) = oneshot::channel();
            writer
                .send(Request::Work(work, reply))
                .await
                .map_err(|_| closed())?;
            answer.await.map_err(|_| closed())?
        })
    }

    async fn log_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, LogEntry)>, StoreError> {
        let durable = *self.durable.borrow();
        if after >= durable {
            return Ok(Vec::new());
        }
        let (first, last) = (keys::log_key(after + 1), keys::log_key(durable));
        self.trees
            .range(TreeId::Log, Bound::Included(&first), Bound::Included(&last))
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                Ok((keys::log_seq(&key), decode(&value)?))
            })
            .collect()
    }

    fn durable_seq(&self) -> watch::Receiver<u64> {
        self.durable.clone()
    }

    async fn check(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::new("the store writer has stopped"));
        }
        if let Some(error) = self.write_health.failing() {
            return Err(StoreError::new(format!(
                "writing to disk fails (a failed flush is retried, its writes wait): {error}"
            )));
        }
        self.trees.last(TreeId::Log)?;
        Ok(())
    }

    async fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.trees.db.size_on_disk().map_err(sled_error)
    }

    async fn close(&self) {
        SledStore::close(self).await;
    }

    async fn lease(&self, _name: &str) -> Lease {
        // one process per data directory (sled's lock): every lease is this gateway's
        Lease::sole()
    }
}
