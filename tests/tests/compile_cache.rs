//! The compiled-component cache: filled only for verified files, reused on
//! the next start, and never trusted when an entry is damaged.

use std::path::Path;

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig::{Migrator, Options};
use wasmig_e2e::support::*;

fn entries(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".cwasm"));
    names.sort();
    names
}

/// Schema and rows, with the ledger reduced to what does not depend on the
/// clock (ids, names, digests).
fn state(db: &Path) -> (wasmig::snapshot::Snapshot, Vec<String>) {
    let mut snap = snapshot(db);
    snap.rows.remove("schema_migrations");
    let ledger = rows(&Connection::open(db).unwrap(), "SELECT id, name, checksum FROM schema_migrations");
    (snap, ledger)
}

fn apply(dir: &Path, db: &Path, options: Options) -> wasmig::Report {
    Migrator::from_dir_with(dir, options).unwrap().apply(&mut Connection::open(db).unwrap()).unwrap()
}

#[test]
fn verified_files_are_cached_and_reused_with_the_same_result() {
    let t = TempDir::new().unwrap();
    let dir = t.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    pack_examples(&dir, 4);
    let cache = t.path().join("cache");
    let cached = || Options { cache_dir: Some(cache.clone()), ..options() };

    let reference = t.path().join("reference.db");
    apply(&dir, &reference, options());
    assert!(entries(&cache).is_empty(), "no cache unless asked for");

    let first = t.path().join("first.db");
    assert_eq!(apply(&dir, &first, cached()).applied.len(), 4);
    let filled = entries(&cache);
    assert_eq!(filled.len(), 4, "one entry per verified component: {filled:?}");
    let stamps: Vec<_> =
        filled.iter().map(|n| std::fs::metadata(cache.join(n)).unwrap().modified().unwrap()).collect();

    // A second start loads the entries (it does not rewrite them) and ends
    // exactly where compiling from scratch ends.
    let second = t.path().join("second.db");
    assert_eq!(apply(&dir, &second, cached()).applied.len(), 4);
    assert_eq!(entries(&cache), filled);
    let after: Vec<_> =
        filled.iter().map(|n| std::fs::metadata(cache.join(n)).unwrap().modified().unwrap()).collect();
    assert_eq!(stamps, after, "entries were reused, not rewritten");
    assert_eq!(state(&second), state(&reference));
    assert_eq!(state(&first), state(&reference));
}

#[test]
fn unsigned_files_are_never_cached() {
    let t = TempDir::new().unwrap();
    let dir = t.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    pack_with(&dir, "example-baseline", 1, "baseline", &[]);
    let cache = t.path().join("cache");
    let mut options = Options { cache_dir: Some(cache.clone()), ..options() };
    options.trust.allow_unsigned = true;
    let report = apply(&dir, &t.path().join("app.db"), options);
    assert_eq!(report.applied.len(), 1);
    assert!(entries(&cache).is_empty(), "an unsigned file's code must not be cached");
}

#[test]
fn a_damaged_entry_is_ignored_and_replaced() {
    let t = TempDir::new().unwrap();
    let dir = t.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    pack_examples(&dir, 2);
    let cache = t.path().join("cache");
    let cached = || Options { cache_dir: Some(cache.clone()), ..options() };
    apply(&dir, &t.path().join("a.db"), cached());
    let names = entries(&cache);
    assert_eq!(names.len(), 2);
    let victim = cache.join(&names[0]);
    let good = std::fs::read(&victim).unwrap();
    let mut bad = good.clone();
    let at = bad.len() / 3;
    bad[at] ^= 0xff;
    std::fs::write(&victim, &bad).unwrap();

    let b = t.path().join("b.db");
    assert_eq!(apply(&dir, &b, cached()).applied.len(), 2, "compiled afresh instead");
    assert_eq!(state(&b), state(&t.path().join("a.db")));
    let rewritten = std::fs::read(&victim).unwrap();
    assert_ne!(rewritten, bad, "the damaged entry was replaced");
    assert!(wasmig::CompileCache::open(&cache).is_ok());
}

#[cfg(unix)]
#[test]
fn a_cache_others_can_write_is_refused_before_anything_runs() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new().unwrap();
    let dir = t.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    pack_examples(&dir, 1);
    let cache = t.path().join("shared-cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let db = t.path().join("app.db");
    let err = Migrator::from_dir_with(&dir, Options { cache_dir: Some(cache.clone()), ..options() })
        .unwrap()
        .apply(&mut Connection::open(&db).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("shared-cache") && err.contains("777"), "{err}");
    assert!(!has_table(&db, "schema_migrations"), "nothing was written");
}
