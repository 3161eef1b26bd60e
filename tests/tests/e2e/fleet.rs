//! One set of migrations, many tenant databases: each component compiled
//! once, databases migrated in parallel, one failing database never stopping
//! or touching the others.

use std::path::PathBuf;

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig::{FleetOptions, expand_databases};
use wasmig_test_support::*;

#[test]
fn many_databases_migrate_in_parallel_and_failures_stay_contained() {
    let t = TempDir::new().unwrap();
    let dir = t.path().join("m");
    let tenants = t.path().join("tenants");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&tenants).unwrap();
    pack_examples(&dir, 4);
    let mut dbs: Vec<PathBuf> = (0..24).map(|i| tenants.join(format!("tenant-{i:02}.db"))).collect();
    for db in &dbs[..12] {
        load_fixture(db, "legacy-versioned.sql");
    }
    // Tenant 5 is corrupt; tenant 7's ledger says migration 1 was a different file.
    let garbage = vec![0x5au8; 4096];
    std::fs::write(&dbs[5], &garbage).unwrap();
    Connection::open(&dbs[7])
        .unwrap()
        .execute("UPDATE schema_migrations SET checksum = 'abc' WHERE id = 1", [])
        .ok();
    let c = Connection::open(&dbs[7]).unwrap();
    c.execute_batch("ALTER TABLE schema_migrations ADD COLUMN checksum TEXT; UPDATE schema_migrations SET checksum = 'abc';").unwrap();
    let seven_before = std::fs::read(&dbs[7]).unwrap();
    drop(c);
    // Tenant 20 is up to date already.
    let m = migrator(&dir).unwrap();
    m.apply(&mut Connection::open(&dbs[20]).unwrap()).unwrap();

    let calls = std::sync::atomic::AtomicUsize::new(0);
    let report =
        m.apply_fleet(&dbs, FleetOptions { parallelism: 4, ..FleetOptions::default() }, |done, total| {
            assert!(done <= total);
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
    assert_eq!(calls.into_inner(), 24);
    assert_eq!(report.results.len(), 24);
    assert_eq!(report.count("failed"), 2);
    assert_eq!(report.count("up-to-date"), 1);
    assert_eq!(report.count("applied"), 21);
    assert!(report.results[5].outcome.as_ref().unwrap_err().to_string().contains("not a database"));
    assert!(matches!(report.results[7].outcome, Err(wasmig::Error::Drift { id: 1, .. })));
    assert_eq!(std::fs::read(&dbs[5]).unwrap(), garbage);
    assert_eq!(std::fs::read(&dbs[7]).unwrap(), seven_before);
    for (i, db) in dbs.iter().enumerate() {
        if i != 5 && i != 7 {
            assert_eq!(ledger_ids(db), vec![1, 2, 3, 4], "tenant {i}");
        }
    }
    // Old tenants kept their data through all four migrations.
    let conn = Connection::open(&dbs[0]).unwrap();
    assert_eq!(rows(&conn, "SELECT id, vm_count FROM images"), vec!["'img-1' | 1", "'img-2' | 1"]);

    // Wildcards and list files name the same databases.
    let pattern = tenants.join("tenant-1*.db").to_str().unwrap().to_owned();
    let matched = expand_databases(&[pattern]).unwrap();
    assert_eq!(matched, dbs[10..20].to_vec());
    let list = t.path().join("list.txt");
    std::fs::write(&list, format!("# fleet\n{}\n\n{}\n", dbs[0].display(), dbs[1].display())).unwrap();
    assert_eq!(expand_databases(&[format!("@{}", list.display())]).unwrap(), dbs[..2].to_vec());
    dbs.truncate(0);
}
