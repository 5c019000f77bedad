//! GraphQL: EPR's schema (`../shared/EPR-API.md`), served at `POST /api/v1/graphql/query`, on
//! the same registry, rules and errors as the REST API; errors in `errors[]` with HTTP 200.

pub mod resolvers;
pub mod scalars;
pub mod types;

use std::sync::Arc;

use async_graphql::{EmptySubscription, Schema};

use crate::plugins::PluginManager;
use crate::registry::Registry;
use resolvers::{Mutation, Query};

/// Deepest query accepted.
pub const MAX_DEPTH: usize = 8;
/// Largest query complexity accepted: one per field, a list's fields counted once per item it
/// may return (its `limit`, 100 by default): e.g. 100 events of 10 fields cost 1,000.
pub const MAX_COMPLEXITY: usize = 5_000;

/// The gateway's GraphQL schema.
pub type EprSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema over `registry` and `plugins`, with depth and complexity limits; introspection
/// stays on.
pub fn schema(registry: Arc<Registry>, plugins: Arc<PluginManager>) -> EprSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .data(registry)
        .data(plugins)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// What the caller's token allows, as for the REST API: posting events needs the ingest (or
/// admin) token, creating receivers and groups the admin token, when those are configured.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// May post events.
    pub ingest: bool,
    /// May create and change receivers and groups.
    pub admin: bool,
}

impl Caller {
    fn may_ingest(&self) -> async_graphql::Result<()> {
        match self.ingest {
            true => Ok(()),
            false => Err("unauthorized: creating events needs the ingest or admin token (Authorization: Bearer ...)".into()),
        }
    }

    fn may_administer(&self) -> async_graphql::Result<()> {
        match self.admin {
            true => Ok(()),
            false => Err("unauthorized: creating or changing receivers and groups needs the admin token (Authorization: Bearer ...)".into()),
        }
    }
}

/// Says which limit a refused query is over: async-graphql's own words ("Query is nested too
/// deep.", "Query is too complex.") name none.
pub fn explain_limits(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        match error.message.as_str() {
            "Query is nested too deep." => {
                error.message =
                    format!("the query is nested too deep: at most {MAX_DEPTH} levels of fields")
            }
            "Query is too complex." => {
                error.message = format!(
                    "the query is too complex: at most {MAX_COMPLEXITY} (a field counts 1, a list's fields once per item its limit allows)"
                )
            }
            _ => {}
        }
    }
}
