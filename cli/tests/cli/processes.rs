//! Real processes against one SQLite file: many starters at once, writers
//! and readers holding locks, and processes killed at random moments, in
//! rollback-journal and WAL modes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig_test_support::*;

fn wasmig_cmd(db: &Path, dir: &Path, extra: &[&str]) -> Command {
    let mut c = crate::wasmig_command();
    c.arg("apply").arg("--db").arg(db).arg("--trust").arg(test_pub("dev")).args(extra).arg(dir);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn setup(journal: &str) -> (TempDir, PathBuf, PathBuf) {
    let t = TempDir::new().unwrap();
    let dir = t.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    let db = t.path().join("app.db");
    Connection::open(&db)
        .unwrap()
        .query_row(&format!("PRAGMA journal_mode = {journal}"), [], |_| Ok(()))
        .unwrap();
    (t, dir, db)
}

fn pack_all(dir: &Path) {
    pack_examples(dir, 4);
    pack(dir, "testing-bulk-insert", 5, "bulk");
    pack(dir, "testing-append-log", 6, "log");
}

#[test]
fn eight_processes_at_once_apply_each_migration_exactly_once() {
    for journal in ["DELETE", "WAL"] {
        let (_t, dir, db) = setup(journal);
        pack_all(&dir);
        pack(&dir, "testing-append-log", 7, "log_again");
        let children: Vec<Child> = (0..8).map(|_| wasmig_cmd(&db, &dir, &[]).spawn().unwrap()).collect();
        let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        for o in &outputs {
            let t = text(o);
            assert!(o.status.success(), "{journal}: {t}");
            assert!(!t.contains("duplicate column") && !t.contains("UNIQUE"), "{journal}: {t}");
        }
        let applied_lines: usize = outputs
            .iter()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).matches("\napplied ").count()
                    + usize::from(String::from_utf8_lossy(&o.stdout).starts_with("applied "))
            })
            .sum();
        assert_eq!(applied_lines, 7, "{journal}: every migration applied by exactly one process");
        assert_eq!(ledger_ids(&db), (1..=7).collect::<Vec<_>>());
        let conn = Connection::open(&db).unwrap();
        assert_eq!(rows(&conn, "SELECT count(*) FROM apply_log"), vec!["2"]);
        assert_eq!(rows(&conn, "SELECT count(*) FROM bulk"), vec!["100000"]);
    }
}

#[test]
fn a_writer_holding_the_lock_makes_apply_wait_then_fail_clearly() {
    let (_t, dir, db) = setup("DELETE");
    pack_examples(&dir, 1);
    let holder = Connection::open(&db).unwrap();
    holder.execute_batch("CREATE TABLE app (x); BEGIN IMMEDIATE; INSERT INTO app VALUES (1);").unwrap();
    let started = Instant::now();
    let o = wasmig_cmd(&db, &dir, &["--busy-timeout", "1"]).output().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited for the lock");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("database is locked"), "{}", text(&o));
    holder.execute_batch("COMMIT").unwrap();
    assert!(!has_table(&db, "images") && !has_table(&db, "schema_migrations"));

    // Released within the timeout: apply waits, then succeeds.
    holder.execute_batch("BEGIN IMMEDIATE; INSERT INTO app VALUES (2);").unwrap();
    let child = wasmig_cmd(&db, &dir, &["--busy-timeout", "30"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    holder.execute_batch("COMMIT").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ledger_ids(&db), vec![1]);
}

#[test]
fn a_long_reader_in_rollback_journal_mode_blocks_commit_then_apply_fails_clearly() {
    let (_t, dir, db) = setup("DELETE");
    pack_examples(&dir, 1);
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE app (x); INSERT INTO app VALUES (1);").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let reader = Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader.query_row("SELECT count(*) FROM app", [], |r| r.get(0)).unwrap();
    let o = wasmig_cmd(&db, &dir, &["--busy-timeout", "1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("locked"), "{}", text(&o));
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing was half-applied");
}

/// Tiny deterministic generator so a failing seed can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Checks that the ledger matches the schema: every recorded migration's
/// effects are present, every unrecorded one's are absent.
fn check_consistent(db: &Path, context: &str) -> Vec<i64> {
    let conn = Connection::open(db).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok", "{context}");
    let has_ledger = !rows(&conn, "SELECT 1 FROM sqlite_schema WHERE name = 'schema_migrations'").is_empty();
    let ids: Vec<i64> = if has_ledger {
        let mut s = conn.prepare("SELECT id FROM schema_migrations ORDER BY id").unwrap();
        s.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    } else {
        Vec::new()
    };
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>(), "{context}: ledger is a prefix");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let object =
        |name: &str| count(&format!("SELECT count(*) FROM sqlite_schema WHERE name = '{name}'")) == 1;
    let applied = |id: i64| ids.contains(&id);
    assert_eq!(object("images"), applied(1), "{context}: baseline");
    assert_eq!(object("vms_image_state"), applied(2), "{context}: index");
    if object("images") {
        assert_eq!(
            count("SELECT count(*) FROM pragma_table_info('images') WHERE name = 'vm_count'") == 1,
            applied(3),
            "{context}: backfill"
        );
        let vms: String =
            conn.query_row("SELECT sql FROM sqlite_schema WHERE name = 'vms'", [], |r| r.get(0)).unwrap();
        assert_eq!(vms.contains("CHECK"), applied(4), "{context}: rebuild");
    }
    assert_eq!(object("bulk"), applied(5), "{context}: bulk");
    if object("bulk") {
        assert_eq!(count("SELECT count(*) FROM bulk"), 100_000, "{context}: bulk is all or nothing");
    }
    assert_eq!(object("apply_log"), applied(6), "{context}: log");
    if object("apply_log") {
        assert_eq!(count("SELECT count(*) FROM apply_log"), 1, "{context}: log ran once");
    }
    ids
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_half_applied_database() {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = Lcg(seed);
    let mut outcomes = std::collections::BTreeMap::<usize, usize>::new();
    for journal in ["DELETE", "WAL"] {
        // Time a complete run to spread the kills across it.
        let (_t, dir, db) = setup(journal);
        pack_all(&dir);
        let started = Instant::now();
        let o = wasmig_cmd(&db, &dir, &[]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let full = started.elapsed().as_micros() as u64;
        let reference = check_consistent(&db, "reference run");
        assert_eq!(reference, (1..=6).collect::<Vec<_>>());

        for round in 0..12 {
            let (_t, dir, db) = setup(journal);
            pack_all(&dir);
            // Start-up and compilation take the first part of a run; aim
            // most kills at the part where migrations are running.
            let early = round % 4 == 0;
            let (from, span) = if early { (0, full) } else { (full * 3 / 10, full * 8 / 10) };
            let delay = Duration::from_micros(from + rng.next() % (span + 1));
            let mut child = wasmig_cmd(&db, &dir, &[]).spawn().unwrap();
            std::thread::sleep(delay);
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            let context = format!("seed {seed}, {journal}, round {round}, killed after {delay:?}");
            let ids = check_consistent(&db, &context);
            *outcomes.entry(ids.len()).or_default() += 1;
            // The next start completes what is left.
            let o = wasmig_cmd(&db, &dir, &[]).output().unwrap();
            assert!(o.status.success(), "{context}: {}", text(&o));
            assert_eq!(check_consistent(&db, &context), reference, "{context}");
        }
    }
    eprintln!("migrations applied before the kill -> rounds: {outcomes:?} (seed {seed})");
}
