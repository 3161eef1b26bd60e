//! The compiled-component cache: filled only for verified files, reused on
//! the next start, and never trusted when an entry is damaged.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig::{Migrator, Options};
use wasmig_test_support::*;

/// A scratch directory with a plugin directory `m` and a cache path (not
/// created: wasmig creates it on first use).
struct Setup {
    tmp: TempDir,
    dir: PathBuf,
    cache: PathBuf,
}

impl Setup {
    fn new(cache_name: &str) -> Setup {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("m");
        std::fs::create_dir(&dir).unwrap();
        let cache = tmp.path().join(cache_name);
        Setup { tmp, dir, cache }
    }

    fn db(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Options trusting test key "dev", with the cache.
    fn cached(&self) -> Options {
        Options { cache_dir: Some(self.cache.clone()), ..options() }
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.cache)
            .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.retain(|n| n.ends_with(".cwasm"));
        names.sort();
        names
    }

    /// Each entry's modification time and inode: a rewrite (temporary file
    /// renamed into place) changes both.
    fn stamps(&self, names: &[String]) -> Vec<(std::time::SystemTime, u64)> {
        names
            .iter()
            .map(|n| {
                let meta = std::fs::metadata(self.cache.join(n)).unwrap();
                #[cfg(unix)]
                let ino = std::os::unix::fs::MetadataExt::ino(&meta);
                #[cfg(not(unix))]
                let ino = 0;
                (meta.modified().unwrap(), ino)
            })
            .collect()
    }
}

/// Schema and rows, with the ledger reduced to what does not depend on the
/// clock (ids, names, digests).
fn state(db: &Path) -> (wasmig::Snapshot, Vec<String>) {
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
    let s = Setup::new("cache");
    pack_examples(&s.dir, 4);

    let reference = s.db("reference.db");
    apply(&s.dir, &reference, options());
    assert!(s.entries().is_empty(), "no cache unless asked for");

    let first = s.db("first.db");
    assert_eq!(apply(&s.dir, &first, s.cached()).applied.len(), 4);
    let filled = s.entries();
    assert_eq!(filled.len(), 4, "one entry per verified component: {filled:?}");
    let stamps = s.stamps(&filled);

    // A second start loads the entries (it does not rewrite them) and ends
    // exactly where compiling from scratch ends.
    let second = s.db("second.db");
    assert_eq!(apply(&s.dir, &second, s.cached()).applied.len(), 4);
    assert_eq!(s.entries(), filled);
    assert_eq!(s.stamps(&filled), stamps, "entries were reused, not rewritten");
    assert_eq!(state(&second), state(&reference));
    assert_eq!(state(&first), state(&reference));
}

#[test]
fn unsigned_files_are_never_cached() {
    let s = Setup::new("cache");
    pack_with(&s.dir, "example-baseline", 1, "baseline", &[]);
    let mut options = s.cached();
    options.trust.allow_unsigned = true;
    let report = apply(&s.dir, &s.db("app.db"), options);
    assert_eq!(report.applied.len(), 1);
    assert!(s.entries().is_empty(), "an unsigned file's code must not be cached");
}

#[test]
fn a_damaged_entry_is_ignored_and_replaced() {
    let s = Setup::new("cache");
    pack_examples(&s.dir, 2);
    apply(&s.dir, &s.db("a.db"), s.cached());
    let names = s.entries();
    assert_eq!(names.len(), 2);
    let victim = s.cache.join(&names[0]);
    let mut bad = std::fs::read(&victim).unwrap();
    let at = bad.len() / 3;
    bad[at] ^= 0xff;
    std::fs::write(&victim, &bad).unwrap();

    let b = s.db("b.db");
    assert_eq!(apply(&s.dir, &b, s.cached()).applied.len(), 2, "compiled afresh instead");
    assert_eq!(state(&b), state(&s.db("a.db")));
    assert_ne!(std::fs::read(&victim).unwrap(), bad, "the damaged entry was replaced");

    // The replacement is sound: the next start loads it instead of
    // replacing it again.
    let stamps = s.stamps(&names);
    apply(&s.dir, &s.db("c.db"), s.cached());
    assert_eq!(s.stamps(&names), stamps, "the replaced entry was reused");
}

#[cfg(unix)]
#[test]
fn a_cache_others_can_write_is_refused_before_anything_runs() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new("shared-cache");
    pack_examples(&s.dir, 1);
    std::fs::create_dir(&s.cache).unwrap();
    std::fs::set_permissions(&s.cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let db = s.db("app.db");
    let err = Migrator::from_dir_with(&s.dir, s.cached())
        .unwrap()
        .apply(&mut Connection::open(&db).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("shared-cache") && err.contains("777"), "{err}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "the new database file is still empty");
    assert!(s.entries().is_empty(), "nothing was cached");
}

/// Each entry's owner and mode.
#[cfg(unix)]
fn owner_and_mode(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.mode() & 0o7777)
}

#[cfg(unix)]
#[test]
fn links_shared_and_foreign_entries_are_never_loaded_and_the_run_compiles() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let s = Setup::new("cache");
    pack_examples(&s.dir, 2);
    let reference = s.db("reference.db");
    apply(&s.dir, &reference, s.cached());
    let names = s.entries();
    assert_eq!(names.len(), 2);
    let entry = s.cache.join(&names[0]);
    let (uid, mode) = owner_and_mode(&entry);
    assert_eq!(mode & 0o077, 0, "entries are written private");
    let stamps = s.stamps(&names);
    // A sound entry is reused as is: the cases below differ only in the
    // one thing each changes.
    apply(&s.dir, &s.db("reused.db"), s.cached());
    assert_eq!(s.stamps(&names), stamps, "sound entries are loaded, not rewritten");

    // 1. A symlink to a perfectly good entry: following it would load it.
    let outside = s.tmp.path().join("outside.cwasm");
    std::fs::rename(&entry, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &entry).unwrap();
    let outside_bytes = std::fs::read(&outside).unwrap();
    let db = s.db("link.db");
    assert_eq!(apply(&s.dir, &db, s.cached()).applied.len(), 2, "compiled instead");
    assert_eq!(state(&db), state(&reference));
    assert!(
        std::fs::symlink_metadata(&entry).unwrap().is_file(),
        "the link was replaced by a compiled entry"
    );
    assert_eq!(std::fs::read(&outside).unwrap(), outside_bytes, "the link's target was never written");

    // 2. Mode 0666: anyone could have written it.
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let ino = std::fs::metadata(&entry).unwrap().ino();
    let db = s.db("shared.db");
    assert_eq!(apply(&s.dir, &db, s.cached()).applied.len(), 2);
    assert_eq!(state(&db), state(&reference));
    assert_ne!(std::fs::metadata(&entry).unwrap().ino(), ino, "not loaded: compiled and rewritten");
    assert_eq!(owner_and_mode(&entry), (uid, mode), "the rewrite is private again");

    // 3. Owned by another user (only root can set this up).
    match std::os::unix::fs::chown(&entry, Some(uid + 4242), None) {
        Ok(()) => {
            let db = s.db("foreign.db");
            assert_eq!(apply(&s.dir, &db, s.cached()).applied.len(), 2);
            assert_eq!(state(&db), state(&reference));
            assert_eq!(owner_and_mode(&entry), (uid, mode), "not loaded: compiled and rewritten as ours");
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("not root: cannot chown a cache entry, ownership case not exercised");
        }
        Err(e) => panic!("chown: {e}"),
    }
}
