//! The queries and mutations of EPR's schema, run by the registry as the REST API runs them,
//! plus pagination (`limit`, `after`) on searches.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};

use super::Caller;
use super::types::{
    CreateEventInput, CreateEventReceiverGroupInput, CreateEventReceiverInput, DeadLetterObject,
    EventObject, FindEventInput, FindEventReceiverGroupInput, FindEventReceiverInput, GroupObject,
    PluginObject, ProvenanceStepObject, ReceiverObject,
};
use crate::plugins::PluginManager;
use crate::registry::Registry;
use crate::registry::model::Nvrpp;
use crate::registry::query::{DEFAULT_LIMIT, MAX_LIMIT, Page};

fn registry<'a>(ctx: &Context<'a>) -> &'a Arc<Registry> {
    ctx.data_unchecked::<Arc<Registry>>()
}

/// The GraphQL objects of `items`.
fn objects<T, O: From<T>>(items: Vec<T>) -> Vec<O> {
    items.into_iter().map(O::from).collect()
}

/// The complexity of a list field: what one item costs times the items it may return, so that
/// aliases cannot multiply large pages past [`super::MAX_COMPLEXITY`].
fn list_cost(limit: Option<i32>, child_complexity: usize) -> usize {
    let items = limit.map_or(DEFAULT_LIMIT, |l| {
        usize::try_from(l).unwrap_or(1).clamp(1, MAX_LIMIT)
    });
    items.saturating_mul(child_complexity.max(1))
}

/// `limit` and `after`, checked as the REST API checks them.
fn page(limit: Option<i32>, after: Option<ID>) -> Result<Page> {
    Ok(Page::new(limit.map(i64::from), after.map(|id| id.0))?)
}

/// The queries.
pub struct Query;

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl Query {
    /// The event with this id (a list of one, as in EPR).
    async fn events_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Vec<EventObject>> {
        Ok(vec![registry(ctx).event(&id).await?.event.into()])
    }

    /// The receiver with this id (a list of one).
    async fn event_receivers_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Vec<ReceiverObject>> {
        Ok(vec![registry(ctx).receiver(&id).await?.into()])
    }

    /// The group with this id (a list of one).
    async fn event_receiver_groups_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Vec<GroupObject>> {
        Ok(vec![registry(ctx).group(&id).await?.into()])
    }

    /// Events whose given fields are all equal to the filter's, newest first.
    #[graphql(complexity = "list_cost(limit, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        event: FindEventInput,
        limit: Option<i32>,
        after: Option<ID>,
    ) -> Result<Vec<EventObject>> {
        let found = registry(ctx)
            .find_events(&event.into(), &page(limit, after)?)
            .await?;
        Ok(objects(found.items))
    }

    /// Receivers whose given fields are all equal to the filter's, newest first.
    #[graphql(complexity = "list_cost(limit, child_complexity)")]
    async fn event_receivers(
        &self,
        ctx: &Context<'_>,
        event_receiver: FindEventReceiverInput,
        limit: Option<i32>,
        after: Option<ID>,
    ) -> Result<Vec<ReceiverObject>> {
        let found = registry(ctx)
            .find_receivers(&event_receiver.into(), &page(limit, after)?)
            .await?;
        Ok(objects(found.items))
    }

    /// Groups whose given fields are all equal to the filter's, newest first.
    #[graphql(complexity = "list_cost(limit, child_complexity)")]
    async fn event_receiver_groups(
        &self,
        ctx: &Context<'_>,
        event_receiver_group: FindEventReceiverGroupInput,
        limit: Option<i32>,
        after: Option<ID>,
    ) -> Result<Vec<GroupObject>> {
        let found = registry(ctx)
            .find_groups(&event_receiver_group.into(), &page(limit, after)?)
            .await?;
        Ok(objects(found.items))
    }

    /// Everything recorded about one unit, oldest first: each event with its receiver and the
    /// groups it completed (beyond EPR).
    #[graphql(complexity = "list_cost(limit, child_complexity)")]
    #[expect(
        clippy::too_many_arguments,
        reason = "each GraphQL argument is a parameter"
    )]
    async fn provenance(
        &self,
        ctx: &Context<'_>,
        name: String,
        version: String,
        release: String,
        platform_id: String,
        package: String,
        #[graphql(desc = "Most events returned (the unit's latest ones), 1 to 1000; default 100")]
        limit: Option<i32>,
    ) -> Result<Vec<ProvenanceStepObject>> {
        let nvrpp = Nvrpp {
            name,
            version,
            release,
            platform_id,
            package,
        };
        let steps = registry(ctx)
            .provenance(&nvrpp, page(limit, None)?.limit)
            .await?;
        Ok(objects(steps))
    }

    /// The installed plugins, by name (beyond EPR; the admin token, as for the REST API).
    async fn plugins(&self, ctx: &Context<'_>) -> Result<Vec<PluginObject>> {
        ctx.data_unchecked::<Caller>().may_administer()?;
        let host = ctx.data_unchecked::<Arc<PluginManager>>();
        Ok(objects(host.list().await))
    }

    /// The events watcher `name` gave up on, oldest first (beyond EPR; the admin token).
    async fn dead_letters(&self, ctx: &Context<'_>, name: String) -> Result<Vec<DeadLetterObject>> {
        ctx.data_unchecked::<Caller>().may_administer()?;
        let host = ctx.data_unchecked::<Arc<PluginManager>>();
        Ok(objects(host.dead_letters(&name).await?))
    }
}

/// The mutations.
pub struct Mutation;

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl Mutation {
    /// Stores an event (validated against its receiver's schema); its id.
    async fn create_event(&self, ctx: &Context<'_>, event: CreateEventInput) -> Result<ID> {
        ctx.data_unchecked::<Caller>().may_ingest()?;
        match registry(ctx).create_event(event.into()).await? {
            Some(id) => Ok(ID(id)),
            None => Err("the event was dropped by a transform plugin: nothing was stored".into()),
        }
    }

    /// Creates a receiver (or finds the identical one); its id.
    async fn create_event_receiver(
        &self,
        ctx: &Context<'_>,
        event_receiver: CreateEventReceiverInput,
    ) -> Result<ID> {
        ctx.data_unchecked::<Caller>().may_administer()?;
        Ok(ID(registry(ctx)
            .create_receiver(event_receiver.into())
            .await?))
    }

    /// Creates a group; its id.
    async fn create_event_receiver_group(
        &self,
        ctx: &Context<'_>,
        event_receiver_group: CreateEventReceiverGroupInput,
    ) -> Result<ID> {
        ctx.data_unchecked::<Caller>().may_administer()?;
        Ok(ID(registry(ctx)
            .create_group(event_receiver_group.into())
            .await?))
    }

    /// Enables a group; its id.
    async fn set_event_receiver_group_enabled(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        set_enabled(ctx, id, true).await
    }

    /// Disables a group; its id.
    async fn set_event_receiver_group_disabled(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        set_enabled(ctx, id, false).await
    }
}

async fn set_enabled(ctx: &Context<'_>, id: ID, enabled: bool) -> Result<ID> {
    ctx.data_unchecked::<Caller>().may_administer()?;
    registry(ctx).set_group_enabled(&id, enabled).await?;
    Ok(id)
}
