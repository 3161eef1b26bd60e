//! Foreign-key-safe rebuilds, ledger edge cases, full disks, read-only and
//! corrupt files, and many starters on one database through the library.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tempfile::TempDir;
use wasmig::Snapshot;
use wasmig::{Error, Manifest, Migrator, Options};
use wasmig_test_support::*;

fn tmp() -> (TempDir, PathBuf, PathBuf) {
    let s = scratch();
    (s.tmp, s.dir, s.db)
}

fn apply(dir: &Path, conn: &mut Connection) -> wasmig::Result<wasmig::Report> {
    migrator(dir)?.apply(conn)
}

const PETS: &str = "
    PRAGMA foreign_keys = ON;
    CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES owners(id) ON DELETE CASCADE, name TEXT);
    INSERT INTO owners VALUES (1, 'ada'), (2, 'grace');
    INSERT INTO pets VALUES (10, 1, 'rex'), (11, 1, 'tom'), (12, 2, 'kit');
";

fn fk_manifest(id: i64, name: &str) -> Manifest {
    let mut m = Manifest::new(id, name);
    m.capabilities.push(wasmig::CAP_FOREIGN_KEYS_OFF.to_owned());
    m
}

fn fk_on(conn: &Connection) -> bool {
    conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap()
}

#[test]
fn parent_rebuild_with_foreign_keys_off_keeps_every_child_row() {
    let (_t, dir, db) = tmp();
    let mut conn = Connection::open(&db).unwrap();
    conn.execute_batch(PETS).unwrap();
    let pets_before = rows(&conn, "SELECT * FROM pets");
    pack_manifest(&dir, "testing-fk-rebuild", fk_manifest(1, "rebuild_owners"), &["dev"]);
    apply(&dir, &mut conn).unwrap();
    assert_eq!(rows(&conn, "SELECT * FROM pets"), pets_before, "no cascade happened");
    assert!(rows(&conn, "SELECT sql FROM sqlite_schema WHERE name = 'owners'")[0].contains("CHECK"));
    assert!(fk_on(&conn), "the connection's setting is restored");
    assert!(rows(&conn, "SELECT * FROM pragma_foreign_key_check").is_empty());
}

#[test]
fn without_the_capability_sqlite_would_cascade_the_rebuild() {
    // Why the capability exists: with enforcement on, DROP TABLE deletes the
    // parent's rows first and ON DELETE CASCADE empties the child table.
    let (_t, dir, db) = tmp();
    let mut conn = Connection::open(&db).unwrap();
    conn.execute_batch(PETS).unwrap();
    pack(&dir, "testing-fk-rebuild", 1, "rebuild_owners");
    apply(&dir, &mut conn).unwrap();
    assert!(rows(&conn, "SELECT * FROM pets").is_empty());
}

#[test]
fn rebuild_that_breaks_a_reference_is_rolled_back_listing_violations() {
    let (_t, dir, db) = tmp();
    let mut conn = Connection::open(&db).unwrap();
    conn.execute_batch(PETS).unwrap();
    wasmig::ensure_ledger(&conn).unwrap();
    let before = Snapshot::take(&conn).unwrap();
    pack_manifest(&dir, "faulty-fk-break", fk_manifest(1, "lose_owner"), &["dev"]);
    let err = apply(&dir, &mut conn).unwrap_err();
    let Error::ForeignKeyViolations { id, violations, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*id, 1);
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("pets row 10 references a missing row of owners"), "{violations:?}");
    assert!(err.is_migration_failure());
    assert_eq!(Snapshot::take(&conn).unwrap(), before);
    assert!(fk_on(&conn), "restored after the failure too");
}

#[test]
fn foreign_keys_stay_off_when_they_were_off() {
    let (_t, dir, db) = tmp();
    let mut conn = Connection::open(&db).unwrap();
    conn.execute_batch(PETS).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    pack_manifest(&dir, "testing-fk-rebuild", fk_manifest(1, "rebuild_owners"), &["dev"]);
    apply(&dir, &mut conn).unwrap();
    assert!(!fk_on(&conn));
}

#[test]
fn unknown_capabilities_are_refused() {
    let mut m = Manifest::new(1, "x");
    m.capabilities.push("network".into());
    let err = wasmig::with_manifest(&guest_bytes("example-baseline"), &m).unwrap_err().to_string();
    assert!(err.contains("unknown capabilities requested: network"), "{err}");
}

#[test]
fn ledger_rows_without_files_need_an_explicit_flag() {
    let (_t, dir, db) = tmp();
    let mut conn = Connection::open(&db).unwrap();
    pack_examples(&dir, 3);
    apply(&dir, &mut conn).unwrap();
    std::fs::remove_file(dir.join("0002_add_index.wasm")).unwrap();
    pack(&dir, "example-rebuild", 4, "rebuild");
    let before = Snapshot::take(&conn).unwrap();
    let err = apply(&dir, &mut conn).unwrap_err();
    assert!(matches!(&err, Error::MissingFiles { ids } if ids == &[2]), "{err:?}");
    assert!(err.to_string().contains("--allow-missing"));
    assert_eq!(Snapshot::take(&conn).unwrap(), before);
    let status = migrator(&dir).unwrap().status(&conn).unwrap();
    assert_eq!(status[1].state, wasmig::MigrationState::AppliedButMissingFile);
    let options = Options { allow_missing: true, ..options() };
    let report = Migrator::from_dir_with(&dir, options).unwrap().apply(&mut conn).unwrap();
    assert_eq!(report.applied.iter().map(|a| a.id).collect::<Vec<_>>(), vec![4]);
}

#[test]
fn database_from_a_newer_release_is_refused() {
    let (_t, dir, db) = tmp();
    let mut conn = Connection::open(&db).unwrap();
    pack_examples(&dir, 2);
    apply(&dir, &mut conn).unwrap();
    conn.execute("INSERT INTO schema_migrations (id, name, applied_at) VALUES (9, 'future', 'x')", [])
        .unwrap();
    let err = apply(&dir, &mut conn).unwrap_err();
    assert!(matches!(&err, Error::NewerDatabase { ids, newest_known: 2 } if ids == &[9]), "{err:?}");
    assert!(err.to_string().contains("refusing to guess"));
}

#[test]
fn unknown_ledger_format_is_refused() {
    let (_t, dir, db) = tmp();
    let mut conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL, \
         format_v2_blob BLOB)",
    )
    .unwrap();
    pack_examples(&dir, 1);
    let err = apply(&dir, &mut conn).unwrap_err();
    assert!(err.to_string().contains("unknown ledger format (column(s) format_v2_blob)"), "{err}");
    assert!(!has_table(&db, "images"));
}

#[test]
fn full_database_fails_cleanly_and_resumes_when_space_returns() {
    let (_t, dir, db) = tmp();
    let mut conn = Connection::open(&db).unwrap();
    pack_examples(&dir, 1);
    apply(&dir, &mut conn).unwrap();
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    conn.execute_batch(&format!("PRAGMA max_page_count = {}", pages + 20)).unwrap();
    let before = std::fs::read(&db).unwrap();
    pack(&dir, "testing-bulk-insert", 2, "bulk");
    let err = apply(&dir, &mut conn).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("full"), "{text}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    conn.execute_batch("PRAGMA max_page_count = 1073741823").unwrap();
    assert_eq!(apply(&dir, &mut conn).unwrap().applied.len(), 1);
}

#[test]
fn read_only_database_is_a_clear_error() {
    let (_t, dir, db) = tmp();
    Connection::open(&db).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    let before = std::fs::read(&db).unwrap();
    pack_examples(&dir, 1);
    let mut conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let err = apply(&dir, &mut conn).unwrap_err();
    // Treated as a replica that has not caught up (exit code 6), before
    // anything is attempted: see tests/tests/e2e/replica.rs.
    assert!(err.is_replica_not_caught_up(), "{err}");
    assert!(
        err.to_string().contains("read-only here") && err.to_string().contains("migration(s) 1"),
        "{err}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn corrupt_database_is_a_clear_error_and_left_alone() {
    let (_t, dir, db) = tmp();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    pack_examples(&dir, 1);
    let mut conn = Connection::open(&db).unwrap();
    let err = apply(&dir, &mut conn).unwrap_err();
    assert!(err.to_string().contains("not a database"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
}

#[test]
fn many_threads_starting_at_once_apply_each_migration_exactly_once() {
    let (_t, dir, db) = tmp();
    pack_examples(&dir, 4);
    for (id, name) in [(5, "log_a"), (6, "log_b"), (7, "log_c")] {
        pack(&dir, "testing-append-log", id, name);
    }
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (dir, db, barrier) = (dir.clone(), db.clone(), barrier.clone());
            std::thread::spawn(move || {
                let migrator = migrator(&dir).unwrap();
                let mut conn = Connection::open(&db).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(60)).unwrap();
                barrier.wait();
                migrator.apply(&mut conn).unwrap()
            })
        })
        .collect();
    let reports: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let total_applied: usize = reports.iter().map(|r| r.applied.len()).sum();
    assert_eq!(total_applied, 7, "each migration applied by exactly one starter");
    assert_eq!(ledger_ids(&db), (1..=7).collect::<Vec<_>>());
    let conn = Connection::open(&db).unwrap();
    assert_eq!(rows(&conn, "SELECT count(*) FROM apply_log"), vec!["3"]);
}
