//! Events between the gateway's shapes and the contract's.

use serde_json::value::RawValue;

use super::bindings::wit_types;
use crate::registry::message::rfc3339;
use crate::registry::model::{Event, Nvrpp, Receiver};
use crate::registry::transform::Candidate;

fn wit_nvrpp(nvrpp: Nvrpp) -> wit_types::Nvrpp {
    wit_types::Nvrpp {
        name: nvrpp.name,
        version: nvrpp.version,
        release: nvrpp.release,
        platform_id: nvrpp.platform_id,
        package: nvrpp.package,
    }
}

/// A stored event of `receiver`, as a watcher gets it.
pub fn stored_event(event: &Event, receiver: &Receiver) -> wit_types::Event {
    wit_types::Event {
        id: event.id.clone(),
        receiver_id: event.event_receiver_id.clone(),
        receiver_type: receiver.kind.clone(),
        nvrpp: wit_nvrpp(event.nvrpp()),
        success: event.success,
        description: event.description.clone(),
        payload: event.payload.get().to_owned(),
        created_at: rfc3339(event.created_at),
        cloudevent: None,
        caused_by: event.caused_by.clone(),
    }
}

/// An incoming event, as a transform gets it.
pub fn candidate_event(candidate: &Candidate) -> wit_types::Event {
    wit_types::Event {
        id: String::new(),
        receiver_id: candidate.receiver_id.clone(),
        receiver_type: candidate.receiver_type.clone(),
        nvrpp: wit_nvrpp(candidate.nvrpp.clone()),
        success: candidate.success,
        description: candidate.description.clone(),
        payload: candidate.payload.get().to_owned(),
        created_at: String::new(),
        cloudevent: candidate
            .origin
            .as_ref()
            .map(|(source, id)| wit_types::Cloudevent {
                id: id.clone(),
                source: source.clone(),
                type_: candidate.receiver_type.clone(),
                subject: None,
                time: None,
                extensions: Vec::new(),
            }),
        caused_by: None,
    }
}

/// An event a transform returned, to go on in place of `input`; fails when its payload is
/// not JSON.
pub fn returned_candidate(event: wit_types::Event, input: &Candidate) -> Result<Candidate, String> {
    let payload = RawValue::from_string(event.payload)
        .map_err(|e| format!("returned an event whose payload is not JSON: {e}"))?;
    Ok(Candidate {
        receiver_id: event.receiver_id,
        receiver_type: event.receiver_type,
        nvrpp: Nvrpp {
            name: event.nvrpp.name,
            version: event.nvrpp.version,
            release: event.nvrpp.release,
            platform_id: event.nvrpp.platform_id,
            package: event.nvrpp.package,
        },
        success: event.success,
        description: event.description,
        payload,
        origin: input.origin.clone(),
    })
}
