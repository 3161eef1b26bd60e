//! The seed runner's guarantees, checked against real components and real
//! SQLite files through the library API.

use std::path::Path;

use rusqlite::Connection;
use wasmig::{Error, Migrator, Options};
use wasmig_test_support::*;

fn env() -> Scratch {
    scratch()
}

fn apply(dir: &Path, db: &Path) -> wasmig::Result<wasmig::Report> {
    let mut conn = Connection::open(db).unwrap();
    migrator(dir)?.apply(&mut conn)
}

fn applied_ids(r: &wasmig::Report) -> Vec<i64> {
    r.applied.iter().map(|a| a.id).collect()
}

#[test]
fn fresh_database_gets_every_migration_in_order() {
    let e = env();
    pack_examples(&e.dir, 4);
    let report = apply(&e.dir, &e.db).unwrap();
    assert_eq!(applied_ids(&report), vec![1, 2, 3, 4]);
    assert_eq!(ledger_ids(&e.db), vec![1, 2, 3, 4]);
    let conn = Connection::open(&e.db).unwrap();
    // Every ledger row carries the digest of the file that was applied.
    let migrator = migrator(&e.dir).unwrap();
    for p in migrator.plugins() {
        let recorded: String = conn
            .query_row("SELECT checksum FROM schema_migrations WHERE id = ?1", [p.id()], |r| r.get(0))
            .unwrap();
        assert_eq!(recorded, p.digest);
    }
    // The schema is what the four migrations describe.
    let cols = rows(
        &conn,
        "SELECT name FROM pragma_table_info('images') WHERE name IN ('vm_count', 'work_seed_path')",
    );
    assert_eq!(cols, vec!["'vm_count'", "'work_seed_path'"]);
    let vms_sql: String =
        conn.query_row("SELECT sql FROM sqlite_schema WHERE name = 'vms'", [], |r| r.get(0)).unwrap();
    assert!(vms_sql.contains("CHECK (state IN"), "rebuild ran: {vms_sql}");
    assert!(has_table(&e.db, "images"));
    assert_eq!(
        rows(&conn, "SELECT name FROM sqlite_schema WHERE type = 'index' AND name = 'vms_image_state'").len(),
        1
    );
}

#[test]
fn second_apply_does_nothing_and_changes_no_byte() {
    let e = env();
    pack_examples(&e.dir, 4);
    apply(&e.dir, &e.db).unwrap();
    let before = std::fs::read(&e.db).unwrap();
    let report = apply(&e.dir, &e.db).unwrap();
    assert!(report.applied.is_empty());
    assert_eq!(report.already_applied, vec![1, 2, 3, 4]);
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "a no-op apply must not write");
}

#[test]
fn already_applied_ids_are_skipped_not_rerun() {
    // A database from the earlier runner has migration 1; migration 2 is
    // marked applied too, and its file here is one that fails if it runs.
    let e = env();
    load_fixture(&e.db, "legacy-versioned.sql");
    Connection::open(&e.db)
        .unwrap()
        .execute("INSERT INTO schema_migrations (id, name, applied_at) VALUES (2, 'err_after_create', '2026-11-21T00:00:00Z')", [])
        .unwrap();
    pack(&e.dir, "example-baseline", 1, "baseline");
    pack(&e.dir, "faulty-err-after-create", 2, "err_after_create");
    pack(&e.dir, "example-add-index", 3, "add_index");
    let report = apply(&e.dir, &e.db).unwrap();
    assert_eq!(report.already_applied, vec![1, 2]);
    assert_eq!(applied_ids(&report), vec![3]);
    assert!(!has_table(&e.db, "transient_scratch"), "migration 2 must not have run");
    assert_eq!(ledger_ids(&e.db), vec![1, 2, 3]);
}

#[test]
fn a_guest_error_of_its_own_type_is_reported_through_display() {
    // `migration!` moves the SDK's own `Error` to the host without
    // formatting; any other error type must still arrive as its `Display`.
    let e = env();
    pack_examples(&e.dir, 1);
    apply(&e.dir, &e.db).unwrap();
    let before = std::fs::read(&e.db).unwrap();
    pack(&e.dir, "faulty-custom-error", 2, "custom_error");
    match apply(&e.dir, &e.db).unwrap_err() {
        Error::GuestFailed { id, message, .. } => {
            assert_eq!(id, 2);
            assert!(message.contains("custom error type: custom_scratch has 2 row(s)"), "{message}");
        }
        other => panic!("expected GuestFailed, got {other:?}"),
    }
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "database must be byte-for-byte unchanged");
}

#[test]
fn guest_error_rolls_back_everything_it_did() {
    let e = env();
    pack_examples(&e.dir, 1);
    apply(&e.dir, &e.db).unwrap();
    let before = std::fs::read(&e.db).unwrap();
    pack(&e.dir, "faulty-err-after-create", 2, "err_after_create");
    pack(&e.dir, "example-add-index", 3, "add_index");
    let err = apply(&e.dir, &e.db).unwrap_err();
    match &err {
        Error::GuestFailed { id, name, message, .. } => {
            assert_eq!((*id, name.as_str()), (2, "err_after_create"));
            assert!(message.contains("deliberate failure"), "{message}");
        }
        other => panic!("expected GuestFailed, got {other:?}"),
    }
    assert!(err.to_string().contains("migration 2 (err_after_create) failed and was rolled back"));
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "database must be byte-for-byte unchanged");
    assert!(!has_table(&e.db, "transient_scratch"));
    assert_eq!(ledger_ids(&e.db), vec![1], "migration 3 must not run after 2 failed");
}

#[test]
fn panic_traps_and_rolls_back_with_a_backtrace() {
    let e = env();
    pack_examples(&e.dir, 1);
    apply(&e.dir, &e.db).unwrap();
    let before = std::fs::read(&e.db).unwrap();
    pack(&e.dir, "faulty-panic", 2, "panic");
    let err = apply(&e.dir, &e.db).unwrap_err();
    let Error::Trap { id, reason, .. } = &err else { panic!("expected Trap, got {err:?}") };
    assert_eq!(*id, 2);
    assert!(reason.contains("guest panicked"), "{reason}");
    assert!(reason.contains("explode"), "backtrace names the guest function: {reason}");
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
    assert!(!has_table(&e.db, "panic_scratch"));
}

#[test]
fn invalid_sql_error_reaches_the_report_with_the_statement() {
    let e = env();
    pack(&e.dir, "faulty-bad-sql", 1, "bad_sql");
    let err = apply(&e.dir, &e.db).unwrap_err();
    let Error::GuestFailed { message, last_statement, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("syntax error"), "{message}");
    assert!(message.contains("code 1"), "SQLite code is carried: {message}");
    let last = last_statement.as_deref().unwrap();
    assert!(last.contains("CREATE TABLE oops"), "{last}");
    assert!(!has_table(&e.db, "bad_sql_scratch"));
    // The ledger is created in the first migration's transaction, so it
    // went with the rollback: the database holds nothing at all.
    assert!(!has_table(&e.db, "schema_migrations"));
}

#[test]
fn failed_migration_resumes_after_the_file_is_fixed() {
    let e = env();
    pack_examples(&e.dir, 1);
    let bad = pack(&e.dir, "faulty-err-after-create", 2, "index_vms");
    pack(&e.dir, "example-backfill", 3, "backfill");
    assert!(apply(&e.dir, &e.db).unwrap_err().is_migration_failure());
    assert_eq!(ledger_ids(&e.db), vec![1]);
    // Fix: the same id and name, now with a working body.
    std::fs::remove_file(bad).unwrap();
    pack(&e.dir, "example-add-index", 2, "index_vms");
    let report = apply(&e.dir, &e.db).unwrap();
    assert_eq!(applied_ids(&report), vec![2, 3]);
    assert_eq!(ledger_ids(&e.db), vec![1, 2, 3]);
}

#[test]
fn duplicate_ids_are_refused_before_anything_runs() {
    let e = env();
    let a = pack(&e.dir, "example-baseline", 1, "baseline");
    let b = pack(&e.dir, "example-add-index", 1, "add_index");
    let err = migrator(&e.dir).unwrap_err();
    let Error::DuplicateId { id, first, second } = &err else { panic!("{err:?}") };
    assert_eq!(*id, 1);
    let mut named = vec![first.clone(), second.clone()];
    named.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(named, expected, "both colliding files are named");
    assert!(err.is_refused_input());
    assert!(!e.db.exists(), "nothing touched the database");
}

#[test]
fn broken_component_is_refused_before_the_first_migration_runs() {
    let e = env();
    pack_examples(&e.dir, 2);
    // Corrupt the code of migration 3 while keeping the file's sections
    // intact, then sign the corrupt file: only compiling can tell.
    let third = pack_with(&e.dir, "example-backfill", 3, "backfill", &[]);
    let mut bytes = std::fs::read(&third).unwrap();
    let code = wasmig::sections(&bytes).unwrap().iter().find(|s| s.id != 0).unwrap().range.clone();
    for b in &mut bytes[code.start + 8..code.start + 40] {
        *b = 0xff;
    }
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    let manifest = wasmig::Manifest::new(3, "backfill");
    let signed = wasmig::pack(&bytes, &manifest, Some(&sk)).unwrap();
    std::fs::write(&third, &signed).unwrap();
    let err = apply(&e.dir, &e.db).unwrap_err();
    assert!(matches!(err, Error::InvalidComponent { .. }), "{err:?}");
    assert!(err.to_string().contains("0003_backfill.wasm"), "{err}");
    assert!(!has_table(&e.db, "schema_migrations"), "nothing was written: migrations 1 and 2 did not run");
    assert!(!has_table(&e.db, "images"));
}

#[test]
fn pre_versioning_database_is_adopted_by_the_baseline() {
    let e = env();
    load_fixture(&e.db, "legacy-preversioning.sql");
    let conn = Connection::open(&e.db).unwrap();
    let images_before = rows(
        &conn,
        "SELECT id, name, managed, rootfs_path, kernel_path, docker, created_at, updated_at FROM images",
    );
    let vms_before = rows(&conn, "SELECT * FROM vms");
    drop(conn);
    pack_examples(&e.dir, 1);
    let report = apply(&e.dir, &e.db).unwrap();
    assert_eq!(applied_ids(&report), vec![1]);
    let conn = Connection::open(&e.db).unwrap();
    assert_eq!(
        rows(
            &conn,
            "SELECT id, name, managed, rootfs_path, kernel_path, docker, created_at, updated_at FROM images"
        ),
        images_before
    );
    assert_eq!(rows(&conn, "SELECT * FROM vms"), vms_before);
    // The two columns the old table lacked now exist (and are NULL).
    assert_eq!(
        rows(&conn, "SELECT work_seed_path IS NULL, seeded_ssh_public_key_fingerprint IS NULL FROM images"),
        vec!["1 | 1"]
    );
    assert_eq!(ledger_ids(&e.db), vec![1]);
}

#[test]
fn earlier_runners_ledger_is_adopted_with_every_row() {
    let e = env();
    load_fixture(&e.db, "legacy-versioned.sql");
    let conn = Connection::open(&e.db).unwrap();
    let images_before = rows(&conn, "SELECT * FROM images");
    let vms_before = rows(&conn, "SELECT * FROM vms");
    let ledger_before = rows(&conn, "SELECT id, name, applied_at FROM schema_migrations");
    drop(conn);
    pack_examples(&e.dir, 4);
    let report = apply(&e.dir, &e.db).unwrap();
    assert_eq!(report.already_applied, vec![1], "the earlier runner's baseline is respected");
    assert_eq!(applied_ids(&report), vec![2, 3, 4]);
    let conn = Connection::open(&e.db).unwrap();
    // Every original image row is intact; vm_count was backfilled from vms.
    let images_after = rows(
        &conn,
        "SELECT id, name, managed, artifact_dir, rootfs_path, work_seed_path, kernel_path, initrd_path, modules_dir, packages_path, build_size, seeded_ssh_public_key_fingerprint, docker, created_at, updated_at FROM images",
    );
    assert_eq!(images_after, images_before);
    assert_eq!(rows(&conn, "SELECT id, vm_count FROM images"), vec!["'img-1' | 1", "'img-2' | 1"]);
    assert_eq!(rows(&conn, "SELECT * FROM vms"), vms_before, "the rebuild kept every vm row");
    let ledger_after = rows(&conn, "SELECT id, name, applied_at FROM schema_migrations WHERE id = 1");
    assert_eq!(ledger_after, ledger_before);
}

#[test]
fn guest_cannot_commit_the_hosts_transaction() {
    let e = env();
    pack(&e.dir, "faulty-commit", 1, "commit");
    let err = apply(&e.dir, &e.db).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("denied by wasmig policy: COMMIT"), "{text}");
    assert!(!has_table(&e.db, "commit_scratch"));
    assert!(!has_table(&e.db, "schema_migrations"), "rolled back with the first migration");
}

#[test]
fn guest_cannot_attach_another_file() {
    let e = env();
    pack(&e.dir, "faulty-attach", 1, "attach");
    let cwd_file = Path::new("attached-by-guest.db");
    let err = apply(&e.dir, &e.db).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("denied by wasmig policy: ATTACH"), "{text}");
    assert!(!cwd_file.exists(), "no other database file was created");
    assert!(!has_table(&e.db, "schema_migrations"), "rolled back with the first migration");
}

#[test]
fn add_column_if_missing_quotes_identifiers_and_refuses_smuggling() {
    let e = env();
    pack(&e.dir, "testing-awkward-idents", 1, "awkward");
    apply(&e.dir, &e.db).unwrap();
    let conn = Connection::open(&e.db).unwrap();
    assert_eq!(
        rows(&conn, "SELECT name FROM pragma_table_info('order details')"),
        vec!["'group'", r#"'it's "quoted"'"#, r#"'say "hi"'"#, "'select'"]
    );
    assert!(has_table(&e.db, "order details"), "the smuggled DROP TABLE never ran");
    let default: String = conn
        .query_row(
            "SELECT dflt_value FROM pragma_table_info('order details') WHERE name = 'it''s \"quoted\"'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(default, "'a;b'");
}

#[test]
fn out_of_order_migration_is_refused_unless_allowed() {
    let e = env();
    pack(&e.dir, "example-baseline", 1, "baseline");
    pack(&e.dir, "example-backfill", 3, "backfill");
    apply(&e.dir, &e.db).unwrap();
    pack(&e.dir, "example-add-index", 2, "add_index");
    let before = snapshot(&e.db);
    let err = apply(&e.dir, &e.db).unwrap_err();
    assert!(matches!(err, Error::OutOfOrder { id: 2, highest_applied: 3, .. }), "{err:?}");
    assert_eq!(snapshot(&e.db), before);
    let mut conn = Connection::open(&e.db).unwrap();
    let options = Options { allow_out_of_order: true, ..options() };
    let report = Migrator::from_dir_with(&e.dir, options).unwrap().apply(&mut conn).unwrap();
    assert_eq!(applied_ids(&report), vec![2]);
}

#[test]
fn changed_file_after_apply_is_drift() {
    let e = env();
    pack(&e.dir, "example-baseline", 1, "baseline");
    apply(&e.dir, &e.db).unwrap();
    // Same id and name, different code.
    pack(&e.dir, "example-add-index", 1, "baseline");
    let before = snapshot(&e.db);
    let err = apply(&e.dir, &e.db).unwrap_err();
    assert!(matches!(err, Error::Drift { id: 1, .. }), "{err:?}");
    assert_eq!(snapshot(&e.db), before);
}

#[test]
fn a_failing_first_migration_leaves_even_an_old_ledger_unadopted() {
    // An earlier runner's three-column ledger is adopted (columns added) in
    // the first migration's transaction, so when that migration fails the
    // file is exactly as the earlier runner left it.
    let e = env();
    load_fixture(&e.db, "legacy-versioned.sql");
    let before = std::fs::read(&e.db).unwrap();
    pack(&e.dir, "example-baseline", 1, "baseline");
    pack(&e.dir, "faulty-err-after-create", 2, "err_after_create");
    let err = apply(&e.dir, &e.db).unwrap_err();
    assert!(matches!(err, Error::GuestFailed { id: 2, .. }), "{err:?}");
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "byte-for-byte as the earlier runner left it");
    let conn = Connection::open(&e.db).unwrap();
    assert_eq!(rows(&conn, "SELECT name FROM pragma_table_info('schema_migrations')").len(), 3);
}
