//! The embedded store: one SQLite file, created with mode 0600, in WAL mode
//! with `synchronous=FULL`, so a commit is durable when it returns.
//!
//! One writer connection behind a mutex runs every write as `BEGIN
//! IMMEDIATE` ... `COMMIT`: the immediate transaction takes SQLite's write
//! lock before anything is read, so writers in this process and in others
//! (waiting up to the busy timeout) are serialized, and the head a write
//! reads is still the head when it appends. Reads use a second connection:
//! WAL lets them see the last committed snapshot beside a running write.
//!
//! The file says it is a ledger with `PRAGMA application_id`, and which
//! schema it holds with `PRAGMA user_version`; [`MIGRATIONS`] bring an
//! older one up to date in one transaction at open. A file that is not
//! SQLite, another application's database, or a ledger of a newer schema is
//! refused before anything is written to it.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, params};

use crate::model::{Grant, GrantState, Task, TaskState};
use crate::store::{
    Head, Store, StoreError, StoreErrorKind, StoredEvent, Tx, Work, from_body, to_body,
};
use crate::time::Timestamp;

/// `PRAGMA application_id` of a ledger file: "GrLd".
pub const APPLICATION_ID: i32 = 0x4772_4c64;

/// How long a write waits for another process's write lock before it fails
/// with [`StoreErrorKind::Unavailable`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations: the n-th brings a store from version n - 1 to n. A
/// migration is only ever appended, never edited, once released.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        kind TEXT NOT NULL,
        task_id TEXT,
        grant_id TEXT,
        json TEXT NOT NULL
    );
    CREATE INDEX events_by_task ON events (task_id);
    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        parent_task_id TEXT,
        open INTEGER NOT NULL,
        deadline INTEGER,
        body TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX tasks_by_parent ON tasks (parent_task_id, task_id);
    CREATE INDEX open_tasks_by_agent ON tasks (agent, task_id) WHERE open = 1;
    CREATE INDEX open_tasks_by_deadline ON tasks (deadline, task_id)
        WHERE open = 1 AND deadline IS NOT NULL;
    CREATE TABLE grants (
        grant_id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        parent_grant_id TEXT,
        live INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX grants_by_task ON grants (task_id, grant_id);
    CREATE INDEX grants_by_parent ON grants (parent_grant_id, grant_id);
    CREATE INDEX live_grants_by_expiry ON grants (expires_at, grant_id) WHERE live = 1;
    CREATE TABLE blocked (
        agent TEXT PRIMARY KEY
    ) WITHOUT ROWID;",
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A ledger in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

/// What a file holds, as far as opening it is concerned.
enum Content {
    /// Nothing yet: a new ledger.
    Empty,
    /// A ledger of this schema version.
    Ledger(i64),
}

impl SqliteStore {
    /// Opens the ledger at `path`, creating it (mode 0600) if there is no
    /// file there, and migrating an older schema.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let fresh = create_file(&path)?;
        check_header(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let writer = Connection::open_with_flags(&path, flags).map_err(|e| error(&path, &e))?;
        writer
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| error(&path, &e))?;
        // Nothing is written before the file is known to be a ledger (or
        // empty) of a schema this build knows.
        if let Content::Empty = content_snapshot(&writer, &path)?
            && !fresh
        {
            // An empty file someone else made becomes a ledger: give it
            // the mode a ledger has.
            restrict_mode(&path)?;
        }
        let mode = journal_mode_wal(&writer, &path)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::unavailable(format!(
                "sqlite store `{}` cannot use write-ahead logging (journal mode stays `{mode}`)",
                path.display()
            )));
        }
        // FULL: the WAL is synced at every commit, so a committed write
        // survives a power loss. Foreign keys stay off: the ledger, not the
        // schema, keeps the relations between rows.
        writer
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")
            .map_err(|e| error(&path, &e))?;
        migrate(&writer, &path)?;

        let reader = Connection::open_with_flags(&path, flags).map_err(|e| error(&path, &e))?;
        reader
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| error(&path, &e))?;
        reader
            .execute_batch("PRAGMA query_only = ON;")
            .map_err(|e| error(&path, &e))?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// The file the ledger is in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates the file with mode 0600 unless it exists; whether it did.
fn create_file(path: &Path) -> Result<bool, StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::unavailable(format!(
            "cannot create sqlite store `{}`: {e}",
            path.display()
        ))),
    }
}

fn restrict_mode(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            StoreError::unavailable(format!(
                "cannot make sqlite store `{}` private: {e}",
                path.display()
            ))
        })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Refuses a file that is neither empty nor SQLite, before SQLite touches it.
fn check_header(path: &Path) -> Result<(), StoreError> {
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let unreadable = |e: std::io::Error| {
        StoreError::unavailable(format!(
            "cannot read sqlite store `{}`: {e}",
            path.display()
        ))
    };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mut header = Vec::with_capacity(MAGIC.len());
    file.by_ref()
        .take(MAGIC.len() as u64)
        .read_to_end(&mut header)
        .map_err(unreadable)?;
    if header.is_empty() || header == MAGIC {
        Ok(())
    } else {
        Err(not_a_ledger(path, "is not a SQLite database"))
    }
}

fn not_a_ledger(path: &Path, why: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotALedger,
        format!("`{}` {why}, so it is not a grant ledger", path.display()),
    )
}

/// [`content`] read in one read transaction: another process may be
/// creating the ledger in this file right now, and its tables and its
/// `application_id` must be seen together or not at all.
fn content_snapshot(conn: &Connection, path: &Path) -> Result<Content, StoreError> {
    conn.execute_batch("BEGIN").map_err(|e| error(path, &e))?;
    let content = content(conn, path);
    let _ = conn.execute_batch("COMMIT");
    content
}

/// Switches the file to write-ahead logging. Another process switching it
/// at the same moment can make SQLite answer "locked" at once, without
/// waiting in the busy handler, so that is retried for the busy timeout.
fn journal_mode_wal(conn: &Connection, path: &Path) -> Result<String, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        }) {
            Ok(mode) => return Ok(mode),
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(error(path, &e)),
        }
    }
}

/// What the file holds, read without writing.
fn content(conn: &Connection, path: &Path) -> Result<Content, StoreError> {
    let read = |conn: &Connection| -> rusqlite::Result<(i32, i64, i64)> {
        let application_id = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let objects = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        Ok((application_id, version, objects))
    };
    let (application_id, version, objects) = read(conn).map_err(|e| {
        if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
            not_a_ledger(path, "is not a SQLite database")
        } else {
            error(path, &e)
        }
    })?;
    if application_id == APPLICATION_ID {
        if version > SCHEMA_VERSION {
            return Err(StoreError::new(
                StoreErrorKind::NotALedger,
                format!(
                    "sqlite store `{}` has schema version {version}, newer than version \
                     {SCHEMA_VERSION} that this build knows; use a newer grant",
                    path.display()
                ),
            ));
        }
        Ok(Content::Ledger(version))
    } else if application_id != 0 {
        Err(not_a_ledger(
            path,
            &format!(
                "is the SQLite database of another application (application_id {application_id:#x})"
            ),
        ))
    } else if objects > 0 || version != 0 {
        Err(not_a_ledger(
            path,
            "is a SQLite database with tables of another application",
        ))
    } else {
        Ok(Content::Empty)
    }
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction, taken
/// with the write lock so two processes opening one new file do not both
/// create it.
fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let tx = Transaction::begin_immediate(conn, path)?;
    let from = match content(conn, path)? {
        Content::Empty => 0,
        Content::Ledger(version) => version,
    };
    if from == SCHEMA_VERSION {
        return tx.commit();
    }
    for (version, migration) in (1i64..).zip(MIGRATIONS) {
        if version > from {
            conn.execute_batch(migration).map_err(|e| {
                StoreError::corrupt(format!(
                    "sqlite store `{}`: migration to schema version {version} failed: {e}",
                    path.display()
                ))
            })?;
        }
    }
    conn.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(|e| error(path, &e))?;
    tx.commit()
}

/// A transaction begun with raw SQL (the connection is shared behind a
/// mutex, so rusqlite's borrowing `Transaction` does not fit); dropped
/// without `commit`, it rolls back, even when a closure panicked.
struct Transaction<'c> {
    conn: &'c Connection,
    path: &'c Path,
    open: bool,
}

impl<'c> Transaction<'c> {
    fn begin(conn: &'c Connection, path: &'c Path, sql: &str) -> Result<Self, StoreError> {
        // A transaction left open by a panic that unwound past its guard
        // cannot happen (the guard rolls back), but never build on one.
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")
                .map_err(|e| error(path, &e))?;
        }
        conn.execute_batch(sql).map_err(|e| error(path, &e))?;
        Ok(Transaction {
            conn,
            path,
            open: true,
        })
    }

    fn begin_immediate(conn: &'c Connection, path: &'c Path) -> Result<Self, StoreError> {
        Transaction::begin(conn, path, "BEGIN IMMEDIATE")
    }

    fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) => {
                // A failed COMMIT may leave the transaction open: end it, so
                // nothing of it is kept.
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(error(self.path, &e))
            }
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A SQLite error as a store error, naming the file.
fn error(path: &Path, e: &rusqlite::Error) -> StoreError {
    let kind = match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase | ErrorCode::ConstraintViolation,
        ) => StoreErrorKind::Corrupt,
        Some(_) => StoreErrorKind::Unavailable,
        // Not SQLite's own failure: a value that does not convert, a column
        // of the wrong type; the data is not what the schema promises.
        None => match e {
            rusqlite::Error::InvalidPath(_) => StoreErrorKind::Unavailable,
            _ => StoreErrorKind::Corrupt,
        },
    };
    StoreError::new(kind, format!("sqlite store `{}`: {e}", path.display()))
}

fn lock(mutex: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while the lock was held was rolled back by `Transaction`'s
    // drop; the connection is usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store for SqliteStore {
    fn write(&self, work: &mut Work<'_>) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        let tx = Transaction::begin_immediate(&conn, &self.path)?;
        let mut access = SqliteTx {
            conn: &conn,
            path: &self.path,
            read_only: false,
        };
        work(&mut access)?;
        tx.commit()
    }

    fn read(&self, work: &mut Work<'_>) -> Result<(), StoreError> {
        let conn = lock(&self.reader);
        // A deferred transaction: its first read fixes the snapshot every
        // later read of the closure sees.
        let tx = Transaction::begin(&conn, &self.path, "BEGIN")?;
        let mut access = SqliteTx {
            conn: &conn,
            path: &self.path,
            read_only: true,
        };
        work(&mut access)?;
        tx.commit()
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

struct SqliteTx<'c> {
    conn: &'c Connection,
    path: &'c Path,
    read_only: bool,
}

/// A value SQLite holds as a 64-bit integer.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const EVENT_COLUMNS: &str = "seq, hash, kind, task_id, grant_id, json";

fn event_row(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let seq: i64 = row.get(0)?;
    Ok(StoredEvent {
        // A negative seq is malformed data, reported as Corrupt.
        seq: u64::try_from(seq).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, seq))?,
        hash: row.get(1)?,
        kind: row.get(2)?,
        task_id: row.get(3)?,
        grant_id: row.get(4)?,
        json: row.get(5)?,
    })
}

impl SqliteTx<'_> {
    fn err(&self, e: &rusqlite::Error) -> StoreError {
        error(self.path, e)
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            Err(StoreError::unavailable(format!(
                "sqlite store `{}`: a read transaction cannot write",
                self.path.display()
            )))
        } else {
            Ok(())
        }
    }

    fn events(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(|e| self.err(&e))?;
        let rows = statement
            .query_map(params, event_row)
            .map_err(|e| self.err(&e))?;
        rows.map(|row| row.map_err(|e| self.err(&e))).collect()
    }

    fn seq(&self, seq: i64) -> Result<u64, StoreError> {
        u64::try_from(seq).map_err(|_| {
            StoreError::corrupt(format!(
                "sqlite store `{}`: an event has sequence number {seq}",
                self.path.display()
            ))
        })
    }

    /// The bodies a query returns, decoded.
    fn bodies<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<T>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(|e| self.err(&e))?;
        let rows = statement
            .query_map(params, |row| row.get::<_, String>(0))
            .map_err(|e| self.err(&e))?;
        let mut values = Vec::new();
        for body in rows {
            values.push(from_body(what, &body.map_err(|e| self.err(&e))?)?);
        }
        Ok(values)
    }

    fn body<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<T>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(|e| self.err(&e))?;
        let body: Option<String> = statement
            .query_row(params, |row| row.get(0))
            .optional()
            .map_err(|e| self.err(&e))?;
        body.map(|body| from_body(what, &body)).transpose()
    }

    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<(), StoreError> {
        self.writable()?;
        let mut statement = self.conn.prepare_cached(sql).map_err(|e| self.err(&e))?;
        statement.execute(params).map_err(|e| self.err(&e))?;
        Ok(())
    }
}

impl Tx for SqliteTx<'_> {
    fn head(&mut self) -> Result<Option<Head>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
            .map_err(|e| self.err(&e))?;
        let head: Option<(i64, String)> = statement
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(|e| self.err(&e))?;
        head.map(|(seq, hash)| {
            Ok(Head {
                seq: self.seq(seq)?,
                hash,
            })
        })
        .transpose()
    }

    fn append(&mut self, event: &StoredEvent) -> Result<(), StoreError> {
        self.writable()?;
        // The write lock is held since BEGIN IMMEDIATE: no other writer can
        // append between this check and the insert.
        let expected = self.head()?.map_or(1, |head| head.seq + 1);
        if event.seq != expected {
            return Err(StoreError::corrupt(format!(
                "sqlite store `{}`: event {} appended where {expected} belongs",
                self.path.display(),
                event.seq
            )));
        }
        self.execute(
            "INSERT INTO events (seq, hash, kind, task_id, grant_id, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                to_i64(event.seq),
                event.hash,
                event.kind,
                event.task_id,
                event.grant_id,
                event.json
            ],
        )
    }

    fn events_after(&mut self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.events(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
            params![to_i64(after), self::limit(limit)],
        )
    }

    fn events_of_tasks(&mut self, task_ids: &[String]) -> Result<Vec<StoredEvent>, StoreError> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        // One parameter whatever the number of tasks: a JSON array.
        let ids = serde_json::to_string(task_ids)
            .map_err(|e| StoreError::corrupt(format!("cannot encode task ids: {e}")))?;
        self.events(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE task_id IN (SELECT value FROM json_each(?1)) ORDER BY seq"
            ),
            params![ids],
        )
    }

    fn task(&mut self, task_id: &str) -> Result<Option<Task>, StoreError> {
        self.body(
            "task",
            "SELECT body FROM tasks WHERE task_id = ?1",
            params![task_id],
        )
    }

    fn put_task(&mut self, task: &Task) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO tasks (task_id, agent, parent_task_id, open, deadline, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                task.task_id,
                task.agent,
                task.parent_task_id,
                task.state == TaskState::Open,
                task.deadline.map(Timestamp::as_micros),
                to_body(task)?
            ],
        )
    }

    fn subtasks(&mut self, task_id: &str) -> Result<Vec<Task>, StoreError> {
        self.bodies(
            "task",
            "SELECT body FROM tasks WHERE parent_task_id = ?1 ORDER BY task_id",
            params![task_id],
        )
    }

    fn open_tasks_of_agent(&mut self, agent: &str) -> Result<Vec<Task>, StoreError> {
        self.bodies(
            "task",
            "SELECT body FROM tasks WHERE agent = ?1 AND open = 1 ORDER BY task_id",
            params![agent],
        )
    }

    fn due_tasks(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Task>, StoreError> {
        self.bodies(
            "task",
            "SELECT body FROM tasks
             WHERE open = 1 AND deadline IS NOT NULL AND deadline <= ?1
             ORDER BY deadline, task_id LIMIT ?2",
            params![now.as_micros(), self::limit(limit)],
        )
    }

    fn grant(&mut self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        self.body(
            "grant",
            "SELECT body FROM grants WHERE grant_id = ?1",
            params![grant_id],
        )
    }

    fn put_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO grants (grant_id, task_id, parent_grant_id, live, expires_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                grant.grant_id,
                grant.task_id,
                grant.parent_grant_id,
                GrantState::is_live(grant.state),
                grant.expires_at.as_micros(),
                to_body(grant)?
            ],
        )
    }

    fn grants_of_task(&mut self, task_id: &str) -> Result<Vec<Grant>, StoreError> {
        self.bodies(
            "grant",
            "SELECT body FROM grants WHERE task_id = ?1 ORDER BY grant_id",
            params![task_id],
        )
    }

    fn child_grants(&mut self, grant_id: &str) -> Result<Vec<Grant>, StoreError> {
        self.bodies(
            "grant",
            "SELECT body FROM grants WHERE parent_grant_id = ?1 ORDER BY grant_id",
            params![grant_id],
        )
    }

    fn due_grants(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Grant>, StoreError> {
        self.bodies(
            "grant",
            "SELECT body FROM grants WHERE live = 1 AND expires_at <= ?1
             ORDER BY expires_at, grant_id LIMIT ?2",
            params![now.as_micros(), self::limit(limit)],
        )
    }

    fn is_blocked(&mut self, agent: &str) -> Result<bool, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT 1 FROM blocked WHERE agent = ?1")
            .map_err(|e| self.err(&e))?;
        statement.exists(params![agent]).map_err(|e| self.err(&e))
    }

    fn set_blocked(&mut self, agent: &str, blocked: bool) -> Result<(), StoreError> {
        if blocked {
            self.execute(
                "INSERT OR IGNORE INTO blocked (agent) VALUES (?1)",
                params![agent],
            )
        } else {
            self.execute("DELETE FROM blocked WHERE agent = ?1", params![agent])
        }
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .map_err(|e| self.err(&e))?;
        statement
            .query_row(params![key], |row| row.get(0))
            .optional()
            .map_err(|e| self.err(&e))
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )
    }
}
