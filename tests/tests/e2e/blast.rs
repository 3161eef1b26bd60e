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

/// The object lines of one ledger row each, by id, without the schema
/// cookie each ends with (checked to be there).
fn recorded_objects(conn: &Connection) -> Vec<(i64, String)> {
    let mut stmt = conn.prepare("SELECT id, schema_objects FROM schema_migrations ORDER BY id").unwrap();
    let rows: Vec<(i64, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    rows.into_iter()
        .map(|(id, text)| {
            let (lines, cookie) = text.trim_end_matches('\n').rsplit_once('\n').unwrap_or(("", &text));
            assert!(
                cookie.strip_prefix("cookie\t").is_some_and(|c| c.trim_end().parse::<i64>().is_ok()),
                "{text:?}"
            );
            (id, if lines.is_empty() { String::new() } else { format!("{lines}\n") })
        })
        .collect()
}

/// The lines of `text` with each digest cut to its first character, so
/// the test can say which object a line names without knowing its digest.
fn shapes(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.rsplit_once('\t').map_or(l.to_owned(), |(k, d)| format!("{k}\t{}", &d[..1])))
        .collect()
}

/// A migration whose schema before is the one the last ledger row recorded
/// stores only what it changed in the per-object lines, so the ledger grows
/// with the changes rather than with migrations times objects; whole lists
/// are still followed back to, so a change made outside wasmig is named
/// exactly, in later applies (no memory of the last one), after a revert,
/// and in one transaction.
#[test]
fn the_ledger_stores_each_migrations_change_and_still_names_outside_changes() {
    for single_transaction in [false, true] {
        let s = scratch();
        let (dir, db) = (&s.dir, &s.db);
        pack_sql(
            dir,
            1,
            "items",
            "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); CREATE INDEX items_note ON items (note);",
            None,
        );
        pack_sql(dir, 2, "more", "CREATE TABLE more_items (x);", Some("DROP TABLE more_items;"));
        pack_sql(dir, 3, "seed", "INSERT INTO items (note) VALUES ('a');", Some("DELETE FROM items;"));
        pack_sql(
            dir,
            4,
            "swap",
            "DROP INDEX items_note; CREATE VIEW v AS SELECT note FROM items;",
            Some("DROP VIEW v; CREATE INDEX items_note ON items (note);"),
        );
        let opts = || Options { single_transaction, ..options() };
        let mut conn = Connection::open(db).unwrap();
        Migrator::from_dir_with(dir, opts()).unwrap().apply(&mut conn).unwrap();
        let rows = recorded_objects(&conn);
        let got: Vec<(i64, Vec<String>)> = rows.iter().map(|(id, t)| (*id, shapes(t))).collect();
        let hex = |l: &str| l.rsplit_once('\t').is_some_and(|(_, d)| d.len() == 16);
        assert!(rows[0].1.lines().all(hex), "the first row holds a whole list: {rows:?}");
        assert_eq!(
            got[0].1.iter().map(|l| &l[..l.len() - 2]).collect::<Vec<_>>(),
            ["index\titems_note", "table\titems"]
        );
        assert_eq!(got[1].1[0], "delta\t1");
        assert_eq!(got[1].1[1..], ["table\tmore_items\t".to_owned() + &got[1].1[1][got[1].1[1].len() - 1..]]);
        assert_eq!(rows[2].1, "delta\t2\n", "a data-only migration changes no line");
        assert_eq!(got[3].1[0], "delta\t3");
        assert!(
            rows[3].1.ends_with("\nindex\titems_note\t-\n") && rows[3].1.contains("\nview\tv\t"),
            "{rows:?}"
        );
        assert_eq!(wasmig::check_schema(&conn).unwrap().state, SchemaState::Unchanged);

        // Reverting the last two: the row before is the newest again, and
        // naming follows its chain.
        Migrator::from_dir_with(dir, opts()).unwrap().revert_to(&mut conn, 2).unwrap();
        conn.execute_batch("CREATE INDEX by_id ON more_items (x);").unwrap();
        let check = wasmig::check_schema(&conn).unwrap();
        assert_eq!((check.state, check.after_id), (SchemaState::Changed, Some(2)));
        assert_eq!(check.changes, ["index by_id created"]);
        conn.execute_batch("DROP INDEX by_id;").unwrap();

        // A later apply, by a migrator that remembers nothing: its first
        // migration finds the schema the ledger recorded and stores a delta.
        Migrator::from_dir_with(dir, opts()).unwrap().apply(&mut conn).unwrap();
        assert!(recorded_objects(&conn)[3].1.starts_with("delta\t3\n"));
        pack_sql(dir, 5, "other", "CREATE TABLE other (y);", None);
        Migrator::from_dir_with(dir, opts()).unwrap().apply(&mut conn).unwrap();
        assert_eq!(shapes(&recorded_objects(&conn)[4].1)[0], "delta\t4");
        conn.execute_batch(
            "DROP TABLE more_items; ALTER TABLE other ADD COLUMN z; CREATE INDEX by_y ON other (y);",
        )
        .unwrap();
        let check = wasmig::check_schema(&conn).unwrap();
        assert_eq!((check.state, check.after_id), (SchemaState::Changed, Some(5)));
        assert_eq!(check.changes, ["index by_y created", "table more_items dropped", "table other changed"]);

        // After a change made outside wasmig the recorded lines no longer
        // describe the schema before, so the next row holds a whole list.
        pack_sql(dir, 6, "last", "CREATE TABLE last (z);", None);
        Migrator::from_dir_with(dir, opts()).unwrap().apply(&mut conn).unwrap();
        let last = recorded_objects(&conn).pop().unwrap();
        assert_eq!(last.0, 6);
        assert!(last.1.lines().all(hex) && last.1.contains("index\tby_y\t"), "{last:?}");
        assert_eq!(wasmig::check_schema(&conn).unwrap().state, SchemaState::Unchanged);
        conn.execute_batch("DROP TABLE last;").unwrap();
        assert_eq!(wasmig::check_schema(&conn).unwrap().changes, ["table last dropped"]);
    }
}

/// A start-up finds the schema cookie where the last migration left it and
/// takes the schema as recorded without hashing it; once anything moves the
/// cookie (here `VACUUM`, which changes no object), the digest decides again.
#[test]
fn an_unmoved_schema_cookie_vouches_for_the_recorded_schema() {
    let s = scratch();
    pack_sql(&s.dir, 1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT);", None);
    let mut conn = Connection::open(&s.db).unwrap();
    migrator(&s.dir).unwrap().apply(&mut conn).unwrap();
    let check = wasmig::check_schema(&conn).unwrap();
    assert_eq!(check.state, SchemaState::Unchanged);
    // A recorded digest edited by hand (a data change: the cookie stays) is
    // not compared while the cookie vouches for the schema...
    let forged = "0".repeat(64);
    conn.execute("UPDATE schema_migrations SET schema_sha256 = ?1", [&forged]).unwrap();
    let check = wasmig::check_schema(&conn).unwrap();
    assert_eq!((check.state, check.current_sha256.as_str()), (SchemaState::Unchanged, forged.as_str()));
    // ...and is, as soon as the cookie moved.
    conn.execute_batch("VACUUM").unwrap();
    let check = wasmig::check_schema(&conn).unwrap();
    assert_eq!(check.state, SchemaState::Changed, "{check:?}");
    assert!(check.changes.is_empty(), "no object differs: {check:?}");
    conn.execute("UPDATE schema_migrations SET schema_sha256 = ?1", [&check.current_sha256]).unwrap();
    assert_eq!(wasmig::check_schema(&conn).unwrap().state, SchemaState::Unchanged);
    // A change made outside wasmig moves the cookie too.
    conn.execute_batch("CREATE INDEX by_note ON items (note)").unwrap();
    let check = wasmig::check_schema(&conn).unwrap();
    assert_eq!(
        (check.state, check.changes),
        (SchemaState::Changed, vec!["index by_note created".to_owned()])
    );
}

/// A migrator that applied, reverted a migration that changes no schema
/// (the cookie stays), and applies it again chains the new row to the one
/// before it, not to the row the revert removed.
#[test]
fn reapplying_after_a_revert_by_the_same_migrator_chains_to_a_row_that_exists() {
    let s = scratch();
    pack_sql(&s.dir, 1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT);", None);
    pack_sql(&s.dir, 2, "seed", "INSERT INTO items (note) VALUES ('a');", Some("DELETE FROM items;"));
    let m = migrator(&s.dir).unwrap();
    let mut conn = Connection::open(&s.db).unwrap();
    m.apply(&mut conn).unwrap();
    // Twice: the first revert creates the audit table (which moves the
    // cookie); the second leaves the cookie where the last apply left it.
    for _ in 0..2 {
        assert_eq!(m.revert_to(&mut conn, 1).unwrap().reverted.len(), 1);
        assert_eq!(m.apply(&mut conn).unwrap().applied.len(), 1);
        assert_eq!(recorded_objects(&conn)[1], (2, "delta\t1\n".to_owned()));
    }
    conn.execute_batch("CREATE INDEX by_note ON items (note)").unwrap();
    assert_eq!(wasmig::check_schema(&conn).unwrap().changes, ["index by_note created"]);
}
