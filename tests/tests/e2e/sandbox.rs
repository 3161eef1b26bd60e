//! The faulty-migration corpus: every sandbox limit and SQL-gate rule, each
//! run against a real database file. For each: the host survives, the error
//! names the cause, the file is byte-for-byte unchanged (and schema + rows
//! compare equal), the ledger is unchanged, and a good migration still
//! applies afterwards on the same connection. Every case that stops guest
//! code (fuel, deadline, memory, stack, panic) runs under both compilers and
//! must fail the same way under each.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use tempfile::TempDir;
use wasmig::{Compiler, Limits, Manifest, testing};
use wasmig_test_support::*;

/// Runs corpus example `name` under `limits` against a file database that
/// already holds an applied migration; returns the error text.
fn run_faulty(name: &str, limits: Limits) -> String {
    run_faulty_with(name, limits, |_| {}).to_string()
}

fn run_faulty_with(name: &str, limits: Limits, setup: impl FnOnce(&Connection)) -> wasmig::Error {
    let tmp = TempDir::new().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = Connection::open(&db).unwrap();
    setup(&conn);
    testing::assert_applies(&guest_bytes("example-baseline"), &mut conn);
    let bytes_before = std::fs::read(&db).unwrap();
    let ledger_before = ledger_ids(&db);
    // Compares schema and every row, and panics if anything changed.
    let err = testing::assert_fails_unchanged_with(&corpus_bytes(name), &mut conn, limits);
    assert_eq!(std::fs::read(&db).unwrap(), bytes_before, "{name}: file bytes changed");
    assert_eq!(ledger_ids(&db), ledger_before, "{name}: ledger changed");
    assert!(err.is_migration_failure(), "{name}: {err:?}");
    // The host and the connection are fine: the next good migration applies.
    testing::assert_applies(&guest_bytes("example-add-index"), &mut conn);
    assert!(!Path::new("vacuumed-by-guest.db").exists());
    err
}

/// Runs `case` under `limits` once with each compiler and checks that both
/// failed the same way: the same kind of failure (trap or guest error) and
/// the same first line, which names the migration, the limit and its value.
/// Returns the texts, Cranelift's first.
pub(crate) fn same_under_each_compiler(
    limits: Limits,
    mut case: impl FnMut(Limits) -> wasmig::Error,
) -> [String; 2] {
    let [cranelift, winch] = Compiler::ALL.map(|compiler| case(Limits { compiler, ..limits }));
    let kind = |e: &wasmig::Error| match e {
        wasmig::Error::Trap { .. } => "trap",
        wasmig::Error::GuestFailed { .. } => "guest error",
        _ => "other",
    };
    let (c, w) = (cranelift.to_string(), winch.to_string());
    assert_eq!(kind(&cranelift), kind(&winch), "Cranelift:\n{c}\nWinch:\n{w}");
    assert_eq!(c.lines().next(), w.lines().next(), "the compilers fail differently");
    [c, w]
}

/// [`run_faulty`] under each compiler ([`same_under_each_compiler`]); both
/// texts must hold every one of `needles`.
fn run_faulty_each(name: &str, limits: Limits, needles: &[&str]) {
    for t in same_under_each_compiler(limits, |l| run_faulty_with(name, l, |_| {})) {
        expect(&t, needles);
    }
}

fn expect(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "expected {n:?} in:\n{text}");
    }
}

#[test]
fn endless_loop_hits_the_fuel_limit() {
    run_faulty_each(
        "fuel_loop",
        Limits { fuel: 20_000_000, ..Limits::default() },
        &["fuel limit exhausted (20000000 units)", "fuel_loop"],
    );
}

#[test]
fn endless_loop_hits_the_deadline() {
    // The epoch check in the guest's loop, not fuel, stops it.
    run_faulty_each(
        "fuel_loop",
        Limits { fuel: u64::MAX / 4, deadline: Duration::from_millis(300), ..Limits::default() },
        &["deadline limit exceeded (300ms wall-clock)", "fuel_loop"],
    );
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    run_faulty_each(
        "memory_bomb",
        Limits { max_memory_bytes: 32 << 20, ..Limits::default() },
        &["memory limit exceeded (32 MiB)"],
    );
}

#[test]
fn recursion_bomb_traps_cleanly() {
    run_faulty_each("stack_bomb", Limits::default(), &["stack limit exceeded (512 KiB"]);
}

#[test]
fn runaway_cte_hits_the_sqlite_work_budget() {
    let t = run_faulty("runaway_cte", Limits { sqlite_ops: 5_000_000, ..Limits::default() });
    expect(&t, &["SQLite work budget of 5000000", "WITH RECURSIVE"]);
}

#[test]
fn runaway_cte_hits_the_deadline_inside_sqlite() {
    let t = run_faulty("runaway_cte", Limits { deadline: Duration::from_millis(300), ..Limits::default() });
    expect(&t, &["deadline exceeded while inside SQLite"]);
}

#[test]
fn ignoring_an_interrupt_cannot_break_atomicity() {
    // SQLite rolls the transaction back when it interrupts an INSERT; the
    // guest ignores that and keeps writing. Those writes would autocommit,
    // so the host must stop the guest instead.
    let t = run_faulty("interrupt_then_continue", Limits { sqlite_ops: 2_000_000, ..Limits::default() });
    expect(&t, &["SQLite rolled back the migration's transaction"]);
}

#[test]
fn oversized_query_result_is_refused() {
    let mut limits = Limits::default();
    limits.calls.max_result_rows = 1000;
    let t = run_faulty("huge_result", limits);
    expect(&t, &["more than 1000 rows (result row limit)"]);
}

#[test]
fn oversized_sql_text_is_refused() {
    let t = run_faulty("huge_sql", Limits::default());
    expect(&t, &["SQL text is", "the limit is 1000000"]);
}

#[test]
fn too_many_parameters_are_refused() {
    let t = run_faulty("many_params", Limits::default());
    expect(&t, &["5000 parameters; the limit is 999"]);
}

#[test]
fn a_failing_batch_run_is_named_and_every_run_rolled_back() {
    // Run 1499 repeats an id; the batch sent runs 0..1024 in an earlier call.
    let t = run_faulty("batch_conflict", Limits::default());
    expect(
        &t,
        &[
            "run 1499 of a batch (counting from 0)",
            "UNIQUE constraint failed: batch_scratch.id",
            "(run 475 of 976, counting from 0)",
        ],
    );
}

#[test]
fn gate_refuses_every_escape_route() {
    let cases: &[(&str, &[&str])] = &[
        ("gate_pragma_assign", &["denied by wasmig policy: PRAGMA foreign_keys = OFF"]),
        ("gate_pragma_writable_schema", &["denied by wasmig policy: PRAGMA writable_schema"]),
        ("gate_pragma_unlisted", &["denied by wasmig policy: PRAGMA database_list"]),
        ("gate_savepoint", &["denied by wasmig policy: SAVEPOINT"]),
        ("gate_rollback", &["denied by wasmig policy: ROLLBACK"]),
        ("gate_begin", &["denied by wasmig policy: BEGIN"]),
        ("gate_detach", &["denied by wasmig policy: DETACH"]),
        ("gate_virtual_table", &["denied by wasmig policy: CREATE VIRTUAL TABLE docs"]),
        (
            "gate_load_extension",
            &[
                "denied by wasmig policy: function load_extension() (not on the SQL function allowlist: loads native",
            ],
        ),
        ("gate_vacuum_into", &["VACUUM"]),
        ("gate_ledger_insert", &["denied by wasmig policy: INSERT INTO schema_migrations"]),
        ("gate_ledger_delete", &["denied by wasmig policy: DELETE FROM schema_migrations"]),
        ("gate_schema_write", &["may not be modified"]),
        ("gate_temp_trigger", &["denied by wasmig policy: CREATE TEMP TRIGGER spy"]),
        ("gate_temp_table", &["denied by wasmig policy: CREATE TEMP TABLE shadow"]),
        ("gate_ignored", &["denied by wasmig policy: ATTACH", "the guest ignored the refusal"]),
        ("batch_ignored", &["denied by wasmig policy: ATTACH", "the guest ignored the refusal"]),
    ];
    for (name, needles) in cases {
        let t = run_faulty(name, Limits::default());
        expect(&t, needles);
    }
}

#[test]
fn gate_refuses_unsafe_sql_functions_naming_them() {
    // The pointer-taking tokenizer function, in all three forms. The guest
    // reports what each attempt got; none may have run.
    let t = run_faulty("gate_fts3_tokenizer", Limits::default());
    let refusal = "denied by wasmig policy: function fts3_tokenizer() (not on the SQL function allowlist: \
                   with a bound blob argument it accepts a raw host memory address";
    // The first line is the guest's report (the host adds the last failed
    // statement below it).
    let report = t.lines().next().unwrap();
    assert_eq!(report.matches(refusal).count(), 3, "every form refused:\n{t}");
    assert!(!t.contains("ALLOWED"), "{t}");
    expect(
        &t,
        &[
            "[in: SELECT fts3_tokenizer('simple', ?1)]",
            "[in: SELECT fts3_tokenizer('simple', x'4141414141414141')]",
            "[in: SELECT fts3_tokenizer('simple')]",
        ],
    );
    let t = run_faulty("gate_denied_function", Limits::default());
    expect(
        &t,
        &[
            "denied by wasmig policy: function rtreenode() (not on the SQL function allowlist: R-Tree debugging",
        ],
    );
    // Hidden in a trigger: denied when the INSERT compiles the trigger body.
    let t = run_faulty("gate_denied_function_in_trigger", Limits::default());
    expect(
        &t,
        &[
            "denied by wasmig policy: function sqlite_compileoption_get() (not on the SQL function allowlist",
            "[in: INSERT INTO build_info",
        ],
    );
}

#[test]
fn gate_refuses_hand_written_query_planner_statistics() {
    // ANALYZE ran first inside the migration and created sqlite_stat1; the
    // forged row is refused and the rollback removes the table again
    // (run_faulty compares the file's bytes).
    let t = run_faulty("gate_stat1_write", Limits::default());
    expect(
        &t,
        &[
            "denied by wasmig policy: UPDATE sqlite_stat1 (query-planner statistics are written by ANALYZE only)",
            "[in: UPDATE sqlite_stat1",
        ],
    );
}

#[test]
fn triggers_cannot_call_application_functions_with_side_effects() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let t = run_faulty_with("trigger_side_effect", Limits::default(), move |conn| {
        // An ordinary application function: not marked innocuous.
        conn.create_scalar_function("app_side_effect", 1, FunctionFlags::SQLITE_UTF8, move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(1)
        })
        .unwrap();
    })
    .to_string();
    // Application functions are not on the gate's allowlist: compiling the
    // trigger body for the guest's INSERT is denied before it can run.
    expect(&t, &["denied by wasmig policy: function app_side_effect() (not on the SQL function allowlist)"]);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the function never ran");
}

#[test]
fn guest_panic_shows_a_backtrace_with_function_names() {
    let texts = same_under_each_compiler(Limits::default(), |limits| {
        let tmp = TempDir::new().unwrap();
        let mut conn = Connection::open(tmp.path().join("a.db")).unwrap();
        testing::assert_fails_unchanged_with(&guest_bytes("faulty-panic"), &mut conn, limits)
    });
    for err in texts {
        expect(&err, &["guest panicked", "wasm backtrace", "faulty_panic::explode", "up"]);
    }
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

#[test]
fn components_importing_anything_else_are_refused_listing_the_imports() {
    let tmp = TempDir::new().unwrap();
    let mut conn = Connection::open(tmp.path().join("a.db")).unwrap();
    let wasi = wat(r#"(component
        (import "wasi:cli/environment@0.2.0" (instance))
        (import "wasi:filesystem/types@0.2.0" (instance)))"#);
    let err = testing::run_component(&wasi, &mut conn).unwrap_err().to_string();
    expect(
        &err,
        &[
            "imports wasi:cli/environment@0.2.0, wasi:filesystem/types@0.2.0",
            "a migration targeting wasmig:migration/migration@0.1.0 may import only wasmig:migration/sql@0.1.0",
        ],
    );
}

#[test]
fn a_manifest_world_that_disagrees_with_the_imports_is_refused() {
    let tmp = TempDir::new().unwrap();
    // example-baseline imports sql@0.2.0; relabel its manifest (the last
    // section) as world 0.1.0, which may import only sql@0.1.0.
    let packed =
        wasmig::with_manifest(&guest_bytes("example-baseline"), &Manifest::new(1, "baseline")).unwrap();
    let (from, to) = (b"migration/migration@0.2.0", b"migration/migration@0.1.0");
    let at = packed.windows(from.len()).rposition(|w| w == from).unwrap();
    let mut relabelled = packed.clone();
    relabelled[at..at + from.len()].copy_from_slice(to);
    assert_eq!(wasmig::read_manifest(&relabelled).unwrap().world, "wasmig:migration/migration@0.1.0");
    std::fs::write(tmp.path().join("0001_baseline.wasm"), relabelled).unwrap();
    let options = wasmig::Options {
        trust: wasmig::TrustPolicy { allow_unsigned: true, ..wasmig::TrustPolicy::default() },
        ..wasmig::Options::default()
    };
    let db = tmp.path().join("a.db");
    let mut conn = Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);").unwrap();
    let before = std::fs::read(&db).unwrap();
    let err = wasmig::Migrator::from_dir_with(tmp.path(), options).unwrap().apply(&mut conn).unwrap_err();
    drop(conn);
    assert_eq!(std::fs::read(&db).unwrap(), before, "the refused file changed nothing");
    assert!(matches!(err, wasmig::Error::InvalidComponent { .. }), "{err:?}");
    expect(
        &err.to_string(),
        &[
            "imports wasmig:migration/sql@0.2.0",
            "a migration targeting wasmig:migration/migration@0.1.0 may import only wasmig:migration/sql@0.1.0",
        ],
    );
    assert!(!has_table(&db, "images"), "nothing ran");
}

#[test]
fn components_of_another_world_are_refused() {
    let tmp = TempDir::new().unwrap();
    let mut conn = Connection::open(tmp.path().join("a.db")).unwrap();
    let no_up = wat("(component)");
    let err = testing::run_component(&no_up, &mut conn).unwrap_err();
    assert!(matches!(err, wasmig::Error::InvalidComponent { .. }), "{err:?}");
    expect(&err.to_string(), &["up"]);
    let wrong_type = wat(r#"(component
        (core module $m (func (export "f")))
        (core instance $i (instantiate $m))
        (func $up (canon lift (core func $i "f")))
        (export "up" (func $up)))"#);
    let err = testing::run_component(&wrong_type, &mut conn).unwrap_err();
    assert!(matches!(err, wasmig::Error::InvalidComponent { .. }), "{err:?}");
}

#[test]
fn many_sandboxes_fit_in_memory_at_once() {
    // The per-memory reservation is bounded by the memory limit, so dozens of
    // concurrent migrations do not exhaust virtual address space.
    let handles: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(|| {
                let mut conn = Connection::open_in_memory().unwrap();
                testing::assert_applies(&guest_bytes("example-baseline"), &mut conn);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// A component with two core instances, each with a 20 MiB memory (320
/// pages), whose `up` returns `Ok`.
const TWO_MEMORIES: &str = r#"(component
    (core module $a (memory (export "memory") 320))
    (core module $b
        (memory (export "memory") 320)
        (func (export "up") (result i32) i32.const 16))
    (core instance $ia (instantiate $a))
    (core instance $ib (instantiate $b))
    (type $outcome (result (error string)))
    (func $up (result $outcome) (canon lift (core func $ib "up") (memory (core memory $ib "memory"))))
    (export "up" (func $up)))"#;

#[test]
fn the_memory_limit_counts_every_memory_together() {
    let component = wat(TWO_MEMORIES);
    let tmp = TempDir::new().unwrap();
    let mut conn = Connection::open(tmp.path().join("a.db")).unwrap();
    // Each memory alone fits in 32 MiB; both together do not.
    let tight = Limits { max_memory_bytes: 32 << 20, ..Limits::default() };
    let texts = same_under_each_compiler(tight, |limits| {
        testing::assert_fails_unchanged_with(&component, &mut conn, limits)
    });
    for err in texts {
        expect(&err, &["memory limit exceeded", "across all of the guest's memories"]);
    }
    // With room for both, the same component applies: the limit, not the
    // component, was the problem.
    testing::run_component_with(
        &component,
        &mut conn,
        Limits { max_memory_bytes: 48 << 20, ..Limits::default() },
    )
    .unwrap();
}
