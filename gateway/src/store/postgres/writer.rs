//! Units of work on PostgreSQL: writer threads, each with a connection of its own, run one unit
//! at a time as one transaction under READ COMMITTED. Where two units must see each other (the
//! events of one unit, one ingestion origin, the receivers of one type), the first read or write
//! takes a transaction lock (see `locks.rs`), so the later unit waits for the earlier one's commit
//! and then reads it. A unit's writes are buffered, as in the embedded store (its reads do not
//! see them), sent when it succeeds, and committed; the answer comes only after the commit.
//!
//! Round trips cost more than statements: statements whose answer nothing waits for (`BEGIN`,
//! the locks) go with the next read, and the writes go with `COMMIT`, pipelined on the
//! connection (the server still runs them one after another, in order: a read sent after a
//! lock reads what was committed before the lock was granted). A unit that stores one event
//! takes two round trips. Each thread drives its connection on a runtime of its own, so that
//! waiting for an answer is no hop between threads.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::Poll;

use chrono::{DateTime, Utc};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};
use ulid::Generator;

use super::errors::pg_error;
use super::locks::{self, Scope};
use crate::registry::error::{RegistryError, StoreError};
use crate::registry::model::{Event, Group, Nvrpp, Receiver};
use crate::registry::port::{Committed, LogEntry, Txn, Work};
use crate::store::codec::{decode, encode_text};
use crate::store::{ids, keys};
use crate::sync::lock;

/// What a unit of work did, and whether it appended to the log (then the answer waits until
/// the log rows are numbered, so that whoever got it finds them in the log).
pub(super) type Outcome = (Result<Committed, RegistryError>, bool);

/// A unit of work and where its outcome goes.
pub(super) type Job = (Work, oneshot::Sender<Outcome>);

/// What the writer threads share.
pub(super) struct Writers {
    /// How to connect.
    pub(super) config: tokio_postgres::Config,
    /// Ids, greater than every id this process made before.
    pub(super) ids: Mutex<Generator>,
}

/// Starts `count` writer threads taking jobs from the returned sender; they stop when it is
/// dropped.
pub(super) fn spawn(count: usize, writers: Arc<Writers>) -> std::io::Result<mpsc::Sender<Job>> {
    let (sender, jobs) = mpsc::channel(1024);
    let jobs = Arc::new(Mutex::new(jobs));
    for n in 0..count {
        let (jobs, writers) = (jobs.clone(), writers.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(format!("epr-pg-writer-{n}"))
            .spawn(move || run(&jobs, &writers, &runtime))?;
    }
    Ok(sender)
}

fn run(jobs: &Mutex<mpsc::Receiver<Job>>, writers: &Writers, runtime: &Runtime) {
    let mut connection = None;
    loop {
        let next = lock(jobs).blocking_recv();
        let Some((work, reply)) = next else {
            return;
        };
        let _ = reply.send(unit(writers, runtime, &mut connection, work));
    }
}

/// A connection of a writer thread and the statements prepared on it.
struct Connection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// The thread's connection, made again if it was lost.
fn connect<'a>(
    writers: &Writers,
    runtime: &Runtime,
    slot: &'a mut Option<Connection>,
) -> Result<&'a mut Connection, StoreError> {
    if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
        *slot = None;
    }
    if slot.is_none() {
        let (client, connection) = runtime
            .block_on(writers.config.connect(NoTls))
            .map_err(pg_error)?;
        // runs whenever the thread waits for an answer
        runtime.spawn(connection);
        *slot = Some(Connection {
            client,
            statements: HashMap::new(),
        });
    }
    Ok(slot.as_mut().expect("connected just now"))
}

/// Runs `work` as one transaction; commits its writes if it succeeds.
fn unit(
    writers: &Writers,
    runtime: &Runtime,
    slot: &mut Option<Connection>,
    work: Work,
) -> Outcome {
    let mut logged = false;
    let result = run_unit(writers, runtime, slot, work, &mut logged);
    (result, logged)
}

fn run_unit(
    writers: &Writers,
    runtime: &Runtime,
    slot: &mut Option<Connection>,
    work: Work,
    logged: &mut bool,
) -> Result<Committed, RegistryError> {
    let Connection { client, statements } = connect(writers, runtime, slot)?;
    let mut txn = PgTxn {
        client,
        runtime,
        statements: RefCell::new(statements),
        deferred: RefCell::new(vec![Request::Simple("BEGIN")]),
        begun: Cell::new(false),
        locked: RefCell::new(HashSet::new()),
        grouped: RefCell::new(HashMap::new()),
        writes: Vec::new(),
        ids: &writers.ids,
        logged: false,
    };
    let committed = match work(&mut txn) {
        Ok(committed) => committed,
        Err(e) => {
            txn.roll_back();
            return Err(e);
        }
    };
    *logged = txn.logged;
    let started = std::time::Instant::now();
    txn.commit().inspect_err(|e| {
        tracing::error!(error = %e, "commit failed (if the connection was lost during it, the write may have been committed)");
    })?;
    metrics::histogram!(crate::store::METRIC_FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
    metrics::histogram!(crate::store::METRIC_FLUSH_BATCH).record(1.0);
    Ok(committed)
}

/// A write held until the unit of work succeeds.
enum Write {
    /// Take a transaction lock (before writing what it protects).
    Lock(i64),
    /// Run a statement.
    Statement(&'static str, Vec<Box<dyn ToSql + Sync>>),
}

/// A request to send on the connection.
enum Request {
    /// A statement without parameters (`BEGIN`, `COMMIT`).
    Simple(&'static str),
    /// A prepared statement and its parameters.
    Prepared(Statement, Vec<Box<dyn ToSql + Sync>>),
}

impl Request {
    /// The request as sent.
    fn sent(&self) -> Sent<'_> {
        match self {
            Request::Simple(sql) => Sent::Simple(sql),
            Request::Prepared(statement, params) => {
                Sent::Prepared(statement, params.iter().map(|p| p.as_ref()).collect())
            }
        }
    }
}

/// The answer to a request, once it comes.
type Answer<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + 'a>>;

/// A request as sent, borrowing its parameters.
enum Sent<'a> {
    /// A statement without parameters.
    Simple(&'static str),
    /// A prepared statement and its parameters.
    Prepared(&'a Statement, Vec<&'a (dyn ToSql + Sync)>),
}

/// A unit of work's view of PostgreSQL.
struct PgTxn<'c> {
    client: &'c Client,
    runtime: &'c Runtime,
    statements: RefCell<&'c mut HashMap<&'static str, Statement>>,
    /// Requests whose answer nothing waits for, sent before the next one that is waited for.
    deferred: RefCell<Vec<Request>>,
    /// Whether `BEGIN` was sent.
    begun: Cell<bool>,
    /// The transaction locks held (the shared memberships' lock as `!MEMBERSHIP`).
    locked: RefCell<HashSet<i64>>,
    /// Whether each receiver asked about is a group member.
    grouped: RefCell<HashMap<String, bool>>,
    writes: Vec<Write>,
    ids: &'c Mutex<Generator>,
    /// Whether the unit appended to the log.
    logged: bool,
}

const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
const SHARE: &str = "SELECT pg_advisory_xact_lock_shared($1)";
/// `BEGIN` and the memberships' shared lock, the start of most units, in one simple query.
static BEGIN_SHARING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "BEGIN; SELECT pg_advisory_xact_lock_shared({})",
        locks::MEMBERSHIP
    )
});
const PUT_EVENT: &str = "INSERT INTO epr_events (id, receiver_id, name, version, release, platform_id, package, success, doc)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const APPEND_LOG: &str = "INSERT INTO epr_log (entry) VALUES ($1)";
const PUT_EVENT_AND_LOG: &str = "WITH event AS (
        INSERT INTO epr_events (id, receiver_id, name, version, release, platform_id, package, success, doc)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9))
    INSERT INTO epr_log (entry) VALUES ($10)";

impl PgTxn<'_> {
    /// `sql`, prepared once per connection.
    fn statement(&self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .runtime
            .block_on(self.client.prepare(sql))
            .map_err(pg_error)?;
        self.statements.borrow_mut().insert(sql, statement.clone());
        Ok(statement)
    }

    /// `sql` with `params`, prepared.
    fn prepared(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Sync>>,
    ) -> Result<Request, StoreError> {
        Ok(Request::Prepared(self.statement(sql)?, params))
    }

    /// Sends `requests` in this order in one round trip and waits for every answer; returns the
    /// rows of the last one, or the first error (after a failed statement, the server refuses
    /// the rest of the transaction and turns `COMMIT` into a rollback).
    fn pipeline(&self, requests: &[Sent<'_>]) -> Result<Vec<Row>, StoreError> {
        let client = self.client;
        // the first round trip carries `BEGIN`
        self.begun.set(true);
        let mut answers: Vec<Answer<'_>> = requests
            .iter()
            .map(|request| -> Answer<'_> {
                match request {
                    Sent::Simple(sql) => {
                        Box::pin(
                            async move { client.batch_execute(sql).await.map(|()| Vec::new()) },
                        )
                    }
                    Sent::Prepared(statement, params) => Box::pin(client.query(*statement, params)),
                }
            })
            .collect();
        let mut results: Vec<Option<Result<Vec<Row>, tokio_postgres::Error>>> =
            answers.iter().map(|_| None).collect();
        // each request is sent when its future is first polled: poll them in order
        self.runtime.block_on(std::future::poll_fn(|cx| {
            for (answer, result) in answers.iter_mut().zip(results.iter_mut()) {
                if result.is_none()
                    && let Poll::Ready(done) = answer.as_mut().poll(cx)
                {
                    *result = Some(done);
                }
            }
            match results.iter().all(Option::is_some) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        }));
        let mut last = Vec::new();
        for result in results.into_iter().flatten() {
            last = result.map_err(pg_error)?;
        }
        Ok(last)
    }

    /// Runs `sql` after the deferred requests, in one round trip.
    fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let deferred = std::mem::take(&mut *self.deferred.borrow_mut());
        let mut requests: Vec<Sent<'_>> = deferred.iter().map(Request::sent).collect();
        requests.push(Sent::Prepared(&statement, params.to_vec()));
        self.pipeline(&requests)
    }

    /// Sends the deferred requests, the buffered writes and `COMMIT` in one round trip; rolls
    /// back if that fails before the commit was sent (a statement that cannot be prepared), so
    /// that the connection never carries an open transaction into the next unit.
    fn commit(mut self) -> Result<(), StoreError> {
        let sent = self.send_commit();
        if sent.is_err() {
            self.roll_back();
        }
        sent
    }

    fn send_commit(&mut self) -> Result<(), StoreError> {
        let mut requests = std::mem::take(&mut *self.deferred.borrow_mut());
        for write in std::mem::take(&mut self.writes) {
            match write {
                Write::Lock(key) => {
                    if self.locked.borrow_mut().insert(key) {
                        requests.push(self.prepared(LOCK, vec![Box::new(key)])?);
                    }
                }
                Write::Statement(sql, params) => requests.push(self.prepared(sql, params)?),
            }
        }
        if !self.begun.get() && requests.len() == 1 {
            // nothing was read or written: the transaction was never begun
            return Ok(());
        }
        requests.push(Request::Simple("COMMIT"));
        let sent: Vec<Sent<'_>> = requests.iter().map(Request::sent).collect();
        self.pipeline(&sent).map(drop)
    }

    /// Ends the transaction without committing (nothing to do when it was never begun; after a
    /// failed `COMMIT` the server has ended it already and only warns).
    fn roll_back(&self) {
        if self.begun.get() {
            let _ = self.runtime.block_on(self.client.batch_execute("ROLLBACK"));
        }
    }

    /// Whether receiver `receiver_id` is a member of a group (asked once per unit of work).
    fn in_a_group(&self, receiver_id: &str) -> Result<bool, StoreError> {
        if let Some(known) = self.grouped.borrow().get(receiver_id) {
            return Ok(*known);
        }
        self.share_memberships()?;
        let member = !self
            .query(
                "SELECT 1 FROM epr_group_members WHERE receiver_id = $1 LIMIT 1",
                &[&receiver_id],
            )?
            .is_empty();
        self.grouped
            .borrow_mut()
            .insert(receiver_id.to_owned(), member);
        Ok(member)
    }

    /// Takes the memberships' lock, shared, unless this unit holds it already (sent with the
    /// next read).
    fn share_memberships(&self) -> Result<(), StoreError> {
        if self.locked.borrow_mut().insert(!locks::MEMBERSHIP) {
            let mut deferred = self.deferred.borrow_mut();
            if let [begin @ Request::Simple("BEGIN")] = deferred.as_mut_slice() {
                *begin = Request::Simple(&BEGIN_SHARING);
            } else {
                deferred.push(self.prepared(SHARE, vec![Box::new(locks::MEMBERSHIP)])?);
            }
        }
        Ok(())
    }

    /// Takes the transaction lock `key` unless this unit holds it already (sent with the next
    /// read).
    fn lock(&self, key: i64) -> Result<(), StoreError> {
        if self.locked.borrow_mut().insert(key) {
            let request = self.prepared(LOCK, vec![Box::new(key)])?;
            self.deferred.borrow_mut().push(request);
        }
        Ok(())
    }

    fn write(&mut self, sql: &'static str, params: Vec<Box<dyn ToSql + Sync>>) {
        self.writes.push(Write::Statement(sql, params));
    }
}

/// The lock of every event about `nvrpp`.
fn unit_lock(nvrpp: &Nvrpp) -> i64 {
    locks::key(Scope::Unit, &nvrpp.parts())
}

impl Txn for PgTxn<'_> {
    fn new_id(&mut self) -> (String, DateTime<Utc>) {
        ids::next(&mut lock(self.ids))
    }

    fn group(&self, id: &str) -> Result<Option<Group>, StoreError> {
        let rows = self.query("SELECT doc FROM epr_groups WHERE id = $1", &[&id])?;
        rows.first()
            .map(|row| decode(row.get::<_, &str>(0).as_bytes()))
            .transpose()
    }

    fn groups_of_receiver(&self, receiver_id: &str) -> Result<Vec<Group>, StoreError> {
        self.share_memberships()?;
        let rows = self.query(
            "SELECT g.doc FROM epr_group_members m JOIN epr_groups g ON g.id = m.group_id
             WHERE m.receiver_id = $1 ORDER BY g.id",
            &[&receiver_id],
        )?;
        let groups: Vec<Group> = rows
            .iter()
            .map(|row| decode(row.get::<_, &str>(0).as_bytes()))
            .collect::<Result<_, _>>()?;
        self.grouped
            .borrow_mut()
            .insert(receiver_id.to_owned(), !groups.is_empty());
        Ok(groups)
    }

    fn latest_success(&self, receiver_id: &str, nvrpp: &Nvrpp) -> Result<Option<bool>, StoreError> {
        self.lock(unit_lock(nvrpp))?;
        let [n, v, r, p, k] = nvrpp.parts();
        let rows = self.query(
            "SELECT success FROM epr_events WHERE receiver_id = $1 AND name = $2 AND version = $3
             AND release = $4 AND platform_id = $5 AND package = $6 ORDER BY id DESC LIMIT 1",
            &[&receiver_id, &n, &v, &r, &p, &k],
        )?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    fn receivers_of_type(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        self.lock(locks::key(Scope::Kind, &[kind]))?;
        let rows = self.query(
            "SELECT id FROM epr_receivers WHERE kind = $1 ORDER BY id",
            &[&kind],
        )?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn deduplicated(&self, origin: &[&str]) -> Result<Option<String>, StoreError> {
        self.lock(locks::key(Scope::Origin, origin))?;
        let rows = self.query(
            "SELECT value FROM epr_dedup WHERE origin = $1",
            &[&keys::prefix(origin)],
        )?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    fn put_dedup(&mut self, origin: &[&str], value: &str) -> Result<(), StoreError> {
        self.writes
            .push(Write::Lock(locks::key(Scope::Origin, origin)));
        self.write(
            "INSERT INTO epr_dedup (origin, value) VALUES ($1, $2)
             ON CONFLICT (origin) DO UPDATE SET value = EXCLUDED.value",
            vec![Box::new(keys::prefix(origin)), Box::new(value.to_owned())],
        );
        Ok(())
    }

    fn put_setting(
        &mut self,
        key: &str,
        value: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        match value {
            Some(value) => self.write(
                "INSERT INTO epr_settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                vec![Box::new(key.to_owned()), Box::new(encode_text(value)?)],
            ),
            None => self.write(
                "DELETE FROM epr_settings WHERE key = $1",
                vec![Box::new(key.to_owned())],
            ),
        }
        Ok(())
    }

    fn put_blob(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        match value {
            Some(value) => self.write(
                "INSERT INTO epr_blobs (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                vec![Box::new(key.to_owned()), Box::new(value.to_vec())],
            ),
            None => self.write(
                "DELETE FROM epr_blobs WHERE key = $1",
                vec![Box::new(key.to_owned())],
            ),
        }
        Ok(())
    }

    fn put_receiver(&mut self, receiver: &Receiver) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO epr_receivers (id, kind, doc) VALUES ($1, $2, $3)",
            vec![
                Box::new(receiver.id.clone()),
                Box::new(receiver.kind.clone()),
                Box::new(encode_text(receiver)?),
            ],
        );
        Ok(())
    }

    fn put_group(&mut self, group: &Group) -> Result<(), StoreError> {
        self.writes.push(Write::Lock(locks::MEMBERSHIP));
        self.write(
            "INSERT INTO epr_groups (id, doc) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
            vec![Box::new(group.id.clone()), Box::new(encode_text(group)?)],
        );
        for member in &group.event_receiver_ids {
            self.write(
                "INSERT INTO epr_group_members (receiver_id, group_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                vec![Box::new(member.clone()), Box::new(group.id.clone())],
            );
        }
        Ok(())
    }

    fn put_event(&mut self, event: &Event) -> Result<(), StoreError> {
        let nvrpp = event.nvrpp();
        // only the events of group members are read by group completion: the others need no
        // lock (events of one unit that no group reads do not wait for each other)
        if self.in_a_group(&event.event_receiver_id)? {
            self.writes.push(Write::Lock(unit_lock(&nvrpp)));
        }
        let mut columns: Vec<Box<dyn ToSql + Sync>> = vec![
            Box::new(event.id.clone()),
            Box::new(event.event_receiver_id.clone()),
        ];
        columns.extend(
            nvrpp
                .parts()
                .map(|part| Box::new(part.to_owned()) as Box<dyn ToSql + Sync>),
        );
        columns.push(Box::new(event.success));
        columns.push(Box::new(encode_text(event)?));
        self.write(PUT_EVENT, columns);
        Ok(())
    }

    fn append_log(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.logged = true;
        let entry: Box<dyn ToSql + Sync> = Box::new(encode_text(entry)?);
        // an event and its log entry (what every stored event writes): one statement
        if let Some(Write::Statement(sql @ PUT_EVENT, params)) = self.writes.last_mut() {
            *sql = PUT_EVENT_AND_LOG;
            params.push(entry);
        } else {
            self.write(APPEND_LOG, vec![entry]);
        }
        Ok(())
    }
}
