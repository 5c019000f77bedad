//! Provenance: everything recorded about one unit (NVRPP), oldest first.

use std::collections::HashMap;

use super::Registry;
use super::error::RegistryError;
use super::model::{Event, Group, Nvrpp, Receiver};
use super::query::{EventFilter, MAX_LIMIT, Page};

/// One step of a unit's history: an event, the receiver it was posted to and the groups it
/// completed when it was stored.
#[derive(Debug, Clone)]
pub struct ProvenanceStep {
    /// The event.
    pub event: Event,
    /// Its receiver.
    pub receiver: Receiver,
    /// The groups the event completed (they may have been disabled since).
    pub completed_groups: Vec<Group>,
}

impl Registry {
    /// The latest `max` events about `nvrpp` (at most [`MAX_LIMIT`]), oldest first, with
    /// their receivers and the groups they completed.
    pub async fn provenance(
        &self,
        nvrpp: &Nvrpp,
        max: usize,
    ) -> Result<Vec<ProvenanceStep>, RegistryError> {
        let max = max.clamp(1, MAX_LIMIT);
        let filter = EventFilter::of_unit(nvrpp);
        let mut events = Vec::new();
        let mut page = Page {
            limit: max,
            after: None,
        };
        while events.len() < max {
            page.limit = max - events.len();
            let found = self.find_events(&filter, &page).await?;
            events.extend(found.items);
            match found.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        events.reverse();
        // a group completes again on every later qualifying event: read each one once
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut steps = Vec::with_capacity(events.len());
        for event in events {
            let mut completed_groups = Vec::with_capacity(event.completed_group_ids.len());
            for id in &event.completed_group_ids {
                if !groups.contains_key(id) {
                    groups.insert(id.clone(), self.group(id).await?);
                }
                completed_groups.push(groups[id].clone());
            }
            steps.push(ProvenanceStep {
                receiver: self.receiver(&event.event_receiver_id).await?,
                event,
                completed_groups,
            });
        }
        Ok(steps)
    }
}
