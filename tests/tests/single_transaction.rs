//! `single_transaction`: every pending migration in one transaction, so a
//! failure anywhere leaves the database exactly as it was before the run,
//! and a success ends exactly where one transaction per migration ends.

use std::path::Path;

use rusqlite::Connection;
use wasmig::{Error, Manifest, Migrator, Options, plugin};
use wasmig_e2e::support::*;

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
    m.capabilities.push(plugin::CAP_FOREIGN_KEYS_OFF.to_owned());
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
