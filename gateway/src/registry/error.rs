//! What can go wrong in the registry, in the words EPR's clients expect.

use thiserror::Error;

/// An error of the storage behind the registry (details go to the log, never to the client).
#[derive(Debug, Error)]
#[error("storage error: {message}")]
pub struct StoreError {
    /// What went wrong.
    pub message: String,
    /// Whether the store could not be reached (a 503: try again later) rather than failed.
    pub unavailable: bool,
}

impl StoreError {
    /// The store failed (a 500).
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            unavailable: false,
        }
    }

    /// The store cannot be reached now (a 503).
    pub fn unavailable(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            unavailable: true,
        }
    }
}

/// The kinds of object the registry holds, named as EPR names them in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A receiver (`eventReceiver`).
    Receiver,
    /// An event (`event`).
    Event,
    /// A group (`eventReceiverGroup`).
    Group,
}

impl ObjectKind {
    /// EPR's name for the kind.
    pub fn epr_name(self) -> &'static str {
        match self {
            ObjectKind::Receiver => "eventReceiver",
            ObjectKind::Event => "event",
            ObjectKind::Group => "eventReceiverGroup",
        }
    }
}

/// A failed registry operation.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The client sent something wrong (400); the text says what.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// No object of that kind has that id (404).
    #[error("object not found: {} with id {id} not found", kind.epr_name())]
    NotFound {
        /// What was looked for.
        kind: ObjectKind,
        /// The id asked for.
        id: String,
    },
    /// A transform plugin refused the event, or failed on it (422).
    #[error("refused by plugin {plugin}: {reason}")]
    Refused {
        /// The plugin's name.
        plugin: String,
        /// Its error, or how it failed.
        reason: String,
    },
    /// What was sent contradicts what is stored (409): e.g. an event with the origin (source
    /// and id) of a stored one on the same path, but other content.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    /// A 400 with the given text after `invalid input: `.
    pub fn invalid(msg: impl Into<String>) -> Self {
        RegistryError::InvalidInput(msg.into())
    }

    /// A 404 for the `kind` with id `id`.
    pub fn not_found(kind: ObjectKind, id: &str) -> Self {
        RegistryError::NotFound {
            kind,
            id: id.to_owned(),
        }
    }

    /// A 500 for JSON the gateway itself made or stored that does not (de)serialise.
    pub fn internal_json(e: serde_json::Error) -> Self {
        RegistryError::Store(StoreError::new(format!("JSON: {e}")))
    }
}
