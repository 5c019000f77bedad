//! One order of the log for every replica, with no entry ever skipped by a reader.
//!
//! Units of work append log rows without a sequence number. Numbering them at insert time (a
//! sequence) would let a reader that follows `seq > last` skip a row whose transaction took its
//! number first but committed after a later one became visible: the outbox gap. So rows are
//! numbered after they commit, by a single sequencer step at a time: a step takes a
//! transaction lock, gives every committed, unnumbered row the next numbers (in insertion
//! order, so the entries of one unit keep theirs), commits, and notifies. A step sees every row
//! committed before it took the lock, and the next step starts only after it committed: the
//! numbers are gapless and become visible in order, so `seq > last` never skips one.
//!
//! Each replica runs steps after its own commits (and every [`FALLBACK`], for rows of a replica
//! that died between its commit and its step), and follows the numbering through `LISTEN
//! epr_log` (a wake-up; a read of the highest number every [`FALLBACK`] when notifications are
//! lost). A unit of work that appended to the log is answered once a step that began after its
//! commit is done (at most [`MAX_WAIT`] later), so that whoever got the answer finds its
//! messages in the log, as with the embedded store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Notify, mpsc, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls};

use super::errors::{pg_error, pool_error};
use super::locks::SEQUENCER;
use crate::registry::error::StoreError;

/// How often a replica numbers and reads the log's head without being woken.
pub(super) const FALLBACK: Duration = Duration::from_secs(1);
/// Longest an answer waits for its log rows to be numbered (the write is committed: if the
/// database fails meanwhile, they are numbered when it is back).
const MAX_WAIT: Duration = Duration::from_secs(5);
/// Rows one step numbers at most.
const STEP: i64 = 10_000;
/// The channel the steps notify, with the highest number as payload.
const CHANNEL: &str = "epr_log";

/// The committed rows that have no number yet, in insertion order, at most `$1`.
const UNNUMBERED: &str = "SELECT id FROM epr_log WHERE seq IS NULL ORDER BY id LIMIT $1";
/// Gives the rows `$2` (in that order) the numbers after `$1`. The `= ANY` condition reads
/// the rows by key whatever the statistics say: without it, a plan made while the log looked
/// small joins against a scan of the whole log (seen: 280 pages read to number 16 rows).
const NUMBER: &str =
    "UPDATE epr_log SET seq = $1 + u.n FROM unnest($2::bigint[]) WITH ORDINALITY AS u(id, n)
    WHERE epr_log.id = u.id AND epr_log.id = ANY($2)";

/// The highest number given.
pub(super) const HEAD: &str = "SELECT COALESCE(MAX(seq), 0) FROM epr_log";

/// Publishes `seq` as durable if it is newer than what was.
pub(super) fn advance(durable: &watch::Sender<u64>, seq: u64) {
    durable.send_if_modified(|current| {
        let newer = seq > *current;
        *current = (*current).max(seq);
        newer
    });
}

/// How far this replica's sequencer got.
#[derive(Default)]
pub(super) struct Progress {
    /// Wakes the sequencer.
    wake: Notify,
    /// Steps begun.
    begun: AtomicU64,
    /// The last step that succeeded (steps run one after another).
    done: watch::Sender<u64>,
}

impl Progress {
    /// Returns once a step that began after this call is done (at most [`MAX_WAIT`] later):
    /// what was committed before the call is then numbered.
    pub(super) async fn numbered(&self) {
        let ticket = self.begun.load(Ordering::SeqCst) + 1;
        self.wake.notify_one();
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout(MAX_WAIT, done.wait_for(|d| *d >= ticket)).await;
    }
}

/// Runs steps when woken and every [`FALLBACK`], publishing the head.
pub(super) async fn number(
    pool: deadpool_postgres::Pool,
    progress: std::sync::Arc<Progress>,
    durable: watch::Sender<u64>,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = progress.wake.notified() => {}
            _ = tokio::time::sleep(FALLBACK) => {}
        }
        loop {
            let number = progress.begun.fetch_add(1, Ordering::SeqCst) + 1;
            match step(&pool).await {
                Ok((head, count)) => {
                    progress.done.send_replace(number);
                    if failing {
                        tracing::info!("numbering the log works again");
                        failing = false;
                    }
                    advance(&durable, head);
                    if count < STEP {
                        break;
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot number the log; retrying");
                        failing = true;
                    }
                    break;
                }
            }
        }
    }
}

/// One step: (highest number, rows numbered), in two round trips (pipelined: the server runs
/// the statements one after another, so the reads come after the lock is granted).
async fn step(pool: &deadpool_postgres::Pool) -> Result<(u64, i64), StoreError> {
    let client = pool.get().await.map_err(pool_error)?;
    let statements = futures::try_join!(
        client.prepare_cached(LOCK),
        client.prepare_cached(HEAD),
        client.prepare_cached(UNNUMBERED),
        client.prepare_cached(NUMBER),
        client.prepare_cached(NOTIFY),
    )
    .map_err(pg_error)?;
    let (lock, head, unnumbered, number, notify) = statements;
    let numbered = async {
        let (began, locked, top, ids) = futures::join!(
            client.batch_execute("BEGIN"),
            client.execute(&lock, &[&SEQUENCER]),
            client.query_one(&head, &[]),
            client.query(&unnumbered, &[&STEP]),
        );
        began?;
        locked?;
        let top: i64 = top?.get(0);
        let ids: Vec<i64> = ids?.iter().map(|row| row.get(0)).collect();
        let count = ids.len() as i64;
        if count == 0 {
            client.batch_execute("COMMIT").await?;
        } else {
            let payload = (top + count).to_string();
            let numbering: [&(dyn ToSql + Sync); 2] = [&top, &ids];
            let notice: [&(dyn ToSql + Sync); 2] = [&CHANNEL, &payload];
            let (updated, notified, committed) = futures::join!(
                client.execute(&number, &numbering),
                client.execute(&notify, &notice),
                client.batch_execute("COMMIT"),
            );
            updated?;
            notified?;
            committed?;
        }
        Ok::<_, tokio_postgres::Error>(((top + count) as u64, count))
    }
    .await;
    if numbered.is_err() {
        // the connection goes back to the pool: out of the failed transaction
        let _ = client.batch_execute("ROLLBACK").await;
    }
    numbered.map_err(pg_error)
}

/// Waits for the sequencer's transaction lock.
const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
/// Tells every replica the new highest number.
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// Follows the numbering of every replica: `LISTEN`, and a read of the head after each
/// (re)connection and every [`FALLBACK`]; reconnects when the connection is lost.
pub(super) async fn follow(config: tokio_postgres::Config, durable: watch::Sender<u64>) {
    let mut failing = false;
    loop {
        if let Err(e) = listen(&config, &durable, &mut failing).await
            && !failing
        {
            tracing::warn!(error = %e, "lost the log's notifications; reconnecting");
            failing = true;
        }
        tokio::time::sleep(FALLBACK).await;
    }
}

/// Listens until the connection fails; `failing` turns false (and says so) once it listens.
async fn listen(
    config: &tokio_postgres::Config,
    durable: &watch::Sender<u64>,
    failing: &mut bool,
) -> Result<(), StoreError> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg_error)?;
    let (notes, mut notified) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(note) = message {
                let _ = notes.send(note.payload().parse::<u64>().unwrap_or(0));
            }
        }
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(pg_error)?;
        if std::mem::take(failing) {
            tracing::info!("following the log's notifications again");
        }
        loop {
            let head: i64 = client
                .query_one(HEAD, &[])
                .await
                .map_err(pg_error)?
                .get(0);
            advance(durable, head as u64);
            let deadline = tokio::time::sleep(FALLBACK);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    note = notified.recv() => match note {
                        Some(seq) => advance(durable, seq),
                        None => return Err(StoreError::unavailable("the notification connection closed")),
                    },
                    _ = &mut deadline => break,
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}
