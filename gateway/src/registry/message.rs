//! The messages EPR publishes, in EPR's JSON shape; they are appended to the log.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Event, Group, Receiver};

/// `type` of the message published when a receiver is created.
pub const RECEIVER_CREATED: &str = "epr.event.receiver.created";
/// `type` of the message published when a group is created.
pub const GROUP_CREATED: &str = "epr.event.receiver.group.created";
/// `platform_id` EPR puts on receiver- and group-created messages.
const EPR_PLATFORM: &str = "event-provenance-registry";

/// One message, as EPR's watchers decode it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// Success of the event (true for receiver and group messages).
    pub success: bool,
    /// Unique id of the message's subject (a group-complete message has its own id).
    pub id: String,
    /// Always `1.0`.
    pub specversion: String,
    /// The receiver's type, the group's type, or one of the `epr.*` types.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `epr`.
    pub source: String,
    /// Always `v1`.
    pub api_version: String,
    /// NVRPP name.
    pub name: String,
    /// NVRPP version.
    pub version: String,
    /// NVRPP release.
    pub release: String,
    /// NVRPP platform id.
    pub platform_id: String,
    /// NVRPP package.
    pub package: String,
    /// The objects the message is about.
    pub data: MessageData,
}

/// The `data` of a message: each list present only when the message carries that kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessageData {
    /// Events.
    pub events: Option<Vec<Event>>,
    /// Receivers.
    pub event_receivers: Option<Vec<Receiver>>,
    /// Groups.
    pub event_receiver_groups: Option<Vec<Group>>,
}

impl Message {
    fn new(success: bool, id: &str, kind: &str, nvrpp: [&str; 5], data: MessageData) -> Self {
        let [name, version, release, platform_id, package] = nvrpp.map(str::to_owned);
        Message {
            success,
            id: id.to_owned(),
            specversion: "1.0".into(),
            kind: kind.to_owned(),
            source: "epr".into(),
            api_version: "v1".into(),
            name,
            version,
            release,
            platform_id,
            package,
            data,
        }
    }

    fn event_nvrpp(event: &Event) -> [&str; 5] {
        [
            &event.name,
            &event.version,
            &event.release,
            &event.platform_id,
            &event.package,
        ]
    }

    /// The message for a stored event: typed as its receiver.
    pub fn event_created(event: &Event, receiver: &Receiver) -> Self {
        let data = MessageData {
            events: Some(vec![event.clone()]),
            event_receivers: Some(vec![receiver.clone()]),
            event_receiver_groups: None,
        };
        Self::new(
            event.success,
            &event.id,
            &receiver.kind,
            Self::event_nvrpp(event),
            data,
        )
    }

    /// The message for a new receiver.
    pub fn receiver_created(receiver: &Receiver) -> Self {
        let release = rfc3339(receiver.created_at);
        let data = MessageData {
            event_receivers: Some(vec![receiver.clone()]),
            ..MessageData::default()
        };
        let nvrpp = [
            &receiver.name,
            &receiver.version,
            &release,
            EPR_PLATFORM,
            "event.receiver",
        ];
        Self::new(true, &receiver.id, RECEIVER_CREATED, nvrpp, data)
    }

    /// The message for a new group.
    pub fn group_created(group: &Group) -> Self {
        let release = rfc3339(group.created_at);
        let data = MessageData {
            event_receiver_groups: Some(vec![group.clone()]),
            ..MessageData::default()
        };
        let nvrpp = [
            &group.name,
            &group.version,
            &release,
            EPR_PLATFORM,
            "event.receiver.group",
        ];
        Self::new(true, &group.id, GROUP_CREATED, nvrpp, data)
    }

    /// The message for a group that `event` completed; `id` is the message's own id.
    pub fn group_complete(id: &str, event: &Event, group: &Group) -> Self {
        let data = MessageData {
            events: Some(vec![event.clone()]),
            event_receiver_groups: Some(vec![group.clone()]),
            event_receivers: None,
        };
        Self::new(true, id, &group.kind, Self::event_nvrpp(event), data)
    }
}

/// RFC 3339 with the precision the timestamp has, as Go prints times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
