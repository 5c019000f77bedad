//! A group's gate for one unit: where each member receiver stands and which event decided it,
//! so that "why has release-ready not fired for 2.4.1?" has an answer.

use serde::Serialize;

use super::Registry;
use super::error::RegistryError;
use super::model::{Event, Group, Nvrpp, Receiver};

/// Where one member receiver stands for the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Its latest event about the unit is a success.
    Satisfied,
    /// Its latest event about the unit is a failure.
    Failed,
    /// It has no event about the unit yet.
    Waiting,
}

/// One member of the group, for the unit.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    /// The member receiver.
    pub receiver: Receiver,
    /// Where it stands.
    pub state: MemberState,
    /// Its latest event about the unit, which decides its state (none while waiting).
    pub deciding_event: Option<Event>,
}

/// A group's gate for one unit.
#[derive(Debug, Clone, Serialize)]
pub struct GateStatus {
    /// The group.
    pub group: Group,
    /// The unit.
    pub unit: Nvrpp,
    /// Whether the gate is open now: the group is enabled and every member is satisfied.
    pub complete: bool,
    /// The event whose storing last completed the group for this unit, if one did.
    pub completed_by: Option<String>,
    /// The members, in the group's order.
    pub members: Vec<MemberStatus>,
}

impl GateStatus {
    /// The members in `state`.
    pub fn members_in(&self, state: MemberState) -> impl Iterator<Item = &MemberStatus> {
        self.members.iter().filter(move |m| m.state == state)
    }
}

impl Registry {
    /// Group `group_id`'s gate for `unit`: each member's latest event about the unit, read from
    /// the index group completion reads (so the gate agrees with [`super::completion`] by
    /// construction), and whether that opens the gate. Cost: two reads per member.
    pub async fn gate(&self, group_id: &str, unit: &Nvrpp) -> Result<GateStatus, RegistryError> {
        let group = self.group(group_id).await?;
        let mut members = Vec::with_capacity(group.event_receiver_ids.len());
        for receiver_id in &group.event_receiver_ids {
            let deciding_event = self.store.latest_event(receiver_id, unit).await?;
            let state = match &deciding_event {
                None => MemberState::Waiting,
                Some(e) if e.success => MemberState::Satisfied,
                Some(_) => MemberState::Failed,
            };
            members.push(MemberStatus {
                receiver: self.receiver(receiver_id).await?,
                state,
                deciding_event,
            });
        }
        let completed_by = members
            .iter()
            .filter_map(|m| m.deciding_event.as_ref())
            .filter(|e| e.completed_group_ids.contains(&group.id))
            .map(|e| e.id.clone())
            .max();
        Ok(GateStatus {
            complete: group.enabled && members.iter().all(|m| m.state == MemberState::Satisfied),
            completed_by,
            unit: unit.clone(),
            group,
            members,
        })
    }
}
