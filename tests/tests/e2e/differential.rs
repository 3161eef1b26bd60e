//! Differential test: random sequences of schema and data operations run
//! (a) by a guest through the host (a `pack-sql` component, compiled and
//! instantiated, so every statement crosses the component boundary and the
//! SQL gate), (b) by the host running the same component as direct SQL (the
//! fast path for recognised `pack-sql` components), and (c) natively
//! through rusqlite on a copy, in one transaction each. They must end
//! identical, schema and rows, and (a) and (b) must report the same error.
//! A failure injected at a random step must leave the database exactly as it
//! was before, on every side.

use proptest::prelude::*;
use rusqlite::Connection;
use wasmig::Snapshot;
use wasmig::{Limits, testing};

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    Insert(u8, i64, String),
    Update(u8, i64),
    Delete(u8, i64),
    AddColumn(u8, u8),
    Index(u8),
    DropTable(u8),
    View(u8),
    Trigger(u8),
}

fn text() -> impl Strategy<Value = String> {
    // Quotes, semicolons, comment markers and non-ASCII, all inside literals.
    proptest::string::string_regex("[a-z ;'\"\\-/*é]{0,12}").unwrap()
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0u8..4;
    prop_oneof![
        t.clone().prop_map(Op::Create),
        (t.clone(), -50i64..50, text()).prop_map(|(a, b, c)| Op::Insert(a, b, c)),
        (t.clone(), -50i64..50).prop_map(|(a, b)| Op::Update(a, b)),
        (t.clone(), -50i64..50).prop_map(|(a, b)| Op::Delete(a, b)),
        (t.clone(), 0u8..3).prop_map(|(a, b)| Op::AddColumn(a, b)),
        t.clone().prop_map(Op::Index),
        t.clone().prop_map(Op::DropTable),
        t.clone().prop_map(Op::View),
        t.prop_map(Op::Trigger),
    ]
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Renders an op as SQL; `IF [NOT] EXISTS` keeps most statements valid in
/// any state, and the ones that can fail must fail the same way on both sides.
fn sql(op: &Op) -> String {
    match op {
        Op::Create(t) => {
            format!("CREATE TABLE IF NOT EXISTS t{t} (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);")
        }
        Op::Insert(t, n, s) => format!(
            "CREATE TABLE IF NOT EXISTS t{t} (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);\n\
             INSERT INTO t{t} (n, s) VALUES ({n}, {});",
            quote(s)
        ),
        Op::Update(t, n) => format!(
            "CREATE TABLE IF NOT EXISTS t{t} (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);\n\
             UPDATE t{t} SET n = n + {n}, s = s || ';' WHERE n < {n};"
        ),
        Op::Delete(t, n) => format!(
            "CREATE TABLE IF NOT EXISTS t{t} (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);\n\
             DELETE FROM t{t} WHERE n > {n};"
        ),
        // Not idempotent: a second ADD COLUMN fails, and then both sides
        // must fail and roll back alike.
        Op::AddColumn(t, c) => format!(
            "CREATE TABLE IF NOT EXISTS t{t} (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);\n\
             ALTER TABLE t{t} ADD COLUMN c{c} TEXT DEFAULT 'x;y';"
        ),
        Op::Index(t) => format!(
            "CREATE TABLE IF NOT EXISTS t{t} (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);\n\
             CREATE INDEX IF NOT EXISTS t{t}_n ON t{t} (n);"
        ),
        Op::DropTable(t) => format!("DROP VIEW IF EXISTS v{t}; DROP TABLE IF EXISTS t{t};"),
        Op::View(t) => format!(
            "CREATE TABLE IF NOT EXISTS t{t} (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);\n\
             CREATE VIEW IF NOT EXISTS v{t} AS SELECT n, s FROM t{t} WHERE n > 0;"
        ),
        Op::Trigger(t) => format!(
            "CREATE TABLE IF NOT EXISTS t{t} (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);\n\
             CREATE TABLE IF NOT EXISTS log (what TEXT);\n\
             CREATE TRIGGER IF NOT EXISTS t{t}_log AFTER INSERT ON t{t} BEGIN\n\
               INSERT INTO log (what) VALUES ('t{t}; ' || new.n);\n\
             END;"
        ),
    }
}

fn native(conn: &Connection, script: &str) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN")?;
    let r = conn.execute_batch(script);
    if r.is_err() {
        conn.execute_batch("ROLLBACK")?;
    } else {
        conn.execute_batch("COMMIT")?;
    }
    r
}

fn seed(conn: &Connection) {
    conn.execute_batch(
        "CREATE TABLE t0 (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);\n\
         INSERT INTO t0 (n, s) VALUES (1, 'one'), (2, 'two; and'), (-3, 'it''s');",
    )
    .unwrap();
    wasmig::ensure_ledger(conn).unwrap();
}

fn without_ledger(mut s: Snapshot) -> Snapshot {
    s.schema.retain(|o| !o.table.starts_with("schema_migrations"));
    s.rows.retain(|t, _| !t.starts_with("schema_migrations"));
    s
}

/// Limits that make the host compile and instantiate `pack-sql` components
/// instead of running their statements directly.
fn compiled() -> Limits {
    Limits { direct_sql: false, ..Limits::default() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn guest_and_native_end_identical(ops in proptest::collection::vec(op(), 1..12)) {
        let script: String = ops.iter().map(sql).collect::<Vec<_>>().join("\n");
        let (mut guest, mut direct) = (Connection::open_in_memory().unwrap(), Connection::open_in_memory().unwrap());
        let reference = Connection::open_in_memory().unwrap();
        seed(&guest);
        seed(&direct);
        seed(&reference);
        let component = wasmig::component_for_sql(&script).unwrap();
        let through_host = testing::run_component_with(&component, &mut guest, compiled());
        let run_directly = testing::run_component(&component, &mut direct);
        let natively = native(&reference, &script);
        prop_assert_eq!(through_host.is_ok(), natively.is_ok(), "{:?} vs {:?}", through_host.as_ref().err(), natively.err());
        match (&through_host, &run_directly) {
            (Ok(a), Ok(b)) => {
                prop_assert!(!a.stats.direct_sql && b.stats.direct_sql);
                prop_assert_eq!((a.stats.calls, a.stats.rows_changed), (b.stats.calls, b.stats.rows_changed));
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => prop_assert!(false, "compiled {:?} but direct {:?}", a, b),
        }
        let expected = without_ledger(Snapshot::take(&reference).unwrap());
        prop_assert_eq!(without_ledger(Snapshot::take(&guest).unwrap()), expected.clone());
        prop_assert_eq!(without_ledger(Snapshot::take(&direct).unwrap()), expected);
    }

    #[test]
    fn injected_failure_leaves_the_database_as_it_was(
        ops in proptest::collection::vec(op(), 1..10),
        at in 0usize..10,
    ) {
        let mut stmts: Vec<String> = ops.iter().map(sql).collect();
        let at = at.min(stmts.len());
        stmts.insert(at, "INSERT INTO no_such_table_anywhere VALUES (1);".to_owned());
        let script = stmts.join("\n");
        let component = wasmig::component_for_sql(&script).unwrap();
        let mut errors = Vec::new();
        for limits in [compiled(), Limits::default()] {
            let mut guest = Connection::open_in_memory().unwrap();
            seed(&guest);
            let before = Snapshot::take(&guest).unwrap();
            let err = testing::run_component_with(&component, &mut guest, limits).unwrap_err();
            // The injected statement fails unless an earlier one already did
            // (a repeated ADD COLUMN); either way it is a rolled-back failure.
            prop_assert!(err.is_migration_failure(), "{}", err);
            prop_assert_eq!(Snapshot::take(&guest).unwrap(), before);
            prop_assert!(guest.is_autocommit(), "no transaction left open");
            errors.push(err.to_string());
        }
        prop_assert_eq!(&errors[0], &errors[1], "compiled and direct SQL report alike");
    }
}

/// Applies then reverts a `pack-sql` component made of `up` and `down`
/// under `limits`: the outcome of each (errors as text) and the database.
#[allow(clippy::type_complexity)]
fn up_then_down(
    up: &str,
    down: &str,
    limits: Limits,
) -> (Result<(), String>, Option<Result<(), String>>, Snapshot) {
    let s = wasmig_test_support::scratch();
    let component = wasmig::component_for_sql_with_down(up, down).unwrap();
    // The random scripts drop tables: declared, so apply compares them
    // with SQLite instead of refusing the undeclared drop.
    let m = wasmig::Manifest {
        capabilities: vec![wasmig::CAP_DESTRUCTIVE.to_owned()],
        ..wasmig::Manifest::new(1, "reversible")
    };
    std::fs::write(s.dir.join(m.file_name()), wasmig::pack(&component, &m, None).unwrap()).unwrap();
    let trust = wasmig::TrustPolicy { allow_unsigned: true, ..wasmig::TrustPolicy::default() };
    let migrator =
        wasmig::Migrator::from_dir_with(&s.dir, wasmig::Options { trust, limits, ..Default::default() })
            .unwrap();
    let mut conn = Connection::open_in_memory().unwrap();
    seed(&conn);
    // Each side has its own directory: leave it out of the messages.
    let dir = s.dir.display().to_string();
    let text = |e: wasmig::Error| e.to_string().replace(&dir, "<dir>");
    let applied = migrator.apply(&mut conn).map(drop).map_err(text);
    let reverted = applied.is_ok().then(|| migrator.revert_to(&mut conn, 0).map(drop).map_err(text));
    (applied, reverted, without_ledger(Snapshot::take(&conn).unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// A down script runs alike compiled, as direct SQL and natively: the
    /// same outcomes and the same database after up and down.
    #[test]
    fn down_scripts_run_alike_compiled_direct_and_native(
        up in proptest::collection::vec(op(), 1..8),
        down in proptest::collection::vec(op(), 1..8),
    ) {
        let up: String = up.iter().map(sql).collect::<Vec<_>>().join("\n");
        let down: String = down.iter().map(sql).collect::<Vec<_>>().join("\n");
        let reference = Connection::open_in_memory().unwrap();
        seed(&reference);
        let native_up = native(&reference, &up);
        let native_down = native_up.is_ok().then(|| native(&reference, &down).is_ok());
        let expected = without_ledger(Snapshot::take(&reference).unwrap());
        let (c_up, c_down, c_db) = up_then_down(&up, &down, compiled());
        let (d_up, d_down, d_db) = up_then_down(&up, &down, Limits::default());
        prop_assert_eq!(&c_up, &d_up);
        prop_assert_eq!(&c_down, &d_down);
        prop_assert_eq!(c_up.is_ok(), native_up.is_ok(), "{:?}", c_up);
        prop_assert_eq!(c_down.as_ref().map(Result::is_ok), native_down, "{:?}", c_down);
        prop_assert_eq!(&c_db, &expected);
        prop_assert_eq!(&d_db, &expected);
    }
}
