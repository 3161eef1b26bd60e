//! Entry points for the fuzz targets in `fuzz/` (not a stable API; only
//! built with the `fuzzing` feature, which `fuzz/Cargo.toml` enables).
//!
//! Drives the host side of `exec`, `query` and `add-column-if-missing`
//! directly, under the SQL gate and inside a host transaction, exactly as a
//! guest's calls would, without compiling a component per input.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use crate::sandbox::gate::{Denials, SqlLimits};
use crate::sandbox::host_sql::{CallLimits, CallStats, HostState, SqliteBudget, Value};
use crate::sandbox::session::{Session, SessionLimits};
pub use crate::sql::split::{check_allowed, is_complete, split};

/// One call a guest could make.
#[derive(Debug, Clone)]
pub enum HostCall {
    /// `exec(sql, params)`.
    Exec(String, Vec<SqlValue>),
    /// `query(sql, params)`.
    Query(String, Vec<SqlValue>),
    /// `add-column-if-missing(table, column, decl)`.
    AddColumn(String, String, String),
    /// `exec-many(sql, runs, params)`.
    ExecMany(String, u32, Vec<SqlValue>),
}

/// What happened to the calls.
#[derive(Debug, Default)]
pub struct HostCallReport {
    /// One line per call: `ok` or the error kind and message.
    pub results: Vec<String>,
    /// Set when a call ended the guest (the transaction was lost).
    pub fault: Option<String>,
    /// True when the host transaction was still open after the last call
    /// (it is rolled back before returning either way).
    pub transaction_held: bool,
}

fn value(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(i),
        SqlValue::Real(r) => Value::Real(r),
        SqlValue::Text(t) => Value::Text(t),
        SqlValue::Blob(b) => Value::Blob(b),
    }
}

/// Runs `calls` against `conn` inside `BEGIN IMMEDIATE` with the gate
/// closed, then rolls back and opens the gate again.
pub fn run_host_calls(mut conn: Connection, calls: Vec<HostCall>) -> (Connection, HostCallReport) {
    let mut report = HostCallReport::default();
    if conn.execute_batch("BEGIN IMMEDIATE").is_err() {
        return (conn, report);
    }
    let denials = Denials::default();
    let budget = Arc::new(SqliteBudget {
        periods_left: AtomicU64::new(100_000),
        deadline: Instant::now() + Duration::from_secs(2),
        hit: Mutex::new(None),
    });
    // The same gate, work budget, heap bound and SQL functions a guest meets.
    let limits = SessionLimits {
        sql: SqlLimits::default(),
        heap_bytes: 256 << 20,
        ops_per_check: 1000,
        total_ops: 100_000_000,
    };
    let Ok(session) = Session::open(&mut conn, limits, &budget, denials.clone()) else {
        let _ = conn.execute_batch("ROLLBACK");
        return (conn, report);
    };
    let mut state = HostState {
        conn,
        store_limits: crate::sandbox::limiter::GuestLimiter::new(usize::MAX, usize::MAX, 100),
        limits: CallLimits { max_result_rows: 10_000, max_result_bytes: 1 << 20, ..CallLimits::default() },
        denials,
        budget,
        stats: CallStats::default(),
        poisoned: None,
        cache_statements: true,
        checked_sql: Default::default(),
    };
    for call in calls {
        let r = match call {
            HostCall::Exec(sql, p) => {
                state.exec_sql(&sql, p.into_iter().map(value).collect()).map(|r| r.map(|_| ()))
            }
            HostCall::Query(sql, p) => {
                state.query_sql(&sql, p.into_iter().map(value).collect()).map(|r| r.map(|_| ()))
            }
            HostCall::AddColumn(t, c, d) => state.add_column(&t, &c, &d).map(|r| r.map(|_| ())),
            HostCall::ExecMany(sql, runs, p) => state
                .exec_many_sql(&sql, runs, p.into_iter().map(value).collect())
                .map(|r| r.map(|_| ()).map_err(|e| e.error)),
        };
        match r {
            Ok(Ok(())) => report.results.push("ok".into()),
            Ok(Err(e)) => report.results.push(format!("{:?}: {}", e.kind, e.message)),
            Err(fault) => {
                report.fault = Some(fault.0);
                break;
            }
        }
    }
    let mut conn = state.conn;
    report.transaction_held = !conn.is_autocommit();
    let _ = session.close(&mut conn);
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    (conn, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_run_gated_and_roll_back() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a)").unwrap();
        let (conn, r) = run_host_calls(
            conn,
            vec![
                HostCall::Exec("INSERT INTO t VALUES (?1)".into(), vec![SqlValue::Integer(1)]),
                HostCall::Exec("COMMIT".into(), vec![]),
                HostCall::AddColumn("t".into(), "b".into(), "TEXT".into()),
                HostCall::Query("SELECT * FROM t".into(), vec![]),
                HostCall::ExecMany("INSERT INTO t (a) VALUES (?1)".into(), 2, vec![2.into(), 3.into()]),
                HostCall::ExecMany("ATTACH ?1 AS x".into(), 1, vec![SqlValue::Text("/tmp/x.db".into())]),
            ],
        );
        assert_eq!(r.results[0], "ok");
        assert!(r.results[1].starts_with("Denied"), "{:?}", r.results);
        assert_eq!(r.results[2], "ok");
        assert_eq!(r.results[4], "ok");
        assert!(r.results[5].starts_with("Denied"), "{:?}", r.results);
        assert!(r.transaction_held && r.fault.is_none());
        let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "rolled back");
        assert!(conn.is_autocommit());
    }
}
