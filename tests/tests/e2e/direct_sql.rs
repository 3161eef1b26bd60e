//! Direct SQL: a signed `pack-sql` component that the host recognises byte
//! for byte runs its statements without being compiled or instantiated. It
//! must behave exactly like the real component: same database afterwards,
//! same errors, same rollbacks, same limits, and a component that is not
//! exactly a generated one is compiled as before.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use wasmig::{Limits, Manifest, Migrator, Options};
use wasmig_test_support::*;

/// Packs `script` with `pack-sql`'s generator as migration `id`, signed by
/// test key "dev".
fn pack_sql(dir: &Path, id: i64, name: &str, script: &str) {
    let component = wasmig::component_for_sql(script).expect("packing SQL");
    let m = Manifest::new(id, name);
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    let bytes = wasmig::pack(&component, &m, Some(&sk)).unwrap();
    std::fs::write(dir.join(m.file_name()), bytes).unwrap();
}

fn with_limits(limits: Limits) -> Options {
    Options { limits, ..options() }
}

fn compiled() -> Limits {
    Limits { direct_sql: false, ..Limits::default() }
}

const GOOD: &[&str] = &[
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n\
     INSERT INTO notes (body) VALUES ('first; with a semicolon'), ('second');",
    "CREATE INDEX notes_body ON notes (body);\n\
     ALTER TABLE notes ADD COLUMN tag TEXT DEFAULT 'none';\n\
     UPDATE notes SET tag = 'old' WHERE id = 1;",
];

/// Schema and rows of `db` without the ledger's timing columns.
fn content(db: &Path) -> (wasmig::Snapshot, Vec<String>) {
    let mut snap = snapshot(db);
    snap.rows.retain(|t, _| t != "schema_migrations");
    let conn = Connection::open(db).unwrap();
    let ledger = rows(&conn, "SELECT id, name, checksum, signers FROM schema_migrations");
    (snap, ledger)
}

#[test]
fn recognised_components_run_directly_and_end_like_compiled_ones() {
    let (direct, real) = (scratch(), scratch());
    for s in [&direct, &real] {
        for (i, script) in GOOD.iter().enumerate() {
            pack_sql(&s.dir, i as i64 + 1, &format!("step{}", i + 1), script);
        }
    }
    let d = Migrator::from_dir_with(&direct.dir, options())
        .unwrap()
        .apply(&mut Connection::open(&direct.db).unwrap());
    let r = Migrator::from_dir_with(&real.dir, with_limits(compiled()))
        .unwrap()
        .apply(&mut Connection::open(&real.db).unwrap());
    let (d, r) = (d.unwrap(), r.unwrap());
    assert_eq!(d.applied.len(), 2);
    assert!(d.applied.iter().all(|a| a.stats.direct_sql && a.stats.fuel_used == 0), "{:?}", d.applied);
    assert!(r.applied.iter().all(|a| !a.stats.direct_sql && a.stats.fuel_used > 0), "{:?}", r.applied);
    for (a, b) in d.applied.iter().zip(&r.applied) {
        assert_eq!((a.id, a.stats.calls, a.stats.rows_changed), (b.id, b.stats.calls, b.stats.rows_changed));
    }
    assert_eq!(d.applied[0].stats.calls, 2);
    assert_eq!(d.applied[0].stats.rows_changed, 2);
    // Same schema, same rows, same ledger (digests and signers included).
    assert_eq!(content(&direct.db), content(&real.db));
    let conn = Connection::open(&direct.db).unwrap();
    assert_eq!(
        rows(&conn, "SELECT id, body, tag FROM notes"),
        vec!["1 | 'first; with a semicolon' | 'old'", "2 | 'second' | 'none'"]
    );
}

#[test]
fn a_failing_statement_rolls_back_and_reports_like_the_component() {
    let mut errors = Vec::new();
    for limits in [Limits::default(), compiled()] {
        let s = scratch();
        pack_sql(&s.dir, 1, "notes", GOOD[0]);
        pack_sql(
            &s.dir,
            2,
            "broken",
            "CREATE TABLE tags (name TEXT);\nINSERT INTO tags VALUES ('x');\nINSERT INTO no_such_table VALUES (1);",
        );
        pack_sql(&s.dir, 3, "never", "CREATE TABLE never_created (x);");
        let m = Migrator::from_dir_with(&s.dir, with_limits(limits)).unwrap();
        let mut conn = Connection::open(&s.db).unwrap();
        // Apply the first alone, then take the file's bytes as the baseline.
        let first = Migrator::from_plugins(vec![m.plugins()[0].clone()], with_limits(limits)).unwrap();
        first.apply(&mut conn).unwrap();
        let before = std::fs::read(&s.db).unwrap();
        let err = m.apply(&mut conn).unwrap_err();
        assert!(err.is_migration_failure(), "{err:?}");
        let text = err.to_string();
        for needle in ["migration 2", "broken", "no such table: no_such_table", "INSERT INTO no_such_table"] {
            assert!(text.contains(needle), "expected {needle:?} in {text}");
        }
        drop(conn);
        assert_eq!(std::fs::read(&s.db).unwrap(), before, "the database file is byte-for-byte unchanged");
        assert_eq!(ledger_ids(&s.db), vec![1]);
        assert!(!has_table(&s.db, "tags") && !has_table(&s.db, "never_created"));
        errors.push(text.replace(&s.dir.display().to_string(), "<dir>"));
    }
    assert_eq!(errors[0], errors[1], "direct SQL and the compiled component report the same failure");
}

#[test]
fn limits_and_the_gate_apply_to_direct_sql() {
    // A runaway query inside SQLite is stopped by the SQLite work budget.
    let runaway = "CREATE TABLE t (x);\n\
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) INSERT INTO t SELECT x FROM c;";
    // The ledger is out of a migration's reach, whoever runs its statements.
    let ledger_write = "CREATE TABLE t (x);\nDELETE FROM schema_migrations;";
    for (script, limits, needles) in [
        (runaway, Limits { sqlite_ops: 2_000_000, ..Limits::default() }, &["sqlite_ops"][..]),
        (runaway, Limits { deadline: Duration::from_millis(200), ..Limits::default() }, &["deadline"][..]),
        (ledger_write, Limits::default(), &["denied by wasmig policy", "ledger"][..]),
    ] {
        let s = scratch();
        pack_sql(&s.dir, 1, "notes", GOOD[0]);
        Migrator::from_dir_with(&s.dir, options())
            .unwrap()
            .apply(&mut Connection::open(&s.db).unwrap())
            .unwrap();
        let before = std::fs::read(&s.db).unwrap();
        pack_sql(&s.dir, 2, "bad", script);
        let m = Migrator::from_dir_with(&s.dir, with_limits(limits)).unwrap();
        let err = m.apply(&mut Connection::open(&s.db).unwrap()).unwrap_err();
        let text = err.to_string();
        for n in needles {
            assert!(text.contains(n), "expected {n:?} in {text}");
        }
        assert_eq!(std::fs::read(&s.db).unwrap(), before, "{text}");
    }
}

#[test]
fn tight_limits_and_edited_components_are_compiled_instead() {
    let s = scratch();
    pack_sql(&s.dir, 1, "notes", GOOD[0]);
    // With almost no fuel the real component might run out, so it runs for
    // real and the fuel limit decides (here: it fails, changing nothing).
    let tight = Limits { fuel: 50, ..Limits::default() };
    let err = Migrator::from_dir_with(&s.dir, with_limits(tight))
        .unwrap()
        .apply(&mut Connection::open(&s.db).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("fuel"), "{err}");
    assert!(!has_table(&s.db, "notes"));

    // A generated component with one instruction changed is not the
    // generator's output any more: it is compiled (and here still applies).
    let component = wasmig::component_for_sql("CREATE TABLE edited (x);").unwrap();
    let mut edited = component.clone();
    // `local.get 0; i32.const 1; i32.add; local.set 0`: the loop's step.
    let at = find(&edited, &[0x20, 0x00, 0x41, 0x01, 0x6a, 0x21, 0x00]).expect("the loop's step");
    edited[at + 3] = 0x02; // step by 2: with one statement, still runs it
    assert!(wasmig::recognise_sql_component(&edited).is_none());
    let t = scratch();
    let m = Manifest::new(1, "edited");
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    std::fs::write(t.dir.join(m.file_name()), wasmig::pack(&edited, &m, Some(&sk)).unwrap()).unwrap();
    let r = Migrator::from_dir_with(&t.dir, options())
        .unwrap()
        .apply(&mut Connection::open(&t.db).unwrap())
        .unwrap();
    assert!(!r.applied[0].stats.direct_sql);
    assert!(has_table(&t.db, "edited"));
}

#[test]
fn direct_sql_components_are_not_written_to_the_compiled_cache() {
    let s = scratch();
    pack_sql(&s.dir, 1, "notes", GOOD[0]);
    let cache = s.tmp.path().join("cache");
    let options = Options { cache_dir: Some(cache.clone()), ..options() };
    let r = Migrator::from_dir_with(&s.dir, options)
        .unwrap()
        .apply(&mut Connection::open(&s.db).unwrap())
        .unwrap();
    assert!(r.applied[0].stats.direct_sql);
    let entries = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    assert_eq!(entries, 0, "nothing was compiled, so nothing was cached");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The generated component for `script` with its statement table (the
/// (ptr, len) pairs at the start of the data segment, which sits at address
/// 64) rewritten by `edit`. Sizes do not change, so the result is still a
/// valid component whose `up` calls `exec` on whatever the table says.
fn with_table(script: &str, edit: impl Fn(&mut [(u32, u32)])) -> Vec<u8> {
    const TABLE_ADDRESS: u32 = 64;
    let component = wasmig::component_for_sql(script).unwrap();
    let stmts = wasmig::split_sql(script).unwrap();
    let mut table = Vec::new();
    let mut at = TABLE_ADDRESS + 8 * stmts.len() as u32;
    for s in &stmts {
        table.push((at, s.sql.len() as u32));
        at += s.sql.len() as u32;
    }
    let encode = |t: &[(u32, u32)]| -> Vec<u8> {
        t.iter().flat_map(|(p, l)| p.to_le_bytes().into_iter().chain(l.to_le_bytes())).collect()
    };
    let original = encode(&table);
    let pos = find(&component, &original).expect("the statement table in the data segment");
    edit(&mut table);
    let mut out = component;
    out[pos..pos + original.len()].copy_from_slice(&encode(&table));
    out
}

#[test]
fn a_crafted_statement_table_is_compiled_not_recognised() {
    let script = "CREATE TABLE t (x);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);";
    assert!(wasmig::recognise_sql_component(&with_table(script, |_| {})).is_some(), "unedited, it is ours");
    // The third entry aliases the second: overlapping statement text.
    let crafted = with_table(script, |t| t[2] = t[1]);
    assert!(wasmig::recognise_sql_component(&crafted).is_none(), "overlapping entries are never recognised");
    for bad in [
        with_table(script, |t| t[2].1 = u32::MAX),
        with_table(script, |t| t[0].0 = u32::MAX - 3),
        with_table(script, |t| t[1].0 += 1),
    ] {
        assert!(wasmig::recognise_sql_component(&bad).is_none());
    }

    // Signed and applied, the crafted file runs as its own compiled code:
    // what its `up` really does (insert 1 twice), not what a reading of
    // the table would guess.
    let s = scratch();
    let m = Manifest::new(1, "crafted");
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    std::fs::write(s.dir.join(m.file_name()), wasmig::pack(&crafted, &m, Some(&sk)).unwrap()).unwrap();
    let r = Migrator::from_dir_with(&s.dir, options())
        .unwrap()
        .apply(&mut Connection::open(&s.db).unwrap())
        .unwrap();
    assert!(!r.applied[0].stats.direct_sql, "compiled, not run as direct SQL");
    assert!(r.applied[0].stats.fuel_used > 0);
    let conn = Connection::open(&s.db).unwrap();
    assert_eq!(rows(&conn, "SELECT x FROM t"), vec!["1", "1"]);
}
