//! Test harness, by job: the gateway process ([`process`]), an HTTP client of it ([`api`]), the
//! Kafka broker ([`broker`]), the PostgreSQL server ([`postgres`]), the Python scripts ([`python`]) and signing as senders do
//! ([`sign`]).

pub mod api;
pub mod broker;
pub mod postgres;
pub mod process;
pub mod python;
pub mod sign;

pub use api::{Api, Until, client, error_of, event_body, receiver_body};
pub use broker::Broker;
pub use postgres::Postgres;
pub use process::{Gateway, binary, serve_refused, wasm, wasm_path};
pub use python::{python, run_python, run_script, script_path};
pub use sign::github_signature;
