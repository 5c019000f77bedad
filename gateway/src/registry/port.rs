//! The storage port: what the business rules need from a store, and nothing else.
//!
//! A store runs units of work ([`Work`]) one at a time, in the order it accepts them; each unit
//! sees everything committed before it and commits atomically with its log entries. The future
//! returned by [`Store::commit`] resolves only once the unit is durable.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::error::{RegistryError, StoreError};
use super::message::Message;
use super::model::{Event, Group, Nvrpp, Receiver};
use super::query::{DefinitionFilter, EventFilter, Page, Scan};

/// An entry of the durable log: a message to publish.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum LogEntry {
    /// "Event created", rendered from the stored event and its receiver when read.
    EventCreated {
        /// The stored event.
        event_id: String,
    },
    /// Any other message, stored as published.
    Message(Box<Message>),
}

/// What a unit of work did: the id of what it created or changed, and whether it wrote it
/// (false when it found the object already there, e.g. a duplicate ingestion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Id of the object.
    pub id: String,
    /// Whether this unit of work created it.
    pub created: bool,
}

impl Committed {
    /// A unit of work that wrote `id`.
    pub fn written(id: String) -> Self {
        Committed { id, created: true }
    }
}

/// The right to run a singleton (the Kafka relay, a watcher) among every gateway sharing a
/// store, until it is dropped or lost.
pub struct Lease {
    lost: watch::Receiver<bool>,
    _holder: Box<dyn Send + Sync>,
}

impl Lease {
    /// A lease kept by `holder` (dropping it gives the lease up), lost when `lost` turns true.
    pub fn new(holder: impl Send + Sync + 'static, lost: watch::Receiver<bool>) -> Self {
        Lease {
            lost,
            _holder: Box::new(holder),
        }
    }

    /// A lease nobody else can hold (a store of one process): never lost.
    pub fn sole() -> Self {
        let (keep, lost) = watch::channel(false);
        Lease::new(keep, lost)
    }

    /// Resolves when the lease is lost (it may be held by another gateway by then).
    pub async fn lost(&mut self) {
        let _ = self.lost.wait_for(|lost| *lost).await;
    }
}

/// A unit of work run by the store's writer.
pub type Work = Box<dyn FnOnce(&mut dyn Txn) -> Result<Committed, RegistryError> + Send>;

/// The view a unit of work has of the store: reads see what was committed before the unit
/// started (not the unit's own writes); writes become visible and durable together.
pub trait Txn {
    /// A fresh id, greater than every id made before, and the time it stands for.
    fn new_id(&mut self) -> (String, DateTime<Utc>);
    /// A group by id.
    fn group(&self, id: &str) -> Result<Option<Group>, StoreError>;
    /// Every group that has `receiver_id` as a member.
    fn groups_of_receiver(&self, receiver_id: &str) -> Result<Vec<Group>, StoreError>;
    /// `success` of the most recent event of `receiver_id` about `nvrpp`, if there is one.
    fn latest_success(&self, receiver_id: &str, nvrpp: &Nvrpp) -> Result<Option<bool>, StoreError>;
    /// Ids of the receivers whose type is `kind`, oldest first.
    fn receivers_of_type(&self, kind: &str) -> Result<Vec<String>, StoreError>;
    /// What was recorded for the ingestion origin `origin` (the parts of its key), if any.
    fn deduplicated(&self, origin: &[&str]) -> Result<Option<String>, StoreError>;
    /// Records `value` for the ingestion origin `origin`.
    fn put_dedup(&mut self, origin: &[&str], value: &str) -> Result<(), StoreError>;
    /// Sets (or, with `None`, removes) the setting `key`.
    fn put_setting(
        &mut self,
        key: &str,
        value: Option<&serde_json::Value>,
    ) -> Result<(), StoreError>;
    /// Sets (or, with `None`, removes) the blob `key`.
    fn put_blob(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), StoreError>;
    /// Stores a new receiver.
    fn put_receiver(&mut self, receiver: &Receiver) -> Result<(), StoreError>;
    /// Stores a new or changed group (its members never change).
    fn put_group(&mut self, group: &Group) -> Result<(), StoreError>;
    /// Stores a new event, its search indexes and the latest-event index.
    fn put_event(&mut self, event: &Event) -> Result<(), StoreError>;
    /// Appends an entry to the log.
    fn append_log(&mut self, entry: &LogEntry) -> Result<(), StoreError>;
}

/// Durable storage of receivers, events, groups and the log. Reads are asynchronous (a store
/// may be across the network); units of work are synchronous closures the store runs on a
/// thread of its own.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// A receiver by id.
    async fn receiver(&self, id: &str) -> Result<Option<Receiver>, StoreError>;
    /// An event by id.
    async fn event(&self, id: &str) -> Result<Option<Event>, StoreError>;
    /// A group by id.
    async fn group(&self, id: &str) -> Result<Option<Group>, StoreError>;
    /// Receivers matching `filter`, newest first, at most `page.limit + 1` of them.
    async fn find_receivers(
        &self,
        filter: &DefinitionFilter,
        page: &Page,
    ) -> Result<Scan<Receiver>, StoreError>;
    /// Events matching `filter`, newest first, at most `page.limit + 1` of them, looking at
    /// no more than [`super::query::MAX_SCANNED`] events.
    async fn find_events(
        &self,
        filter: &EventFilter,
        page: &Page,
    ) -> Result<Scan<Event>, StoreError>;
    /// Groups matching `filter`, newest first, at most `page.limit + 1` of them.
    async fn find_groups(
        &self,
        filter: &DefinitionFilter,
        page: &Page,
    ) -> Result<Scan<Group>, StoreError>;
    /// Ids of the receivers whose type is `kind`, oldest first.
    async fn receivers_of_type(&self, kind: &str) -> Result<Vec<String>, StoreError>;
    /// The most recent event of `receiver_id` about `nvrpp` (the latest-event index that group
    /// completion reads), if there is one.
    async fn latest_event(
        &self,
        receiver_id: &str,
        nvrpp: &Nvrpp,
    ) -> Result<Option<Event>, StoreError>;
    /// The setting `key`, if set.
    async fn setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// Every setting whose key starts with `prefix`, in key order.
    async fn settings(&self, prefix: &str) -> Result<Vec<(String, serde_json::Value)>, StoreError>;
    /// The blob stored under `key`, if any.
    async fn blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Runs `work` atomically; resolves once its writes are durable.
    fn commit(&self, work: Work) -> BoxFuture<'static, Result<Committed, RegistryError>>;
    /// Durable log entries with a sequence number above `after`, in order, at most `limit`.
    async fn log_after(&self, after: u64, limit: usize)
    -> Result<Vec<(u64, LogEntry)>, StoreError>;
    /// The sequence number of the last durable log entry (0 when the log is empty), live.
    fn durable_seq(&self) -> watch::Receiver<u64>;
    /// Checks that the store can be read and written.
    async fn check(&self) -> Result<(), StoreError>;
    /// Bytes the store occupies on disk.
    async fn size_on_disk(&self) -> Result<u64, StoreError>;
    /// Finishes the units of work in flight and stops; later commits fail.
    async fn close(&self);
    /// Waits until this gateway holds the lease `name` (at once when no other gateway can
    /// share the store).
    async fn lease(&self, name: &str) -> Lease;
}
