//! `wasmig release` and `--require-release`, on real files: the signed index
//! protects the set of migrations (withheld, unlisted, changed, older
//! release, bad signatures), and the ledger records each migration's release.

use std::path::{Path, PathBuf};
use std::process::Output;

use rusqlite::{Connection, OpenFlags};
use wasmig_test_support::*;

fn wasmig(args: &[&str]) -> Output {
    crate::wasmig_command().args(args).output().expect("running wasmig")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Writes SQL migration `id` (`m<id>`, creating table `t<id>`) into `dir`
/// with `pack-sql`, signed by test key "dev"; `extra` changes its content.
fn sql_migration(dir: &Path, id: i64, extra: &str) -> PathBuf {
    let script = dir.parent().unwrap().join(format!("m{id}.sql"));
    std::fs::write(&script, format!("CREATE TABLE t{id} (x INTEGER);\n{extra}")).unwrap();
    let o = wasmig(&[
        "pack-sql",
        s(&script),
        "--id",
        &id.to_string(),
        "--name",
        &format!("m{id}"),
        "--key",
        s(&test_key("dev")),
        "--out",
        s(dir),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    dir.join(format!("{id:04}_m{id}.wasm"))
}

fn release(dir: &Path, key: &str, extra: &[&str]) -> Output {
    let mut args = vec!["release", s(dir), "--key"];
    let key = test_key(key);
    args.push(s(&key));
    args.extend_from_slice(extra);
    wasmig(&args)
}

/// `apply` (or `status`) with `--require-release`, trusting test key "dev".
fn required(command: &str, e: &Scratch, extra: &[&str]) -> Output {
    let trust = test_pub("dev");
    let mut args = vec![command, "--db", s(&e.db), "--require-release", "--trust", s(&trust)];
    args.extend_from_slice(extra);
    args.push(s(&e.dir));
    wasmig(&args)
}

/// (id, release) of every ledger row.
fn ledger_releases(db: &Path) -> Vec<(i64, Option<i64>)> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare("SELECT id, release FROM schema_migrations ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Asserts `o` is a refusal (exit 3) whose message contains `what`, and
/// that the database file is exactly `before` (or still absent).
fn refused(o: &Output, what: &str, e: &Scratch, before: &Option<Vec<u8>>) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains(what) && t.contains("wasmig-release.json"), "expected {what:?}: {t}");
    assert_eq!(&std::fs::read(&e.db).ok(), before, "the database is unchanged");
}

fn db_bytes(e: &Scratch) -> Option<Vec<u8>> {
    std::fs::read(&e.db).ok()
}

#[test]
fn a_released_set_applies_and_the_ledger_records_each_release() {
    let e = scratch();
    sql_migration(&e.dir, 1, "");
    sql_migration(&e.dir, 2, "");
    let o = release(&e.dir, "dev", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("release 1, 2 migrations"), "{}", text(&o));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.dir.join("wasmig-release.json")).unwrap()).unwrap();
    assert_eq!(index["release"], 1);
    assert_eq!(index["migrations"].as_array().unwrap().len(), 2);

    let o = required("apply", &e, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ledger_releases(&e.db), vec![(1, Some(1)), (2, Some(1))]);
    // The index's digests are the ledger's.
    let conn = Connection::open(&e.db).unwrap();
    let recorded: String =
        conn.query_row("SELECT checksum FROM schema_migrations WHERE id = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(index["migrations"][1]["digest"], recorded);

    // The next release: a new migration, the number goes up by one.
    sql_migration(&e.dir, 3, "");
    let o = release(&e.dir, "dev", &["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["release"].as_i64(), v["added_signature"].as_bool()), (Some(2), Some(false)));
    let o = required("status", &e, &["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = required("apply", &e, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ledger_releases(&e.db), vec![(1, Some(1)), (2, Some(1)), (3, Some(2))]);

    // Without --require-release the index is not consulted, and a
    // directory holding one still loads (the JSON file is not a plugin).
    let trust = test_pub("dev");
    let o = wasmig(&["apply", "--db", s(&e.db), "--trust", s(&trust), s(&e.dir)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = wasmig(&["verify", "--trust", s(&trust), s(&e.dir)]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn migrations_applied_without_a_release_record_null() {
    let e = scratch();
    sql_migration(&e.dir, 1, "");
    let trust = test_pub("dev");
    let o = wasmig(&["apply", "--db", s(&e.db), "--trust", s(&trust), s(&e.dir)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ledger_releases(&e.db), vec![(1, None)]);
    // A later required release applies on top.
    sql_migration(&e.dir, 2, "");
    assert!(release(&e.dir, "dev", &["--number", "5"]).status.success());
    let o = required("apply", &e, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ledger_releases(&e.db), vec![(1, None), (2, Some(5))]);
}

#[test]
fn an_old_ledger_gains_the_release_column() {
    let e = scratch();
    load_fixture(&e.db, "legacy-versioned.sql");
    let conn = Connection::open(&e.db).unwrap();
    let applied: i64 = conn.query_row("SELECT max(id) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    drop(conn);
    let id = applied + 1;
    let script = e.tmp.path().join("next.sql");
    std::fs::write(&script, "CREATE TABLE release_test (x INTEGER);").unwrap();
    let key = test_key("dev");
    let o = wasmig(&[
        "pack-sql",
        s(&script),
        "--id",
        &id.to_string(),
        "--name",
        "next",
        "--key",
        s(&key),
        "--out",
        s(&e.dir),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The fixture's applied migrations have no files here.
    assert!(release(&e.dir, "dev", &[]).status.success());
    let o = required("apply", &e, &["--allow-missing"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = ledger_releases(&e.db);
    assert_eq!(rows.last(), Some(&(id, Some(1))), "{rows:?}");
    assert!(rows[..rows.len() - 1].iter().all(|(_, r)| r.is_none()), "{rows:?}");
}

#[test]
fn a_missing_index_is_refused_when_required() {
    let e = scratch();
    sql_migration(&e.dir, 1, "");
    refused(&required("apply", &e, &[]), "missing", &e, &None);
    refused(&required("status", &e, &[]), "missing", &e, &None);
}

#[test]
fn a_withheld_migration_is_refused() {
    let e = scratch();
    sql_migration(&e.dir, 1, "");
    assert!(required_apply_after_release(&e).status.success());
    let fix = sql_migration(&e.dir, 2, "");
    assert!(release(&e.dir, "dev", &[]).status.success());
    // Someone with write access to the directory withholds the new file.
    std::fs::remove_file(&fix).unwrap();
    let before = db_bytes(&e);
    refused(&required("apply", &e, &[]), "withheld: the release lists migration 2 (m2)", &e, &before);
    refused(&required("status", &e, &[]), "withheld", &e, &before);
    refused(&required("check", &e, &[]), "withheld", &e, &before);
    let o = required("check", &e, &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["problems"][0]["kind"], "release", "{v}");
    // `require_release = true` in wasmig.toml does the same without the flag.
    std::fs::write(e.tmp.path().join("wasmig.toml"), "require_release = true\n").unwrap();
    let trust = test_pub("dev");
    let o = crate::wasmig_command()
        .args(["apply", "--db", s(&e.db), "--trust", s(&trust), s(&e.dir)])
        .current_dir(e.tmp.path())
        .output()
        .unwrap();
    refused(&o, "withheld", &e, &before);
    assert_eq!(ledger_ids(&e.db), vec![1]);
}

/// Releases `e.dir` with key "dev" and applies it with `--require-release`.
fn required_apply_after_release(e: &Scratch) -> Output {
    let o = release(&e.dir, "dev", &[]);
    assert!(o.status.success(), "{}", text(&o));
    required("apply", e, &[])
}

#[test]
fn an_unlisted_migration_is_refused() {
    let e = scratch();
    sql_migration(&e.dir, 1, "");
    assert!(release(&e.dir, "dev", &[]).status.success());
    // A validly signed file that is not part of the release.
    sql_migration(&e.dir, 2, "");
    refused(&required("apply", &e, &[]), "unlisted:", &e, &None);
    assert!(!e.db.exists(), "nothing was created");
}

#[test]
fn a_changed_migration_is_refused() {
    let e = scratch();
    sql_migration(&e.dir, 1, "");
    sql_migration(&e.dir, 2, "");
    assert!(release(&e.dir, "dev", &[]).status.success());
    // Swapped for another file, signed by the same trusted key, same name.
    sql_migration(&e.dir, 2, "DROP TABLE t1;");
    refused(&required("apply", &e, &[]), "changed:", &e, &None);
    let msg = text(&required("apply", &e, &[]));
    assert!(msg.contains("0002_m2.wasm") && msg.contains("migration 2"), "{msg}");
}

#[test]
fn an_older_release_is_refused() {
    let e = scratch();
    sql_migration(&e.dir, 1, "");
    assert!(required_apply_after_release(&e).status.success());
    // Keep release 1 as it was shipped.
    let old = e.tmp.path().join("release1");
    std::fs::create_dir(&old).unwrap();
    for f in std::fs::read_dir(&e.dir).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, old.join(f.file_name().unwrap())).unwrap();
    }
    sql_migration(&e.dir, 2, "");
    assert!(required_apply_after_release(&e).status.success());
    assert_eq!(ledger_releases(&e.db), vec![(1, Some(1)), (2, Some(2))]);
    // Put back the older signed set (with --allow-missing the missing file
    // alone would not stop it): refused as a rollback.
    std::fs::remove_dir_all(&e.dir).unwrap();
    std::fs::rename(&old, &e.dir).unwrap();
    let before = db_bytes(&e);
    let o = required("apply", &e, &["--allow-missing"]);
    refused(
        &o,
        "rollback: this is release 1 but the database already has migrations from release 2",
        &e,
        &before,
    );
    refused(&required("status", &e, &[]), "rollback", &e, &before);
    // The same release again is fine.
    sql_migration(&e.dir, 2, "");
    assert!(release(&e.dir, "dev", &["--number", "2"]).status.success());
    let o = required("apply", &e, &[]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_index_with_bad_signatures_is_refused() {
    let e = scratch();
    sql_migration(&e.dir, 1, "");
    // Signed by a key that is not trusted.
    assert!(release(&e.dir, "other", &[]).status.success());
    refused(&required("apply", &e, &[]), "refused by the trust policy", &e, &None);

    // Signed by the trusted key, then edited: the release number raised by
    // hand (to get past the rollback check) breaks the signature.
    std::fs::remove_file(e.dir.join("wasmig-release.json")).unwrap();
    assert!(release(&e.dir, "dev", &[]).status.success());
    let path = e.dir.join("wasmig-release.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["release"] = 9.into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    refused(&required("apply", &e, &[]), "no valid signature by a trusted key", &e, &None);

    // A signature that is not even well-formed.
    v["release"] = 1.into();
    v["signatures"][0]["signature"] = "zz".into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    refused(&required("apply", &e, &[]), "not 64 bytes of hex", &e, &None);

    // Not JSON at all.
    std::fs::write(&path, b"{").unwrap();
    refused(&required("apply", &e, &[]), "not a release index", &e, &None);
}

#[test]
fn a_second_key_adds_a_signature_for_k_of_n() {
    let e = scratch();
    sql_migration(&e.dir, 1, "");
    assert!(release(&e.dir, "dev", &[]).status.success());
    let (dev, other) = (test_pub("dev"), test_pub("other"));
    let both = ["--trust", s(&other), "--min-signers", "2"];
    refused(&required("apply", &e, &both), "the policy requires at least 2", &e, &None);
    let o = release(&e.dir, "other", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("added a signature") && text(&o).contains("release 1"), "{}", text(&o));
    // Signing again with the same key changes nothing.
    let index = std::fs::read(e.dir.join("wasmig-release.json")).unwrap();
    assert!(release(&e.dir, "other", &[]).status.success());
    assert_eq!(std::fs::read(e.dir.join("wasmig-release.json")).unwrap(), index);
    let v: serde_json::Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(v["signatures"].as_array().unwrap().len(), 2);
    // Both plugins are signed by "dev" only; the index by both.
    let o = wasmig(&[
        "apply",
        "--db",
        s(&e.db),
        "--require-release",
        "--trust",
        s(&dev),
        "--trust",
        s(&other),
        s(&e.dir),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Reusing a release number for another set is refused.
    sql_migration(&e.dir, 2, "");
    let o = release(&e.dir, "dev", &["--number", "1"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("already holds release 1 with other migrations"), "{}", text(&o));
}
