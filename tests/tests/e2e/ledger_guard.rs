//! The ledger guard with real components: nothing a migration leaves in the
//! schema can reach the ledger. Each faulty component is refused before
//! COMMIT with an error naming the object, the database file stays
//! byte-identical, and the next good migration still applies. A legitimate
//! migration set with triggers passes, and application writes afterwards
//! leave the ledger as it was.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig::StepOutcome;
use wasmig::{Error, Manifest, Migrator, Options, testing};
use wasmig_test_support::*;

/// Runs corpus example `name` against a file database holding an applied
/// baseline; asserts it was refused by the ledger guard and changed no
/// byte, that the next good migration applies, and returns the error text.
fn refused(name: &str) -> String {
    let tmp = TempDir::new().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = Connection::open(&db).unwrap();
    testing::assert_applies(&guest_bytes("example-baseline"), &mut conn);
    let bytes_before = std::fs::read(&db).unwrap();
    let ledger_before = rows(&conn, "SELECT * FROM schema_migrations");
    // Compares schema and every row, and panics if anything changed.
    let err = testing::assert_fails_unchanged(&corpus_bytes(name), &mut conn);
    assert!(
        matches!(&err, Error::LedgerTampering { id: 2, before_run: false, .. }),
        "{name}: expected a ledger-guard refusal of migration 2, got {err:?}"
    );
    assert!(err.is_migration_failure(), "{name}: {err:?}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes_before, "{name}: file bytes changed");
    assert_eq!(rows(&conn, "SELECT * FROM schema_migrations"), ledger_before, "{name}: ledger changed");
    // The connection and the ledger still work: the next migration applies.
    testing::assert_applies(&guest_bytes("example-add-index"), &mut conn);
    assert_eq!(ledger_ids(&db), vec![1, 2]);
    err.to_string()
}

fn expect(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "expected {n:?} in:\n{text}");
    }
}

#[test]
fn an_index_bomb_on_the_ledger_is_refused_before_commit() {
    let t = refused("ledger_index_bomb");
    expect(
        &t,
        &[
            "migration 2 (component_under_test) left schema objects that can reach the ledger and was rolled back",
            "index ledger_bomb on schema_migrations",
        ],
    );
}

#[test]
fn a_trigger_forging_ledger_rows_is_refused_before_commit() {
    let t = refused("ledger_forging_trigger");
    expect(&t, &["trigger audit_forge on forge_images inserts into schema_migrations"]);
}

#[test]
fn a_view_reading_the_ledger_is_refused_before_commit() {
    let t = refused("ledger_reading_view");
    expect(&t, &["view applied_names reads schema_migrations"]);
}

#[test]
fn a_rename_to_a_ledger_name_is_refused_before_commit() {
    let t = refused("ledger_rename");
    expect(&t, &["table schema_migrations_x takes a name reserved for the ledger"]);
}

/// Packs `component` as migration `id`/`name` into `dir`, signed by "dev".
fn pack_bytes(dir: &Path, component: &[u8], id: i64, name: &str) -> PathBuf {
    let manifest = Manifest::new(id, name);
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    let bytes = wasmig::pack(component, &manifest, Some(&sk)).expect("packing");
    let path = dir.join(manifest.file_name());
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A `pack-sql` component for `sql`.
fn sql_component(sql: &str) -> Vec<u8> {
    wasmig::component_for_sql(sql).expect("generating a component")
}

#[test]
fn single_transaction_mode_and_rehearsal_refuse_it_too() {
    let e = scratch();
    pack_examples(&e.dir, 1);
    pack_bytes(&e.dir, &corpus_bytes("ledger_forging_trigger"), 2, "forge");
    pack(&e.dir, "example-add-index", 3, "add_index");
    // Nothing is committed: not even the baseline that ran first.
    let err = Migrator::from_dir_with(&e.dir, Options { single_transaction: true, ..options() })
        .unwrap()
        .apply(&mut Connection::open(&e.db).unwrap())
        .unwrap_err();
    assert!(matches!(&err, Error::LedgerTampering { id: 2, .. }), "{err:?}");
    expect(&err.to_string(), &["migration 2 (forge)", "trigger audit_forge on forge_images"]);
    assert!(!has_table(&e.db, "forge_images") && !has_table(&e.db, "images"));
    // A rehearsal reports the refusal on step 2 and does not reach step 3.
    let rehearsal = migrator(&e.dir).unwrap().rehearse(&e.db).unwrap();
    let outcomes: Vec<&StepOutcome> = rehearsal.steps.iter().map(|s| &s.outcome).collect();
    assert_eq!(outcomes[0], &StepOutcome::Ok);
    match outcomes[1] {
        StepOutcome::Failed(why) => {
            expect(why, &["trigger audit_forge on forge_images inserts into schema_migrations"])
        }
        other => panic!("expected step 2 to fail, got {other:?}"),
    }
    assert_eq!(outcomes[2], &StepOutcome::NotReached);
}

#[test]
fn objects_already_in_the_database_stop_the_first_migration_and_name_themselves() {
    let e = scratch();
    {
        // Left by something other than wasmig (or before the guard existed).
        let conn = Connection::open(&e.db).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
             CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
             CREATE TRIGGER notes_forge AFTER INSERT ON notes BEGIN
                INSERT OR IGNORE INTO schema_migrations (id, name, applied_at) VALUES (2, 'security_fix', 'now');
             END;",
        )
        .unwrap();
    }
    let before = std::fs::read(&e.db).unwrap();
    pack_examples(&e.dir, 1);
    let err = migrator(&e.dir).unwrap().apply(&mut Connection::open(&e.db).unwrap()).unwrap_err();
    assert!(matches!(&err, Error::LedgerTampering { id: 1, before_run: true, .. }), "{err:?}");
    expect(
        &err.to_string(),
        &[
            "migration 1 (baseline) was not run: the database already holds schema objects",
            "trigger notes_forge on notes inserts into schema_migrations",
        ],
    );
    // Not even the ledger columns the adoption would add.
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
    assert!(!has_table(&e.db, "images"));
}

#[test]
fn application_writes_after_a_migration_cannot_change_the_ledger() {
    let e = scratch();
    pack_examples(&e.dir, 4);
    // Ordinary application triggers: an audit log and a touch column.
    pack_bytes(
        &e.dir,
        &sql_component(
            "CREATE TABLE image_log (at INTEGER PRIMARY KEY, image TEXT, what TEXT);
             CREATE TRIGGER images_in AFTER INSERT ON images BEGIN
                INSERT INTO image_log (image, what) VALUES (new.id, 'created');
             END;
             CREATE TRIGGER images_up AFTER UPDATE OF name ON images BEGIN
                INSERT INTO image_log (image, what) VALUES (new.id, 'renamed ' || old.name);
             END;
             CREATE TRIGGER images_rm BEFORE DELETE ON images BEGIN
                INSERT INTO image_log (image, what) VALUES (old.id, 'deleted');
             END;
             CREATE VIEW image_history AS SELECT i.name, l.what FROM image_log l JOIN images i ON i.id = l.image;",
        ),
        5,
        "image_log",
    );
    let report = migrator(&e.dir).unwrap().apply(&mut Connection::open(&e.db).unwrap()).unwrap();
    assert_eq!(report.applied.len(), 5);
    let read_ledger = || rows(&Connection::open(&e.db).unwrap(), "SELECT * FROM schema_migrations");
    let ledger_before = read_ledger();
    // The application writes every table with an ordinary connection.
    let app = Connection::open(&e.db).unwrap();
    let tables: Vec<String> = app
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'schema%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.contains(&"images".to_owned()) && tables.contains(&"image_log".to_owned()), "{tables:?}");
    app.execute_batch(
        "INSERT INTO images (id, name, rootfs_path, kernel_path, created_at, updated_at)
             VALUES ('i1', 'base', '/r', '/k', 'now', 'now');
         UPDATE images SET name = 'base2';
         UPDATE images SET updated_at = 'later';",
    )
    .unwrap();
    for t in &tables {
        app.execute_batch(&format!("UPDATE \"{t}\" SET rowid = rowid; DELETE FROM \"{t}\";")).unwrap();
    }
    assert_eq!(read_ledger(), ledger_before, "application writes changed the ledger");
    // The triggers did run for those writes.
    app.execute_batch(
        "INSERT INTO images (id, name, rootfs_path, kernel_path, created_at, updated_at)
             VALUES ('i2', 'x', '/r', '/k', 'now', 'now');",
    )
    .unwrap();
    assert_eq!(rows(&app, "SELECT what FROM image_history"), vec!["'created'"]);
    assert_eq!(read_ledger(), ledger_before);
}
