//! The CloudEvents HTTP binding (structured, binary, batch) and the mapping of what it decodes
//! to a registry event: no input may panic, hang or overflow the stack.

#![no_main]

use epr_gateway::ingest::http_binding::{Carried, decode};
use epr_gateway::ingest::mapping::ingested;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (headers, body) = epr_gateway_fuzz::request(data);
    let events = match decode(&headers, body) {
        Ok(Carried::Single(event)) => vec![Ok(event)],
        Ok(Carried::Batch(items)) => items,
        Err(_) => return,
    };
    for event in events.into_iter().flatten() {
        let _ = ingested(event, true, "/api/v1/cloudevents");
    }
});
