//! The single writer: runs units of work one after another, applies each batch of them in one
//! sled transaction, and hands the batch to the flusher, which makes it durable and only then
//! answers. While the flusher waits on the disk, the writer applies the next batch, and one
//! flush covers every batch waiting for it (group commit): concurrent clients share flushes.
//!
//! A batch that was applied is never answered with an error: a flush that fails is tried
//! again (with backoff) until it succeeds, the answers waiting for it, so that an error always
//! means "not stored". A batch that cannot be applied (sled applies it atomically, so none of
//! it was) is answered with errors at once. Meanwhile [`WriteHealth`] tells readiness that the
//! disk is failing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use ulid::Generator;

use super::codec::{decode, encode};
use super::keys;
use super::trees::{TreeId, Trees, sled_error};
use crate::registry::error::{RegistryError, StoreError};
use crate::registry::model::{Event, Group, Nvrpp, Receiver};
use crate::registry::port::{Committed, LogEntry, Txn, Work};
use crate::sync::lock;

/// Most units of work applied in one transaction.
const MAX_BATCH: usize = 1024;

/// What the writer is asked to do.
pub(crate) enum Request {
    /// Run a unit of work and answer once it is durable.
    Work(Work, oneshot::Sender<Result<Committed, RegistryError>>),
    /// Finish the current batch, flush, answer, and stop.
    Close(oneshot::Sender<()>),
}

type Answer = (
    oneshot::Sender<Result<Committed, RegistryError>>,
    Result<Committed, RegistryError>,
);

/// A batch applied in memory, waiting to be made durable.
enum Job {
    /// Flush, then send the answers and publish `last_seq` as durable.
    Flush {
        answers: Vec<Answer>,
        last_seq: u64,
        units: usize,
    },
    /// Flush what is pending, then signal and stop.
    Close(oneshot::Sender<()>),
}

/// Longest wait between two attempts at a failing flush.
const MAX_FLUSH_BACKOFF: Duration = Duration::from_secs(1);

/// Whether the last write or flush failed, and how (shared with readiness); cleared by the
/// next flush that succeeds.
#[derive(Clone, Default)]
pub(crate) struct WriteHealth(Arc<Mutex<Option<String>>>);

impl WriteHealth {
    /// The error of the last write or flush, if it failed.
    pub(crate) fn failing(&self) -> Option<String> {
        lock(&self.0).clone()
    }

    fn set(&self, error: Option<String>) {
        *lock(&self.0) = error;
    }
}

/// Starts the writer and flusher threads; `last_seq` is the last sequence number in the log.
pub(crate) fn spawn(
    trees: Arc<Trees>,
    last_seq: u64,
    durable: watch::Sender<u64>,
    health: WriteHealth,
) -> std::io::Result<mpsc::Sender<Request>> {
    let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
    // Two batches may wait for the disk; beyond that the writer waits too (back-pressure), and
    // requests gather into a larger next batch.
    let (jobs_tx, jobs_rx) = std_mpsc::sync_channel(2);
    let flusher_trees = trees.clone();
    let writer_health = health.clone();
    std::thread::Builder::new()
        .name("epr-store-flush".into())
        .spawn(move || {
            let flush = || flusher_trees.db.flush().map(drop).map_err(sled_error);
            flush_loop(&flush, jobs_rx, &durable, &health)
        })?;
    std::thread::Builder::new()
        .name("epr-store-writer".into())
        .spawn(move || write_loop(&trees, rx, last_seq, &jobs_tx, &writer_health))?;
    Ok(tx)
}

fn write_loop(
    trees: &Trees,
    mut rx: mpsc::Receiver<Request>,
    mut last_seq: u64,
    jobs: &std_mpsc::SyncSender<Job>,
    health: &WriteHealth,
) {
    let mut ids = Generator::new();
    let mut requests = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        requests.push(first);
        while requests.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => requests.push(next),
                Err(_) => break,
            }
        }
        let mut batch = Batch::default();
        let mut answers = Vec::with_capacity(requests.len());
        let mut close = None;
        let mut batch_seq = last_seq;
        for request in requests.drain(..) {
            match request {
                Request::Work(work, reply) => {
                    let mut txn = SledTxn::new(trees, &batch, &mut ids, batch_seq);
                    let result = work(&mut txn);
                    if result.is_ok() {
                        batch_seq = txn.last_seq;
                        let writes = txn.writes;
                        batch.units += 1;
                        batch.absorb(writes);
                    }
                    answers.push((reply, result));
                }
                Request::Close(done) => close = Some(done),
            }
        }
        let mut units = batch.units;
        if units > 0 {
            match batch.apply(trees) {
                Ok(()) => last_seq = batch_seq,
                Err(e) => {
                    // a sled batch is atomic: nothing of it was applied, so its errors are
                    // answered at once ("not stored"), without waiting for a flush
                    tracing::error!(error = %e, "writing a batch failed; answering it with errors");
                    health.set(Some(format!("writing a batch failed: {}", e.message)));
                    fail_all(&mut answers, &e);
                    units = 0;
                }
            }
        }
        let job = Job::Flush {
            answers,
            last_seq,
            units,
        };
        if jobs.send(job).is_err() {
            return;
        }
        if let Some(done) = close {
            let _ = jobs.send(Job::Close(done));
            return;
        }
    }
}

fn flush_loop(
    flush: &dyn Fn() -> Result<(), StoreError>,
    jobs: std_mpsc::Receiver<Job>,
    durable: &watch::Sender<u64>,
    health: &WriteHealth,
) {
    while let Ok(first) = jobs.recv() {
        let mut pending = vec![first];
        pending.extend(jobs.try_iter());
        let units: usize = pending
            .iter()
            .map(|job| match job {
                Job::Flush { units, .. } => *units,
                Job::Close(_) => 0,
            })
            .sum();
        if units > 0 {
            let started = Instant::now();
            flush_until_done(flush, health);
            metrics::histogram!(super::METRIC_FLUSH_SECONDS)
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!(super::METRIC_FLUSH_BATCH).record(units as f64);
        }
        for job in pending {
            match job {
                Job::Flush {
                    answers, last_seq, ..
                } => {
                    durable.send_if_modified(|seq| {
                        let newer = last_seq > *seq;
                        *seq = (*seq).max(last_seq);
                        newer
                    });
                    for (reply, result) in answers {
                        let _ = reply.send(result);
                    }
                }
                Job::Close(done) => {
                    let _ = done.send(());
                    return;
                }
            }
        }
    }
}

/// Flushes, trying again with backoff until the disk takes it: what was applied is answered
/// only once durable, never with an error that would claim it was not stored.
fn flush_until_done(flush: &dyn Fn() -> Result<(), StoreError>, health: &WriteHealth) {
    let mut wait = Duration::from_millis(10);
    loop {
        match flush() {
            Ok(()) => {
                if health.failing().is_some() {
                    tracing::info!("writing to disk works again");
                    health.set(None);
                }
                return;
            }
            Err(e) => {
                if health.failing().is_none() {
                    tracing::error!(error = %e, "flush to disk failed; retrying (the writes wait, none is answered until it succeeds)");
                }
                health.set(Some(e.message));
                std::thread::sleep(wait);
                wait = (wait * 2).min(MAX_FLUSH_BACKOFF);
            }
        }
    }
}

/// Turns every successful answer into `error`: the write is not known to be durable.
fn fail_all(answers: &mut [Answer], error: &StoreError) {
    for (_, result) in answers.iter_mut().filter(|(_, r)| r.is_ok()) {
        *result = Err(StoreError::new(format!("write failed: {}", error.message)).into());
    }
}

/// The writes of one batch of units of work, applied in one sled transaction. Later units of
/// the batch read the writes of earlier ones from here.
#[derive(Default)]
struct Batch {
    writes: BTreeMap<(TreeId, Vec<u8>), Option<Vec<u8>>>,
    units: usize,
}

/// One buffered write: a value to store, or `None` to remove the key.
type Write = (TreeId, Vec<u8>, Option<Vec<u8>>);

impl Batch {
    fn absorb(&mut self, writes: Vec<Write>) {
        for (tree, key, value) in writes {
            self.writes.insert((tree, key), value);
        }
    }

    /// What this batch wrote under `key`: `Some(None)` when it removed the key.
    fn get(&self, tree: TreeId, key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes.get(&(tree, key.to_vec())).map(|v| v.as_deref())
    }

    /// Keys of `tree` written in this batch that start with `prefix`, and whether they are
    /// present (false: removed).
    fn keys_with_prefix<'a>(
        &'a self,
        tree: TreeId,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], bool)> + 'a {
        self.writes
            .range((tree, prefix.to_vec())..)
            .take_while(move |((t, k), _)| *t == tree && k.starts_with(prefix))
            .map(|((_, k), v)| (k.as_slice(), v.is_some()))
    }

    /// Writes everything atomically (in memory and sled's log; durable after the next flush).
    fn apply(self, trees: &Trees) -> Result<(), StoreError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        trees.apply(
            self.writes
                .iter()
                .map(|((tree, key), value)| (*tree, key.as_slice(), value.as_deref())),
        )
    }
}

/// A unit of work's view: reads see sled plus the earlier units of the batch; its own writes
/// are buffered until it succeeds.
struct SledTxn<'a> {
    trees: &'a Trees,
    batch: &'a Batch,
    ids: &'a mut Generator,
    last_seq: u64,
    writes: Vec<Write>,
}

impl<'a> SledTxn<'a> {
    fn new(trees: &'a Trees, batch: &'a Batch, ids: &'a mut Generator, last_seq: u64) -> Self {
        SledTxn {
            trees,
            batch,
            ids,
            last_seq,
            writes: Vec::with_capacity(8),
        }
    }

    fn put(&mut self, tree: TreeId, key: Vec<u8>, value: Vec<u8>) {
        self.writes.push((tree, key, Some(value)));
    }

    /// The raw value under `key`, as of the start of this unit of work.
    fn get_raw(&self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.batch.get(tree, key) {
            Some(value) => Ok(value.map(<[u8]>::to_vec)),
            None => Ok(self.trees.get(tree, key)?.map(|v| v.to_vec())),
        }
    }

    fn get<T: DeserializeOwned>(&self, tree: TreeId, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.get_raw(tree, key)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Ids at the end of the keys of index `tree` under `parts`, as of the start of this unit.
    fn index_ids(&self, tree: TreeId, parts: &[&str]) -> Result<BTreeSet<String>, StoreError> {
        let prefix = keys::prefix(parts);
        let mut ids = BTreeSet::new();
        for item in self.trees.scan_prefix(tree, &prefix) {
            let (key, _) = item?;
            ids.insert(keys::entry_id(&key, prefix.len()));
        }
        for (key, present) in self.batch.keys_with_prefix(tree, &prefix) {
            let id = keys::entry_id(key, prefix.len());
            if present {
                ids.insert(id);
            } else {
                ids.remove(&id);
            }
        }
        Ok(ids)
    }
}

impl Txn for SledTxn<'_> {
    fn new_id(&mut self) -> (String, DateTime<Utc>) {
        super::ids::next(self.ids)
    }

    fn group(&self, id: &str) -> Result<Option<Group>, StoreError> {
        self.get(TreeId::Groups, id.as_bytes())
    }

    fn groups_of_receiver(&self, receiver_id: &str) -> Result<Vec<Group>, StoreError> {
        let group_ids = self.index_ids(TreeId::GroupMembers, &[receiver_id])?;
        let mut groups = Vec::with_capacity(group_ids.len());
        for id in group_ids {
            groups.extend(self.group(&id)?);
        }
        Ok(groups)
    }

    fn latest_success(&self, receiver_id: &str, nvrpp: &Nvrpp) -> Result<Option<bool>, StoreError> {
        let key = keys::latest(receiver_id, nvrpp);
        let value = self.get_raw(TreeId::Latest, &key)?;
        Ok(value.and_then(|v| v.last().map(|b| *b == 1)))
    }

    fn receivers_of_type(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .index_ids(TreeId::ReceiversByType, &[kind])?
            .into_iter()
            .collect())
    }

    fn deduplicated(&self, origin: &[&str]) -> Result<Option<String>, StoreError> {
        let key = keys::prefix(origin);
        Ok(self
            .get_raw(TreeId::Dedup, &key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn put_dedup(&mut self, origin: &[&str], value: &str) -> Result<(), StoreError> {
        let key = keys::prefix(origin);
        self.put(TreeId::Dedup, key, value.as_bytes().to_vec());
        Ok(())
    }

    fn put_setting(
        &mut self,
        key: &str,
        value: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let value = value.map(encode).transpose()?;
        self.writes
            .push((TreeId::Settings, key.as_bytes().to_vec(), value));
        Ok(())
    }

    fn put_blob(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        self.writes.push((
            TreeId::Blobs,
            key.as_bytes().to_vec(),
            value.map(<[u8]>::to_vec),
        ));
        Ok(())
    }

    fn put_receiver(&mut self, receiver: &Receiver) -> Result<(), StoreError> {
        self.put(
            TreeId::ReceiversByType,
            keys::entry(&[&receiver.kind], &receiver.id),
            Vec::new(),
        );
        self.put(
            TreeId::Receivers,
            receiver.id.clone().into_bytes(),
            encode(receiver)?,
        );
        Ok(())
    }

    fn put_group(&mut self, group: &Group) -> Result<(), StoreError> {
        self.put(
            TreeId::Groups,
            group.id.clone().into_bytes(),
            encode(group)?,
        );
        for member in &group.event_receiver_ids {
            self.put(
                TreeId::GroupMembers,
                keys::entry(&[member], &group.id),
                Vec::new(),
            );
        }
        Ok(())
    }

    fn put_event(&mut self, event: &Event) -> Result<(), StoreError> {
        let nvrpp = event.nvrpp();
        let id = &event.id;
        self.put(TreeId::Events, id.clone().into_bytes(), encode(event)?);
        self.put(
            TreeId::EventsByReceiver,
            keys::entry(&[&event.event_receiver_id], id),
            Vec::new(),
        );
        self.put(
            TreeId::EventsByName,
            keys::entry(&[&event.name], id),
            Vec::new(),
        );
        self.put(
            TreeId::EventsByNvrpp,
            keys::entry(&nvrpp.parts(), id),
            Vec::new(),
        );
        let mut latest = id.clone().into_bytes();
        latest.push(u8::from(event.success));
        self.put(
            TreeId::Latest,
            keys::latest(&event.event_receiver_id, &nvrpp),
            latest,
        );
        Ok(())
    }

    fn append_log(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.last_seq += 1;
        let key = keys::log_key(self.last_seq).to_vec();
        self.put(TreeId::Log, key, encode(entry)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_failing_flush_is_retried_and_its_writes_answered_as_stored() {
        let attempts = AtomicUsize::new(0);
        let health = WriteHealth::default();
        let seen_failing = Mutex::new(None);
        let flush = || {
            if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(StoreError::new("disk full"));
            }
            *seen_failing.lock().unwrap() = health.failing();
            Ok(())
        };
        let (durable_tx, durable_rx) = watch::channel(0);
        let (jobs_tx, jobs_rx) = std_mpsc::sync_channel(2);
        let (reply, answer) = oneshot::channel();
        let committed = Committed::written("01EVENT".into());
        jobs_tx
            .send(Job::Flush {
                answers: vec![(reply, Ok(committed))],
                last_seq: 7,
                units: 1,
            })
            .unwrap();
        drop(jobs_tx);
        flush_loop(&flush, jobs_rx, &durable_tx, &health);
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert_eq!(seen_failing.lock().unwrap().as_deref(), Some("disk full"));
        assert_eq!(health.failing(), None, "healthy again once a flush worked");
        assert_eq!(answer.blocking_recv().unwrap().unwrap().id, "01EVENT");
        assert_eq!(*durable_rx.borrow(), 7);
    }
}
