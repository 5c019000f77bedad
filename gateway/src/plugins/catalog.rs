//! What the store keeps about plugins: a record per plugin, the component as uploaded and its
//! precompiled form, each watcher's cursor and dead letters.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::PluginError;
use super::grants::Grants;
use super::keys;
use super::model::{Manifest, Subscription, World};
use crate::registry::error::StoreError;
use crate::registry::port::{Committed, Store, Txn};

/// A plugin as the store keeps it and the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginRecord {
    /// Its name (from its manifest).
    pub name: String,
    /// Its world.
    pub world: World,
    /// What it says about itself.
    pub manifest: Manifest,
    /// What the operator granted.
    pub grants: Grants,
    /// Disabled plugins do not run (a watcher resumes where it stopped when enabled again).
    pub enabled: bool,
    /// SHA-256 of the component as uploaded, hex.
    pub sha256: String,
    /// Size of the component as uploaded, in bytes.
    pub size: usize,
    /// 1 at upload, one more at each replacement.
    pub revision: u32,
    /// When it was first uploaded.
    pub created_at: DateTime<Utc>,
    /// When it was last replaced or changed.
    pub updated_at: DateTime<Utc>,
}

impl PluginRecord {
    /// The events it gets: the operator's override, else its manifest's.
    pub fn subscription(&self) -> &Subscription {
        self.grants
            .subscription
            .as_ref()
            .unwrap_or(&self.manifest.subscription)
    }
}

/// Runs `work` as one durable unit of work.
pub async fn write(
    store: &Arc<dyn Store>,
    work: impl FnOnce(&mut dyn Txn) -> Result<(), StoreError> + Send + 'static,
) -> Result<(), PluginError> {
    store
        .commit(Box::new(move |txn: &mut dyn Txn| {
            work(txn)?;
            Ok(Committed::written(String::new()))
        }))
        .await?;
    Ok(())
}

/// Every stored plugin, by name.
pub async fn records(store: &dyn Store) -> Result<Vec<PluginRecord>, PluginError> {
    store
        .settings(keys::RECORDS)
        .await?
        .into_iter()
        .map(|(key, value)| {
            serde_json::from_value(value)
                .map_err(|e| PluginError::Internal(format!("corrupt plugin record {key}: {e}")))
        })
        .collect()
}

/// The component and precompiled form of plugin `name`.
pub async fn binaries(
    store: &dyn Store,
    name: &str,
) -> Result<(Vec<u8>, Option<Vec<u8>>), PluginError> {
    let component = store
        .blob(&keys::component(name))
        .await?
        .ok_or_else(|| PluginError::Internal(format!("plugin {name} has no stored component")))?;
    Ok((component, store.blob(&keys::artifact(name)).await?))
}

/// Stores `record` and, when given, the component and its precompiled form.
pub async fn save(
    store: &Arc<dyn Store>,
    record: &PluginRecord,
    binaries: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<(), PluginError> {
    let value = serde_json::to_value(record)
        .map_err(|e| PluginError::Internal(format!("cannot encode a plugin record: {e}")))?;
    let name = record.name.clone();
    write(store, move |txn| {
        txn.put_setting(&keys::record(&name), Some(&value))?;
        if let Some((component, artifact)) = &binaries {
            txn.put_blob(&keys::component(&name), Some(component))?;
            txn.put_blob(&keys::artifact(&name), Some(artifact))?;
        }
        Ok(())
    })
    .await
}

/// Stores a new precompiled form of plugin `name` (after an engine change).
pub async fn save_artifact(
    store: &Arc<dyn Store>,
    name: &str,
    artifact: Vec<u8>,
) -> Result<(), PluginError> {
    let key = keys::artifact(name);
    write(store, move |txn| txn.put_blob(&key, Some(&artifact))).await
}

/// Removes everything about plugin `name`: record, binaries, cursor, dead letters, key-value.
pub async fn remove(store: &Arc<dyn Store>, name: &str) -> Result<(), PluginError> {
    let mut settings = vec![keys::record(name), keys::cursor(name)];
    for prefix in [keys::dead_letters(name), keys::kv_prefix(name)] {
        settings.extend(store.settings(&prefix).await?.into_iter().map(|(k, _)| k));
    }
    let blobs = [keys::component(name), keys::artifact(name)];
    write(store, move |txn| {
        for key in &settings {
            txn.put_setting(key, None)?;
        }
        for key in &blobs {
            txn.put_blob(key, None)?;
        }
        Ok(())
    })
    .await
}
