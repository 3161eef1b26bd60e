//! World 0.2.0's `exec-many`, end to end: a batched backfill ends identical
//! to one `exec` per row. And both released worlds side by side: files of
//! each apply together, each recorded with its own world, and files packed
//! before 0.2.0 existed still apply.

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig::{Limits, Manifest, Options, testing};
use wasmig_test_support::*;

#[test]
fn a_batched_backfill_ends_identical_to_one_exec_per_row() {
    let tmp = TempDir::new().unwrap();
    let contents = |krate: &str| {
        let mut conn = Connection::open(tmp.path().join(format!("{krate}.db"))).unwrap();
        let applied = testing::assert_applies(&guest_bytes(krate), &mut conn);
        (applied.stats.rows_changed, rows(&conn, "SELECT id, label FROM bulk ORDER BY id"))
    };
    let (one_by_one, batched) = (contents("testing-bulk-insert"), contents("testing-bulk-batch"));
    assert_eq!(batched.1.len(), 100_000);
    assert_eq!(batched, one_by_one, "same rows, same count of rows changed");
}

#[test]
fn both_worlds_apply_side_by_side_and_the_ledger_records_each() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("migrations");
    std::fs::create_dir(&dir).unwrap();
    // Migration 1: world 0.1.0, as `pack-sql` generates it.
    let script = wasmig::component_for_sql("CREATE TABLE seen (id INTEGER PRIMARY KEY, at TEXT);").unwrap();
    let key = wasmig::read_secret_key(&test_key("dev")).unwrap();
    let m = Manifest::new(1, "seen");
    std::fs::write(dir.join(m.file_name()), wasmig::pack(&script, &m, Some(&key)).unwrap()).unwrap();
    // Migrations 2 to 4: world 0.2.0, built with the SDK.
    pack(&dir, "example-baseline", 2, "baseline");
    pack(&dir, "example-add-index", 3, "add_index");
    pack(&dir, "testing-bulk-batch", 4, "bulk");
    let db = tmp.path().join("app.db");
    // Compiled, not run as direct SQL, so world 0.1.0's linking is exercised.
    let options = Options { limits: Limits { direct_sql: false, ..Limits::default() }, ..options() };
    let report =
        wasmig::Migrator::from_dir_with(&dir, options).unwrap().apply(&mut Connection::open(&db).unwrap());
    assert_eq!(report.unwrap().applied.len(), 4);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(
        rows(&conn, "SELECT id, world FROM schema_migrations ORDER BY id"),
        [
            "1 | 'wasmig:migration/migration@0.1.0'",
            "2 | 'wasmig:migration/migration@0.2.0'",
            "3 | 'wasmig:migration/migration@0.2.0'",
            "4 | 'wasmig:migration/migration@0.2.0'",
        ]
    );
    assert_eq!(rows(&conn, "SELECT count(*) FROM bulk"), ["100000"]);
}

#[test]
fn files_packed_for_world_0_1_before_0_2_existed_still_apply() {
    // Signed plugins from before world 0.2.0, kept as fuzzing seeds: the SDK
    // built them against 0.1.0, so this runs 0.1.0's exec, query and
    // add-column-if-missing through the host's hand-registered interface.
    let seeds = repo_root().join("fuzz/corpus/plugin_load");
    let tmp = TempDir::new().unwrap();
    for f in ["0001_baseline.wasm", "0002_add_index.wasm", "0005_backfill.wasm"] {
        let bytes = std::fs::read(seeds.join(f)).unwrap();
        let (imports, _) = wasmig::component_interface(&bytes).unwrap();
        assert_eq!(imports, ["wasmig:migration/sql@0.1.0"], "{f}");
        std::fs::write(tmp.path().join(f), bytes).unwrap();
    }
    // The backfill seed is the corpus's unsigned file.
    let trust = wasmig::TrustPolicy {
        allow_unsigned: true,
        ..wasmig::TrustPolicy::from_key_files(&[repo_root().join("fuzz/keys/fuzz.key.pub")]).unwrap()
    };
    let db = tmp.path().join("app.db");
    let options =
        Options { trust, limits: Limits { direct_sql: false, ..Limits::default() }, ..Options::default() };
    let report = wasmig::Migrator::from_dir_with(tmp.path(), options)
        .unwrap()
        .apply(&mut Connection::open(&db).unwrap());
    assert_eq!(report.unwrap().applied.len(), 3);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(
        rows(&conn, "SELECT id, world FROM schema_migrations ORDER BY id"),
        [
            "1 | 'wasmig:migration/migration@0.1.0'",
            "2 | 'wasmig:migration/migration@0.1.0'",
            "5 | 'wasmig:migration/migration@0.1.0'",
        ]
    );
    // The backfill's add-column-if-missing ran.
    assert_eq!(
        rows(&conn, "SELECT count(*) FROM pragma_table_info('images') WHERE name = 'vm_count'"),
        ["1"]
    );
}
