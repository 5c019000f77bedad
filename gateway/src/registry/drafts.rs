//! What is about to be written: a receiver or an event, checked, and how each is stored with
//! its log messages in one unit of work.

use serde_json::value::RawValue;

use super::completion;
use super::error::RegistryError;
use super::input::Definition;
use super::message::Message;
use super::model::{self, Event, Nvrpp, Receiver};
use super::port::{LogEntry, Txn};
use super::transform::Candidate;
use super::{METRIC_EVENTS_STORED, METRIC_GROUPS_COMPLETED};

/// A receiver about to be written.
pub(super) struct ReceiverDraft {
    pub(super) definition: Definition,
    pub(super) schema: Box<RawValue>,
}

impl ReceiverDraft {
    /// Stores the receiver and its log message; returns its id.
    pub(super) fn write(self, txn: &mut dyn Txn) -> Result<String, RegistryError> {
        let (id, created_at) = txn.new_id();
        let Definition {
            name,
            kind,
            version,
            description,
        } = self.definition;
        let receiver = Receiver {
            fingerprint: model::fingerprint(&kind, &description, &name, &version),
            id,
            name,
            kind,
            version,
            description,
            schema: self.schema,
            created_at,
        };
        txn.put_receiver(&receiver)?;
        txn.append_log(&LogEntry::Message(Box::new(Message::receiver_created(
            &receiver,
        ))))?;
        Ok(receiver.id)
    }
}

/// An event about to be written, all but its receiver.
pub(super) struct EventDraft {
    nvrpp: Nvrpp,
    description: String,
    payload: Box<RawValue>,
    success: bool,
    caused_by: Option<String>,
}

impl EventDraft {
    /// The draft of `candidate`, emitted while a plugin handled `caused_by` if that is given.
    pub(super) fn from_candidate(candidate: Candidate, caused_by: Option<&str>) -> Self {
        EventDraft {
            nvrpp: candidate.nvrpp,
            description: candidate.description,
            payload: candidate.payload,
            success: candidate.success,
            caused_by: caused_by.map(str::to_owned),
        }
    }

    /// Stores each draft for its receiver; returns the first one's id.
    pub(super) fn write_all(
        txn: &mut dyn Txn,
        drafts: impl IntoIterator<Item = (String, EventDraft)>,
    ) -> Result<String, RegistryError> {
        let mut first = None;
        for (receiver_id, draft) in drafts {
            let id = draft.write(txn, receiver_id)?;
            first.get_or_insert(id);
        }
        Ok(first.unwrap_or_default())
    }

    /// Stores the event for `receiver_id`, its log message and the group-complete messages it
    /// causes; returns its id.
    pub(super) fn write(
        self,
        txn: &mut dyn Txn,
        receiver_id: String,
    ) -> Result<String, RegistryError> {
        let (id, created_at) = txn.new_id();
        let Nvrpp {
            name,
            version,
            release,
            platform_id,
            package,
        } = self.nvrpp;
        let mut event = Event {
            id,
            name,
            version,
            release,
            platform_id,
            package,
            description: self.description,
            payload: self.payload,
            success: self.success,
            event_receiver_id: receiver_id,
            created_at,
            caused_by: self.caused_by,
            completed_group_ids: Vec::new(),
        };
        let completed = completion::completed_groups(txn, &event)?;
        event.completed_group_ids = completed.iter().map(|g| g.id.clone()).collect();
        txn.put_event(&event)?;
        txn.append_log(&LogEntry::EventCreated {
            event_id: event.id.clone(),
        })?;
        for group in &completed {
            let (message_id, _) = txn.new_id();
            let message = Message::group_complete(&message_id, &event, group);
            txn.append_log(&LogEntry::Message(Box::new(message)))?;
        }
        metrics::counter!(METRIC_EVENTS_STORED).increment(1);
        metrics::counter!(METRIC_GROUPS_COMPLETED).increment(completed.len() as u64);
        Ok(event.id)
    }
}
