//! The CDEvent decoder of the webhook sources, raw or wrapped in a CloudEvent: no input may
//! panic.

#![no_main]

use epr_gateway::ingest::cdevent::CdEvent;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(cdevent) = CdEvent::parse(json) {
        let _ = cdevent.into_ingested(None, Map::new(), "/webhook/000-cdevents");
    }
});
