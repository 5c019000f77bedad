//! The advisory locks of the PostgreSQL store. Transaction locks serialise units of work that
//! touch the same unit (NVRPP), ingestion origin or receiver type, so that each sees the other's
//! commit (READ COMMITTED takes a new snapshot per statement, and a lock is granted only after
//! its holder committed and became visible). Session locks elect the one replica that runs a
//! singleton (migrations, the sequencer's step, the Kafka relay, each watcher).

use sha2::{Digest, Sha256};

/// The session lock held while migrating.
pub(crate) const MIGRATIONS: i64 = 0x4550_5200_0000_0001;
/// The transaction lock of a sequencer step.
pub(crate) const SEQUENCER: i64 = 0x4550_5200_0000_0002;
/// Group memberships: shared by every unit of work that asks whether a receiver is in a group,
/// exclusive for one that writes a group. An event that races the creation of a group it
/// belongs to is then decided before the group exists or after, never half-way.
pub(crate) const MEMBERSHIP: i64 = 0x4550_5200_0000_0003;

/// What a transaction lock protects.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope {
    /// Every event about one unit: group completion reads the others' latest events.
    Unit,
    /// One ingestion origin: stored once.
    Origin,
    /// The receivers of one type: one created on the fly at most.
    Kind,
    /// A lease (a session lock).
    Lease,
}

/// The lock key of `scope` over the key `parts` (a hash: two keys sharing a lock only wait for
/// each other, never see less).
pub(crate) fn key(scope: Scope, parts: &[&str]) -> i64 {
    let mut hash = Sha256::new();
    hash.update([scope as u8]);
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_scope_and_by_how_parts_split() {
        assert_ne!(key(Scope::Unit, &["a"]), key(Scope::Origin, &["a"]));
        assert_ne!(
            key(Scope::Unit, &["ab", "c"]),
            key(Scope::Unit, &["a", "bc"])
        );
        assert_eq!(key(Scope::Kind, &["x"]), key(Scope::Kind, &["x"]));
    }
}
