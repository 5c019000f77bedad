//! Signatures as a sender computes them: HMAC-SHA256 from the `hmac` crate, written here
//! from GitHub's description, not the gateway's verifier (which is checked against published
//! examples in its unit tests).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `X-Hub-Signature-256` value GitHub sends for `body` signed with `secret`.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
