//! The library on replicas: a connection that opens read-only, or a
//! database on a LiteFS replica, is only ever read, whichever entry point
//! an application uses (`apply`, `apply_with`, `plan`, single-transaction
//! mode), and `Options::replica_wait` waits for another writer's commits.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tempfile::TempDir;
use wasmig::{Error, Migrator, Options, ReadOnlyCause};
use wasmig_test_support::*;

fn read_only(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn setup() -> (TempDir, std::path::PathBuf, std::path::PathBuf) {
    let t = TempDir::new().unwrap();
    let dir = t.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    pack_examples(&dir, 3);
    let db = t.path().join("app.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE app (x); INSERT INTO app VALUES (1);")
        .unwrap();
    (t, dir, db)
}

#[test]
fn a_read_only_connection_is_refused_in_every_mode_and_left_as_it_was() {
    let (_t, dir, db) = setup();
    let before = std::fs::read(&db).unwrap();
    for single_transaction in [false, true] {
        let options = Options { single_transaction, ..options() };
        let m = Migrator::from_dir_with(&dir, options).unwrap();
        let mut conn = read_only(&db);
        match m.apply(&mut conn) {
            Err(Error::ReplicaNotCaughtUp {
                pending, cause: ReadOnlyCause::ReadOnly { .. }, waited, ..
            }) => {
                assert_eq!(pending, vec![1, 2, 3]);
                assert_eq!(waited, None);
            }
            other => panic!("{other:?}"),
        }
        // An application stepping through the plan itself is refused too.
        assert!(matches!(m.plan(&mut conn), Err(Error::ReplicaNotCaughtUp { .. })));
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let err = migrator(&dir).unwrap().apply(&mut read_only(&db)).unwrap_err();
    assert!(err.is_replica_not_caught_up() && !err.is_refused_input(), "{err}");
    assert!(err.to_string().contains("read-only here") && err.to_string().contains("1, 2, 3"), "{err}");
}

#[test]
fn a_read_only_connection_waits_for_another_writer_then_returns_ok() {
    let (_t, dir, db) = setup();
    let m =
        Migrator::from_dir_with(&dir, Options { replica_wait: Some(Duration::from_secs(600)), ..options() })
            .unwrap();
    let writer = {
        let (dir, db) = (dir.clone(), db.clone());
        std::thread::spawn(move || {
            // Give the reader a head start; correctness does not depend on it.
            std::thread::sleep(Duration::from_millis(200));
            migrator(&dir).unwrap().apply(&mut Connection::open(&db).unwrap()).unwrap()
        })
    };
    let mut conn = read_only(&db);
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let report = m.apply(&mut conn).unwrap();
    assert_eq!(writer.join().unwrap().applied.len(), 3, "the writer applied them all");
    assert!(report.applied.is_empty());
    assert_eq!(report.already_applied, vec![1, 2, 3]);
    let replica = report.replica.expect("reported as a replica");
    assert!(matches!(replica.cause, ReadOnlyCause::ReadOnly { .. }));
    assert!(replica.looks >= 1);
}

#[test]
fn a_caught_up_read_only_database_is_ok_without_waiting_and_drift_is_still_refused() {
    let (t, dir, db) = setup();
    migrator(&dir).unwrap().apply(&mut Connection::open(&db).unwrap()).unwrap();
    let report = migrator(&dir).unwrap().apply(&mut read_only(&db)).unwrap();
    assert_eq!(report.already_applied, vec![1, 2, 3]);
    assert_eq!(report.replica.map(|r| r.looks), Some(1));
    let other = t.path().join("other");
    std::fs::create_dir(&other).unwrap();
    pack(&other, "testing-append-log", 1, "baseline");
    let m = Migrator::from_dir_with(
        &other,
        Options { replica_wait: Some(Duration::from_secs(600)), allow_missing: true, ..options() },
    )
    .unwrap();
    assert!(matches!(m.apply(&mut read_only(&db)), Err(Error::Drift { id: 1, .. })));
}

#[test]
fn a_litefs_replica_is_detected_from_the_connections_path() {
    let (t, dir, db) = setup();
    std::fs::write(t.path().join(wasmig::LITEFS_PRIMARY_FILE), "node-c\n").unwrap();
    let before = std::fs::read(&db).unwrap();
    // Opened read-write by the application: still never written.
    let err = migrator(&dir).unwrap().apply(&mut Connection::open(&db).unwrap()).unwrap_err();
    match &err {
        Error::ReplicaNotCaughtUp { cause: ReadOnlyCause::LiteFs { primary, .. }, .. } => {
            assert_eq!(primary, "node-c")
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("primary: node-c"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let err = migrator(&dir).unwrap().apply_replica(&db, Duration::from_secs(1), |_| {}).unwrap_err();
    assert!(err.is_replica_not_caught_up(), "{err}");
}
