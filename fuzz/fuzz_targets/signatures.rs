//! The webhook signature checks (GitHub style, Standard Webhooks) on any headers and body: no
//! input may panic, and none may pass without the secret (the fuzzer cannot forge an HMAC).

#![no_main]

use epr_gateway::ingest::signature::{Scheme, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (headers, body) = epr_gateway_fuzz::request(data);
    for (scheme, secret) in [
        (Scheme::Github, "fuzz-secret"),
        (Scheme::StandardWebhooks, "whsec_ZnV6ei1zZWNyZXQ="),
    ] {
        assert!(
            verify(scheme, secret, &headers, body).is_err(),
            "a forged signature passed"
        );
    }
});
