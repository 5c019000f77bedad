//! Ingestion of events that arrive in other shapes (CloudEvents, CDEvents): routed to a
//! receiver by id or by type (optionally creating it), stored once per (source, id).

use serde_json::value::RawValue;

use super::Registry;
use super::drafts::{EventDraft, ReceiverDraft};
use super::error::RegistryError;
use super::input::Definition;
use super::model::Nvrpp;
use super::port::{Committed, Txn};
use super::transform::Candidate;

/// Which receiver an ingested event belongs to.
#[derive(Debug, Clone)]
pub enum Route {
    /// The receiver with this id.
    Receiver(String),
    /// The one receiver with this type; with `auto`, created if there is none.
    Type {
        /// The receiver type (e.g. the CloudEvent or CDEvent type).
        kind: String,
        /// The receiver to create when none has this type.
        auto: Option<AutoReceiver>,
    },
}

/// A receiver created on the fly for a type first seen; its schema accepts anything, because
/// what arrives on such paths was validated when it was decoded.
#[derive(Debug, Clone)]
pub struct AutoReceiver {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: String,
}

/// A decoded event ready to be stored.
#[derive(Debug)]
pub struct Ingested {
    /// Where it goes.
    pub route: Route,
    /// (source, id) that identify it at its origin: a second event with both equal is a duplicate.
    pub origin: (String, String),
    /// The unit it is about.
    pub nvrpp: Nvrpp,
    /// Description.
    pub description: String,
    /// Success.
    pub success: bool,
    /// The payload to store.
    pub payload: Box<RawValue>,
    /// The path it was posted to.
    pub path: String,
}

/// A fingerprint of what was posted (the payload as it will be stored, before transforms): the
/// first 16 bytes of its SHA-256, as 32 hex digits.
fn content_hash(payload: &RawValue) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(payload.get().as_bytes())[..16])
}

/// Receivers held beyond which none is created on the fly: each type a client invents (e.g.
/// `dev.cdeventsx.*` on the open CDEvents webhook) would otherwise add a receiver and a cached
/// validator.
pub const MAX_RECEIVERS: usize = 10_000;

/// The schema of receivers created on the fly.
const ANY_SCHEMA: &str = "{}";

impl Registry {
    /// Stores an ingested event (or what the transforms make of it), validated against its
    /// receiver's schema, or finds the one already stored for its origin; `created` says which,
    /// `None` means a transform dropped it. A duplicate is validated like a new event (it is
    /// recognised only when the writer runs it). The origin is scoped to the path the event
    /// was posted to (one producer cannot claim another path's ids), and a duplicate is only an
    /// identical resubmission: the same origin with other content is a conflict (409).
    pub async fn ingest(&self, item: Ingested) -> Result<Option<Committed>, RegistryError> {
        // Duplicates are found by the writer: no storage read on the request path, because
        // reads wait while the writer applies a batch.
        let (source, origin_id) = item.origin;
        let path = item.path.clone();
        let content = content_hash(&item.payload);
        let target = self.resolve(&item.route).await?;
        let (receiver_id, receiver_type) = match &target {
            // the type is looked up only if a transform needs it
            Target::Existing(id) => (id.clone(), String::new()),
            Target::Create { kind, .. } => (String::new(), kind.clone()),
        };
        let candidate = Candidate {
            receiver_id,
            receiver_type,
            nvrpp: item.nvrpp,
            description: item.description,
            success: item.success,
            payload: item.payload,
            path: item.path,
        };
        // each event goes to the receiver it names; one whose receiver id a transform emptied
        // stays with the receiver the event was routed to, and is validated against it; only
        // the receiver created on the fly (None) takes anything (its schema is `{}`)
        let routed = match &target {
            Target::Existing(id) => Some(id.clone()),
            Target::Create { .. } => None,
        };
        let mut drafts = Vec::new();
        for c in self.transformed(candidate).await? {
            let receiver = match c.receiver_id.is_empty() {
                true => routed.clone(),
                false => Some(c.receiver_id.clone()),
            };
            self.validate_payload(receiver.as_deref(), &c.payload)
                .await?;
            drafts.push((receiver, EventDraft::from_candidate(c, None)));
        }
        if drafts.is_empty() {
            return Ok(None);
        }
        self.store
            .commit(Box::new(move |txn: &mut dyn Txn| {
                let origin = [path.as_str(), source.as_str(), origin_id.as_str()];
                if let Some(recorded) = txn.deduplicated(&origin)? {
                    let (id, hash) = recorded.split_once(' ').unwrap_or((&recorded, ""));
                    if hash != content {
                        return Err(RegistryError::Conflict(format!(
                            "an event with source {source:?} and id {origin_id:?} was already stored from {path} with other content (event {id}); a resubmission must be identical, and a new event needs a new id"
                        )));
                    }
                    return Ok(Committed {
                        id: id.to_owned(),
                        created: false,
                    });
                }
                // created once, however many events go to it (reads do not see this unit's writes)
                let created = match drafts.iter().any(|(receiver, _)| receiver.is_none()) {
                    true => target.find_or_create(txn)?,
                    false => String::new(),
                };
                let drafts = drafts
                    .into_iter()
                    .map(|(receiver, draft)| (receiver.unwrap_or_else(|| created.clone()), draft));
                let id = EventDraft::write_all(txn, drafts)?;
                txn.put_dedup(&origin, &format!("{id} {content}"))?;
                Ok(Committed::written(id))
            }))
            .await
            .map(Some)
    }

    async fn resolve(&self, route: &Route) -> Result<Target, RegistryError> {
        match route {
            Route::Receiver(id) => {
                match self.schemas.get(id).is_some() || self.store.receiver(id).await?.is_some() {
                    true => Ok(Target::Existing(id.clone())),
                    false => Err(RegistryError::invalid(format!(
                        "receiver {id} named by the event does not exist"
                    ))),
                }
            }
            Route::Type { kind, auto } => {
                let ids = self.receivers_of_type(kind).await?;
                match (ids.as_slice(), auto) {
                    ([id], _) => Ok(Target::Existing(id.clone())),
                    ([], Some(_)) if self.receiver_count() >= MAX_RECEIVERS => {
                        Err(RegistryError::invalid(format!(
                            "no receiver has type {kind}, and the gateway already holds {MAX_RECEIVERS} receivers: none is created on the fly (create it with POST /api/v1/receivers)"
                        )))
                    }
                    ([], Some(auto)) => Ok(Target::Create {
                        kind: kind.clone(),
                        auto: auto.clone(),
                    }),
                    ([], None) => Err(RegistryError::invalid(format!(
                        "no receiver has type {kind}: create one (POST /api/v1/receivers) or let the gateway create receivers on the fly (EPR_AUTO_RECEIVERS=true)"
                    ))),
                    (ids, _) => Err(RegistryError::invalid(format!(
                        "{} receivers have type {kind} ({}): name one with the eprreceiverid extension attribute",
                        ids.len(),
                        ids.join(", ")
                    ))),
                }
            }
        }
    }
}

/// Where an ingested event will be written.
enum Target {
    /// An existing receiver, whose schema the payload matched.
    Existing(String),
    /// The receiver of this type, created if still missing when the write runs.
    Create { kind: String, auto: AutoReceiver },
}

impl Target {
    /// The id of the receiver, which is created now if it is still missing.
    fn find_or_create(self, txn: &mut dyn Txn) -> Result<String, RegistryError> {
        match self {
            Target::Existing(id) => Ok(id),
            Target::Create { kind, auto } => match txn.receivers_of_type(&kind)?.first() {
                // created on the fly by an event committed just before this one
                Some(id) => Ok(id.clone()),
                None => ReceiverDraft {
                    definition: Definition {
                        name: auto.name,
                        kind,
                        version: auto.version,
                        description: auto.description,
                    },
                    schema: RawValue::from_string(ANY_SCHEMA.into())
                        .map_err(RegistryError::internal_json)?,
                }
                .write(txn),
            },
        }
    }
}
