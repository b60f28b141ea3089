//! The shared store: PostgreSQL, for several ledger replicas on one
//! database.
//!
//! Every write is a READ COMMITTED transaction that first takes a
//! transaction-level advisory lock, the chain's append lock, before it
//! reads anything: writers of every replica run one at a time, so the head
//! a write reads is still the head when it appends, and READ COMMITTED
//! sees every write committed before the lock was granted. A commit
//! returns once PostgreSQL has flushed it (the server's
//! `synchronous_commit`, on by default). Reads run on a second connection
//! in REPEATABLE READ READ ONLY transactions: one snapshot per closure,
//! never waiting for a writer.
//!
//! The ledger lives in the connection's current schema (`search_path`; put
//! `options=-csearch_path%3DNAME` in the URL to choose one). A one-row
//! table, `grant_ledger`, says the schema holds a ledger and of which
//! schema version; [`MIGRATIONS`] bring an older one up to date under the
//! same lock at open. A schema with a table of the ledger's names that is
//! not a ledger, or a ledger of a newer version, is refused before
//! anything is written.
//!
//! A connection that fails is dropped; the next call connects again, so a
//! restarted server is picked up.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Config, IsolationLevel, NoTls, Row, Statement, Transaction};

use crate::model::{Grant, Task, TaskState};
use crate::store::{
    Head, Store, StoreError, StoreErrorKind, StoredEvent, Tx, Work, from_body, to_body,
};
use crate::time::Timestamp;

/// Takes the append lock. Its first key is "GrLd" (0x47724c64); the second a hash of
/// the schema, so ledgers in different schemas of one database do not wait
/// for each other.
const LOCK: &str =
    "SELECT pg_advisory_xact_lock(1198672996, hashtext(coalesce(current_schema(), '')))";

/// How long a write waits for the append lock, and a connection attempt
/// for the server, before failing with [`StoreErrorKind::Unavailable`]
/// (unless the URL sets `connect_timeout`, or `lock_timeout` in `options`).
const TIMEOUT: Duration = Duration::from_secs(5);

/// The application this schema belongs to, in `grant_ledger.application`.
const APPLICATION: &str = "grant-ledger";

/// The tables a ledger creates: finding one of them without the
/// `grant_ledger` row means the schema belongs to something else.
const TABLES: &[&str] = &[
    "grant_ledger",
    "meta",
    "events",
    "tasks",
    "grants",
    "blocked",
];

/// Schema migrations: the n-th brings a store from version n - 1 to n. A
/// migration is only ever appended, never edited, once released. Ids are
/// `COLLATE "C"` so lists come back in the byte order the other stores
/// use, whatever the database's collation.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"CREATE TABLE grant_ledger (
        application TEXT NOT NULL,
        schema_version BIGINT NOT NULL
    );
    CREATE TABLE meta (
        key TEXT COLLATE "C" PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE events (
        seq BIGINT PRIMARY KEY,
        hash TEXT NOT NULL,
        kind TEXT NOT NULL,
        task_id TEXT COLLATE "C",
        grant_id TEXT COLLATE "C",
        json TEXT NOT NULL
    );
    CREATE INDEX events_by_task ON events (task_id, seq);
    CREATE TABLE tasks (
        task_id TEXT COLLATE "C" PRIMARY KEY,
        agent TEXT COLLATE "C" NOT NULL,
        parent_task_id TEXT COLLATE "C",
        open BOOLEAN NOT NULL,
        deadline BIGINT,
        body TEXT NOT NULL
    );
    CREATE INDEX tasks_by_parent ON tasks (parent_task_id, task_id);
    CREATE INDEX open_tasks_by_agent ON tasks (agent, task_id) WHERE open;
    CREATE INDEX open_tasks_by_deadline ON tasks (deadline, task_id)
        WHERE open AND deadline IS NOT NULL;
    CREATE TABLE grants (
        grant_id TEXT COLLATE "C" PRIMARY KEY,
        task_id TEXT COLLATE "C" NOT NULL,
        parent_grant_id TEXT COLLATE "C",
        live BOOLEAN NOT NULL,
        expires_at BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX grants_by_task ON grants (task_id, grant_id);
    CREATE INDEX grants_by_parent ON grants (parent_grant_id, grant_id);
    CREATE INDEX live_grants_by_expiry ON grants (expires_at, grant_id) WHERE live;
    CREATE TABLE blocked (
        agent TEXT COLLATE "C" PRIMARY KEY
    );
    INSERT INTO grant_ledger (application, schema_version) VALUES ('grant-ledger', 0);"#,
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A ledger in a PostgreSQL schema.
pub struct PostgresStore {
    config: Config,
    described: String,
    writer: Mutex<Option<Connection>>,
    reader: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for PostgresStore {
    // The config holds the password: show only the masked URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.described)
            .finish_non_exhaustive()
    }
}

/// A client and the statements prepared on it (they live and die with it).
struct Connection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl PostgresStore {
    /// Connects to the database `url` names (`postgres://` or
    /// `postgresql://`, as the `postgres` crate reads it), creating the
    /// ledger's tables or migrating them.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let described = mask_password(url);
        let mut config: Config = url.parse().map_err(|e| {
            StoreError::new(
                StoreErrorKind::BadUrl,
                format!("`{described}` is not a PostgreSQL URL the client reads: {e}"),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION);
        }
        let store = PostgresStore {
            config,
            described,
            writer: Mutex::new(None),
            reader: Mutex::new(None),
        };
        store.migrate()?;
        Ok(store)
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let mut client = self.config.connect(NoTls).map_err(|e| self.error(&e))?;
        // The append lock is waited for as long as SQLite's busy timeout,
        // unless the URL says otherwise.
        let own_lock_timeout = self
            .config
            .get_options()
            .is_some_and(|options| options.contains("lock_timeout"));
        if !own_lock_timeout {
            client
                .batch_execute(&format!("SET lock_timeout = {}", TIMEOUT.as_millis()))
                .map_err(|e| self.error(&e))?;
        }
        Ok(Connection {
            client,
            statements: HashMap::new(),
        })
    }

    fn error(&self, e: &postgres::Error) -> StoreError {
        error(&self.described, e)
    }

    /// Creates or migrates the ledger's tables, holding the append lock so
    /// that replicas starting together migrate once.
    fn migrate(&self) -> Result<(), StoreError> {
        let mut slot = lock(&self.writer);
        let connection = match &mut *slot {
            Some(connection) => connection,
            None => slot.insert(self.connect()?),
        };
        let result = migrate(&mut connection.client, &self.described);
        if result.is_err() {
            healthy(&mut slot);
        }
        result
    }

    /// Runs `work` in a transaction on the connection in `slot`, connecting
    /// first if there is none; `write` says which kind of transaction.
    fn run(
        &self,
        slot: &Mutex<Option<Connection>>,
        write: bool,
        work: &mut Work<'_>,
    ) -> Result<(), StoreError> {
        let mut slot = lock(slot);
        let reused = slot.is_some();
        let connection = match &mut *slot {
            Some(connection) => connection,
            None => slot.insert(self.connect()?),
        };
        let mut result = attempt(connection, write, &self.described, work);
        // A kept connection the server has since closed (a restart, an idle
        // timeout) fails at BEGIN, before any work ran: connect again at
        // once and start over.
        if reused && matches!(result, Err(Failure::Begin(_))) && !healthy(&mut slot) {
            let connection = slot.insert(self.connect()?);
            result = attempt(connection, write, &self.described, work);
        }
        // Whatever failed, a broken connection is not kept: the next call
        // connects again.
        if result.is_err() {
            healthy(&mut slot);
        }
        result.map_err(|(Failure::Begin(e) | Failure::Work(e))| e)
    }
}

/// Whether the connection in `slot` still works; if not, it is dropped.
/// Asked only after a failure: the answer costs a round trip.
fn healthy(slot: &mut Option<Connection>) -> bool {
    let ok = slot.as_mut().is_some_and(|c| {
        !c.client.is_closed() && c.client.is_valid(Duration::from_secs(1)).is_ok()
    });
    if !ok {
        *slot = None;
    }
    ok
}

/// Where a transaction failed: at its start (nothing of `work` ran) or
/// later.
enum Failure {
    Begin(StoreError),
    Work(StoreError),
}

/// Runs `work` in one transaction on `connection`, committing when it
/// succeeds and rolling back when it fails.
fn attempt(
    connection: &mut Connection,
    write: bool,
    described: &str,
    work: &mut Work<'_>,
) -> Result<(), Failure> {
    let mut tx = transaction(connection, write, described).map_err(Failure::Begin)?;
    // Dropping the transaction on an error rolls it back.
    work(&mut tx).map_err(Failure::Work)?;
    tx.tx
        .commit()
        .map_err(|e| Failure::Work(error(described, &e)))
}

/// Begins a write (READ COMMITTED, holding the append lock) or a read
/// (REPEATABLE READ READ ONLY) on `connection`.
fn transaction<'c>(
    connection: &'c mut Connection,
    write: bool,
    described: &'c str,
) -> Result<PgTx<'c>, StoreError> {
    let Connection { client, statements } = connection;
    let mut tx = if write {
        client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
    } else {
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
    }
    .map_err(|e| error(described, &e))?;
    if write {
        tx.batch_execute(LOCK).map_err(|e| error(described, &e))?;
    }
    Ok(PgTx {
        tx,
        statements,
        described,
        read_only: !write,
    })
}

fn migrate(client: &mut Client, described: &str) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(|e| error(described, &e))?;
    tx.batch_execute(LOCK).map_err(|e| error(described, &e))?;
    let tables: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name::text = ANY($1::text[])
             ORDER BY 1",
            &[&TABLES],
        )
        .map_err(|e| error(described, &e))?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(|e| error(described, &e))?;
    let from = if tables.iter().any(|t| t == "grant_ledger") {
        let row = tx
            .query_opt("SELECT application, schema_version FROM grant_ledger", &[])
            .map_err(|e| error(described, &e))?;
        let marker = row
            .map(|row| Ok::<_, postgres::Error>((row.try_get::<_, String>(0)?, row.try_get(1)?)))
            .transpose()
            .map_err(|e| error(described, &e))?;
        match marker {
            Some((application, version)) if application == APPLICATION => version,
            _ => {
                return Err(not_a_ledger(
                    described,
                    "has a `grant_ledger` table that does not name a grant ledger",
                ));
            }
        }
    } else if let Some(table) = tables.first() {
        return Err(not_a_ledger(
            described,
            &format!("has a table `{table}` that is not a grant ledger's"),
        ));
    } else {
        0
    };
    if from > SCHEMA_VERSION {
        return Err(StoreError::new(
            StoreErrorKind::NotALedger,
            format!(
                "postgres store `{described}` has schema version {from}, newer than version \
                 {SCHEMA_VERSION} that this build knows; use a newer grant"
            ),
        ));
    }
    if from == SCHEMA_VERSION {
        // Nothing to do: end the transaction without writing.
        return tx.rollback().map_err(|e| error(described, &e));
    }
    for (version, migration) in (1i64..).zip(MIGRATIONS) {
        if version > from {
            tx.batch_execute(migration).map_err(|e| {
                StoreError::corrupt(format!(
                    "postgres store `{described}`: migration to schema version {version} failed: {e}"
                ))
            })?;
        }
    }
    tx.execute(
        "UPDATE grant_ledger SET schema_version = $1",
        &[&SCHEMA_VERSION],
    )
    .map_err(|e| error(described, &e))?;
    tx.commit().map_err(|e| error(described, &e))
}

fn not_a_ledger(described: &str, why: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotALedger,
        format!("the current schema of `{described}` {why}, so it is not a grant ledger"),
    )
}

/// A PostgreSQL error as a store error, naming the masked URL.
fn error(described: &str, e: &postgres::Error) -> StoreError {
    let kind = match e.code() {
        // Connection, resources, operator intervention, a lock or
        // serialization timeout: the server may do it later.
        Some(code) => match code.code().get(..2) {
            Some("08" | "53" | "54" | "55" | "57" | "58" | "40") => StoreErrorKind::Unavailable,
            _ if *code == SqlState::INSUFFICIENT_PRIVILEGE => StoreErrorKind::Unavailable,
            // Integrity, data or schema errors: the stored data is not what
            // the schema promises.
            _ => StoreErrorKind::Corrupt,
        },
        // No server error: the connection failed or closed.
        None => StoreErrorKind::Unavailable,
    };
    let kind = if e.is_closed() {
        StoreErrorKind::Unavailable
    } else {
        kind
    };
    let message = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            // The client's own text ("error connecting to server") and, after
            // it, the cause ("Connection refused").
            let mut message = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message = format!("{message}: {text}");
                }
                source = cause.source();
            }
            message
        }
    };
    StoreError::new(kind, format!("postgres store `{described}`: {message}"))
}

fn lock(mutex: &Mutex<Option<Connection>>) -> MutexGuard<'_, Option<Connection>> {
    // A panic while the lock was held dropped its transaction, which
    // rolled back; the connection is usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `url` with the password, if any, replaced by `***`: in the user info
/// (`postgres://user:secret@host`) and in a `password=` parameter.
pub fn mask_password(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some(parts) => parts,
        None => return url.to_string(),
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl Store for PostgresStore {
    fn write(&self, work: &mut Work<'_>) -> Result<(), StoreError> {
        self.run(&self.writer, true, work)
    }

    fn read(&self, work: &mut Work<'_>) -> Result<(), StoreError> {
        self.run(&self.reader, false, work)
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}

struct PgTx<'c> {
    tx: Transaction<'c>,
    statements: &'c mut HashMap<&'static str, Statement>,
    described: &'c str,
    read_only: bool,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const EVENTS_AFTER: &str = "SELECT seq, hash, kind, task_id, grant_id, json FROM events
     WHERE seq > $1 ORDER BY seq LIMIT $2";
const EVENTS_OF_TASKS: &str = "SELECT seq, hash, kind, task_id, grant_id, json FROM events
     WHERE task_id = ANY($1) ORDER BY seq";

impl PgTx<'_> {
    fn err(&self, e: &postgres::Error) -> StoreError {
        error(self.described, e)
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            Err(StoreError::unavailable(format!(
                "postgres store `{}`: a read transaction cannot write",
                self.described
            )))
        } else {
            Ok(())
        }
    }

    /// `sql` prepared on this connection once, then reused.
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql).map_err(|e| self.err(&e))?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        self.tx.query(&statement, params).map_err(|e| self.err(&e))
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(), StoreError> {
        self.writable()?;
        let statement = self.statement(sql)?;
        self.tx
            .execute(&statement, params)
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    fn events(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self.query(sql, params)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(|e| self.err(&e))?;
                Ok(StoredEvent {
                    seq: self.seq(seq)?,
                    hash: row.try_get(1).map_err(|e| self.err(&e))?,
                    kind: row.try_get(2).map_err(|e| self.err(&e))?,
                    task_id: row.try_get(3).map_err(|e| self.err(&e))?,
                    grant_id: row.try_get(4).map_err(|e| self.err(&e))?,
                    json: row.try_get(5).map_err(|e| self.err(&e))?,
                })
            })
            .collect()
    }

    fn seq(&self, seq: i64) -> Result<u64, StoreError> {
        u64::try_from(seq).map_err(|_| {
            StoreError::corrupt(format!(
                "postgres store `{}`: an event has sequence number {seq}",
                self.described
            ))
        })
    }

    fn bodies<T: serde::de::DeserializeOwned>(
        &mut self,
        what: &str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<T>, StoreError> {
        let rows = self.query(sql, params)?;
        rows.iter()
            .map(|row| {
                let body: String = row.try_get(0).map_err(|e| self.err(&e))?;
                from_body(what, &body)
            })
            .collect()
    }

    fn body<T: serde::de::DeserializeOwned>(
        &mut self,
        what: &str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, StoreError> {
        Ok(self.bodies(what, sql, params)?.into_iter().next())
    }
}

impl Tx for PgTx<'_> {
    fn head(&mut self) -> Result<Option<Head>, StoreError> {
        let rows = self.query(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
            &[],
        )?;
        rows.first()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(|e| self.err(&e))?;
                Ok(Head {
                    seq: self.seq(seq)?,
                    hash: row.try_get(1).map_err(|e| self.err(&e))?,
                })
            })
            .transpose()
    }

    fn append(&mut self, event: &StoredEvent) -> Result<(), StoreError> {
        self.writable()?;
        // The append lock is held since the transaction began: no other
        // writer can append between this check and the insert.
        let expected = self.head()?.map_or(1, |head| head.seq + 1);
        if event.seq != expected {
            return Err(StoreError::corrupt(format!(
                "postgres store `{}`: event {} appended where {expected} belongs",
                self.described, event.seq
            )));
        }
        self.execute(
            "INSERT INTO events (seq, hash, kind, task_id, grant_id, json)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &to_i64(event.seq),
                &event.hash,
                &event.kind,
                &event.task_id,
                &event.grant_id,
                &event.json,
            ],
        )
    }

    fn events_after(&mut self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.events(EVENTS_AFTER, &[&to_i64(after), &self::limit(limit)])
    }

    fn events_of_tasks(&mut self, task_ids: &[String]) -> Result<Vec<StoredEvent>, StoreError> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.events(EVENTS_OF_TASKS, &[&task_ids])
    }

    fn task(&mut self, task_id: &str) -> Result<Option<Task>, StoreError> {
        self.body(
            "task",
            "SELECT body FROM tasks WHERE task_id = $1",
            &[&task_id],
        )
    }

    fn put_task(&mut self, task: &Task) -> Result<(), StoreError> {
        let body = to_body(task)?;
        self.execute(
            "INSERT INTO tasks (task_id, agent, parent_task_id, open, deadline, body)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (task_id) DO UPDATE SET agent = EXCLUDED.agent,
                parent_task_id = EXCLUDED.parent_task_id, open = EXCLUDED.open,
                deadline = EXCLUDED.deadline, body = EXCLUDED.body",
            &[
                &task.task_id,
                &task.agent,
                &task.parent_task_id,
                &(task.state == TaskState::Open),
                &task.deadline.map(Timestamp::as_micros),
                &body,
            ],
        )
    }

    fn subtasks(&mut self, task_id: &str) -> Result<Vec<Task>, StoreError> {
        self.bodies(
            "task",
            "SELECT body FROM tasks WHERE parent_task_id = $1 ORDER BY task_id",
            &[&task_id],
        )
    }

    fn open_tasks_of_agent(&mut self, agent: &str) -> Result<Vec<Task>, StoreError> {
        self.bodies(
            "task",
            "SELECT body FROM tasks WHERE agent = $1 AND open ORDER BY task_id",
            &[&agent],
        )
    }

    fn due_tasks(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Task>, StoreError> {
        self.bodies(
            "task",
            "SELECT body FROM tasks
             WHERE open AND deadline IS NOT NULL AND deadline <= $1
             ORDER BY deadline, task_id LIMIT $2",
            &[&now.as_micros(), &self::limit(limit)],
        )
    }

    fn grant(&mut self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        self.body(
            "grant",
            "SELECT body FROM grants WHERE grant_id = $1",
            &[&grant_id],
        )
    }

    fn put_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        let body = to_body(grant)?;
        self.execute(
            "INSERT INTO grants (grant_id, task_id, parent_grant_id, live, expires_at, body)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (grant_id) DO UPDATE SET task_id = EXCLUDED.task_id,
                parent_grant_id = EXCLUDED.parent_grant_id, live = EXCLUDED.live,
                expires_at = EXCLUDED.expires_at, body = EXCLUDED.body",
            &[
                &grant.grant_id,
                &grant.task_id,
                &grant.parent_grant_id,
                &grant.state.is_live(),
                &grant.expires_at.as_micros(),
                &body,
            ],
        )
    }

    fn grants_of_task(&mut self, task_id: &str) -> Result<Vec<Grant>, StoreError> {
        self.bodies(
            "grant",
            "SELECT body FROM grants WHERE task_id = $1 ORDER BY grant_id",
            &[&task_id],
        )
    }

    fn child_grants(&mut self, grant_id: &str) -> Result<Vec<Grant>, StoreError> {
        self.bodies(
            "grant",
            "SELECT body FROM grants WHERE parent_grant_id = $1 ORDER BY grant_id",
            &[&grant_id],
        )
    }

    fn due_grants(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Grant>, StoreError> {
        self.bodies(
            "grant",
            "SELECT body FROM grants WHERE live AND expires_at <= $1
             ORDER BY expires_at, grant_id LIMIT $2",
            &[&now.as_micros(), &self::limit(limit)],
        )
    }

    fn is_blocked(&mut self, agent: &str) -> Result<bool, StoreError> {
        Ok(!self
            .query("SELECT 1 FROM blocked WHERE agent = $1", &[&agent])?
            .is_empty())
    }

    fn set_blocked(&mut self, agent: &str, blocked: bool) -> Result<(), StoreError> {
        if blocked {
            self.execute(
                "INSERT INTO blocked (agent) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&agent],
            )
        } else {
            self.execute("DELETE FROM blocked WHERE agent = $1", &[&agent])
        }
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        let rows = self.query("SELECT value FROM meta WHERE key = $1", &[&key])?;
        rows.first()
            .map(|row| row.try_get(0).map_err(|e| self.err(&e)))
            .transpose()
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn masks_passwords() {
        for (url, masked) in [
            (
                "postgres://grant:s3cr:et@db.example:5432/ledger",
                "postgres://grant:***@db.example:5432/ledger",
            ),
            (
                "postgresql://grant@%2Ftmp%2Fpg/ledger?password=hunter2&application_name=x",
                "postgresql://grant@%2Ftmp%2Fpg/ledger?password=***&application_name=x",
            ),
            (
                "postgres://db.example/ledger",
                "postgres://db.example/ledger",
            ),
            ("postgres://u:p@h", "postgres://u:***@h"),
        ] {
            assert_eq!(mask_password(url), masked);
        }
    }
}
