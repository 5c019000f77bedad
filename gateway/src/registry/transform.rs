//! The hook through which transform plugins see incoming events before they are validated and
//! stored.

use serde_json::value::RawValue;

use super::error::RegistryError;
use super::model::Nvrpp;

/// An event on its way in, before validation: what a transform gets and what it returns.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The receiver it goes to; empty when that is the receiver of `receiver_type`, still to be
    /// created on the fly.
    pub receiver_id: String,
    /// That receiver's type (filled in before the transforms run).
    pub receiver_type: String,
    /// The unit it is about.
    pub nvrpp: Nvrpp,
    /// Whether what it reports succeeded.
    pub success: bool,
    /// Free text.
    pub description: String,
    /// The payload.
    pub payload: Box<RawValue>,
    /// The path it was posted to (`/api/v1/events`, `/api/v1/cloudevents`,
    /// `/webhook/<source id>`).
    pub path: String,
}

/// The transforms incoming events go through.
pub trait Transforms: Send + Sync {
    /// Whether any transform is enabled (when none is, events go in without a look here).
    fn active(&self) -> bool;

    /// The events to store instead of `candidate` (itself when no transform applies, none to
    /// drop it), or [`RegistryError::Refused`] naming the transform that refused or failed.
    /// Blocks while plugins run: the registry calls it on a blocking thread.
    fn apply(&self, candidate: Candidate) -> Result<Vec<Candidate>, RegistryError>;
}
