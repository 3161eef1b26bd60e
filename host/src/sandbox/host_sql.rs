//! The host side of the guest's `sql` interface: `exec`, `exec-many`,
//! `query` and `add-column-if-missing`, run on the connection inside the migration's
//! transaction, under the SQL gate and the sandbox's size limits.
//!
//! These functions use wasmig's own types; `bindings` converts to and from
//! the generated ones, so nothing here depends on the code generator.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, Statement};

use super::gate::Denials;

/// A SQLite value crossing the guest boundary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Class of a failed call, as the guest sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    Sqlite,
    Denied,
    Limit,
    Invalid,
}

/// A failed call, returned to the guest (which may handle it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlError {
    pub kind: ErrorKind,
    pub code: i32,
    pub message: String,
}

/// A query's result set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryRows {
    pub columns: Vec<String>,
    pub values: Vec<Vec<Value>>,
}

/// A host-side condition that ends the guest at once (a trap), because
/// continuing could break the migration's atomicity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault(pub String);

/// What a host call returns: the outer error traps, the inner goes to the guest.
pub(crate) type CallResult<T> = Result<Result<T, SqlError>, Fault>;

/// Per-call size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Longest SQL text per call, in bytes.
    pub max_sql_bytes: usize,
    /// Most parameters per statement run: per call for `exec` and `query`,
    /// per run for `exec-many`.
    pub max_params: usize,
    /// Most rows one `query` may return.
    pub max_result_rows: usize,
    /// Most bytes (text and blob payloads, 8 per number) one `query` may return.
    pub max_result_bytes: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            max_sql_bytes: 1_000_000,
            max_params: 999,
            max_result_rows: 1_000_000,
            max_result_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Work budget for time spent inside SQLite, where fuel and epochs do not
/// reach: checked by SQLite's progress handler.
#[derive(Debug)]
pub(crate) struct SqliteBudget {
    /// Virtual-machine steps left (counted in progress-handler periods).
    pub periods_left: AtomicU64,
    /// Wall-clock deadline shared with the epoch deadline.
    pub deadline: Instant,
    /// Set when the handler interrupted a statement, with the reason.
    pub hit: Mutex<Option<String>>,
}

/// Counters and diagnostics for one migration's host calls.
#[derive(Debug, Default, Clone)]
pub(crate) struct CallStats {
    pub calls: u64,
    pub rows_changed: u64,
    /// The most recent failed call: statement, parameters and error.
    pub last_failure: Option<String>,
    /// The first action the SQL gate refused, if any.
    pub first_denial: Option<String>,
}

/// Everything a running guest can reach: the connection inside its
/// transaction, and the limits that bound it.
pub(crate) struct HostState {
    pub conn: Connection,
    pub store_limits: crate::sandbox::limiter::GuestLimiter,
    pub limits: CallLimits,
    pub denials: Denials,
    pub budget: Arc<SqliteBudget>,
    pub stats: CallStats,
    pub poisoned: Option<String>,
    /// Keep prepared statements for reuse (off for scripts, whose
    /// statements each run once).
    pub cache_statements: bool,
    /// The last SQL text that passed the text checks (second statement,
    /// JSON paths), so a guest calling one statement in a loop is not
    /// scanned again on every call: the checks read only the text.
    pub checked_sql: RefCell<String>,
}

/// What a call's body works with besides its statement: borrowed from the
/// state for the one call, so no shared handle is cloned per call.
struct CallCtx<'a> {
    conn: &'a Connection,
    limits: CallLimits,
    denials: &'a Denials,
    budget: &'a SqliteBudget,
    cache_statements: bool,
    checked_sql: &'a RefCell<String>,
}

impl CallCtx<'_> {
    fn sqlite_error(&self, e: rusqlite::Error) -> SqlError {
        map_sqlite_error(e, self.denials, self.budget)
    }
}

fn invalid(message: impl Into<String>) -> SqlError {
    SqlError { kind: ErrorKind::Invalid, code: 0, message: message.into() }
}

fn limit(message: impl Into<String>) -> SqlError {
    SqlError { kind: ErrorKind::Limit, code: 0, message: message.into() }
}

fn too_many_params(given: usize, max: usize) -> SqlError {
    limit(format!("{given} parameters; the limit is {max}"))
}

/// Quotes an SQL identifier: wrap in double quotes, double any inside.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn summarize(sql: &str, params: &[Value]) -> String {
    const MAX: usize = 200;
    let mut s = String::new();
    let trimmed = sql.trim();
    if trimmed.len() > MAX {
        let cut = (0..=MAX).rev().find(|i| trimmed.is_char_boundary(*i)).unwrap_or(0);
        let _ = write!(s, "`{}…` ({} bytes)", &trimmed[..cut], trimmed.len());
    } else {
        let _ = write!(s, "`{trimmed}`");
    }
    if !params.is_empty() {
        let shown: Vec<String> = params
            .iter()
            .take(8)
            .map(|p| match p {
                Value::Null => "NULL".to_owned(),
                Value::Integer(i) => i.to_string(),
                Value::Real(r) => r.to_string(),
                Value::Text(t) if t.chars().count() > 32 => {
                    format!("'{}…'", t.chars().take(32).collect::<String>())
                }
                Value::Text(t) => format!("'{t}'"),
                Value::Blob(b) => format!("<blob {} bytes>", b.len()),
            })
            .collect();
        let more = if params.len() > 8 { ", …" } else { "" };
        let _ = write!(s, " with {} param(s) [{}{more}]", params.len(), shown.join(", "));
    }
    s
}

/// A failed `exec-many`: the run that failed (none when the statement was
/// refused before any run) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchError {
    pub run: Option<u32>,
    pub error: SqlError,
}

/// The error of any call, so the common path can record it.
trait Failure {
    fn sql_error(&self) -> &SqlError;
}

impl Failure for SqlError {
    fn sql_error(&self) -> &SqlError {
        self
    }
}

impl Failure for BatchError {
    fn sql_error(&self) -> &SqlError {
        &self.error
    }
}

impl From<SqlError> for BatchError {
    fn from(error: SqlError) -> Self {
        BatchError { run: None, error }
    }
}

impl CallCtx<'_> {
    /// Prepares `sql` (through the gate) and hands the statement to `f`.
    fn with_statement<T, E: From<SqlError>>(
        &self,
        sql: &str,
        f: impl FnOnce(&mut Statement<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        if sql.len() > self.limits.max_sql_bytes {
            return Err(limit(format!(
                "SQL text is {} bytes; the limit is {}",
                sql.len(),
                self.limits.max_sql_bytes
            ))
            .into());
        }
        if *self.checked_sql.borrow() != sql {
            // rusqlite's own multiple-statement check recurses once per
            // statement; refuse a second statement here, in constant stack.
            if let Some(at) = crate::sql::split::second_statement(sql) {
                return Err(invalid(format!(
                    "more than one statement (the second starts at byte {at}); each call runs exactly one"
                ))
                .into());
            }
            // One JSON call with many paths is work SQLite cannot interrupt.
            if let Err(reason) = crate::sql::json_paths::check(sql) {
                return Err(SqlError {
                    kind: ErrorKind::Denied,
                    code: ffi_auth_code(),
                    message: format!("denied by wasmig policy: {reason}"),
                }
                .into());
            }
            // A script runs each statement once: remembering it would only
            // cost a copy.
            if self.cache_statements {
                let mut checked = self.checked_sql.borrow_mut();
                checked.clear();
                checked.push_str(sql);
            }
        }
        // A guest calling in a loop reuses its statements; a script runs
        // each once, and caching them would only cost a copy of the text.
        let (mut cached, mut once) = (None, None);
        let prepared = if self.cache_statements {
            let slot = &mut cached;
            self.conn.prepare_cached(sql).map(move |s| &mut **slot.insert(s))
        } else {
            let slot = &mut once;
            self.conn.prepare(sql).map(move |s| slot.insert(s))
        };
        let stmt = match prepared {
            Ok(s) => s,
            Err(rusqlite::Error::SqliteFailure(f, m)) if f.code == ErrorCode::ApiMisuse && m.is_none() => {
                return Err(invalid("empty SQL statement").into());
            }
            Err(e) => return Err(self.sqlite_error(e).into()),
        };
        f(stmt)
    }

    /// Checks that the statement takes exactly `given` parameters.
    fn expect_params(&self, stmt: &Statement<'_>, given: usize) -> Result<(), SqlError> {
        let expected = stmt.parameter_count();
        if expected != given {
            return Err(invalid(format!("statement has {expected} parameter(s) but {given} were given")));
        }
        Ok(())
    }

    /// Binds `params` to `?1`, `?2`, ... (the count was checked).
    fn bind(&self, stmt: &mut Statement<'_>, params: &[Value]) -> Result<(), SqlError> {
        for (i, p) in params.iter().enumerate() {
            let bound = match p {
                Value::Null => stmt.raw_bind_parameter(i + 1, rusqlite::types::Null),
                Value::Integer(v) => stmt.raw_bind_parameter(i + 1, v),
                Value::Real(v) => stmt.raw_bind_parameter(i + 1, v),
                Value::Text(v) => stmt.raw_bind_parameter(i + 1, v.as_str()),
                Value::Blob(v) => stmt.raw_bind_parameter(i + 1, v.as_slice()),
            };
            bound.map_err(|e| self.sqlite_error(e))?;
        }
        Ok(())
    }

    /// Steps the bound statement to the end, discarding rows, and resets it.
    fn run(&self, stmt: &mut Statement<'_>) -> Result<(), SqlError> {
        let mut rows = stmt.raw_query();
        loop {
            match rows.next() {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.sqlite_error(e)),
            }
        }
    }
}

impl HostState {
    /// Common path for every call: refuse after poisoning, run `body`,
    /// record a failure (described by `describe`), then make sure the
    /// transaction is still open.
    fn call<T, E: Failure>(
        &mut self,
        describe: impl Fn(Option<&E>) -> String,
        body: impl FnOnce(&CallCtx<'_>) -> Result<T, E>,
    ) -> Result<Result<T, E>, Fault> {
        if let Some(p) = &self.poisoned {
            return Err(Fault(p.clone()));
        }
        self.stats.calls += 1;
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(call = %describe(None), "host call");
        }
        if let Ok(mut d) = self.denials.lock() {
            *d = None;
        }
        let ctx = CallCtx {
            conn: &self.conn,
            limits: self.limits,
            denials: &self.denials,
            budget: &self.budget,
            cache_statements: self.cache_statements,
            checked_sql: &self.checked_sql,
        };
        let result = body(&ctx);
        if let Err(e) = &result {
            let err = e.sql_error();
            if err.kind == ErrorKind::Denied && self.stats.first_denial.is_none() {
                self.stats.first_denial = Some(err.message.clone());
            }
            self.stats.last_failure = Some(format!(
                "{} -> {:?} error (code {}): {}",
                describe(Some(e)),
                err.kind,
                err.code,
                err.message
            ));
        }
        if self.conn.is_autocommit() {
            // SQLite ends the transaction on its own after some errors
            // (interrupt, disk full, I/O). Anything run after that would
            // autocommit statement by statement, so stop the guest here.
            let why = match &result {
                Err(e) => {
                    format!("SQLite rolled back the migration's transaction after: {}", e.sql_error().message)
                }
                Ok(_) => "the migration's transaction ended unexpectedly".to_owned(),
            };
            self.poisoned = Some(why.clone());
            return Err(Fault(why));
        }
        Ok(result)
    }

    /// `exec` and `query`: one statement with `params` bound, then `body`.
    fn one_statement<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        body: impl FnOnce(&mut Statement<'_>, &CallCtx<'_>) -> Result<T, SqlError>,
    ) -> CallResult<T> {
        self.call(
            |_| summarize(sql, params),
            |ctx| {
                if params.len() > ctx.limits.max_params {
                    return Err(too_many_params(params.len(), ctx.limits.max_params));
                }
                ctx.with_statement(sql, |stmt| {
                    ctx.expect_params(stmt, params.len())?;
                    ctx.bind(stmt, params)?;
                    body(stmt, ctx)
                })
            },
        )
    }

    /// `exec`: one statement; returns rows changed.
    pub(crate) fn exec_sql(&mut self, sql: &str, params: Vec<Value>) -> CallResult<u64> {
        let r = self.one_statement(sql, &params, |stmt, ctx| {
            // total_changes moves only for rows this statement (and its
            // triggers) wrote; changes() would repeat the last DML's count
            // after DDL.
            let before = ctx.conn.total_changes();
            ctx.run(stmt)?;
            Ok(ctx.conn.total_changes() - before)
        });
        if let Ok(Ok(n)) = &r {
            self.stats.rows_changed += n;
        }
        r
    }

    /// `exec-many`: one statement run `runs` times, each with the next
    /// parameter-count values of `params`; returns rows changed in total.
    pub(crate) fn exec_many_sql(
        &mut self,
        sql: &str,
        runs: u32,
        params: Vec<Value>,
    ) -> Result<Result<u64, BatchError>, Fault> {
        // Read only once a run failed, so the length check has passed.
        let width = if runs == 0 { 0 } else { params.len() / runs as usize };
        let before = self.conn.total_changes();
        let r = self.call(
            |e: Option<&BatchError>| match e.and_then(|e| e.run) {
                Some(i) => {
                    let at = i as usize * width;
                    format!(
                        "{} (run {i} of {runs}, counting from 0)",
                        summarize(sql, &params[at..at + width])
                    )
                }
                None => format!("{} run {runs} time(s) with {} value(s)", summarize(sql, &[]), params.len()),
            },
            |ctx| {
                ctx.with_statement(sql, |stmt| {
                    let n = stmt.parameter_count();
                    if n > ctx.limits.max_params {
                        return Err(too_many_params(n, ctx.limits.max_params).into());
                    }
                    let wanted = (runs as usize).checked_mul(n);
                    if wanted != Some(params.len()) {
                        return Err(invalid(format!(
                            "statement has {n} parameter(s), so {runs} run(s) take {} value(s), but {} were \
                             given",
                            runs as u64 * n as u64,
                            params.len()
                        ))
                        .into());
                    }
                    for run in 0..runs {
                        let at = run as usize * n;
                        let failed = |error| BatchError { run: Some(run), error };
                        ctx.bind(stmt, &params[at..at + n]).map_err(failed)?;
                        ctx.run(stmt).map_err(failed)?;
                    }
                    Ok(ctx.conn.total_changes() - before)
                })
            },
        );
        // Runs before a failing one stay in the transaction, so their rows
        // count even when the call fails (as a loop of `exec` would).
        self.stats.rows_changed += self.conn.total_changes() - before;
        r
    }

    /// `query`: one statement; returns all rows, within the result limits.
    pub(crate) fn query_sql(&mut self, sql: &str, params: Vec<Value>) -> CallResult<QueryRows> {
        self.one_statement(sql, &params, query_rows)
    }

    /// `add-column-if-missing`: quoted identifiers, single-definition `decl`.
    pub(crate) fn add_column(&mut self, table: &str, column: &str, decl: &str) -> CallResult<bool> {
        for (what, v) in [("table", table), ("column", column)] {
            if v.is_empty() || v.contains('\0') {
                let err = invalid(format!("{what} name must be non-empty and contain no NUL"));
                self.stats.last_failure =
                    Some(format!("add-column-if-missing({table:?}, {column:?}): {}", err.message));
                return Ok(Err(err));
            }
        }
        let existing =
            self.query_sql("SELECT name FROM pragma_table_xinfo(?1)", vec![Value::Text(table.to_owned())])?;
        let existing = match existing {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(e)),
        };
        if existing.values.is_empty() {
            let err =
                SqlError { kind: ErrorKind::Sqlite, code: 1, message: format!("no such table: {table}") };
            self.stats.last_failure =
                Some(format!("add-column-if-missing({table:?}, {column:?}): {}", err.message));
            return Ok(Err(err));
        }
        let present = existing
            .values
            .iter()
            .any(|row| matches!(row.first(), Some(Value::Text(name)) if name.eq_ignore_ascii_case(column)));
        if present {
            return Ok(Ok(false));
        }
        let sql = format!("ALTER TABLE {} ADD COLUMN {} {decl}", quote_ident(table), quote_ident(column));
        Ok(self.exec_sql(&sql, Vec::new())?.map(|_| true))
    }
}

/// Reads every row of a bound `query` statement, within the result limits.
fn query_rows(stmt: &mut Statement<'_>, ctx: &CallCtx<'_>) -> Result<QueryRows, SqlError> {
    let limits = &ctx.limits;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let n = columns.len();
    let mut values = Vec::new();
    let mut bytes = 0usize;
    let mut rows = stmt.raw_query();
    loop {
        let row = match rows.next() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Err(ctx.sqlite_error(e)),
        };
        if values.len() == limits.max_result_rows {
            return Err(limit(format!(
                "query returned more than {} rows (result row limit)",
                limits.max_result_rows
            )));
        }
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let value = row.get_ref(i).map_err(|e| invalid(e.to_string()))?;
            // Count a value while SQLite still holds it, and stop before
            // copying it: a wide row of large values must not be copied
            // whole into the host just to learn that it is too big.
            bytes += match value {
                ValueRef::Text(t) | ValueRef::Blob(t) => t.len(),
                _ => 8,
            };
            if bytes > limits.max_result_bytes {
                return Err(limit(format!(
                    "query result exceeds {} bytes (result size limit)",
                    limits.max_result_bytes
                )));
            }
            out.push(match value {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Integer(v),
                ValueRef::Real(v) => Value::Real(v),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        values.push(out);
    }
    Ok(QueryRows { columns, values })
}

/// Maps a rusqlite error to what the guest sees, reading why the gate
/// denied or the budget interrupted from the shared slots.
fn map_sqlite_error(e: rusqlite::Error, denials: &Denials, budget: &SqliteBudget) -> SqlError {
    let (f, message) = match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let message = msg.unwrap_or_else(|| f.to_string());
            (f, message)
        }
        // Prepare-time errors (syntax) carry the offending offset.
        rusqlite::Error::SqlInputError { error, msg, offset, .. } if offset >= 0 => {
            (error, format!("{msg} (at byte {offset})"))
        }
        rusqlite::Error::SqlInputError { error, msg, .. } => (error, msg),
        rusqlite::Error::MultipleStatement => {
            return invalid("more than one statement; each call runs exactly one");
        }
        other => return invalid(other.to_string()),
    };
    // The gate records every refusal; SQLite reports most as SQLITE_AUTH
    // but a denied function as plain SQLITE_ERROR.
    if let Some(reason) = denials.lock().ok().and_then(|mut d| d.take()) {
        return SqlError {
            kind: ErrorKind::Denied,
            code: ffi_auth_code(),
            message: format!("denied by wasmig policy: {reason}"),
        };
    }
    if f.code == ErrorCode::OperationInterrupted
        && let Some(reason) = budget.hit.lock().ok().and_then(|h| h.clone())
    {
        return SqlError { kind: ErrorKind::Limit, code: f.extended_code, message: reason };
    }
    if f.code == ErrorCode::OutOfMemory {
        // While a guest runs, SQLite's heap is bounded (`sqlite_heap`).
        return SqlError {
            kind: ErrorKind::Limit,
            code: f.extended_code,
            message: format!("SQLite heap limit reached (max_sqlite_heap_bytes): {message}"),
        };
    }
    SqlError { kind: ErrorKind::Sqlite, code: f.extended_code, message }
}

/// SQLITE_AUTH, the code every policy refusal carries to the guest.
fn ffi_auth_code() -> i32 {
    rusqlite::ffi::SQLITE_AUTH
}

impl SqliteBudget {
    /// Called by SQLite's progress handler every period; true interrupts.
    pub(crate) fn tick(&self, ops_per_period: u64, total_ops: u64) -> bool {
        let left = self.periods_left.load(Ordering::Relaxed);
        if left == 0 {
            self.set_hit(format!(
                "SQLite work budget of {total_ops} virtual-machine steps exhausted (sqlite_ops limit; \
                 {ops_per_period} steps per check)"
            ));
            return true;
        }
        self.periods_left.store(left - 1, Ordering::Relaxed);
        if Instant::now() >= self.deadline {
            self.set_hit("wall-clock deadline exceeded while inside SQLite (deadline limit)".to_owned());
            return true;
        }
        false
    }

    /// Records why SQLite work was stopped (the first reason wins), so
    /// `map_sqlite_error` reports the interrupt as that limit.
    pub(crate) fn set_hit(&self, reason: String) {
        if let Ok(mut h) = self.hit.lock() {
            h.get_or_insert(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host state on an in-memory database inside a transaction.
    fn state(limits: CallLimits) -> HostState {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, label TEXT UNIQUE); BEGIN IMMEDIATE")
            .unwrap();
        HostState {
            conn,
            store_limits: crate::sandbox::limiter::GuestLimiter::new(usize::MAX, usize::MAX, 100),
            limits,
            denials: Denials::default(),
            budget: Arc::new(SqliteBudget {
                periods_left: AtomicU64::new(u64::MAX),
                deadline: Instant::now() + std::time::Duration::from_secs(60),
                hit: Mutex::new(None),
            }),
            stats: CallStats::default(),
            poisoned: None,
            cache_statements: true,
            checked_sql: RefCell::default(),
        }
    }

    fn rows(s: &HostState) -> Vec<(i64, Option<String>)> {
        let mut stmt = s.conn.prepare("SELECT id, label FROM t ORDER BY id").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    }

    fn pairs(range: std::ops::Range<i64>) -> Vec<Value> {
        range.flat_map(|i| [Value::Integer(i), Value::Text(format!("row {i}"))]).collect()
    }

    const INSERT: &str = "INSERT INTO t (id, label) VALUES (?1, ?2)";

    #[test]
    fn text_checks_still_refuse_after_a_statement_was_remembered() {
        let mut s = state(CallLimits::default());
        let fine = "UPDATE t SET label = 'x' WHERE id = -1";
        let two = "UPDATE t SET label = 'x' WHERE id = -1; DELETE FROM t";
        let paths = "SELECT json_extract('{}', '$.a', '$.b', '$.c', '$.d', '$.e')";
        for _ in 0..2 {
            assert_eq!(s.exec_sql(fine, vec![]).unwrap(), Ok(0));
            let e = s.exec_sql(two, vec![]).unwrap().unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
            assert!(e.message.contains("more than one statement"), "{e:?}");
            let e = s.exec_sql(paths, vec![]).unwrap().unwrap_err();
            assert_eq!(e.kind, ErrorKind::Denied, "{e:?}");
            // Refused twice in a row: a refused text is never remembered.
            assert_eq!(s.exec_sql(paths, vec![]).unwrap().unwrap_err(), e);
        }
        assert_eq!(s.checked_sql.borrow().as_str(), fine);
    }

    #[test]
    fn exec_many_equals_exec_once_per_run() {
        let mut many = state(CallLimits::default());
        let n = many.exec_many_sql(INSERT, 50, pairs(0..50)).unwrap().unwrap();
        let mut single = state(CallLimits::default());
        for chunk in pairs(0..50).chunks(2) {
            single.exec_sql(INSERT, chunk.to_vec()).unwrap().unwrap();
        }
        assert_eq!(n, 50);
        assert_eq!(rows(&many), rows(&single));
        assert_eq!((many.stats.calls, many.stats.rows_changed), (1, 50));
        // A statement without parameters runs `runs` times with none.
        let n =
            many.exec_many_sql("UPDATE t SET label = label || '!' WHERE id < 3", 2, vec![]).unwrap().unwrap();
        assert_eq!(n, 6);
        assert_eq!(rows(&many)[0].1.as_deref(), Some("row 0!!"));
    }

    #[test]
    fn exec_many_stops_at_the_failing_run_and_names_it() {
        let mut s = state(CallLimits::default());
        let mut params = pairs(0..5);
        params[7] = Value::Text("row 1".into()); // run 3 repeats run 1's label
        let e = s.exec_many_sql(INSERT, 5, params).unwrap().unwrap_err();
        assert_eq!(e.run, Some(3));
        assert_eq!((e.error.kind, e.error.code), (ErrorKind::Sqlite, 2067), "{e:?}"); // CONSTRAINT_UNIQUE
        assert_eq!(rows(&s).len(), 3, "runs before the failure stay, as with exec in a loop");
        assert_eq!(s.stats.rows_changed, 3, "and their rows count");
        let failure = s.stats.last_failure.clone().unwrap();
        assert!(
            failure.contains("(run 3 of 5, counting from 0)") && failure.contains("[3, 'row 1']"),
            "{failure}"
        );
        assert!(!s.conn.is_autocommit(), "the transaction is still open");
    }

    #[test]
    fn exec_many_refuses_a_bad_statement_or_shape_before_any_run() {
        let mut s = state(CallLimits { max_params: 1, ..CallLimits::default() });
        let e = s.exec_many_sql("INSERT INTO nowhere VALUES (?1)", 0, vec![]).unwrap().unwrap_err();
        assert_eq!((e.run, e.error.kind), (None, ErrorKind::Sqlite));
        assert!(e.error.message.contains("no such table"), "{e:?}");
        let e = s
            .exec_many_sql("INSERT INTO t (id) VALUES (?1)", 2, vec![Value::Integer(1)])
            .unwrap()
            .unwrap_err();
        assert_eq!((e.run, e.error.kind), (None, ErrorKind::Invalid));
        assert!(e.error.message.contains("2 run(s) take 2 value(s), but 1 were given"), "{e:?}");
        let e = s.exec_many_sql(INSERT, 1, pairs(0..1)).unwrap().unwrap_err();
        assert_eq!((e.run, e.error.kind), (None, ErrorKind::Limit), "2 parameters exceed max_params 1");
        let e = s
            .exec_many_sql("INSERT INTO t (id) VALUES (?1)", 0, vec![Value::Integer(1)])
            .unwrap()
            .unwrap_err();
        assert_eq!((e.run, e.error.kind), (None, ErrorKind::Invalid), "zero runs take zero values");
        assert_eq!(s.exec_many_sql("INSERT INTO t (id) VALUES (?1)", 0, vec![]).unwrap(), Ok(0));
        assert!(rows(&s).is_empty());
    }
}
