//! Reverting: `Migrator::revert_to` runs each applied migration's `down`,
//! newest first, one transaction each, under the same checks as `up`. Up
//! then down restores the schema and rows exactly; a failing down changes
//! nothing; anything that cannot be reverted refuses the whole revert
//! before anything runs.

use std::path::Path;

use rusqlite::Connection;
use wasmig::{Error, Limits, Manifest, Migrator, Options};
use wasmig_test_support::*;

const START: &str = "CREATE TABLE base (id INTEGER PRIMARY KEY, v TEXT);\n\
                     INSERT INTO base (v) VALUES ('one'), ('two');";

/// Three reversible migrations: SQL with a down, the SDK guest, and SQL
/// that alters the table the database started with.
fn reversible_history(dir: &Path) {
    pack_sql(
        dir,
        1,
        "items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO items VALUES (1, 'a');",
        Some("DROP TABLE items;"),
    );
    pack(dir, "testing-reversible", 2, "notes");
    pack_sql(
        dir,
        3,
        "tag",
        "ALTER TABLE base ADD COLUMN tag TEXT;\nUPDATE base SET tag = 'x';\nINSERT INTO base (v, tag) VALUES ('three', 'y');",
        Some("DELETE FROM base WHERE v = 'three';\nALTER TABLE base DROP COLUMN tag;"),
    );
}

fn start(db: &Path) {
    Connection::open(db).unwrap().execute_batch(START).unwrap();
}

/// Schema and rows without wasmig's own tables.
fn user_content(db: &Path) -> wasmig::Snapshot {
    let mut snap = snapshot(db);
    snap.schema.retain(|o| !o.table.starts_with("schema_migrations"));
    snap.rows.retain(|t, _| !t.starts_with("schema_migrations"));
    snap
}

fn compiled() -> Options {
    Options { limits: Limits { direct_sql: false, ..Limits::default() }, ..options() }
}

#[test]
fn up_then_down_to_0_restores_the_start_exactly_and_up_again_round_trips() {
    for opts in [options(), compiled()] {
        let s = scratch();
        reversible_history(&s.dir);
        start(&s.db);
        let before = user_content(&s.db);
        let m = Migrator::from_dir_with(&s.dir, opts).unwrap();
        let mut conn = Connection::open(&s.db).unwrap();
        m.apply(&mut conn).unwrap();
        let migrated = user_content(&s.db);
        assert_ne!(migrated, before);
        assert_eq!(m.revert_plan(&conn, 0).unwrap().iter().map(|p| p.id()).collect::<Vec<_>>(), [3, 2, 1]);

        let report = m.revert_to(&mut conn, 0).unwrap();
        assert_eq!(report.reverted.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2, 1], "newest first");
        assert_eq!(user_content(&s.db), before, "schema and rows exactly as they started");
        assert!(ledger_ids(&s.db).is_empty());
        let audit = rows(&conn, "SELECT id, action, reason FROM schema_migrations_audit");
        assert_eq!(
            audit,
            [
                "1 | 'revert' | 'wasmig down --to 0'",
                "2 | 'revert' | 'wasmig down --to 0'",
                "3 | 'revert' | 'wasmig down --to 0'"
            ]
        );
        let digests = rows(&conn, "SELECT old_checksum IS NOT NULL FROM schema_migrations_audit");
        assert_eq!(digests, ["1", "1", "1"], "each audit row names the digest it reverted");

        // Up again: the same result as the first time.
        let again = m.apply(&mut conn).unwrap();
        assert_eq!(again.applied.len(), 3);
        assert_eq!(user_content(&s.db), migrated);
        assert_eq!(ledger_ids(&s.db), [1, 2, 3]);
    }
}

#[test]
fn down_to_an_id_reverts_only_the_newer_ones_and_nothing_applied_means_nothing_written() {
    let s = scratch();
    reversible_history(&s.dir);
    start(&s.db);
    let m = migrator(&s.dir).unwrap();
    let mut conn = Connection::open(&s.db).unwrap();
    m.apply(&mut conn).unwrap();
    let report = m.revert_to(&mut conn, 1).unwrap();
    assert_eq!(report.reverted.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(ledger_ids(&s.db), [1]);
    assert!(has_table(&s.db, "items") && !has_table(&s.db, "notes"));
    drop(conn);
    // Already there: nothing to revert, and the file is not touched.
    let bytes = std::fs::read(&s.db).unwrap();
    let report = m.revert_to(&mut Connection::open(&s.db).unwrap(), 1).unwrap();
    assert!(report.reverted.is_empty());
    assert_eq!(std::fs::read(&s.db).unwrap(), bytes);
}

/// Applies `dir` to a fresh database, then returns the file's bytes.
fn applied(s: &Scratch) -> Vec<u8> {
    start(&s.db);
    migrator(&s.dir).unwrap().apply(&mut Connection::open(&s.db).unwrap()).unwrap();
    std::fs::read(&s.db).unwrap()
}

#[test]
fn a_failing_down_rolls_back_and_leaves_the_file_byte_identical() {
    // The SDK guest (compiled), and a pack-sql down (direct SQL and compiled).
    let guest = |dir: &Path| drop(pack(dir, "faulty-down-err", 4, "kept"));
    let sql = |dir: &Path| {
        drop(pack_sql(
            dir,
            4,
            "kept",
            "CREATE TABLE kept (x);",
            Some("DROP TABLE kept;\nSELECT * FROM no_such_table;"),
        ))
    };
    type AddFourth<'a> = &'a dyn Fn(&Path);
    let cases: [(AddFourth<'_>, Options, &str); 3] = [
        (&guest, options(), "down refuses"),
        (&sql, options(), "no_such_table"),
        (&sql, compiled(), "no_such_table"),
    ];
    for (add, opts, want) in cases {
        let scratch = scratch();
        let s = &scratch;
        reversible_history(&s.dir);
        add(&s.dir);
        let bytes = applied(s);
        let m = Migrator::from_dir_with(&s.dir, opts).unwrap();
        let err = m.revert_to(&mut Connection::open(&s.db).unwrap(), 0).unwrap_err();
        assert!(err.is_migration_failure(), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("migration 4 (kept)") && msg.contains("down: ") && msg.contains(want), "{msg}");
        assert_eq!(std::fs::read(&s.db).unwrap(), bytes, "the failed revert changed nothing");
    }
}

/// Applies, then asserts `revert_to(0)` is refused with a message containing
/// `want` and the file is byte-identical.
fn refused(s: &Scratch, m: &Migrator, bytes: &[u8], want: &str) -> Error {
    refused_to(s, m, 0, bytes, want)
}

/// [`refused`] for `revert_to(to)`.
fn refused_to(s: &Scratch, m: &Migrator, to: i64, bytes: &[u8], want: &str) -> Error {
    let err = m.revert_to(&mut Connection::open(&s.db).unwrap(), to).unwrap_err();
    assert!(err.is_refused_input(), "{err}");
    assert!(err.to_string().contains(want), "{err}");
    assert_eq!(std::fs::read(&s.db).unwrap(), bytes, "refused before anything ran");
    err
}

#[test]
fn a_migration_without_down_refuses_the_whole_revert_before_anything_runs() {
    let s = scratch();
    reversible_history(&s.dir);
    pack_sql(&s.dir, 4, "forward", "CREATE TABLE forward (x);", None);
    pack(&s.dir, "testing-append-log", 5, "log");
    let bytes = applied(&s);
    let m = migrator(&s.dir).unwrap();
    let err = refused(&s, &m, &bytes, "cannot revert to migration 0");
    let msg = err.to_string();
    assert!(msg.contains("migration 5 (log)") && msg.contains("migration 4 (forward)"), "{msg}");
    assert!(msg.contains("has no down") && msg.contains("0.1.0") && msg.contains("0.2.0"), "{msg}");
    assert!(m.revert_plan(&Connection::open(&s.db).unwrap(), 0).is_err());
    // Going back to 3 still needs 5's and 4's downs.
    refused_to(&s, &m, 3, &bytes, "cannot revert to migration 3");
}

#[test]
fn missing_drifted_or_untrusted_files_refuse() {
    // Missing.
    let s = scratch();
    reversible_history(&s.dir);
    let bytes = applied(&s);
    std::fs::remove_file(s.dir.join("0002_notes.wasm")).unwrap();
    let m = Migrator::from_dir_with(&s.dir, Options { allow_missing: true, ..options() }).unwrap();
    refused(&s, &m, &bytes, "migration 2 (notes): no file with that id is here");

    // Drifted: same id and name, another down.
    let s = scratch();
    reversible_history(&s.dir);
    let bytes = applied(&s);
    pack_sql(
        &s.dir,
        1,
        "items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);",
        Some("DROP TABLE items;"),
    );
    refused(&s, &migrator(&s.dir).unwrap(), &bytes, "drift: migration 1 (items)");

    // Untrusted: the files are signed by "dev" only.
    let s = scratch();
    reversible_history(&s.dir);
    let bytes = applied(&s);
    let other = wasmig::TrustPolicy::from_key_files(&[test_pub("other")]).unwrap();
    let m = Migrator::from_dir_with(&s.dir, Options { trust: other, ..Options::default() }).unwrap();
    refused(&s, &m, &bytes, "refused by the trust policy");
}

#[test]
fn packing_records_world_0_3_0_exactly_for_components_with_down() {
    let s = scratch();
    let world = |p: &Path| wasmig::read_manifest(&std::fs::read(p).unwrap()).unwrap().world;
    // Even asked for 0.3.0, a component without `down` is recorded as what it is.
    let m = Manifest { world: wasmig::REVERSIBLE_WORLD.to_owned(), ..Manifest::new(1, "log") };
    let forward = pack_manifest(&s.dir, "testing-append-log", m, &["dev"]);
    assert_eq!(world(&forward), "wasmig:migration/migration@0.2.0");
    assert_eq!(world(&pack(&s.dir, "testing-reversible", 2, "notes")), wasmig::REVERSIBLE_WORLD);
    assert_eq!(world(&pack(&s.dir, "example-baseline", 3, "baseline")), "wasmig:migration/migration@0.2.0");
}

#[test]
fn round_trip_rehearsal_names_each_kind_of_down_and_never_writes() {
    use wasmig::RoundTripOutcome as O;
    let s = scratch();
    reversible_history(&s.dir);
    pack_sql(&s.dir, 4, "forward", "CREATE TABLE forward (x);", None);
    pack(&s.dir, "faulty-down-err", 5, "kept");
    pack_sql(
        &s.dir,
        6,
        "leaky",
        "CREATE TABLE leaky (x);\nINSERT INTO base (v) VALUES ('c');",
        Some("DROP TABLE leaky;"),
    );
    start(&s.db);
    let bytes = std::fs::read(&s.db).unwrap();
    for opts in [options(), compiled()] {
        let r = Migrator::from_dir_with(&s.dir, opts).unwrap().rehearse_round_trip(&s.db).unwrap();
        let outcomes: Vec<&O> = r.steps.iter().map(|s| &s.outcome).collect();
        assert!(matches!(outcomes[..3], [O::Ok, O::Ok, O::Ok]), "{outcomes:?}");
        assert_eq!(outcomes[3], &O::NoDown);
        assert!(matches!(outcomes[4], O::DownFailed(why) if why.contains("down refuses")), "{outcomes:?}");
        assert_eq!(outcomes[5], &O::NotRestored);
        // Migration 3 added a third row to `base`; 6 adds a fourth its down keeps.
        assert_eq!(r.steps[5].differences, ["base: 3 rows before up, 4 after down"]);
        assert!(!r.all_ok());
        assert_eq!(std::fs::read(&s.db).unwrap(), bytes, "only the copy is written");
    }
}

#[test]
fn the_authors_harness_checks_a_round_trip() {
    let component = guest_bytes("testing-reversible");
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(START).unwrap();
    let again = wasmig::testing::assert_round_trips(&component, &mut conn);
    assert_eq!(again.stats.rows_changed, 3, "the second up inserted the rows again");
    assert_eq!(rows(&conn, "SELECT count(*) FROM notes"), ["3"]);

    // A down that keeps a row `up` inserted fails the check, naming the table.
    let leaky = wasmig::component_for_sql_with_down(
        "CREATE TABLE leaky (x);\nINSERT INTO base (v) VALUES ('c');",
        "DROP TABLE leaky;",
    )
    .unwrap();
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(START).unwrap();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wasmig::testing::assert_round_trips(&leaky, &mut conn);
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("down did not restore") && message.contains("base: 2 rows before, 3 after"),
        "{message}"
    );
}

#[test]
fn a_ledger_row_without_a_digest_cannot_be_reverted() {
    let s = scratch();
    reversible_history(&s.dir);
    applied(&s);
    // As an earlier runner's adopted row would be.
    Connection::open(&s.db)
        .unwrap()
        .execute_batch("UPDATE schema_migrations SET checksum = NULL WHERE id = 3")
        .unwrap();
    let bytes = std::fs::read(&s.db).unwrap();
    refused(&s, &migrator(&s.dir).unwrap(), &bytes, "migration 3 (tag): the ledger records no digest");
}

/// Packs `up`/`down` as migration `id` with the foreign-keys-off capability.
fn pack_sql_fk_off(dir: &Path, id: i64, name: &str, up: &str, down: &str) {
    let component = wasmig::component_for_sql_with_down(up, down).unwrap();
    let m =
        Manifest { capabilities: vec![wasmig::CAP_FOREIGN_KEYS_OFF.to_owned()], ..Manifest::new(id, name) };
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    std::fs::write(dir.join(m.file_name()), wasmig::pack(&component, &m, Some(&sk)).unwrap()).unwrap();
}

#[test]
fn a_foreign_keys_off_down_is_checked_for_violations_and_restores_the_setting() {
    let fk_start = "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
                    CREATE TABLE child (pid INTEGER REFERENCES parent (id));\n\
                    INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1);";
    for (down, ok) in [("DROP TABLE extra;", true), ("DROP TABLE extra;\nDELETE FROM parent;", false)] {
        let s = scratch();
        Connection::open(&s.db).unwrap().execute_batch(fk_start).unwrap();
        pack_sql_fk_off(&s.dir, 1, "extra", "CREATE TABLE extra (x);", down);
        let m = migrator(&s.dir).unwrap();
        let mut conn = Connection::open(&s.db).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        m.apply(&mut conn).unwrap();
        let before = snapshot(&s.db);
        let result = m.revert_to(&mut conn, 0);
        let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1, "enforcement is back on afterwards");
        if ok {
            result.unwrap();
            assert!(!has_table(&s.db, "extra"));
        } else {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::ForeignKeyViolations { id: 1, .. }), "{err}");
            assert_eq!(snapshot(&s.db), before, "rolled back");
            assert_eq!(ledger_ids(&s.db), [1]);
        }
    }
}
