//! The business rules: receivers, events, groups, group completion and the messages they
//! publish. Storage is reached only through the [`port::Store`] trait.

mod caches;
pub mod completion;
pub mod depth;
mod drafts;
pub mod error;
pub mod gate;
pub mod ingest;
pub mod input;
pub mod message;
pub mod model;
pub mod port;
pub mod provenance;
pub mod query;
pub mod recent;
pub mod transform;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use serde_json::value::RawValue;

use crate::schema::{SchemaCache, SchemaError};
use crate::sync::lock;
use caches::ReceiverCache;
use drafts::{EventDraft, ReceiverDraft};
use error::{ObjectKind, RegistryError};
use input::{Definition, NewEvent, NewGroup, NewReceiver, check_event_fields};
use message::Message;
use model::{Event, EventWithReceiver, Group, Nvrpp, Receiver};
use port::{Committed, LogEntry, Store, Txn};
use query::{DefinitionFilter, EventFilter, Found, Page};
use transform::{Candidate, Transforms};

/// Metric: events stored.
pub const METRIC_EVENTS_STORED: &str = "epr_events_stored_total";
/// Metric: events refused because their payload did not match the receiver's schema.
pub const METRIC_VALIDATION_FAILURES: &str = "epr_validation_failures_total";
/// How many events a chain of plugin-emitted events can hold (the first one caused by an event
/// that came from outside): a plugin reacting to its own output stops there.
pub const MAX_CAUSE_CHAIN: usize = 8;
/// How many events plugins may emit, in all, as consequences of one event from outside (its
/// whole tree of causes): with the per-call cap, a plugin reacting to its own output with
/// several events each time stops here rather than after an exponential number of them. Counted
/// in memory, per process run, for the [`MAX_TRACKED_CAUSES`] most recent such events.
pub const MAX_EMITTED_PER_CAUSE: usize = 100;
/// Root causes whose emitted events are counted at once (the counts are forgotten beyond).
pub const MAX_TRACKED_CAUSES: usize = 10_000;
/// The path events are posted to over REST (what transforms see as the path of such events).
pub const REST_PATH: &str = "/api/v1/events";
/// Metric: group-complete messages produced.
pub const METRIC_GROUPS_COMPLETED: &str = "epr_groups_completed_total";

/// The registry: every operation of the EPR API, on top of a store.
pub struct Registry {
    store: Arc<dyn Store>,
    schemas: SchemaCache,
    /// Every receiver, filled at start and as new ones are created or read.
    receivers: ReceiverCache,
    /// The transforms incoming events go through, once plugins are loaded.
    transforms: OnceLock<Arc<dyn Transforms>>,
    /// Events emitted by plugins so far, by the event from outside they all descend from.
    emitted: std::sync::Mutex<HashMap<String, usize>>,
}

impl Registry {
    /// A registry over `store`; receivers' schemas with an `$id` become `$ref` targets.
    pub async fn new(store: Arc<dyn Store>) -> Result<Self, RegistryError> {
        let registry = Registry {
            store,
            schemas: SchemaCache::default(),
            receivers: ReceiverCache::default(),
            transforms: OnceLock::new(),
            emitted: std::sync::Mutex::new(HashMap::new()),
        };
        let mut page = Page {
            limit: query::MAX_LIMIT,
            after: None,
        };
        loop {
            let Found { items, next } = registry
                .find_receivers(&DefinitionFilter::default(), &page)
                .await?;
            for receiver in items.into_iter().rev() {
                if let Ok(schema) = serde_json::from_str::<Value>(receiver.schema.get()) {
                    registry.schemas.hold_document(&schema);
                }
                registry.receivers.remember(receiver);
            }
            match next {
                Some(next) => page.after = Some(next),
                None => return Ok(registry),
            }
        }
    }

    /// Ids of the receivers of type `kind`, oldest first.
    async fn receivers_of_type(&self, kind: &str) -> Result<Vec<String>, RegistryError> {
        let ids = self.receivers.ids_of_type(kind);
        if !ids.is_empty() {
            return Ok(ids);
        }
        // unknown here: perhaps created on the fly by ingestion since
        let ids = self.store.receivers_of_type(kind).await?;
        for id in &ids {
            self.receivers.note_type(kind, id);
        }
        Ok(ids)
    }

    /// How many receivers the registry knows the type of (all of them, give or take those
    /// created on the fly since their type was last looked up).
    fn receiver_count(&self) -> usize {
        self.receivers.typed_count()
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Creates a receiver; its schema must compile.
    pub async fn create_receiver(&self, mut input: NewReceiver) -> Result<String, RegistryError> {
        let definition = input.definition()?;
        let (schema_text, schema) = schema_document(input.schema)?;
        let kind_of_new = definition.kind.clone();
        let validator = self.schemas.compile(&schema).map_err(|e| match e {
            SchemaError::UnresolvableRef(_) => RegistryError::invalid(e.to_string()),
            SchemaError::Invalid(msg) => {
                RegistryError::invalid(format!("failed to parse schema: {msg}"))
            }
        })?;
        let id = self
            .store
            .commit(Box::new(move |txn: &mut dyn Txn| {
                let draft = ReceiverDraft {
                    definition,
                    schema: schema_text,
                };
                Ok(Committed::written(draft.write(txn)?))
            }))
            .await?
            .id;
        self.receivers.note_type(&kind_of_new, &id);
        self.schemas.insert(&id, validator, &schema);
        Ok(id)
    }

    /// Sets the transforms incoming events go through (once; later calls are ignored).
    pub fn set_transforms(&self, transforms: Arc<dyn Transforms>) {
        let _ = self.transforms.set(transforms);
    }

    /// What the transforms make of `candidate` (itself when none is active). Its receiver
    /// type is looked up here, only when a transform may need it. The transforms run on a
    /// blocking thread: a plugin's synchronous WASI calls (its stderr, where a panic writes)
    /// wait on the runtime, which a worker thread may not do.
    async fn transformed(&self, mut candidate: Candidate) -> Result<Vec<Candidate>, RegistryError> {
        let Some(transforms) = self.transforms.get().filter(|t| t.active()) else {
            return Ok(vec![candidate]);
        };
        if candidate.receiver_type.is_empty() {
            candidate.receiver_type = match self.shared_receiver(&candidate.receiver_id).await {
                Ok(receiver) => receiver.kind.clone(),
                Err(RegistryError::NotFound { .. }) => {
                    return Err(RegistryError::invalid("receiver for event does not exist"));
                }
                Err(e) => return Err(e),
            };
        }
        let transforms = transforms.clone();
        tokio::task::spawn_blocking(move || transforms.apply(candidate))
            .await
            .unwrap_or_else(|e| {
                // a bug of the host (a plugin's own failures are traps, not panics): a 500
                Err(RegistryError::Store(error::StoreError::new(format!(
                    "the transforms panicked: {e}"
                ))))
            })
    }

    /// Validates and stores an event (or what the transforms make of it), and the
    /// group-complete messages it causes; returns the id of the (first) stored event, `None`
    /// when a transform dropped it.
    pub async fn create_event(&self, input: NewEvent) -> Result<Option<String>, RegistryError> {
        let candidate = self.candidate(input, REST_PATH)?;
        let mut drafts = Vec::new();
        for c in self.transformed(candidate).await? {
            drafts.push(self.checked_draft(c, None).await?);
        }
        if drafts.is_empty() {
            return Ok(None);
        }
        self.store
            .commit(Box::new(move |txn: &mut dyn Txn| {
                Ok(Committed::written(EventDraft::write_all(txn, drafts)?))
            }))
            .await
            .map(|c| Some(c.id))
    }

    /// Validates and stores an event emitted by a plugin while it handled event `caused_by`
    /// (transforms do not run on it); refused when the chain of events caused by plugins would
    /// grow beyond [`MAX_CAUSE_CHAIN`].
    pub async fn emit_event(
        &self,
        input: NewEvent,
        caused_by: &str,
    ) -> Result<String, RegistryError> {
        let mut chain = 1;
        let mut root = caused_by.to_owned();
        let mut cause = Some(caused_by.to_owned());
        while let Some(id) = cause {
            chain += 1;
            if chain > MAX_CAUSE_CHAIN {
                return Err(RegistryError::invalid(format!(
                    "event {caused_by} ends a chain of {MAX_CAUSE_CHAIN} events caused by plugins: no more are stored (a plugin reacting to its own output?)"
                )));
            }
            cause = self
                .store
                .event(&id)
                .await?
                .ok_or_else(|| RegistryError::not_found(ObjectKind::Event, &id))?
                .caused_by;
            root = id;
        }
        self.count_emitted(&root)?;
        let (receiver_id, draft) = self
            .checked_draft(self.candidate(input, "")?, Some(caused_by))
            .await?;
        self.store
            .commit(Box::new(move |txn: &mut dyn Txn| {
                Ok(Committed::written(draft.write(txn, receiver_id)?))
            }))
            .await
            .map(|c| c.id)
    }

    /// Counts one more event emitted as a consequence of `root`; refused past
    /// [`MAX_EMITTED_PER_CAUSE`].
    fn count_emitted(&self, root: &str) -> Result<(), RegistryError> {
        let mut emitted = lock(&self.emitted);
        if emitted.len() >= MAX_TRACKED_CAUSES && !emitted.contains_key(root) {
            emitted.clear();
        }
        let count = emitted.entry(root.to_owned()).or_default();
        if *count >= MAX_EMITTED_PER_CAUSE {
            return Err(RegistryError::invalid(format!(
                "plugins already emitted {MAX_EMITTED_PER_CAUSE} events as consequences of event {root}: no more are stored"
            )));
        }
        *count += 1;
        Ok(())
    }

    /// A new event, about to go through the transforms: blank fields are refused after them
    /// (a transform may fill them), unless the receiver is missing too (then every blank field
    /// is named at once, as EPR does). `path` is where it was posted (empty when a plugin
    /// emitted it).
    fn candidate(&self, input: NewEvent, path: &str) -> Result<Candidate, RegistryError> {
        let payload = match input.payload {
            Some(p) => p,
            None => RawValue::from_string("null".into()).map_err(RegistryError::internal_json)?,
        };
        let candidate = Candidate {
            receiver_id: input.event_receiver_id.unwrap_or_default(),
            // looked up only if a transform needs it
            receiver_type: String::new(),
            nvrpp: Nvrpp {
                name: input.name.unwrap_or_default(),
                version: input.version.unwrap_or_default(),
                release: input.release.unwrap_or_default(),
                platform_id: input.platform_id.unwrap_or_default(),
                package: input.package.unwrap_or_default(),
            },
            success: input.success.unwrap_or(false),
            description: input.description.unwrap_or_default(),
            payload,
            path: path.to_owned(),
        };
        if candidate.receiver_id.trim().is_empty() {
            check_event_fields(
                &candidate.nvrpp,
                &candidate.description,
                &[(&candidate.receiver_id, "event receiver id")],
            )?;
        }
        Ok(candidate)
    }

    /// `candidate` validated against its receiver's schema, as (receiver id, draft).
    async fn checked_draft(
        &self,
        candidate: Candidate,
        caused_by: Option<&str>,
    ) -> Result<(String, EventDraft), RegistryError> {
        check_event_fields(&candidate.nvrpp, &candidate.description, &[])?;
        self.validate_payload(Some(&candidate.receiver_id), &candidate.payload)
            .await?;
        let receiver_id = candidate.receiver_id.clone();
        Ok((
            receiver_id,
            EventDraft::from_candidate(candidate, caused_by),
        ))
    }

    /// Checks that `payload` can be stored and matches the schema of receiver `receiver_id`
    /// (`None`: a receiver created on the fly, whose schema takes anything).
    async fn validate_payload(
        &self,
        receiver_id: Option<&str>,
        payload: &RawValue,
    ) -> Result<(), RegistryError> {
        depth::check("the event payload", payload.get())?;
        let Some(receiver_id) = receiver_id else {
            return Ok(());
        };
        let validator = match self.schemas.get(receiver_id) {
            Some(v) => v,
            None => {
                let receiver =
                    self.store.receiver(receiver_id).await?.ok_or_else(|| {
                        RegistryError::invalid("receiver for event does not exist")
                    })?;
                let schema: Value = serde_json::from_str(receiver.schema.get())
                    .map_err(RegistryError::internal_json)?;
                let validator = self.schemas.compile(&schema).map_err(|e| {
                    error::StoreError::new(format!(
                        "stored schema of {receiver_id} no longer compiles: {e}"
                    ))
                })?;
                self.schemas.insert(receiver_id, validator.clone(), &schema);
                validator
            }
        };
        let problems = validator
            .violations_of_text(payload)
            .map_err(RegistryError::internal_json)?;
        if problems.is_empty() {
            return Ok(());
        }
        metrics::counter!(METRIC_VALIDATION_FAILURES).increment(1);
        Err(RegistryError::invalid(format!(
            "event payload did not match event receiver schema\n{}",
            problems.join("\n")
        )))
    }

    /// Creates a group of existing receivers.
    pub async fn create_group(&self, mut input: NewGroup) -> Result<String, RegistryError> {
        let Definition {
            name,
            kind,
            version,
            description,
        } = input.definition()?;
        let ids = input.event_receiver_ids.unwrap_or_default();
        if ids.is_empty() {
            return Err(RegistryError::invalid(
                "need at least one event receiver id",
            ));
        }
        if ids.iter().any(|id| id.trim().is_empty()) {
            return Err(RegistryError::invalid("event receiver ids cannot be blank"));
        }
        let mut members: Vec<String> = Vec::with_capacity(ids.len());
        for id in ids {
            if members.contains(&id) {
                continue;
            }
            if self.store.receiver(&id).await?.is_none() {
                return Err(RegistryError::invalid(format!(
                    "event receiver {id} does not exist"
                )));
            }
            members.push(id);
        }
        let enabled = input.enabled.unwrap_or(true);
        self.store
            .commit(Box::new(move |txn: &mut dyn Txn| {
                let (id, created_at) = txn.new_id();
                let group = Group {
                    id,
                    name,
                    kind,
                    version,
                    description,
                    enabled,
                    event_receiver_ids: members,
                    created_at,
                    updated_at: created_at,
                };
                txn.put_group(&group)?;
                txn.append_log(&LogEntry::Message(Box::new(Message::group_created(&group))))?;
                Ok(Committed::written(group.id))
            }))
            .await
            .map(|c| c.id)
    }

    /// Enables or disables a group.
    pub async fn set_group_enabled(
        &self,
        id: &str,
        enabled: bool,
    ) -> Result<String, RegistryError> {
        let id = id.to_owned();
        self.store
            .commit(Box::new(move |txn: &mut dyn Txn| {
                let mut group = txn.group(&id)?.ok_or(RegistryError::NotFound {
                    kind: ObjectKind::Group,
                    id,
                })?;
                let (_, now) = txn.new_id();
                group.enabled = enabled;
                group.updated_at = now;
                txn.put_group(&group)?;
                Ok(Committed::written(group.id))
            }))
            .await
            .map(|c| c.id)
    }

    /// A receiver by id.
    pub async fn receiver(&self, id: &str) -> Result<Receiver, RegistryError> {
        Ok(self.shared_receiver(id).await?.as_ref().clone())
    }

    /// A receiver by id, from the cache when it was read before.
    async fn shared_receiver(&self, id: &str) -> Result<Arc<Receiver>, RegistryError> {
        if let Some(receiver) = self.receivers.get(id) {
            return Ok(receiver);
        }
        let receiver = self
            .store
            .receiver(id)
            .await?
            .ok_or_else(|| RegistryError::not_found(ObjectKind::Receiver, id))?;
        Ok(self.receivers.remember(receiver))
    }

    /// An event by id, with its receiver.
    pub async fn event(&self, id: &str) -> Result<EventWithReceiver, RegistryError> {
        let event = self
            .store
            .event(id)
            .await?
            .ok_or_else(|| RegistryError::not_found(ObjectKind::Event, id))?;
        let receiver = self.receiver(&event.event_receiver_id).await?;
        Ok(EventWithReceiver { event, receiver })
    }

    /// A group by id.
    pub async fn group(&self, id: &str) -> Result<Group, RegistryError> {
        self.store
            .group(id)
            .await?
            .ok_or_else(|| RegistryError::not_found(ObjectKind::Group, id))
    }

    /// Events matching `filter`, newest first.
    pub async fn find_events(
        &self,
        filter: &EventFilter,
        page: &Page,
    ) -> Result<Found<Event>, RegistryError> {
        let items = self.store.find_events(filter, page).await?;
        Ok(Found::paginate(items, page.limit, |e| &e.id))
    }

    /// Receivers matching `filter`, newest first.
    pub async fn find_receivers(
        &self,
        filter: &DefinitionFilter,
        page: &Page,
    ) -> Result<Found<Receiver>, RegistryError> {
        let items = self.store.find_receivers(filter, page).await?;
        Ok(Found::paginate(items, page.limit, |r| &r.id))
    }

    /// Groups matching `filter`, newest first.
    pub async fn find_groups(
        &self,
        filter: &DefinitionFilter,
        page: &Page,
    ) -> Result<Found<Group>, RegistryError> {
        let items = self.store.find_groups(filter, page).await?;
        Ok(Found::paginate(items, page.limit, |g| &g.id))
    }

    /// The message a log entry stands for.
    pub async fn render(&self, entry: &LogEntry) -> Result<Message, RegistryError> {
        match entry {
            LogEntry::Message(message) => Ok(message.as_ref().clone()),
            LogEntry::EventCreated { event_id } => {
                let event = self
                    .store
                    .event(event_id)
                    .await?
                    .ok_or_else(|| RegistryError::not_found(ObjectKind::Event, event_id))?;
                let receiver = self.shared_receiver(&event.event_receiver_id).await?;
                Ok(Message::event_created(&event, &receiver))
            }
        }
    }
}

/// The schema as stored (exact text) and as parsed; a string holding JSON text is unwrapped.
fn schema_document(raw: Option<Box<RawValue>>) -> Result<(Box<RawValue>, Value), RegistryError> {
    let raw = raw.ok_or_else(|| RegistryError::invalid("schema is required"))?;
    depth::check("the schema", raw.get())?;
    let value: Value = serde_json::from_str(raw.get()).map_err(RegistryError::internal_json)?;
    match value {
        Value::Null => Err(RegistryError::invalid("schema is required")),
        Value::String(text) => {
            depth::check("the schema", &text)?;
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| RegistryError::invalid(format!("failed to parse schema: {e}")))?;
            let raw = RawValue::from_string(text).map_err(RegistryError::internal_json)?;
            Ok((raw, value))
        }
        value => Ok((raw, value)),
    }
}
