//! Webhook sources: the named endpoints `POST /webhook/{id}`, what each accepts, whether it
//! requires a signature, and which request headers it keeps. Built in: `000-cdevents` (CDEvents,
//! no signature), the id CDViz's collector and its users' scripts post to. Sources come from the
//! config file (read-only) and from the admin API (kept in the store).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use super::signature::Scheme;
use crate::registry::error::RegistryError;
use crate::registry::port::{Committed, Store, Txn};
use crate::sync::{read, write};

/// Id of the built-in CDEvents source.
pub const DEFAULT_SOURCE: &str = "000-cdevents";
/// Prefix of the settings keys of sources kept in the store.
const SETTING_PREFIX: &str = "webhook/";

/// What a source accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Accept {
    /// A CDEvent (raw JSON, or as the data of a CloudEvent in either mode).
    #[default]
    Cdevents,
    /// Any CloudEvent (structured, binary or batch), routed like `/api/v1/cloudevents`.
    Cloudevents,
}

/// Where a source's definition lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Built into the gateway.
    Builtin,
    /// The config file (read-only at run time).
    Config,
    /// The admin API (kept in the store).
    #[default]
    Api,
}

/// One webhook source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSource {
    /// The `{id}` of `/webhook/{id}`: letters, digits, `-` and `_`.
    #[serde(default)]
    pub id: String,
    /// What it accepts.
    #[serde(default)]
    pub accept: Accept,
    /// The signature it requires.
    #[serde(default)]
    pub signature: Scheme,
    /// The signature secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// In the config file: the environment variable holding the secret.
    #[serde(default, skip_serializing)]
    pub secret_env: Option<String>,
    /// Request headers kept with each event, as CloudEvent extension attributes named after the
    /// header without its non-alphanumeric characters (`X-GitHub-Delivery` → `xgithubdelivery`).
    #[serde(default)]
    pub keep_headers: Vec<String>,
    /// Where it is defined (known from where it was loaded; never stored).
    #[serde(skip)]
    pub origin: Origin,
}

/// A source as the API shows it: the secret is never shown.
#[derive(Debug, Serialize)]
pub struct SourceView {
    /// Id.
    pub id: String,
    /// What it accepts.
    pub accept: Accept,
    /// The signature it requires.
    pub signature: Scheme,
    /// Whether a secret is set.
    pub secret_set: bool,
    /// Headers kept.
    pub keep_headers: Vec<String>,
    /// Where it is defined.
    pub origin: Origin,
    /// Where to post.
    pub url_path: String,
}

/// A refused change to the sources.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The definition is wrong (400).
    #[error("invalid webhook source: {0}")]
    Invalid(String),
    /// The source cannot be changed through the API (409).
    #[error("webhook source {0}")]
    ReadOnly(String),
    /// No such source (404).
    #[error("object not found: webhook source with id {0} not found")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl WebhookSource {
    fn builtin() -> Self {
        WebhookSource {
            id: DEFAULT_SOURCE.into(),
            accept: Accept::Cdevents,
            signature: Scheme::None,
            secret: None,
            secret_env: None,
            keep_headers: Vec::new(),
            origin: Origin::Builtin,
        }
    }

    /// Checks the definition and resolves `secret_env`.
    fn validated(mut self, origin: Origin) -> Result<Self, SourceError> {
        let legal = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if self.id.is_empty() || self.id.len() > 64 || !self.id.chars().all(legal) {
            return Err(SourceError::Invalid(format!(
                "id {:?} must be 1 to 64 letters, digits, '-' or '_'",
                self.id
            )));
        }
        if let Some(var) = self.secret_env.take() {
            let secret = std::env::var(&var).map_err(|_| {
                SourceError::Invalid(format!(
                    "{}: environment variable {var} (secret_env) is not set",
                    self.id
                ))
            })?;
            self.secret = Some(secret);
        }
        if self.signature != Scheme::None && self.secret.as_deref().unwrap_or_default().is_empty() {
            return Err(SourceError::Invalid(format!(
                "{}: a {:?} signature needs a secret",
                self.id, self.signature
            )));
        }
        if self.signature == Scheme::StandardWebhooks {
            let secret = self.secret.as_deref().unwrap_or_default();
            let problem = match super::signature::standard_webhooks_key(secret) {
                Ok(key) if key.is_empty() => Some("the key is empty".to_owned()),
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            };
            if let Some(problem) = problem {
                return Err(SourceError::Invalid(format!(
                    "{}: a standard-webhooks secret is the base64 of the key, optionally after whsec_ (as the Standard Webhooks libraries read it): {problem}",
                    self.id
                )));
            }
        }
        for header in &mut self.keep_headers {
            *header = header.to_ascii_lowercase();
            if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(SourceError::Invalid(format!(
                    "{header:?} is not a header name"
                )));
            }
        }
        self.origin = origin;
        Ok(self)
    }

    /// The API's view of the source.
    pub fn view(&self) -> SourceView {
        SourceView {
            id: self.id.clone(),
            accept: self.accept,
            signature: self.signature,
            secret_set: self.secret.is_some(),
            keep_headers: self.keep_headers.clone(),
            origin: self.origin,
            url_path: format!("/webhook/{}", self.id),
        }
    }

    /// The kept headers of a request, as CloudEvent extension attributes.
    pub fn kept_headers(&self, headers: &HeaderMap) -> Map<String, Value> {
        self.keep_headers
            .iter()
            .filter_map(|name| {
                let value = headers.get(name.as_str())?.to_str().ok()?;
                let attribute: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
                Some((attribute, Value::String(value.to_owned())))
            })
            .collect()
    }
}

/// Every webhook source, in memory, backed by the config file and the store.
pub struct WebhookSources {
    store: Arc<dyn Store>,
    all: RwLock<BTreeMap<String, WebhookSource>>,
}

impl WebhookSources {
    /// The built-in source, then those kept in the store, then those of the config file.
    pub async fn load(
        store: Arc<dyn Store>,
        from_config: Vec<WebhookSource>,
    ) -> Result<Self, SourceError> {
        let mut all = BTreeMap::new();
        all.insert(DEFAULT_SOURCE.to_owned(), WebhookSource::builtin());
        for (_, value) in store
            .settings(SETTING_PREFIX)
            .await
            .map_err(RegistryError::from)?
        {
            let source: WebhookSource = serde_json::from_value(value)
                .map_err(|e| SourceError::Invalid(format!("stored source is unreadable: {e}")))?;
            all.insert(
                source.id.clone(),
                WebhookSource {
                    origin: Origin::Api,
                    ..source
                },
            );
        }
        for source in from_config {
            let source = source.validated(Origin::Config)?;
            all.insert(source.id.clone(), source);
        }
        Ok(WebhookSources {
            store,
            all: RwLock::new(all),
        })
    }

    /// The source `id`.
    pub fn get(&self, id: &str) -> Result<WebhookSource, SourceError> {
        read(&self.all)
            .get(id)
            .cloned()
            .ok_or_else(|| SourceError::NotFound(id.to_owned()))
    }

    /// Every source, by id.
    pub fn list(&self) -> Vec<WebhookSource> {
        read(&self.all).values().cloned().collect()
    }

    fn writable(&self, id: &str) -> Result<Option<WebhookSource>, SourceError> {
        match self.get(id).ok() {
            Some(s) if s.origin == Origin::Config => Err(SourceError::ReadOnly(format!(
                "{id} is defined in the config file; change it there"
            ))),
            found => Ok(found),
        }
    }

    /// Creates or replaces the source `id`; returns whether it is new.
    pub async fn put(&self, id: &str, source: WebhookSource) -> Result<bool, SourceError> {
        let source = WebhookSource {
            id: id.to_owned(),
            ..source
        }
        .validated(Origin::Api)?;
        let existed = self.writable(id)?.is_some_and(|s| s.origin == Origin::Api);
        let stored =
            serde_json::to_value(&source).map_err(|e| SourceError::Invalid(e.to_string()))?;
        let key = format!("{SETTING_PREFIX}{id}");
        let committed_id = id.to_owned();
        self.store
            .commit(Box::new(move |txn: &mut dyn Txn| {
                txn.put_setting(&key, Some(&stored))?;
                Ok(Committed::written(committed_id))
            }))
            .await?;
        write(&self.all).insert(id.to_owned(), source);
        Ok(!existed)
    }

    /// Deletes the source `id` (a replaced built-in source comes back as built).
    pub async fn delete(&self, id: &str) -> Result<(), SourceError> {
        match self.writable(id)? {
            None => return Err(SourceError::NotFound(id.to_owned())),
            Some(s) if s.origin == Origin::Builtin => {
                return Err(SourceError::ReadOnly(format!(
                    "{id} is built in; PUT a new definition to change it"
                )));
            }
            Some(_) => {}
        }
        let key = format!("{SETTING_PREFIX}{id}");
        let committed_id = id.to_owned();
        self.store
            .commit(Box::new(move |txn: &mut dyn Txn| {
                txn.put_setting(&key, None)?;
                Ok(Committed::written(committed_id))
            }))
            .await?;
        let mut all = write(&self.all);
        all.remove(id);
        if id == DEFAULT_SOURCE {
            all.insert(DEFAULT_SOURCE.to_owned(), WebhookSource::builtin());
        }
        Ok(())
    }
}
