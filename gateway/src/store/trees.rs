//! The sled trees and how objects are encoded in them.

use std::ops::Bound;

use serde::de::DeserializeOwned;
use sled::Transactional;

use super::codec::decode;
use crate::registry::error::StoreError;

/// One logical tree of the store (a key space of the data tree; blobs have a tree of their own).
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
    /// Blob key (`plugin-component/<name>`, `plugin-artifact/<name>`: see `plugins::keys`) →
    /// bytes (plugin components and their compiled form).
    /// In a sled tree of its own: values of a megabyte beside the log's tail made every split
    /// of that node rewrite them.
    Blobs,
}

impl TreeId {
    /// The byte that starts every key of this key space (stable: it is on disk).
    fn tag(self) -> u8 {
        match self {
            TreeId::Receivers => 1,
            TreeId::Events => 2,
            TreeId::Groups => 3,
            TreeId::EventsByReceiver => 4,
            TreeId::EventsByName => 5,
            TreeId::EventsByNvrpp => 6,
            TreeId::Latest => 7,
            TreeId::GroupMembers => 8,
            TreeId::Log => 9,
            TreeId::ReceiversByType => 10,
            TreeId::Dedup => 11,
            TreeId::Settings => 12,
            TreeId::Blobs => 13,
        }
    }

    /// `key` in this key space.
    fn key(self, key: &[u8]) -> Vec<u8> {
        let mut tagged = Vec::with_capacity(key.len() + 1);
        tagged.push(self.tag());
        tagged.extend_from_slice(key);
        tagged
    }
}

/// A key without its key-space tag, and its value.
pub(crate) type Entry = (Vec<u8>, sled::IVec);

/// The open database. Every logical tree (`TreeId`) but the blobs is a key space of one sled
/// tree, so that a batch of writes across them is one atomic `apply_batch`, which costs less
/// than a multi-tree transaction (no read of every old value, no staging). Blobs (written
/// rarely, large) have their own sled tree; a batch that writes some is a transaction over both.
pub(crate) struct Trees {
    pub(crate) db: sled::Db,
    data: sled::Tree,
    blobs: sled::Tree,
}

impl Trees {
    /// Opens the data and blob trees of `db`, moving blobs an older version kept in the data
    /// tree to theirs.
    pub(crate) fn open(db: sled::Db) -> sled::Result<Self> {
        let data = db.open_tree("data")?;
        let blobs = db.open_tree("blobs")?;
        let old = data
            .scan_prefix([TreeId::Blobs.tag()])
            .collect::<sled::Result<Vec<_>>>()?;
        if !old.is_empty() {
            (&data, &blobs)
                .transaction(|(data, blobs)| {
                    for (key, value) in &old {
                        blobs.insert(key, value)?;
                        data.remove(key)?;
                    }
                    Ok(())
                })
                .map_err(|e| match e {
                    sled::transaction::TransactionError::Storage(e) => e,
                    sled::transaction::TransactionError::Abort(()) => {
                        sled::Error::Unsupported("moving blobs aborted".into())
                    }
                })?;
        }
        Ok(Trees { db, data, blobs })
    }

    /// The sled tree that holds `id`.
    fn tree(&self, id: TreeId) -> &sled::Tree {
        match id {
            TreeId::Blobs => &self.blobs,
            _ => &self.data,
        }
    }

    /// The value under `key` in `id`.
    pub(crate) fn get(&self, id: TreeId, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.tree(id).get(id.key(key)).map_err(sled_error)
    }

    /// The object stored under `key` in `id`.
    pub(crate) fn get_json<T: DeserializeOwned>(
        &self,
        id: TreeId,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.get(id, key)?.map(|bytes| decode(&bytes)).transpose()
    }

    /// Entries of `id` whose keys lie between `lower` and `upper` (keys given without the tag).
    pub(crate) fn range<'a>(
        &'a self,
        id: TreeId,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> impl DoubleEndedIterator<Item = Result<Entry, StoreError>> + use<'a> {
        let tagged = |bound: Bound<&[u8]>| match bound {
            Bound::Included(k) => Bound::Included(id.key(k)),
            Bound::Excluded(k) => Bound::Excluded(id.key(k)),
            Bound::Unbounded => Bound::Included(vec![id.tag()]),
        };
        let upper = match upper {
            Bound::Unbounded => Bound::Excluded(vec![id.tag() + 1]),
            bound => tagged(bound),
        };
        self.tree(id)
            .range((tagged(lower), upper))
            .map(|item| item.map(|(k, v)| (k[1..].to_vec(), v)).map_err(sled_error))
    }

    /// Entries of `id` whose keys start with `prefix`.
    pub(crate) fn scan_prefix(
        &self,
        id: TreeId,
        prefix: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<Entry, StoreError>> {
        self.tree(id)
            .scan_prefix(id.key(prefix))
            .map(|item| item.map(|(k, v)| (k[1..].to_vec(), v)).map_err(sled_error))
    }

    /// The entry of `id` with the greatest key.
    pub(crate) fn last(&self, id: TreeId) -> Result<Option<Entry>, StoreError> {
        self.range(id, Bound::Unbounded, Bound::Unbounded)
            .next_back()
            .transpose()
    }

    /// Applies every write atomically: `Some` stores, `None` removes.
    pub(crate) fn apply<'a>(
        &self,
        writes: impl Iterator<Item = (TreeId, &'a [u8], Option<&'a [u8]>)>,
    ) -> Result<(), StoreError> {
        let (mut data, mut blobs) = (sled::Batch::default(), sled::Batch::default());
        let mut any_blob = false;
        for (id, key, value) in writes {
            let batch = match id {
                TreeId::Blobs => {
                    any_blob = true;
                    &mut blobs
                }
                _ => &mut data,
            };
            match value {
                Some(value) => batch.insert(id.key(key), value),
                None => batch.remove(id.key(key)),
            }
        }
        if !any_blob {
            return self.data.apply_batch(data).map_err(sled_error);
        }
        (&self.data, &self.blobs)
            .transaction(|(data_tree, blob_tree)| {
                data_tree.apply_batch(&data)?;
                blob_tree.apply_batch(&blobs)?;
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                StoreError::new(format!("sled: {e:?}"))
            })
    }
}

/// A sled error as the registry sees it.
pub(crate) fn sled_error(e: sled::Error) -> StoreError {
    StoreError::new(format!("sled: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_kept_in_the_data_tree_by_an_older_version_move_to_their_own_tree() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = db.open_tree("data").unwrap();
        old.insert(TreeId::Blobs.key(b"plugin-component/a"), &b"wasm"[..])
            .unwrap();
        old.insert(TreeId::Settings.key(b"plugin/a"), &b"{}"[..])
            .unwrap();
        let trees = Trees::open(db).unwrap();
        let blob = trees.get(TreeId::Blobs, b"plugin-component/a").unwrap();
        assert_eq!(blob.as_deref(), Some(&b"wasm"[..]));
        assert!(old.scan_prefix([TreeId::Blobs.tag()]).next().is_none());
        assert!(trees.get(TreeId::Settings, b"plugin/a").unwrap().is_some());

        // a batch writing a blob and a setting writes both
        let writes = [
            (TreeId::Blobs, &b"x"[..], Some(&b"1"[..])),
            (TreeId::Settings, &b"y"[..], Some(&b"2"[..])),
        ];
        trees.apply(writes.into_iter()).unwrap();
        assert!(trees.get(TreeId::Blobs, b"x").unwrap().is_some());
        assert!(trees.get(TreeId::Settings, b"y").unwrap().is_some());
        assert!(trees.get(TreeId::Settings, b"x").unwrap().is_none());
    }
}
