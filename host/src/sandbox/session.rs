//! Everything that bounds a guest's SQL, put on the connection together and
//! taken off together: the SQL gate, SQLite's work budget (progress
//! handler), the bound on SQLite's heap and the deadline-safe built-ins.
//!
//! `Sandbox::run` and the fuzzing harness both go through here, so what is
//! fuzzed is exactly what a guest meets, set up and torn down in one order.

use std::sync::Arc;

use rusqlite::Connection;

use super::gate::{Denials, Gate, SqlLimits};
use super::host_sql::SqliteBudget;
use super::sqlfuncs::SafeFunctions;
use super::sqlite_heap::HeapBound;
use crate::error::{Error, Result};

/// How a session bounds SQLite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLimits {
    /// What the gate enforces on statements.
    pub sql: SqlLimits,
    /// Heap SQLite may allocate on top of what it held at the start.
    pub heap_bytes: u64,
    /// Virtual-machine steps between progress-handler checks.
    pub ops_per_check: u64,
    /// Virtual-machine steps in all (for the message when they run out).
    pub total_ops: u64,
}

/// The guest's SQL environment on one connection; [`Session::close`] puts
/// the host's back.
pub(crate) struct Session {
    gate: Gate,
    heap: HeapBound,
    safe: SafeFunctions,
}

impl Session {
    /// Closes the gate on `conn`, bounds SQLite's work by `budget` and its
    /// heap, and installs the deadline-safe built-ins (after the gate, so
    /// they read the guest's limits). On failure nothing stays installed.
    pub(crate) fn open(
        conn: &mut Connection,
        limits: SessionLimits,
        budget: &Arc<SqliteBudget>,
        denials: Denials,
    ) -> Result<Session> {
        let gate = Gate::install(conn, limits.sql, denials)?;
        // SQLite's own allocations are bounded from here until the gate
        // opens again; the host's ROLLBACK or COMMIT runs without it.
        let heap = HeapBound::enter(limits.heap_bytes);
        {
            let budget = budget.clone();
            let (every, total) = (limits.ops_per_check, limits.total_ops);
            conn.progress_handler(every as i32, Some(move || budget.tick(every, total))).ok();
        }
        match SafeFunctions::install(conn, budget.clone()) {
            Ok(safe) => Ok(Session { gate, heap, safe }),
            Err(e) => {
                conn.progress_handler(0, None::<fn() -> bool>).ok();
                drop(heap);
                let _ = gate.remove(conn);
                Err(Error::sqlite("installing the sandbox's SQL functions")(e))
            }
        }
    }

    /// Takes everything off again, restoring the host's settings.
    pub(crate) fn close(self, conn: &mut Connection) -> Result<()> {
        conn.progress_handler(0, None::<fn() -> bool>).ok();
        drop(self.heap);
        // The functions are unbound after the gate opens: unbinding reads
        // the host's limits and may run a PRAGMA the gate would refuse.
        self.gate.remove(conn)?;
        self.safe.remove(conn).map_err(Error::sqlite("unbinding the sandbox's SQL functions"))
    }
}
