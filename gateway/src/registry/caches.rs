//! What the registry keeps in memory about receivers, which never change once created: each
//! receiver by id, and the ids of each type, so that routing by type and rendering log
//! messages read no storage on the request path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::model::Receiver;
use crate::sync::{read, write};

/// Receivers by id and receiver ids by type.
#[derive(Default)]
pub(super) struct ReceiverCache {
    by_id: RwLock<HashMap<String, Arc<Receiver>>>,
    /// A type missing here may still have receivers in the store (created on the fly).
    ids_by_type: RwLock<HashMap<String, Vec<String>>>,
}

impl ReceiverCache {
    /// The receiver `id`, if cached.
    pub(super) fn get(&self, id: &str) -> Option<Arc<Receiver>> {
        read(&self.by_id).get(id).cloned()
    }

    /// Keeps `receiver` (and its type); returns the cached copy.
    pub(super) fn remember(&self, receiver: Receiver) -> Arc<Receiver> {
        let receiver = Arc::new(receiver);
        self.note_type(&receiver.kind, &receiver.id);
        write(&self.by_id).insert(receiver.id.clone(), receiver.clone());
        receiver
    }

    /// Notes that receiver `id` has type `kind`.
    pub(super) fn note_type(&self, kind: &str, id: &str) {
        let mut types = write(&self.ids_by_type);
        let ids = types.entry(kind.to_owned()).or_default();
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }

    /// The ids of the receivers of type `kind` known here, oldest first.
    pub(super) fn ids_of_type(&self, kind: &str) -> Vec<String> {
        read(&self.ids_by_type)
            .get(kind)
            .cloned()
            .unwrap_or_default()
    }

    /// How many receivers have a known type.
    pub(super) fn typed_count(&self) -> usize {
        read(&self.ids_by_type).values().map(Vec::len).sum()
    }
}
