//! The tables, created and migrated by the gateway at start: versioned migrations applied in
//! order, each in its own transaction, under a session advisory lock so that replicas starting
//! at once apply each one exactly once (the others wait, then find it applied).

use tokio_postgres::Client;

use super::errors::pg_error;
use super::locks::MIGRATIONS;
use crate::registry::error::StoreError;

/// The migrations, in order; a migration's number is its place in this list (from 1). Never
/// edit one that shipped: add another.
///
/// Keys and ids are `COLLATE "C"` so that they sort by bytes, as in the embedded store (ULIDs in
/// time order, prefixes of settings as ranges). Objects are stored as the JSON the embedded store
/// keeps (text, so payloads stay byte for byte as posted; jsonb would rewrite them), beside the
/// columns the searches and indexes need.
const MIGRATIONS_SQL: &[&str] = &[r#"
CREATE TABLE epr_receivers (
    id text COLLATE "C" PRIMARY KEY,
    kind text COLLATE "C" NOT NULL,
    doc text NOT NULL
);
CREATE INDEX epr_receivers_by_kind ON epr_receivers (kind, id);

CREATE TABLE epr_events (
    id text COLLATE "C" PRIMARY KEY,
    receiver_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    version text COLLATE "C" NOT NULL,
    release text COLLATE "C" NOT NULL,
    platform_id text COLLATE "C" NOT NULL,
    package text COLLATE "C" NOT NULL,
    success boolean NOT NULL,
    doc text NOT NULL
);
CREATE INDEX epr_events_by_receiver ON epr_events (receiver_id, id);
CREATE INDEX epr_events_by_name ON epr_events (name, id);
CREATE INDEX epr_events_by_unit ON epr_events (name, version, release, platform_id, package, id);
-- the most recent event of each receiver about each unit (the greatest id), what group
-- completion reads: an index rather than a table of latest events, whose row for a busy unit
-- every event would update, one transaction after the other
CREATE INDEX epr_events_latest ON epr_events
    (receiver_id, name, version, release, platform_id, package, id) INCLUDE (success);

CREATE TABLE epr_groups (
    id text COLLATE "C" PRIMARY KEY,
    doc text NOT NULL
);
CREATE TABLE epr_group_members (
    receiver_id text COLLATE "C" NOT NULL,
    group_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (receiver_id, group_id)
);

-- (path, source, id) of an ingested event -> "<stored event id> <content hash>"
CREATE TABLE epr_dedup (
    origin bytea PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE epr_settings (
    key text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE epr_blobs (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- the log: rows are written by the units of work with no sequence number; the sequencer
-- numbers committed rows afterwards, one step at a time (see sequencer.rs)
CREATE TABLE epr_log (
    id bigserial PRIMARY KEY,
    seq bigint UNIQUE,
    entry text NOT NULL
);
CREATE INDEX epr_log_unnumbered ON epr_log (id) WHERE seq IS NULL;
"#];

/// Brings the database's schema up to date; refuses a database migrated by a newer gateway.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATIONS])
        .await
        .map_err(pg_error)?;
    let result = apply_missing(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATIONS])
        .await
        .map_err(pg_error);
    result.and(unlocked.map(drop))
}

async fn apply_missing(client: &mut Client) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS epr_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(pg_error)?;
    let row = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM epr_migrations", &[])
        .await
        .map_err(pg_error)?;
    let applied = row.get::<_, i32>(0) as usize;
    if applied > MIGRATIONS_SQL.len() {
        return Err(StoreError::new(format!(
            "the database's schema is at version {applied}, this gateway knows versions up to {}: run a newer gateway",
            MIGRATIONS_SQL.len()
        )));
    }
    for (index, sql) in MIGRATIONS_SQL.iter().enumerate().skip(applied) {
        let version = index as i32 + 1;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO epr_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(())
}
