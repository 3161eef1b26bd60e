//! `single_transaction`: every pending migration in one transaction, so a
//! failure anywhere leaves the database exactly as it was before the run,
//! and a success ends exactly where one transaction per migration ends.

use std::path::Path;

use rusqlite::Connection;
use wasmig::{Error, Manifest, Migrator, Options};
use wasmig_test_support::*;

fn together() -> Options {
    Options { single_transaction: true, ..options() }
}

fn apply_with(dir: &Path, db: &Path, options: Options) -> wasmig::Result<wasmig::Report> {
    Migrator::from_dir_with(dir, options)?.apply(&mut Connection::open(db).unwrap())
}

#[test]
fn all_pending_migrations_commit_together_and_end_like_one_each() {
    let (one_each, one_for_all) = (scratch(), scratch());
    pack_examples(&one_each.dir, 4);
    pack_examples(&one_for_all.dir, 4);
    apply_with(&one_each.dir, &one_each.db, options()).unwrap();
    let mut seen = Vec::new();
    let m = Migrator::from_dir_with(&one_for_all.dir, together()).unwrap();
    let report = m.apply_with(&mut Connection::open(&one_for_all.db).unwrap(), |a| seen.push(a.id)).unwrap();
    assert_eq!(report.applied.iter().map(|a| a.id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(seen, vec![1, 2, 3, 4], "each migration is reported once the transaction commits");
    assert_eq!(ledger_ids(&one_for_all.db), vec![1, 2, 3, 4]);
    let strip = |db: &Path| {
        let mut s = snapshot(db);
        s.rows.retain(|t, _| t != "schema_migrations");
        s
    };
    assert_eq!(strip(&one_each.db), strip(&one_for_all.db));
    // Nothing pending: nothing runs, nothing is written.
    let before = std::fs::read(&one_for_all.db).unwrap();
    assert!(apply_with(&one_for_all.dir, &one_for_all.db, together()).unwrap().applied.is_empty());
    assert_eq!(std::fs::read(&one_for_all.db).unwrap(), before);
}

#[test]
fn a_failure_rolls_back_every_migration_of_the_run() {
    let e = scratch();
    pack_examples(&e.dir, 1);
    apply_with(&e.dir, &e.db, options()).unwrap();
    let before = std::fs::read(&e.db).unwrap();
    let snap_before = snapshot(&e.db);
    // 2 and 3 succeed on their own; 4 fails after creating a table.
    pack(&e.dir, "example-add-index", 2, "add_index");
    pack(&e.dir, "example-backfill", 3, "backfill");
    pack(&e.dir, "faulty-err-after-create", 4, "err_after_create");
    let err = apply_with(&e.dir, &e.db, together()).unwrap_err();
    assert!(matches!(&err, Error::GuestFailed { id: 4, .. }), "{err:?}");
    assert!(err.to_string().contains("migration 4 (err_after_create) failed and was rolled back"), "{err}");
    assert_eq!(
        std::fs::read(&e.db).unwrap(),
        before,
        "byte-for-byte unchanged: 2 and 3 were rolled back too"
    );
    assert_eq!(snapshot(&e.db), snap_before);
    assert_eq!(ledger_ids(&e.db), vec![1]);
    // The same files one transaction each keep 2 and 3.
    let err = apply_with(&e.dir, &e.db, options()).unwrap_err();
    assert!(matches!(&err, Error::GuestFailed { id: 4, .. }), "{err:?}");
    assert_eq!(ledger_ids(&e.db), vec![1, 2, 3]);
}

#[test]
fn a_migration_that_needs_foreign_keys_off_is_refused_before_anything_runs() {
    let e = scratch();
    pack_examples(&e.dir, 1);
    let mut m = Manifest::new(2, "rebuild_owners");
    m.capabilities.push(wasmig::CAP_FOREIGN_KEYS_OFF.to_owned());
    pack_manifest(&e.dir, "testing-fk-rebuild", m, &["dev"]);
    Connection::open(&e.db)
        .unwrap()
        .execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
        .unwrap();
    let before = std::fs::read(&e.db).unwrap();
    let err = apply_with(&e.dir, &e.db, together()).unwrap_err();
    assert!(err.is_refused_input(), "{err:?}");
    let text = err.to_string();
    for needle in
        ["migration 2 (rebuild_owners)", "foreign key", "--single-transaction", "0002_rebuild_owners.wasm"]
    {
        assert!(text.contains(needle), "expected {needle:?} in {text}");
    }
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "not even the ledger was created");
}

#[test]
fn a_refused_file_late_in_the_run_changes_nothing_and_outranks_a_failure() {
    // Files are checked while earlier ones run; a refusal still rolls back
    // everything, and is what gets reported.
    let e = scratch();
    Connection::open(&e.db)
        .unwrap()
        .execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
        .unwrap();
    let before = std::fs::read(&e.db).unwrap();
    pack_examples(&e.dir, 3);
    pack_with(&e.dir, "example-rebuild", 4, "rebuild", &[]); // unsigned
    let err = apply_with(&e.dir, &e.db, together()).unwrap_err();
    assert!(matches!(&err, Error::Untrusted { .. }), "{err:?}");
    assert!(err.to_string().contains("0004_rebuild.wasm"), "{err}");
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "1 to 3 ran, and were rolled back");

    // A migration that fails before the refused file is reached: the
    // refusal is still the error, as if every file had been checked first.
    std::fs::remove_file(e.dir.join("0003_backfill.wasm")).unwrap();
    pack(&e.dir, "faulty-err-after-create", 3, "broken");
    let err = apply_with(&e.dir, &e.db, together()).unwrap_err();
    assert!(err.is_refused_input(), "{err:?}");
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
}

#[test]
fn concurrent_appliers_apply_each_migration_once() {
    let e = scratch();
    pack_examples(&e.dir, 4);
    let reports: Vec<wasmig::Report> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut conn = Connection::open(&e.db).unwrap();
                    conn.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
                    Migrator::from_dir_with(&e.dir, together()).unwrap().apply(&mut conn).unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let applied: usize = reports.iter().map(|r| r.applied.len()).sum();
    assert_eq!(applied, 4, "every migration applied exactly once across all appliers");
    assert_eq!(ledger_ids(&e.db), vec![1, 2, 3, 4]);
}

#[test]
fn a_fleet_applies_in_one_transaction_per_database() {
    // The first database checks the files; the others find every step ready.
    let e = scratch();
    pack_examples(&e.dir, 4);
    let dbs: Vec<_> = (0..5).map(|i| e.tmp.path().join(format!("tenant-{i}.db"))).collect();
    let m = Migrator::from_dir_with(&e.dir, together()).unwrap();
    let report = m.apply_fleet(&dbs, wasmig::FleetOptions::default(), |_, _| {});
    assert!(
        report.all_ok(),
        "{:?}",
        report.results.iter().map(|r| r.outcome.as_ref().err()).collect::<Vec<_>>()
    );
    for db in &dbs {
        assert_eq!(ledger_ids(db), vec![1, 2, 3, 4]);
    }
    // A second pass finds nothing to do.
    let again = m.apply_fleet(&dbs, wasmig::FleetOptions::default(), |_, _| {});
    assert_eq!(again.count("up-to-date"), 5);
}
