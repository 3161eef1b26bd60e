//! A bound on SQLite's own heap while guests run.
//!
//! The guest's linear memory is bounded by wasmtime, but a guest can also
//! make SQLite allocate: many large values in one row, big aggregates, wide
//! sorts. Without a bound that memory is the host's, and the operating
//! system ends the whole process when it runs out. SQLite's hard heap limit
//! makes such allocations fail with `SQLITE_NOMEM` instead: the statement
//! fails, SQLite may roll the transaction back, and the host reports the
//! limit and rolls back the migration.
//!
//! The limit is process-wide (SQLite has no per-connection heap limit), so
//! while any guest runs it applies to every SQLite connection of the
//! process: the limit is the heap in use when the first guest started plus
//! one budget per guest running now. An application that set its own, lower
//! hard limit keeps it. When the last guest ends, the previous hard and soft
//! limits are restored exactly.
//!
//! This module is one of wasmig's audited uses of `unsafe`: two FFI calls
//! into the bundled SQLite that take and return integers only.

use std::sync::Mutex;

#[derive(Debug)]
struct Shared {
    /// Guests running now.
    active: usize,
    /// Their budgets, summed.
    budgets: i64,
    /// SQLite's heap in use when the first of them started.
    base: i64,
    /// The limits in force before the first of them started.
    saved_hard: i64,
    saved_soft: i64,
}

static SHARED: Mutex<Shared> =
    Mutex::new(Shared { active: 0, budgets: 0, base: 0, saved_hard: 0, saved_soft: 0 });

/// Sets (n >= 0) or reads (n < 0) SQLite's hard heap limit; returns the
/// previous one.
#[allow(unsafe_code)]
fn hard_limit(n: i64) -> i64 {
    // SAFETY: takes and returns an integer; SQLite serialises the change
    // with its own memory mutex, so it is safe from any thread.
    unsafe { rusqlite::ffi::sqlite3_hard_heap_limit64(n) }
}

/// Same for the soft heap limit.
#[allow(unsafe_code)]
fn soft_limit(n: i64) -> i64 {
    // SAFETY: as for `hard_limit`.
    unsafe { rusqlite::ffi::sqlite3_soft_heap_limit64(n) }
}

/// Bytes SQLite has allocated, process-wide.
#[allow(unsafe_code)]
pub(crate) fn in_use() -> i64 {
    // SAFETY: reads a counter under SQLite's memory mutex; no arguments.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

/// Holds the heap bound for one running guest; dropping it releases that
/// guest's share, and the last one restores the application's limits.
#[derive(Debug)]
pub(crate) struct HeapBound {
    budget: i64,
}

impl HeapBound {
    /// Allows SQLite `budget` more bytes for this guest.
    pub(crate) fn enter(budget: u64) -> HeapBound {
        let budget = i64::try_from(budget).unwrap_or(i64::MAX);
        let mut s = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if s.active == 0 {
            s.saved_hard = hard_limit(-1);
            s.saved_soft = soft_limit(-1);
            s.base = in_use();
        }
        s.active += 1;
        s.budgets = s.budgets.saturating_add(budget);
        apply(&s);
        HeapBound { budget }
    }

    /// The hard limit in force now (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn current_limit() -> i64 {
        hard_limit(-1)
    }
}

fn apply(s: &Shared) {
    let ours = s.base.saturating_add(s.budgets).max(1);
    let limit = if s.saved_hard > 0 { ours.min(s.saved_hard) } else { ours };
    hard_limit(limit);
}

impl Drop for HeapBound {
    fn drop(&mut self) {
        let mut s = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        s.active = s.active.saturating_sub(1);
        s.budgets = s.budgets.saturating_sub(self.budget);
        if s.active == 0 {
            // Setting the hard limit also lowers the soft one; put both back.
            hard_limit(s.saved_hard);
            soft_limit(s.saved_soft);
        } else {
            apply(&s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active() -> usize {
        SHARED.lock().unwrap().active
    }

    #[test]
    fn bounds_sqlite_while_held_and_restores_after() {
        {
            let a = HeapBound::enter(8 * 1024 * 1024);
            let limit = HeapBound::current_limit();
            assert!(limit > 0 && limit <= in_use() + a.budget + (1 << 30), "a limit is in force: {limit}");
            // A value far over the budget cannot be allocated now, unless a
            // guest of another test raised the limit meanwhile.
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            let r = conn
                .query_row("SELECT length(zeroblob(64 * 1024 * 1024) || x'00')", [], |r| r.get::<_, i64>(0));
            if active() == 1 {
                let err = r.unwrap_err();
                assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::OutOfMemory), "{err}");
            }
            let b = HeapBound::enter(8 * 1024 * 1024);
            assert!(HeapBound::current_limit() >= limit, "a second guest's budget adds to the first's");
            drop(b);
        }
        // Once no guest runs, no limit is left behind (unit tests set none
        // of their own). Other tests may still be running guests: wait.
        for _ in 0..500 {
            let s = SHARED.lock().unwrap();
            if s.active == 0 {
                assert_eq!((hard_limit(-1), soft_limit(-1)), (0, 0));
                return;
            }
            drop(s);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("guests of other tests still running after 5 s");
    }
}
