//! `wasmhost:platform/sql`: the SQL databases an app declares (`databases =
//! ["default"]`, `--database NAME`), each an embedded SQLite file in the
//! app's data directory (`<data dir>/<app>/sql/<name>.sqlite3`), persistent
//! and shared by all its instances. The SDK's `wasmhost.db` (DB-API 2.0) is
//! built on it.
//!
//! Besides the declared databases, an app has file databases: the SQLite
//! files it names by a path in its directory (`open-file`, what the SDK's
//! `sqlite3` gives a `sqlite3.connect(path)` there), kept the same way in
//! `<data dir>/<app>/sql/files/`, created on first use, at most
//! [`MAX_FILE_DATABASES`].
//!
//! Each guest connection is a host SQLite connection to the file (WAL mode,
//! `synchronous = NORMAL`), so instances run concurrently the way separate
//! processes would: readers never block, writers take turns, and a writer
//! waits for another up to [`BUSY_TIMEOUT`] in the host (never spinning in
//! the guest). `begin` starts an `IMMEDIATE` transaction, so a transaction
//! holds the write lock from its start and never loses an update to a
//! concurrent one. Statements run on tokio's blocking pool; one that is
//! still running when the request's time is up is interrupted.
//!
//! What a guest cannot do with its SQL: open any file but its declared
//! databases (no `ATTACH`, no `VACUUM INTO`), change how the file is kept
//! (journal mode, size limit, cache size and most other pragmas are
//! refused; `PRAGMA foreign_keys`, `table_info` and the other schema
//! pragmas ORMs use work), corrupt it (SQLite's defensive mode), grow it
//! past `sql_max_size`, or get a result over [`MAX_RESULT_SIZE`]. Every
//! failure is an `error` value, never a trap. A transaction a request left
//! open is rolled back when the request ends ([`Capability::end_request`]),
//! whatever the outcome; a connection whose request was cancelled while a
//! statement ran is closed (SQLite rolls back its transaction).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::{config::DbConfig, Connection, ErrorCode as SqliteCode};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::{Capability, RequestContext};
use crate::metrics::METRICS;
use crate::store::StoreData;
use wasmhost_spec::{AppSpec, DatabaseSpec};

mod functions;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        inline: "
            package wasmhost:sql-host;

            world sql-host {
                import wasmhost:platform/sql@0.1.0;
            }
        ",
        world: "wasmhost:sql-host/sql-host",
        imports: { default: async | trappable },
        require_store_data_send: true,
        additional_derives: [PartialEq],
        with: {
            "wasmhost:platform/sql.connection": crate::capability::sql::SqlConnection,
        },
    });
}

use bindings::wasmhost::platform::sql::{self, Error, ErrorKind, Outcome, Value};

/// How long a statement waits for another connection's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest result one statement may return (its rows' values together).
pub const MAX_RESULT_SIZE: usize = 64 << 20;

/// Most connections one instance holds open at once.
const MAX_CONNECTIONS: usize = 16;

/// Most file databases (`open-file`) one app may create.
pub const MAX_FILE_DATABASES: usize = 16;

/// Pragmas a guest may run with an argument or a value: the schema
/// inspection and per-connection settings ORMs use. Any other pragma may
/// only be read.
const PRAGMAS: &[&str] = &[
    "case_sensitive_like",
    "collation_list",
    "defer_foreign_keys",
    "foreign_key_check",
    "foreign_key_list",
    "foreign_keys",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "legacy_alter_table",
    "optimize",
    "quick_check",
    "recursive_triggers",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

/// The SQL capability.
pub struct Sql;

/// One app's declared databases and limits.
pub struct SqlApp {
    app: Arc<str>,
    spec: DatabaseSpec,
    max_size: u64,
}

/// One instance's connections.
pub struct SqlInstance {
    app: Arc<SqlApp>,
    /// Open connections by id; a connection running a statement is out of
    /// the map until the statement ends.
    connections: HashMap<u64, Connection>,
    /// Connections the instance opened and did not drop (those running a
    /// statement, out of `connections`, included).
    open: usize,
    next_id: u64,
    /// When the current request's time runs out.
    deadline: Option<Instant>,
}

/// A connection a guest opened: a resource in its store's table.
pub struct SqlConnection {
    id: u64,
    database: Arc<str>,
}

impl Capability for Sql {
    type App = Arc<SqlApp>;
    type Instance = SqlInstance;

    fn app(spec: &AppSpec, _previous: Option<&Arc<SqlApp>>) -> Result<Arc<SqlApp>> {
        let databases = &spec.env.databases;
        if !databases.names.is_empty() {
            super::keyvalue::embedded::create_private_dir(&databases.dir)?;
        }
        Ok(Arc::new(SqlApp {
            app: Arc::from(spec.name.as_str()),
            spec: databases.clone(),
            max_size: spec.limits.sql_max_size,
        }))
    }

    fn instance(app: &Arc<SqlApp>) -> Result<SqlInstance> {
        Ok(SqlInstance { app: app.clone(), connections: HashMap::new(), open: 0, next_id: 0, deadline: None })
    }

    fn begin_request(instance: &mut SqlInstance, request: &RequestContext) {
        instance.deadline = Some(request.deadline);
    }

    fn end_request(instance: &mut SqlInstance) {
        instance.deadline = None;
        for connection in instance.connections.values() {
            if connection.is_autocommit() {
                continue;
            }
            let app = &*instance.app.app;
            match end_transaction(connection, "ROLLBACK") {
                Ok(()) => tracing::info!(app, "rolled back a SQL transaction its request left open"),
                Err(err) => tracing::warn!(app, "cannot roll back a SQL transaction its request left open: {err}"),
            }
            METRICS.sql_rollbacks.with_label_values(&[app]).inc();
        }
    }

    fn holds_request(instance: &SqlInstance) -> bool {
        instance.deadline.is_some() || instance.connections.values().any(|connection| !connection.is_autocommit())
    }

    fn add_to_linker(linker: &mut Linker<StoreData>) -> Result<()> {
        fn view(data: &mut StoreData) -> SqlView<'_> {
            SqlView { state: &mut data.capabilities.sql, table: &mut data.table }
        }
        sql::add_to_linker::<StoreData, SqlData>(linker, view)
            .map_err(|err| anyhow::Error::from(err).context("cannot add wasmhost:platform/sql to the linker"))
    }
}

impl Drop for SqlInstance {
    fn drop(&mut self) {
        METRICS.sql_connections.with_label_values(&[&*self.app.app]).sub(self.open as i64);
    }
}

struct SqlView<'a> {
    state: &'a mut SqlInstance,
    table: &'a mut ResourceTable,
}

struct SqlData;

impl HasData for SqlData {
    type Data<'a> = SqlView<'a>;
}

/// A failed statement, as the guest sees it.
fn error(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error { kind, message: message.into() }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        let kind = match &err {
            rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
                SqliteCode::ConstraintViolation => ErrorKind::Constraint,
                SqliteCode::DatabaseBusy | SqliteCode::DatabaseLocked => ErrorKind::Busy,
                SqliteCode::DiskFull | SqliteCode::TooBig | SqliteCode::OperationInterrupted => ErrorKind::Limit,
                SqliteCode::AuthorizationForStatementDenied => ErrorKind::Refused,
                SqliteCode::Unknown => ErrorKind::Syntax,
                _ => ErrorKind::Other,
            },
            rusqlite::Error::SqlInputError { .. } => ErrorKind::Syntax,
            rusqlite::Error::MultipleStatement | rusqlite::Error::InvalidParameterCount(..) => ErrorKind::Refused,
            _ => ErrorKind::Other,
        };
        let message = match &err {
            rusqlite::Error::SqliteFailure(failure, _) if failure.code == SqliteCode::OperationInterrupted => {
                "interrupted: the request's time ran out while the statement ran".to_owned()
            }
            rusqlite::Error::SqliteFailure(failure, _) if failure.code == SqliteCode::DiskFull => {
                "limit: the database is as large as the app's sql_max_size allows".to_owned()
            }
            rusqlite::Error::SqliteFailure(failure, _) if failure.code == SqliteCode::DatabaseBusy => {
                format!("busy: the database stayed locked by another connection for {BUSY_TIMEOUT:?}")
            }
            rusqlite::Error::MultipleStatement => "one statement per call (use executescript for several)".to_owned(),
            _ => err.to_string(),
        };
        self::error(kind, message)
    }
}

impl SqlApp {
    /// A new connection to the declared database `name`, set up so that the
    /// guest can reach nothing but that file.
    fn connect(&self, name: &str) -> Result<Connection, Error> {
        let Some(path) = self.spec.file(name) else {
            return Err(error(ErrorKind::NoSuchDatabase, format!("the app declares no database {name:?}")));
        };
        self.open(&path, name)
    }

    /// A new connection to the app's file database `path` (created if
    /// there are fewer than [`MAX_FILE_DATABASES`]).
    fn connect_file(&self, path: &str) -> Result<Connection, Error> {
        let file = self.spec.file_of_path(path).map_err(|message| error(ErrorKind::Refused, message))?;
        if !file.exists() {
            let dir = file.parent().unwrap_or(&file);
            super::keyvalue::embedded::create_private_dir(dir)
                .map_err(|err| error(ErrorKind::Other, format!("cannot create {path:?}: {err:#}")))?;
            let existing = std::fs::read_dir(dir)
                .map_err(|err| error(ErrorKind::Other, format!("cannot create {path:?}: {err}")))?
                .filter_map(|entry| entry.ok())
                .filter(|entry| {
                    let name = entry.file_name();
                    !SIDE_FILES.iter().any(|side| name.to_string_lossy().ends_with(side))
                })
                .count();
            if existing >= MAX_FILE_DATABASES {
                return Err(error(
                    ErrorKind::Limit,
                    format!("limit: the app has {MAX_FILE_DATABASES} database files already; cannot create {path:?}"),
                ));
            }
        }
        self.open(&file, path)
    }

    fn open(&self, file: &PathBuf, database: &str) -> Result<Connection, Error> {
        open(file, self.max_size).map_err(|err| {
            tracing::warn!(app = %self.app, database, "cannot open the SQL database: {err}");
            Error::from(err)
        })
    }
}

/// What SQLite keeps beside a database file (not databases themselves).
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Opens `path` (creating it) for a guest: WAL, the host's busy timeout,
/// at most `max_size` bytes, no attached databases, defensive mode, and
/// the authorizer that refuses what could reach beyond the file.
fn open(path: &PathBuf, max_size: u64) -> rusqlite::Result<Connection> {
    let mut connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let page_size: i64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    let pages = (max_size / page_size.max(512) as u64).max(1);
    connection.execute_batch(&format!("PRAGMA max_page_count = {pages}"))?;
    connection.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    connection.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_RESULT_SIZE as i32)?;
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    connection.set_prepared_statement_cache_capacity(64);
    connection.authorizer(Some(authorize))?;
    functions::register(&connection)?;
    Ok(connection)
}

/// What a guest's statement may do (see the module documentation).
fn authorize(context: AuthContext<'_>) -> Authorization {
    match context.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, pragma_value } => {
            let name = pragma_name.to_ascii_lowercase();
            if pragma_value.is_none() || PRAGMAS.contains(&name.as_str()) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        _ => Authorization::Allow,
    }
}

/// Runs `statement` with `params` on `connection`; its outcome, within
/// [`MAX_RESULT_SIZE`].
fn execute(connection: &Connection, statement: &str, params: &[Value]) -> Result<Outcome, Error> {
    let mut prepared = connection.prepare_cached(statement)?;
    bind(&mut prepared, params)?;
    let columns: Vec<String> = prepared.column_names().map(str::to_owned).collect();
    let column_types = prepared.columns().map(|column| column.decl_type().unwrap_or_default().to_owned()).collect();
    let readonly = prepared.readonly();
    let mut rows = Vec::new();
    if columns.is_empty() {
        prepared.raw_execute()?;
    } else {
        let mut size = 0usize;
        let mut cursor = prepared.raw_query();
        while let Some(row) = cursor.next()? {
            let mut values = Vec::with_capacity(columns.len());
            for index in 0..columns.len() {
                let value = guest_value(row.get_ref(index)?);
                size += value_size(&value);
                values.push(value);
            }
            if size > MAX_RESULT_SIZE {
                return Err(error(
                    ErrorKind::Limit,
                    format!(
                        "limit: the result is larger than {} MiB; select fewer rows or columns",
                        MAX_RESULT_SIZE >> 20
                    ),
                ));
            }
            rows.push(values);
        }
    }
    Ok(Outcome {
        columns,
        column_types,
        rows,
        rows_affected: if readonly { 0 } else { connection.changes() },
        last_insert_id: connection.last_insert_rowid(),
    })
}

/// Ends the transaction in progress on `connection` with `COMMIT` or
/// `ROLLBACK` (`how`); nothing when none is.
fn end_transaction(connection: &Connection, how: &str) -> rusqlite::Result<()> {
    if connection.is_autocommit() {
        return Ok(());
    }
    connection.execute_batch(how)
}

/// Binds `params` to `statement`'s placeholders, refusing a wrong count.
fn bind(statement: &mut rusqlite::CachedStatement<'_>, params: &[Value]) -> Result<(), Error> {
    let expected = statement.parameter_count();
    if params.len() != expected {
        return Err(error(
            ErrorKind::Refused,
            format!("the statement takes {expected} parameters, {} were given", params.len()),
        ));
    }
    for (index, param) in params.iter().enumerate() {
        statement.raw_bind_parameter(index + 1, sqlite_value(param))?;
    }
    Ok(())
}

fn sqlite_value(value: &Value) -> SqliteValue {
    match value {
        Value::Null => SqliteValue::Null,
        Value::Integer(n) => SqliteValue::Integer(*n),
        Value::Real(x) => SqliteValue::Real(*x),
        Value::Text(text) => SqliteValue::Text(text.clone()),
        Value::Blob(bytes) => SqliteValue::Blob(bytes.clone()),
    }
}

fn guest_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(x) => Value::Real(x),
        ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Integer(_) | Value::Real(_) => 8,
        Value::Text(text) => text.len(),
        Value::Blob(bytes) => bytes.len(),
    }
}

impl SqlView<'_> {
    /// Runs `work` on the connection `handle` on tokio's blocking pool,
    /// interrupting it when the request's time runs out; counts and times
    /// it as `operation`.
    async fn run<T: Send + 'static>(
        &mut self,
        handle: &Resource<SqlConnection>,
        operation: &'static str,
        work: impl FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> wasmtime::Result<Result<T, Error>> {
        let (id, database) = {
            let connection = self.table.get(handle)?;
            (connection.id, connection.database.clone())
        };
        let app = self.state.app.app.clone();
        let Some(mut connection) = self.state.connections.remove(&id) else {
            return Ok(Err(error(
                ErrorKind::Other,
                "the connection was closed when a request was cancelled while it ran a statement; connect again",
            )));
        };
        let started = Instant::now();
        let interrupt = connection.get_interrupt_handle();
        let deadline = self.state.deadline;
        let mut task = tokio::task::spawn_blocking(move || {
            let outcome = work(&mut connection);
            (connection, outcome)
        });
        let joined = match deadline {
            Some(deadline) => tokio::select! {
                joined = &mut task => joined,
                () = tokio::time::sleep_until(deadline.into()) => {
                    interrupt.interrupt();
                    task.await
                }
            },
            None => task.await,
        };
        let (connection, outcome) = joined?;
        self.state.connections.insert(id, connection);
        let result = match &outcome {
            Ok(_) => "ok",
            Err(err) if err.kind == ErrorKind::Other => {
                tracing::warn!(app = %app, database = %database, operation, "SQL error: {}", err.message);
                "error"
            }
            Err(_) => "refused",
        };
        METRICS.sql_statements.with_label_values(&[&*app, &*database, result]).inc();
        METRICS.sql_duration.with_label_values(&[&*app, operation]).observe(started.elapsed().as_secs_f64());
        Ok(outcome)
    }

    /// Opens a connection with `connect` (on tokio's blocking pool) and
    /// gives it to the guest; `database` names it in metrics and errors.
    async fn open_with(
        &mut self,
        database: String,
        connect: impl FnOnce(&SqlApp, &str) -> Result<Connection, Error> + Send + 'static,
    ) -> wasmtime::Result<Result<Resource<SqlConnection>, Error>> {
        if self.state.open >= MAX_CONNECTIONS {
            return Ok(Err(error(
                ErrorKind::Limit,
                format!("limit: this instance holds {MAX_CONNECTIONS} open SQL connections; close some first"),
            )));
        }
        let app = self.state.app.clone();
        let name = database.clone();
        let connection = match tokio::task::spawn_blocking(move || connect(&app, &name)).await? {
            Ok(connection) => connection,
            Err(err) => return Ok(Err(err)),
        };
        let id = self.state.next_id;
        self.state.next_id += 1;
        let resource = self.table.push(SqlConnection { id, database: Arc::from(database.as_str()) })?;
        self.state.connections.insert(id, connection);
        self.state.open += 1;
        METRICS.sql_connections.with_label_values(&[&*self.state.app.app]).inc();
        Ok(Ok(resource))
    }
}

impl sql::Host for SqlView<'_> {}

impl sql::HostConnection for SqlView<'_> {
    async fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<SqlConnection>, Error>> {
        self.open_with(name, |app, name| app.connect(name)).await
    }

    async fn open_file(&mut self, path: String) -> wasmtime::Result<Result<Resource<SqlConnection>, Error>> {
        self.open_with(path, |app, path| app.connect_file(path)).await
    }

    async fn execute(
        &mut self,
        handle: Resource<SqlConnection>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Outcome, Error>> {
        self.run(&handle, "execute", move |connection| execute(connection, &statement, &params)).await
    }

    async fn execute_many(
        &mut self,
        handle: Resource<SqlConnection>,
        statement: String,
        batches: Vec<Vec<Value>>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        self.run(&handle, "execute-many", move |connection| {
            // All or nothing, inside the caller's transaction if there is one.
            let savepoint = connection.savepoint().map_err(Error::from)?;
            let mut changed = 0;
            {
                let mut prepared = savepoint.prepare_cached(&statement)?;
                for params in &batches {
                    bind(&mut prepared, params)?;
                    changed += prepared.raw_execute()? as u64;
                }
            }
            savepoint.commit()?;
            Ok(changed)
        })
        .await
    }

    async fn begin(&mut self, handle: Resource<SqlConnection>) -> wasmtime::Result<Result<(), Error>> {
        self.run(&handle, "begin", |connection| Ok(connection.execute_batch("BEGIN IMMEDIATE")?)).await
    }

    async fn commit(&mut self, handle: Resource<SqlConnection>) -> wasmtime::Result<Result<(), Error>> {
        self.run(&handle, "commit", |connection| Ok(end_transaction(connection, "COMMIT")?)).await
    }

    async fn rollback(&mut self, handle: Resource<SqlConnection>) -> wasmtime::Result<Result<(), Error>> {
        self.run(&handle, "rollback", |connection| Ok(end_transaction(connection, "ROLLBACK")?)).await
    }

    async fn in_transaction(&mut self, handle: Resource<SqlConnection>) -> wasmtime::Result<bool> {
        let id = self.table.get(&handle)?.id;
        Ok(self.state.connections.get(&id).is_some_and(|connection| !connection.is_autocommit()))
    }

    async fn drop(&mut self, handle: Resource<SqlConnection>) -> wasmtime::Result<()> {
        let connection = self.table.delete(handle)?;
        // Closing rolls back a transaction in progress.
        self.state.connections.remove(&connection.id);
        self.state.open = self.state.open.saturating_sub(1);
        METRICS.sql_connections.with_label_values(&[&*self.state.app.app]).dec();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(name: &str) -> (Connection, PathBuf) {
        let dir = std::env::temp_dir().join(format!("wasmhost-sql-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite3");
        (open(&path, 1 << 20).unwrap(), dir)
    }

    fn run(connection: &Connection, statement: &str) -> Result<Outcome, Error> {
        execute(connection, statement, &[])
    }

    #[test]
    fn typed_values_round_trip_and_counts_are_reported() {
        let (db, dir) = database("values");
        run(&db, "CREATE TABLE t (id INTEGER PRIMARY KEY, i, r, s, b)").unwrap();
        let params = [Value::Integer(-7), Value::Real(1.5), Value::Text("é".into()), Value::Blob(vec![0, 255])];
        let inserted = execute(&db, "INSERT INTO t (i, r, s, b) VALUES (?, ?, ?, ?)", &params).unwrap();
        assert_eq!((inserted.rows_affected, inserted.last_insert_id), (1, 1));
        let selected = run(&db, "SELECT i, r, s, b, NULL FROM t").unwrap();
        assert_eq!(selected.columns, ["i", "r", "s", "b", "NULL"]);
        assert_eq!(
            selected.rows,
            [[params[0].clone(), params[1].clone(), params[2].clone(), params[3].clone(), Value::Null]]
        );
        assert_eq!(selected.rows_affected, 0);
        run(&db, "CREATE TABLE d (at TIMESTAMP, n integer)").unwrap();
        let typed = run(&db, "SELECT at, n, n + 1 FROM d").unwrap();
        assert_eq!(typed.column_types, ["TIMESTAMP", "INTEGER", ""]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn file_databases_are_created_in_the_apps_directory_up_to_the_limit() {
        let data = std::env::temp_dir().join(format!("wasmhost-sql-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let app =
            SqlApp { app: Arc::from("blog"), spec: DatabaseSpec::new(&[], &data, "blog").unwrap(), max_size: 1 << 20 };
        let db = app.connect_file("instance/blog.sqlite").unwrap();
        run(&db, "CREATE TABLE t (x)").unwrap();
        assert!(data.join("blog/sql/files/instance~blog.sqlite").is_file());
        assert_eq!(app.connect_file("../other.sqlite").unwrap_err().kind, ErrorKind::Refused);
        for n in 1..MAX_FILE_DATABASES {
            app.connect_file(&format!("db{n}.sqlite3")).unwrap();
        }
        let over = app.connect_file("one-more.sqlite3").unwrap_err();
        assert_eq!(over.kind, ErrorKind::Limit, "{}", over.message);
        app.connect_file("instance/blog.sqlite").unwrap();
        std::fs::remove_dir_all(data).unwrap();
    }

    #[test]
    fn bad_statements_are_errors_of_their_kind() {
        let (db, dir) = database("errors");
        run(&db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)").unwrap();
        assert_eq!(run(&db, "SELEC 1").unwrap_err().kind, ErrorKind::Syntax);
        assert_eq!(run(&db, "SELECT * FROM missing").unwrap_err().kind, ErrorKind::Syntax);
        assert_eq!(run(&db, "INSERT INTO t (name) VALUES (NULL)").unwrap_err().kind, ErrorKind::Constraint);
        assert_eq!(run(&db, "SELECT ?").unwrap_err().kind, ErrorKind::Refused, "a parameter missing");
        assert_eq!(run(&db, "SELECT 1; SELECT 2").unwrap_err().kind, ErrorKind::Refused);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn nothing_beyond_the_file_is_reachable() {
        let (db, dir) = database("sandbox");
        let other = dir.join("other.sqlite3");
        for statement in [
            format!("ATTACH DATABASE '{}' AS other", other.display()),
            format!("VACUUM INTO '{}'", other.display()),
            "PRAGMA journal_mode = DELETE".to_owned(),
            "PRAGMA max_page_count = 1000000000".to_owned(),
            "PRAGMA cache_size = -2000000".to_owned(),
            "PRAGMA writable_schema = ON".to_owned(),
        ] {
            assert!(run(&db, &statement).is_err(), "{statement}");
        }
        assert!(!other.exists());
        run(&db, "PRAGMA foreign_keys = ON").unwrap();
        run(&db, "CREATE TABLE t (x)").unwrap();
        assert_eq!(run(&db, "PRAGMA table_info(t)").unwrap().rows.len(), 1);
        assert_eq!(run(&db, "PRAGMA journal_mode").unwrap().rows, [[Value::Text("wal".into())]]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_size_limit_refuses_growth() {
        let (db, dir) = database("size");
        run(&db, "CREATE TABLE t (b BLOB)").unwrap();
        let blob = [Value::Blob(vec![7; 64 << 10])];
        let failure = (0..64).find_map(|_| execute(&db, "INSERT INTO t VALUES (?)", &blob).err()).unwrap();
        assert_eq!(failure.kind, ErrorKind::Limit, "{}", failure.message);
        assert!(failure.message.contains("sql_max_size"), "{}", failure.message);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
