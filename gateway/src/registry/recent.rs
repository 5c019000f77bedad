//! The most recent messages of the log, newest first, filtered by type.

use super::Registry;
use super::error::RegistryError;
use super::message::Message;
use super::query::{MAX_PAGE_BYTES, MAX_SCANNED};

/// Most messages one call returns.
pub const MAX_RECENT: usize = 100;
/// Log entries read per step backwards from the head.
const WINDOW: u64 = 256;

impl Registry {
    /// The latest `count` (1 to [`MAX_RECENT`], else an error) messages of the log whose type starts with
    /// `type_prefix`, newest first, with their sequence numbers. Looks at no more than
    /// [`MAX_SCANNED`] entries, and stops early once the events' payloads reach
    /// [`MAX_PAGE_BYTES`].
    pub async fn recent_messages(
        &self,
        count: usize,
        type_prefix: &str,
    ) -> Result<Vec<(u64, Message)>, RegistryError> {
        if !(1..=MAX_RECENT).contains(&count) {
            return Err(RegistryError::invalid(format!(
                "count must be between 1 and {MAX_RECENT}, got {count}"
            )));
        }
        let mut end = *self.store.durable_seq().borrow();
        let (mut found, mut scanned, mut bytes) = (Vec::new(), 0, 0);
        while end > 0 && found.len() < count && scanned < MAX_SCANNED && bytes < MAX_PAGE_BYTES {
            let start = end.saturating_sub(WINDOW);
            let entries = self.store.log_after(start, (end - start) as usize).await?;
            scanned += entries.len();
            for (seq, entry) in entries.iter().rev().filter(|(seq, _)| *seq <= end) {
                let message = self.render(entry).await?;
                if !message.kind.starts_with(type_prefix) {
                    continue;
                }
                bytes += payload_bytes(&message);
                found.push((*seq, message));
                if found.len() == count || bytes >= MAX_PAGE_BYTES {
                    break;
                }
            }
            end = start;
        }
        Ok(found)
    }
}

/// Bytes of the event payloads a message carries.
fn payload_bytes(message: &Message) -> usize {
    message
        .data
        .events
        .iter()
        .flatten()
        .map(|e| e.payload.get().len())
        .sum()
}
