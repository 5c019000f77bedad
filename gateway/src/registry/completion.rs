//! Group completion: after an event is stored, which groups does it complete?
//!
//! A group is complete for a unit (NVRPP) when it is enabled and, for every member receiver, the
//! most recent event about that unit is a success. Groups are judged independently; a complete
//! group completes again on every later qualifying event. Cost: O(members) index reads per group.

use super::error::StoreError;
use super::model::{Event, Group};
use super::port::Txn;

/// The enabled groups that `event` (being stored in `txn`, so not yet visible to its reads)
/// completes.
pub fn completed_groups(txn: &dyn Txn, event: &Event) -> Result<Vec<Group>, StoreError> {
    if !event.success {
        // The event's own receiver is a member of every candidate group and now fails.
        return Ok(Vec::new());
    }
    let nvrpp = event.nvrpp();
    let mut complete = Vec::new();
    for group in txn.groups_of_receiver(&event.event_receiver_id)? {
        if !group.enabled {
            continue;
        }
        let mut all_succeeded = true;
        for member in &group.event_receiver_ids {
            if *member != event.event_receiver_id
                && txn.latest_success(member, &nvrpp)? != Some(true)
            {
                all_succeeded = false;
                break;
            }
        }
        if all_succeeded {
            complete.push(group);
        }
    }
    Ok(complete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::{Nvrpp, Receiver};
    use crate::registry::port::LogEntry;
    use chrono::{DateTime, Utc};
    use std::collections::HashMap;

    /// Just enough of a store for the rule: groups and the latest-success index.
    #[derive(Default)]
    struct Index {
        groups: Vec<Group>,
        latest: HashMap<(String, String), bool>,
    }

    impl Txn for Index {
        fn new_id(&mut self) -> (String, DateTime<Utc>) {
            unreachable!("the rule makes no ids")
        }
        fn group(&self, _: &str) -> Result<Option<Group>, StoreError> {
            unreachable!("the rule reads groups through groups_of_receiver")
        }
        fn groups_of_receiver(&self, r: &str) -> Result<Vec<Group>, StoreError> {
            let member = |g: &&Group| g.event_receiver_ids.iter().any(|m| m == r);
            Ok(self.groups.iter().filter(member).cloned().collect())
        }
        fn latest_success(&self, r: &str, n: &Nvrpp) -> Result<Option<bool>, StoreError> {
            Ok(self.latest.get(&(r.to_owned(), n.name.clone())).copied())
        }
        fn receivers_of_type(&self, _: &str) -> Result<Vec<String>, StoreError> {
            unreachable!()
        }
        fn deduplicated(&self, _: &[&str]) -> Result<Option<String>, StoreError> {
            unreachable!()
        }
        fn put_dedup(&mut self, _: &[&str], _: &str) -> Result<(), StoreError> {
            unreachable!()
        }
        fn put_setting(
            &mut self,
            _: &str,
            _: Option<&serde_json::Value>,
        ) -> Result<(), StoreError> {
            unreachable!()
        }
        fn put_blob(&mut self, _: &str, _: Option<&[u8]>) -> Result<(), StoreError> {
            unreachable!()
        }
        fn put_receiver(&mut self, _: &Receiver) -> Result<(), StoreError> {
            unreachable!()
        }
        fn put_group(&mut self, _: &Group) -> Result<(), StoreError> {
            unreachable!()
        }
        fn put_event(&mut self, _: &Event) -> Result<(), StoreError> {
            unreachable!()
        }
        fn append_log(&mut self, _: &LogEntry) -> Result<(), StoreError> {
            unreachable!()
        }
    }

    fn group(id: &str, enabled: bool, members: &[&str]) -> Group {
        Group {
            id: id.into(),
            name: id.into(),
            kind: format!("{id}.complete"),
            version: "1".into(),
            description: "d".into(),
            enabled,
            event_receiver_ids: members.iter().map(|m| m.to_string()).collect(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn event(receiver: &str, unit: &str, success: bool) -> Event {
        Event {
            id: "E".into(),
            name: unit.into(),
            version: "1".into(),
            release: "1".into(),
            platform_id: "p".into(),
            package: "pkg".into(),
            description: "d".into(),
            payload: serde_json::value::to_raw_value(&()).unwrap(),
            success,
            event_receiver_id: receiver.into(),
            created_at: Utc::now(),
            caused_by: None,
            completed_group_ids: Vec::new(),
        }
    }

    fn ids(groups: Vec<Group>) -> Vec<String> {
        groups.into_iter().map(|g| g.id).collect()
    }

    #[test]
    fn groups_sharing_a_receiver_are_judged_independently() {
        let mut index = Index {
            groups: vec![
                group("g1", true, &["a", "b"]),
                group("g2", true, &["a", "c"]),
            ],
            ..Index::default()
        };
        index.latest.insert(("b".into(), "u".into()), true);
        assert_eq!(
            ids(completed_groups(&index, &event("a", "u", true)).unwrap()),
            ["g1"]
        );
    }

    #[test]
    fn a_later_failure_revokes_and_other_units_do_not_count() {
        let mut index = Index {
            groups: vec![group("g1", true, &["a", "b"])],
            ..Index::default()
        };
        index.latest.insert(("b".into(), "u".into()), false);
        index.latest.insert(("b".into(), "other".into()), true);
        assert!(
            completed_groups(&index, &event("a", "u", true))
                .unwrap()
                .is_empty()
        );
        assert!(
            completed_groups(&index, &event("a", "u", false))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn disabled_groups_never_complete() {
        let index = Index {
            groups: vec![group("g1", false, &["a"])],
            ..Index::default()
        };
        assert!(
            completed_groups(&index, &event("a", "u", true))
                .unwrap()
                .is_empty()
        );
    }
}
