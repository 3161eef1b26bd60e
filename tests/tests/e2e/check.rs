//! `check_dir`: every refusal `apply` would make, collected, and agreeing
//! with what `apply` itself refuses first.

use rusqlite::{Connection, OpenFlags};
use wasmig_test_support::*;

fn kinds(r: &wasmig::CheckReport) -> Vec<&'static str> {
    r.problems.iter().map(|p| p.kind()).collect()
}

#[test]
fn check_dir_lists_every_problem_and_apply_refuses_the_first() {
    let e = scratch();
    pack_examples(&e.dir, 2);
    let report = wasmig::check_dir(&e.dir, options(), None).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.files, report.pending.clone()), (2, vec![1, 2]));

    pack_with(&e.dir, "example-backfill", 3, "backfill", &["second"]); // untrusted signer
    pack(&e.dir, "example-rebuild", 4, "rebuild");
    pack(&e.dir, "example-rebuild", 4, "rebuild_again");
    let report = wasmig::check_dir(&e.dir, options(), None).unwrap();
    assert_eq!(kinds(&report), ["duplicate-id", "untrusted"], "{:?}", report.problems);
    assert_eq!(report.problems[1].id, Some(3));
    assert_eq!(report.pending, vec![1, 2, 3], "the duplicated id is not judged further");
    // apply stops at the first of them.
    let err = migrator(&e.dir).unwrap_err();
    assert!(matches!(err, wasmig::Error::DuplicateId { id: 4, .. }), "{err:?}");
}

#[test]
fn check_dir_against_a_read_only_ledger_reports_drift_and_changes_nothing() {
    let e = scratch();
    pack_examples(&e.dir, 2);
    let mut conn = Connection::open(&e.db).unwrap();
    migrator(&e.dir).unwrap().apply(&mut conn).unwrap();
    drop(conn);
    pack(&e.dir, "example-backfill", 2, "add_index"); // a different file under an applied id
    let before = std::fs::read(&e.db).unwrap();
    let ro = Connection::open_with_flags(&e.db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let report = wasmig::check_dir(&e.dir, options(), Some(&ro)).unwrap();
    assert_eq!(kinds(&report), ["drift"]);
    assert_eq!(report.problems[0].file.as_deref(), Some(e.dir.join("0002_add_index.wasm").as_path()));
    assert!(report.pending.is_empty());
    drop(ro);
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
}
