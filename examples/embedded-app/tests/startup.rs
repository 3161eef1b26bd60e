//! The embedded-migrations application on a real database file, and what
//! the embedded path trusts and re-checks.

use std::process::Command;

use rusqlite::Connection;
use wasmig::{Embedded, EmbeddedMigration, Migrator};
use wasmig_example_embedded::{migrate, migrations::MIGRATIONS, options};

fn run_app(db: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_embedded-app")).arg("--db").arg(db).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn ledger(db: &std::path::Path) -> Vec<(i64, String, Option<i64>)> {
    let conn = Connection::open(db).unwrap();
    let mut s = conn.prepare("SELECT id, checksum, release FROM schema_migrations ORDER BY id").unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

/// A copy of the embedded set with `change` applied to migration `id`
/// (leaked: an `Embedded` is built from statics, as generated code is).
fn altered(id: i64, change: impl Fn(&mut EmbeddedMigration)) -> Embedded {
    let mut ms: Vec<EmbeddedMigration> = MIGRATIONS.migrations.to_vec();
    ms.iter_mut().filter(|m| m.id == id).for_each(change);
    Embedded { migrations: Box::leak(ms.into_boxed_slice()), ..MIGRATIONS }
}

#[test]
fn applies_its_embedded_migrations_to_a_real_file_then_starts_as_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("inventory.db");
    let (ok, out) = run_app(&db);
    assert!(ok, "{out}");
    assert!(out.contains("3 applied, 0 already applied"), "{out}");
    assert!(out.contains("bolt 120 (reorder at 30)"), "{out}");
    // Each row records the embedded release and the digest computed at build time.
    let rows = ledger(&db);
    let expected: Vec<_> =
        MIGRATIONS.migrations.iter().map(|m| (m.id, m.digest.to_owned(), Some(1))).collect();
    assert_eq!(rows, expected);
    let before = std::fs::read(&db).unwrap();
    let (ok, out) = run_app(&db);
    assert!(ok && out.contains("0 applied, 3 already applied (header stamp: nothing changed)"), "{out}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "a no-op start-up writes nothing");
    // A table the application adds itself moves the schema cookie: the next
    // start-up reads the ledger again (and reports the schema change).
    Connection::open(&db).unwrap().execute_batch("CREATE TABLE sessions (token TEXT)").unwrap();
    let (ok, out) = run_app(&db);
    assert!(ok && out.contains("0 applied, 3 already applied") && !out.contains("header stamp"), "{out}");
}

#[test]
fn applied_files_are_compared_by_their_build_time_digest_only() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = Connection::open(&db).unwrap();
    assert_eq!(migrate(&mut conn).unwrap().applied.len(), 3);
    // Bytes that are not even a component, under the right digest: nothing
    // applied is read again, so the no-op start-up does not notice.
    let junk = altered(2, |m| m.bytes = b"not a component");
    let m = Migrator::from_embedded_set(
        &Embedded { release: None, ..junk },
        wasmig::Options { require_release: false, ..options().unwrap() },
    )
    .unwrap();
    assert!(m.apply(&mut conn).unwrap().applied.is_empty());
    // A different build-time digest for an applied file is drift.
    let drifted = altered(2, |m| m.digest = "00".repeat(32).leak());
    let err = Migrator::from_embedded_set(
        &drifted,
        wasmig::Options { require_release: false, ..options().unwrap() },
    )
    .unwrap()
    .apply(&mut conn)
    .unwrap_err();
    assert!(err.to_string().contains("drift: migration 2"), "{err}");
}

#[test]
fn a_pending_file_is_checked_again_from_its_bytes_before_it_runs() {
    let no_release = || wasmig::Options { require_release: false, ..options().unwrap() };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = Connection::open(&db).unwrap();
    // A build-time digest that is not the bytes' own: refused before anything runs.
    let wrong = altered(1, |m| m.digest = "ab".repeat(32).leak());
    let err = Migrator::from_embedded_set(&wrong, no_release()).unwrap().apply(&mut conn).unwrap_err();
    assert!(err.to_string().contains("not what the embedded bytes say"), "{err}");
    assert!(!wasmig::ledger_exists(&conn).unwrap(), "nothing ran");
    // The signature stripped: same manifest and digest (signatures are not
    // part of it), so only the signature check can refuse it, and does.
    let original = MIGRATIONS.migrations[0].bytes;
    let mut unsigned = original[..8].to_vec();
    for sec in wasmig::sections(original).unwrap() {
        if sec.name != Some(wasmig::SIGNATURE_SECTION) {
            unsigned.extend_from_slice(&original[sec.range.clone()]);
        }
    }
    assert_eq!(wasmig::content_digest(&unsigned).unwrap(), MIGRATIONS.migrations[0].digest);
    let stripped = altered(1, |m| m.bytes = unsigned.clone().leak());
    let err = Migrator::from_embedded_set(&stripped, no_release()).unwrap().apply(&mut conn).unwrap_err();
    assert!(err.to_string().contains("refused by the trust policy: file is not signed"), "{err}");
    assert!(!wasmig::ledger_exists(&conn).unwrap(), "nothing ran");
    // A build-time digest other than the one the embedded release lists.
    let err = Migrator::from_embedded_set(&wrong, options().unwrap()).unwrap_err();
    assert!(err.to_string().contains("changed:"), "{err}");
}

#[test]
fn file_name_and_bytes_pairs_are_checked_like_a_directory() {
    let pairs: Vec<(&str, &[u8])> = MIGRATIONS
        .migrations
        .iter()
        .map(|m| (m.file_name, m.bytes))
        .chain([("wasmig-release.json", MIGRATIONS.release.unwrap())])
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(tmp.path().join("app.db")).unwrap();
    let m = Migrator::from_embedded(&pairs, options().unwrap()).unwrap();
    assert_eq!(m.release().map(|r| r.release), Some(1));
    assert_eq!(m.apply(&mut conn).unwrap().applied.len(), 3);
    // Withholding one from the pairs is refused by the release index.
    let err = Migrator::from_embedded(&pairs[1..], options().unwrap()).unwrap_err();
    assert!(err.to_string().contains("withheld"), "{err}");
    // A pair under the wrong file name is refused as a file would be.
    let renamed = [("0009_other.wasm", pairs[0].1)];
    let err =
        Migrator::from_embedded(&renamed, wasmig::Options { require_release: false, ..options().unwrap() })
            .unwrap_err();
    assert!(err.to_string().contains("does not match its manifest"), "{err}");
}

#[test]
fn trust_comes_from_key_bytes() {
    let policy = wasmig::TrustPolicy::from_key_bytes(&[wasmig_example_embedded::RELEASE_KEY]).unwrap();
    assert_eq!(policy.keys.len(), 1);
    assert_eq!(policy.keys[0].source, std::path::PathBuf::from("<key 1>"));
    let err = wasmig::TrustPolicy::from_key_bytes(&[b"not a key"]).unwrap_err();
    assert!(err.to_string().contains("<key 1>"), "{err}");
}
