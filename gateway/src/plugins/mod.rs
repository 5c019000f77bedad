//! WebAssembly plugins: the wasmtime host of the contract in `wit/plugin.wit`.
//!
//! The files form one chain, each using only those above it:
//! - the vocabulary: [`bindings`] (generated from the WIT), [`model`] (worlds, manifests,
//!   subscriptions, capabilities), [`limits`], [`keys`] (where the store keeps a plugin's
//!   things), [`error`], [`stats`], [`addresses`];
//! - what the operator grants ([`grants`]) and what the store keeps ([`catalog`],
//!   [`dead_letters`]);
//! - a running plugin: its store's data ([`sandbox`]), the WIT `host` interface it calls
//!   ([`host`], with WASI's clocks made non-blocking in [`clocks`]), the engine and its linkers
//!   ([`engine`]), a loaded component with warm instances ([`instance`]), checking and
//!   compiling uploads ([`compile`]), converting events ([`convert`]);
//! - the installed plugins ([`inventory`], whose enabled transforms are the registry's
//!   transform hook), a watcher running from the log with retries and dead letters
//!   ([`runner`]) on lower-priority threads ([`background`]);
//! - the [`manager`]: loading, uploading, replacing, changing, deleting, re-driving.

pub mod addresses;
pub mod background;
pub mod bindings;
pub mod catalog;
pub mod clocks;
pub mod compile;
pub mod convert;
pub mod dead_letters;
pub mod engine;
pub mod error;
pub mod grants;
pub mod host;
pub mod instance;
pub mod inventory;
pub mod keys;
pub mod limits;
pub mod manager;
pub mod model;
pub mod runner;
pub mod sandbox;
pub mod stats;

pub use error::PluginError;
pub use manager::PluginManager;
