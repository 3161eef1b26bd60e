//! Blast radius through the library with real compiled guests: the
//! rehearsal sees what a guest's rebuild cascades into (the update hook
//! stays on the connection while the guest's store holds it), the
//! destructive check and the min-signers rule apply to components as to
//! `pack-sql` files, and the ledger attests each migration's schema.

use rusqlite::Connection;
use wasmig::{Error, Manifest, Migrator, Options, SchemaState, StepOutcome};
use wasmig_test_support::*;

const PETS: &str = "
    CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES owners(id) ON DELETE CASCADE, name TEXT);
    INSERT INTO owners VALUES (1, 'ada'), (2, 'grace');
    INSERT INTO pets VALUES (10, 1, 'rex'), (11, 1, 'tom'), (12, 2, 'kit');
";

#[test]
fn a_guests_rebuild_with_foreign_keys_on_is_reported_as_losing_the_child_rows() {
    let e = scratch();
    Connection::open(&e.db).unwrap().execute_batch(PETS).unwrap();
    // Packed without foreign-keys-off: its DROP TABLE cascades into pets.
    pack(&e.dir, "testing-fk-rebuild", 1, "rebuild_owners");
    let r = migrator(&e.dir).unwrap().rehearse(&e.db).unwrap();
    let step = &r.steps[0];
    assert_eq!(step.outcome, StepOutcome::Ok, "{step:?}");
    let b = step.blast_radius.as_ref().unwrap();
    let pets = b.tables.iter().find(|t| t.table == "pets").unwrap();
    assert_eq!((pets.rows_before, pets.rows_after, pets.deleted), (Some(3), Some(0), 3), "{b:?}");
    assert_eq!(b.verdict, "destructive: deletes 3 rows of pets");
    assert!(b.destroyed.is_empty(), "the rebuild keeps every column: nothing to declare");
    assert_eq!(b.changed, ["table owners"]);

    // With foreign keys off, as the guide says, nothing is lost.
    let mut m = Manifest::new(1, "rebuild_owners");
    m.capabilities.push(wasmig::CAP_FOREIGN_KEYS_OFF.to_owned());
    pack_manifest(&e.dir, "testing-fk-rebuild", m, &["dev"]);
    let r = migrator(&e.dir).unwrap().rehearse(&e.db).unwrap();
    let b = r.steps[0].blast_radius.as_ref().unwrap();
    assert!(!b.destructive, "{b:?}");
    assert!(b.verdict.starts_with("safe: "), "{}", b.verdict);
}

#[test]
fn a_component_that_drops_needs_the_declaration_and_then_k_signers() {
    let e = scratch();
    let mut conn = Connection::open(&e.db).unwrap();
    conn.execute_batch(PETS).unwrap();
    // No example guest drops a column, so: an SQL component, compiled and
    // instantiated like any guest (direct SQL off).
    let component = wasmig::component_for_sql("ALTER TABLE pets DROP COLUMN name;").unwrap();
    let write = |m: &Manifest, keys: &[&str]| {
        let mut bytes = wasmig::pack(&component, m, None).unwrap();
        for k in keys {
            bytes = wasmig::pack(&bytes, m, Some(&wasmig::read_secret_key(&test_key(k)).unwrap())).unwrap();
        }
        std::fs::write(e.dir.join(m.file_name()), bytes).unwrap();
    };
    let before = snapshot(&e.db);
    let limits = wasmig::Limits { direct_sql: false, ..wasmig::Limits::default() };
    let opts = |min: usize| Options {
        limits,
        min_signers_destructive: min,
        trust: wasmig::TrustPolicy::from_key_files(&[test_pub("dev"), test_pub("second")]).unwrap(),
        ..Options::default()
    };
    write(&Manifest::new(1, "drop_name"), &["dev"]);
    let err = Migrator::from_dir_with(&e.dir, opts(0)).unwrap().apply(&mut conn).unwrap_err();
    let Error::UndeclaredDestructive { changes, .. } = &err else { panic!("{err:?}") };
    assert_eq!(changes, &["drops column pets.name"]);
    assert!(err.is_migration_failure());
    assert_eq!(snapshot(&e.db), before);

    let declared =
        Manifest { capabilities: vec![wasmig::CAP_DESTRUCTIVE.to_owned()], ..Manifest::new(1, "drop_name") };
    write(&declared, &["dev"]);
    let err = Migrator::from_dir_with(&e.dir, opts(2)).unwrap().apply(&mut conn).unwrap_err();
    assert!(
        matches!(&err, Error::DestructiveNeedsSigners { need: 2, signers, .. } if signers.len() == 1),
        "{err:?}"
    );
    assert!(err.is_refused_input());
    assert_eq!(snapshot(&e.db), before);

    write(&declared, &["dev", "second"]);
    let report = Migrator::from_dir_with(&e.dir, opts(2)).unwrap().apply(&mut conn).unwrap();
    assert_eq!(report.applied[0].destroyed.len(), 1);
    assert!(!report.applied[0].stats.direct_sql);
    // The ledger attests the schema the migration left.
    let check = wasmig::check_schema(&conn).unwrap();
    assert_eq!((check.state, check.after_id), (SchemaState::Unchanged, Some(1)));
    conn.execute_batch("CREATE VIEW named AS SELECT id FROM pets").unwrap();
    let check = wasmig::check_schema(&conn).unwrap();
    assert_eq!(check.state, SchemaState::Changed);
    assert_eq!(check.changes, ["view named created"]);
}

/// Later migrations of one apply start from the schema the previous one
/// left (remembered by its schema cookie, not read again): a drop there is
/// still caught, and a schema change in between is still seen.
#[test]
fn drops_are_caught_in_every_step_of_one_apply_and_in_one_transaction() {
    for single_transaction in [false, true] {
        let s = scratch();
        pack_sql(&s.dir, 1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT);", None);
        pack_sql(&s.dir, 2, "seed", "INSERT INTO items (note) VALUES ('a');", None);
        pack_sql(&s.dir, 3, "more", "CREATE TABLE more_items (x);", None);
        pack_sql(&s.dir, 4, "drop_note", "ALTER TABLE items DROP COLUMN note;", None);
        let opts = Options { single_transaction, ..options() };
        let err = Migrator::from_dir_with(&s.dir, opts.clone())
            .unwrap()
            .apply(&mut Connection::open(&s.db).unwrap())
            .unwrap_err();
        match &err {
            Error::UndeclaredDestructive { id: 4, changes, .. } => {
                assert_eq!(changes.len(), 1, "{changes:?}");
                assert!(changes[0].contains("note"), "{changes:?}");
            }
            other => panic!("single_transaction={single_transaction}: {other}"),
        }
        if single_transaction {
            assert!(!has_table(&s.db, "schema_migrations") && !has_table(&s.db, "items"), "all rolled back");
        } else {
            assert_eq!(ledger_ids(&s.db), [1, 2, 3]);
        }
        // Each recorded attestation is the schema its migration left.
        if !single_transaction {
            let conn = Connection::open(&s.db).unwrap();
            // (`rows` sorts its lines: each starts with the id, 1 to 3.)
            let digests: Vec<String> = rows(&conn, "SELECT id, schema_sha256 FROM schema_migrations")
                .iter()
                .map(|l| l.split(" | ").nth(1).unwrap().to_owned())
                .collect();
            assert_eq!(digests[0], digests[1], "a data-only step leaves the same schema");
            assert_ne!(digests[1], digests[2]);
            let now = wasmig::check_schema(&conn).unwrap();
            assert_eq!(now.state, SchemaState::Unchanged, "{now:?}");
        }
    }
}
