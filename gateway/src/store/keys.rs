//! Key encodings of the sled trees. Composite keys are length-prefixed parts, so that no value
//! can be mistaken for another and a key prefix selects exactly one value; index keys end with
//! the id of the object they point to, so a prefix scan returns ids in time order.

use crate::registry::model::Nvrpp;

/// Appends `part` as a 4-byte big-endian length and its bytes.
fn push_part(key: &mut Vec<u8>, part: &str) {
    key.extend_from_slice(&(part.len() as u32).to_be_bytes());
    key.extend_from_slice(part.as_bytes());
}

/// The prefix selecting every index entry for `parts`.
pub fn prefix(parts: &[&str]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum::<usize>() + 26);
    for part in parts {
        push_part(&mut key, part);
    }
    key
}

/// An index entry: the prefix for `parts` followed by the id it points to.
pub fn entry(parts: &[&str], id: &str) -> Vec<u8> {
    let mut key = prefix(parts);
    key.extend_from_slice(id.as_bytes());
    key
}

/// Key of the latest-event index: `(receiver id, NVRPP)`; its value is the id of the latest
/// event and a success byte.
pub fn latest(receiver_id: &str, nvrpp: &Nvrpp) -> Vec<u8> {
    let [n, v, r, p, k] = nvrpp.parts();
    prefix(&[receiver_id, n, v, r, p, k])
}

/// The id an index entry points to (what follows `prefix_len` bytes).
pub fn entry_id(key: &[u8], prefix_len: usize) -> String {
    String::from_utf8_lossy(&key[prefix_len..]).into_owned()
}

/// The smallest key greater than every key starting with `prefix` (`None`: no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Key of a log entry: its sequence number, big-endian so keys sort in log order.
pub fn log_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The sequence number of a log key.
pub fn log_seq(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&key[..8]);
    u64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cannot_run_into_each_other() {
        assert_ne!(prefix(&["ab", "c"]), prefix(&["a", "bc"]));
        let key = entry(&["ab", "c"], "01ID");
        assert!(key.starts_with(&prefix(&["ab", "c"])));
        assert_eq!(entry_id(&key, prefix(&["ab", "c"]).len()), "01ID");
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255, 255]), None);
        assert!(log_key(2) > log_key(1) && log_key(256) > log_key(255));
        assert_eq!(log_seq(&log_key(77)), 77);
    }
}
