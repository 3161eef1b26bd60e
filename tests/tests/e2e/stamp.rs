//! The header stamp (`Options::stamp_user_version`): a no-op start-up that
//! reads only the header, and every way the ledger or schema can change
//! under it making the full checks run again.

use std::path::Path;

use rusqlite::Connection;
use wasmig::{Error, Migrator, Options, Report};
use wasmig_test_support::*;

fn header(db: &Path) -> (i32, i64) {
    let c = Connection::open(db).unwrap();
    let user = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let cookie = c.query_row("PRAGMA schema_version", [], |r| r.get(0)).unwrap();
    (user, cookie)
}

fn stamping() -> Options {
    Options { stamp_user_version: true, ..options() }
}

fn apply(dir: &Path, db: &Path, opts: Options) -> wasmig::Result<Report> {
    Migrator::from_dir_with(dir, opts)?.apply(&mut Connection::open(db).unwrap())
}

/// Two reversible SQL migrations.
fn two(dir: &Path) {
    pack_sql(
        dir,
        1,
        "items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);",
        Some("DROP TABLE items;"),
    );
    pack_sql(dir, 2, "seed", "INSERT INTO items (name) VALUES ('a'), ('b');", Some("DELETE FROM items;"));
}

/// A scratch database with [`two`] applied and stamped.
fn stamped() -> Scratch {
    let s = scratch();
    two(&s.dir);
    apply(&s.dir, &s.db, stamping()).unwrap();
    s
}

#[test]
fn a_stamped_database_answers_a_no_op_start_from_the_header() {
    let s = scratch();
    two(&s.dir);
    let first = apply(&s.dir, &s.db, stamping()).unwrap();
    assert_eq!(first.applied.len(), 2);
    assert!(!first.header_stamp_matched);
    let (user, _) = header(&s.db);
    assert_ne!(user, 0, "the stamp was written");
    let audit = rows(&Connection::open(&s.db).unwrap(), "SELECT action FROM schema_migrations_audit");
    assert_eq!(audit, ["'stamp-user-version'"]);

    // Without the option too: the database says it is stamped.
    let again = apply(&s.dir, &s.db, options()).unwrap();
    assert!(again.header_stamp_matched, "{again:?}");
    assert_eq!(again.already_applied, [1, 2]);
    assert!(again.applied.is_empty() && again.schema_check.is_none());
    assert_eq!(header(&s.db).0, user, "a no-op writes nothing");
}

#[test]
fn user_version_is_never_touched_without_the_option() {
    let s = scratch();
    two(&s.dir);
    Connection::open(&s.db).unwrap().pragma_update(None, "user_version", 42).unwrap();
    let first = apply(&s.dir, &s.db, options()).unwrap();
    assert_eq!(first.applied.len(), 2);
    let second = apply(&s.dir, &s.db, options()).unwrap();
    assert!(!second.header_stamp_matched && second.applied.is_empty());
    assert_eq!(header(&s.db).0, 42, "the application's user_version is its own");
}

#[test]
fn a_new_migration_runs_and_the_stamp_moves_on() {
    let s = stamped();
    let old = header(&s.db).0;
    // A data-only migration: the schema cookie does not move, the set does.
    pack_sql(&s.dir, 3, "more", "INSERT INTO items (name) VALUES ('c');", None);
    let r = apply(&s.dir, &s.db, options()).unwrap();
    assert_eq!(r.applied.iter().map(|a| a.id).collect::<Vec<_>>(), [3]);
    let new = header(&s.db).0;
    assert!(new != 0 && new != old, "restamped for the new set: {old} -> {new}");
    assert!(apply(&s.dir, &s.db, options()).unwrap().header_stamp_matched);

    // The older set (an older binary) does not match: the full path refuses
    // a database newer than it, as without the stamp.
    std::fs::remove_file(s.dir.join(wasmig::Manifest::new(3, "more").file_name())).unwrap();
    let err = apply(&s.dir, &s.db, options()).unwrap_err();
    assert!(matches!(err, Error::NewerDatabase { .. }), "{err}");
}

#[test]
fn a_schema_change_outside_wasmig_is_reported_every_time() {
    let s = stamped();
    let stamped = header(&s.db).0;
    Connection::open(&s.db).unwrap().execute_batch("CREATE TABLE app_cache (k, v)").unwrap();
    for _ in 0..2 {
        let r = apply(&s.dir, &s.db, stamping()).unwrap();
        assert!(!r.header_stamp_matched);
        let check = r.schema_check.expect("the full path compared the schema");
        assert_eq!(check.state, wasmig::SchemaState::Changed, "{check:?}");
        assert_eq!(header(&s.db).0, stamped, "a changed schema is never stamped");
    }
    let strict = Options { strict_schema: true, ..options() };
    assert!(matches!(apply(&s.dir, &s.db, strict).unwrap_err(), Error::SchemaChangedOutside { .. }));
}

#[test]
fn a_revert_clears_the_stamp_so_the_migration_runs_again() {
    let s = stamped();
    // Reverting migration 2 deletes rows only: the cookie stays where it was.
    let cookie = header(&s.db).1;
    let m = Migrator::from_dir_with(&s.dir, options()).unwrap();
    m.revert_to(&mut Connection::open(&s.db).unwrap(), 1).unwrap();
    assert_eq!(header(&s.db), (0, cookie), "the revert cleared the stamp in its own transaction");
    let r = apply(&s.dir, &s.db, options()).unwrap();
    assert_eq!(r.applied.iter().map(|a| a.id).collect::<Vec<_>>(), [2]);
    assert_eq!(rows(&Connection::open(&s.db).unwrap(), "SELECT name FROM items ORDER BY id"), ["'a'", "'b'"]);
}

#[test]
fn a_changed_file_is_drift_not_a_no_op() {
    let s = stamped();
    pack_sql(&s.dir, 2, "seed", "INSERT INTO items (name) VALUES ('z');", None);
    let before = snapshot(&s.db);
    let err = apply(&s.dir, &s.db, options()).unwrap_err();
    assert!(matches!(err, Error::Drift { id: 2, .. }), "{err}");
    assert_eq!(snapshot(&s.db), before);
}

#[test]
fn a_failed_migration_leaves_no_stamp_behind() {
    let s = stamped();
    pack_sql(&s.dir, 3, "ok", "CREATE TABLE more_items (x);", None);
    pack_sql(&s.dir, 4, "bad", "INSERT INTO no_such_table VALUES (1);", None);
    let err = apply(&s.dir, &s.db, options()).unwrap_err();
    assert!(err.to_string().contains("no_such_table"), "{err}");
    // 3 committed (and cleared the stamp); 4 rolled back; nothing matches.
    assert_eq!(header(&s.db).0, 0);
    assert_eq!(ledger_ids(&s.db), [1, 2, 3]);
    std::fs::remove_file(s.dir.join(wasmig::Manifest::new(4, "bad").file_name())).unwrap();
    let r = apply(&s.dir, &s.db, options()).unwrap();
    assert!(!r.header_stamp_matched && r.applied.is_empty(), "{r:?}");
    assert!(apply(&s.dir, &s.db, options()).unwrap().header_stamp_matched, "restamped once all was well");
}

#[test]
fn a_required_release_is_part_of_the_stamp() {
    let s = scratch();
    two(&s.dir);
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    wasmig::write_release(&s.dir, &sk, Some(5), wasmig::DEFAULT_MAX_FILE_SIZE).unwrap();
    let released = || Options { require_release: true, ..stamping() };
    apply(&s.dir, &s.db, released()).unwrap();
    assert!(apply(&s.dir, &s.db, released()).unwrap().header_stamp_matched);
    // Without the release requirement the stamp does not match: the full
    // path runs (and stamps for that way of starting).
    assert!(!apply(&s.dir, &s.db, stamping()).unwrap().header_stamp_matched);
    assert!(apply(&s.dir, &s.db, stamping()).unwrap().header_stamp_matched);

    // An older signed index of the same files is not a no-op: the full path
    // refuses the rollback, as it would without a stamp.
    apply(&s.dir, &s.db, released()).unwrap();
    std::fs::remove_file(s.dir.join(wasmig::RELEASE_FILE)).unwrap();
    wasmig::write_release(&s.dir, &sk, Some(4), wasmig::DEFAULT_MAX_FILE_SIZE).unwrap();
    let before = snapshot(&s.db);
    let err = apply(&s.dir, &s.db, released()).unwrap_err();
    assert!(matches!(err, Error::Release { .. }), "{err}");
    assert_eq!(snapshot(&s.db), before);
}
