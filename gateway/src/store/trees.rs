//! The sled trees and how objects are encoded in them.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::registry::error::StoreError;

/// One sled tree of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TreeId {
    /// Receiver id → receiver JSON.
    Receivers,
    /// Event id → event JSON.
    Events,
    /// Group id → group JSON.
    Groups,
    /// (receiver id) + event id → ().
    EventsByReceiver,
    /// (name) + event id → ().
    EventsByName,
    /// (name, version, release, platform, package) + event id → ().
    EventsByNvrpp,
    /// (receiver id, NVRPP) → latest event id + success byte.
    Latest,
    /// (receiver id) + group id → ().
    GroupMembers,
    /// Sequence number → log entry JSON.
    Log,
    /// (receiver type) + receiver id → ().
    ReceiversByType,
    /// (source, id) of an ingested event → the stored event id (idempotent ingestion).
    Dedup,
    /// Setting key (e.g. `webhook/<id>`) → setting JSON.
    Settings,
}

impl TreeId {
    const ALL: [TreeId; 12] = [
        TreeId::Receivers,
        TreeId::Events,
        TreeId::Groups,
        TreeId::EventsByReceiver,
        TreeId::EventsByName,
        TreeId::EventsByNvrpp,
        TreeId::Latest,
        TreeId::GroupMembers,
        TreeId::Log,
        TreeId::ReceiversByType,
        TreeId::Dedup,
        TreeId::Settings,
    ];

    fn name(self) -> &'static str {
        match self {
            TreeId::Receivers => "receivers",
            TreeId::Events => "events",
            TreeId::Groups => "groups",
            TreeId::EventsByReceiver => "events_by_receiver",
            TreeId::EventsByName => "events_by_name",
            TreeId::EventsByNvrpp => "events_by_nvrpp",
            TreeId::Latest => "latest_by_receiver_nvrpp",
            TreeId::GroupMembers => "group_members",
            TreeId::Log => "log",
            TreeId::ReceiversByType => "receivers_by_type",
            TreeId::Dedup => "dedup",
            TreeId::Settings => "settings",
        }
    }
}

/// The open database and its trees.
pub(crate) struct Trees {
    pub(crate) db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl Trees {
    /// Opens every tree of `db`.
    pub(crate) fn open(db: sled::Db) -> sled::Result<Self> {
        let trees = TreeId::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<sled::Result<Vec<_>>>()?;
        Ok(Trees { db, trees })
    }

    /// The tree `id`.
    pub(crate) fn tree(&self, id: TreeId) -> &sled::Tree {
        &self.trees[id as usize]
    }

    /// The object stored under `key` in tree `id`.
    pub(crate) fn get_json<T: DeserializeOwned>(
        &self,
        id: TreeId,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.tree(id).get(key).map_err(sled_error)? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }
}

/// Decodes a stored JSON value.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError(format!("corrupt record: {e}")))
}

/// Encodes a value to store.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError(format!("cannot encode record: {e}")))
}

/// A sled error as the registry sees it.
pub(crate) fn sled_error(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}
