//! Ids of stored objects: ULIDs, each greater than every one made before it by the same
//! generator, and the time each stands for.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use ulid::Generator;

/// A fresh id from `generator` and its time.
pub(crate) fn next(generator: &mut Generator) -> (String, DateTime<Utc>) {
    let mut at = SystemTime::now();
    let ulid = loop {
        match generator.generate_from_datetime(at) {
            Ok(ulid) => break ulid,
            // 2^80 ids in one millisecond: move on to the next one.
            Err(_) => at += Duration::from_millis(1),
        }
    };
    (ulid.to_string(), DateTime::<Utc>::from(ulid.datetime()))
}
