//! LiteFS replicas, simulated faithfully with real processes: a primary
//! directory and a replica directory (holding `.primary`, as a LiteFS
//! replica's mount does) reach the same database file through hard links,
//! in rollback-journal mode, so SQLite's locks (per inode) are shared the
//! way one LiteFS file is. The replica must never write, must name the
//! primary when it refuses, and with `--replica-wait` must return once
//! migrations applied through the primary path are in the ledger. Also:
//! apply leaves every journal mode as it found it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig_test_support::*;

const PRIMARY: &str = "node-a.internal";

fn wasmig(args: &[&str]) -> Command {
    let mut c = crate::wasmig_command();
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn apply(db: &Path, dir: &Path, extra: &[&str]) -> Command {
    let mut c = wasmig(&["apply", "--trust"]);
    c.arg(test_pub("dev")).arg("--db").arg(db).args(extra).arg(dir);
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A LiteFS-like pair: `primary/app.db` and `replica/app.db` are one file
/// (a hard link), and only the replica's directory holds `.primary`.
struct Cluster {
    _t: TempDir,
    dir: PathBuf,
    primary: PathBuf,
    replica: PathBuf,
}

impl Cluster {
    fn new() -> Cluster {
        let t = TempDir::new().unwrap();
        let dir = t.path().join("migrations");
        let (p, r) = (t.path().join("primary"), t.path().join("replica"));
        for d in [&dir, &p, &r] {
            std::fs::create_dir(d).unwrap();
        }
        let primary = p.join("app.db");
        let conn = Connection::open(&primary).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "delete");
        conn.execute_batch("CREATE TABLE app (x); INSERT INTO app VALUES (1);").unwrap();
        drop(conn);
        let replica = r.join("app.db");
        std::fs::hard_link(&primary, &replica).unwrap();
        std::fs::write(r.join(".primary"), format!("{PRIMARY}\n")).unwrap();
        Cluster { _t: t, dir, primary, replica }
    }

    fn replica_dir(&self) -> &Path {
        self.replica.parent().unwrap()
    }
}

/// The names in `dir`, sorted: a replica must gain no journal, WAL or
/// shared-memory file, and no database it did not have.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_replica_without_wait_refuses_naming_the_primary_and_writes_nothing() {
    let c = Cluster::new();
    pack_examples(&c.dir, 4);
    let before = std::fs::read(&c.replica).unwrap();
    let o = apply(&c.replica, &c.dir, &[]).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(6), "{t}");
    assert!(t.contains("LiteFS replica") && t.contains(&format!("primary: {PRIMARY}")), "{t}");
    assert!(t.contains("migration(s) 1, 2, 3, 4") && t.contains("--replica-wait"), "{t}");
    assert_eq!(std::fs::read(&c.replica).unwrap(), before, "byte for byte as it was");
    assert_eq!(listing(c.replica_dir()), [".primary", "app.db"]);
    assert!(!has_table(&c.primary, "schema_migrations"));

    // --json reports the same refusal with exit code 6.
    let o = apply(&c.replica, &c.dir, &["--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["exit_code"], 6, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains(PRIMARY), "{v}");
    assert_eq!(std::fs::read(&c.replica).unwrap(), before);
}

#[test]
fn a_replica_never_creates_the_database() {
    let t = TempDir::new().unwrap();
    let (dir, mount) = (t.path().join("m"), t.path().join("litefs"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(&mount).unwrap();
    std::fs::write(mount.join(".primary"), "node-b\n").unwrap();
    pack_examples(&dir, 1);
    let db = mount.join("app.db");
    for extra in [&[][..], &["--replica-wait", "0.2"][..]] {
        let o = apply(&db, &dir, extra).output().unwrap();
        assert_eq!(o.status.code(), Some(6), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains("primary: node-b"), "{}", text(&o));
        assert_eq!(listing(&mount), [".primary"], "{extra:?}: nothing was created");
    }
}

#[test]
fn a_waiting_replica_returns_0_once_the_primary_applied_through_its_own_path() {
    let c = Cluster::new();
    pack_examples(&c.dir, 4);
    let mut replica = apply(&c.replica, &c.dir, &["--replica-wait", "600"]).spawn().unwrap();
    // Start the primary only once the replica has looked and found the
    // migrations missing, so it really waits.
    let mut stderr = BufReader::new(replica.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "replica ended before waiting: {seen}");
        seen.push_str(&line);
        if line.contains("waiting up to") {
            break;
        }
    }
    assert!(seen.contains(PRIMARY) && seen.contains("0001, 0002, 0003, 0004"), "{seen}");
    let o = apply(&c.primary, &c.dir, &[]).output().unwrap();
    assert!(o.status.success(), "primary: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 applied"), "{}", text(&o));
    let status = replica.wait().unwrap();
    let mut out = String::new();
    replica.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    stderr.read_to_string(&mut seen).unwrap();
    assert_eq!(status.code(), Some(0), "replica: {out}{seen}");
    assert!(out.contains("caught up, 4 already applied, nothing written"), "{out}");
    assert_eq!(ledger_ids(&c.replica), vec![1, 2, 3, 4]);
    assert_eq!(listing(c.replica_dir()), [".primary", "app.db"]);

    // Caught up: without waiting it is 0 at once; status just reads.
    let before = std::fs::read(&c.replica).unwrap();
    let o = apply(&c.replica, &c.dir, &["--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["already_applied"], serde_json::json!([1, 2, 3, 4]), "{v}");
    assert_eq!(v["replica"]["primary"], PRIMARY, "{v}");
    let mut st = wasmig(&["status", "--trust"]);
    st.arg(test_pub("dev")).arg("--db").arg(&c.replica).arg(&c.dir);
    let o = st.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).matches(" applied ").count(), 4, "{}", text(&o));
    assert_eq!(std::fs::read(&c.replica).unwrap(), before);
    assert_eq!(listing(c.replica_dir()), [".primary", "app.db"]);
}

#[test]
fn a_replica_that_times_out_exits_6_and_leaves_the_file_unchanged() {
    let c = Cluster::new();
    pack_examples(&c.dir, 2);
    let o = apply(&c.primary, &c.dir, &[]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    pack_examples(&c.dir, 4);
    let before = std::fs::read(&c.replica).unwrap();
    let o = apply(&c.replica, &c.dir, &["--replica-wait", "0.5"]).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(6), "{t}");
    assert!(t.contains("migration(s) 3, 4 have not reached it after waiting"), "{t}");
    assert!(t.contains(PRIMARY), "{t}");
    assert_eq!(std::fs::read(&c.replica).unwrap(), before, "byte for byte as it was");
    assert_eq!(listing(c.replica_dir()), [".primary", "app.db"]);
    assert_eq!(ledger_ids(&c.primary), vec![1, 2]);
}

#[test]
fn a_drifted_digest_on_a_replica_is_refused_at_once_not_waited_for() {
    let c = Cluster::new();
    pack_examples(&c.dir, 1);
    let o = apply(&c.primary, &c.dir, &[]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // This release's file 1 is not what the primary applied: replication
    // cannot make the digests agree, so waiting would change nothing.
    let other = c.dir.parent().unwrap().join("other");
    std::fs::create_dir(&other).unwrap();
    pack(&other, "testing-append-log", 1, "baseline");
    pack(&other, "example-add-index", 2, "add_index");
    let before = std::fs::read(&c.replica).unwrap();
    // Were it waiting, this would end in exit 6 after ten minutes.
    let o = apply(&c.replica, &other, &["--replica-wait", "600"]).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("drift: migration 1 (baseline)"), "{t}");
    assert_eq!(std::fs::read(&c.replica).unwrap(), before);

    // Accepting the change writes the ledger: refused on the replica.
    let mut accept = wasmig(&["accept-drift", "--id", "1", "--reason", "rebuilt", "--trust"]);
    accept.arg(test_pub("dev")).arg("--db").arg(&c.replica).arg(&other);
    let o = accept.output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("LiteFS replica of node-a.internal") && t.contains("on the primary"), "{t}");
    assert_eq!(std::fs::read(&c.replica).unwrap(), before);
    assert_eq!(listing(c.replica_dir()), [".primary", "app.db"]);
}

#[test]
fn a_fleet_treats_each_database_separately() {
    let c = Cluster::new();
    pack_examples(&c.dir, 2);
    let other = c.dir.parent().unwrap().join("tenant.db");
    let before = std::fs::read(&c.replica).unwrap();
    let mut cmd = apply(&c.replica, &c.dir, &["--jobs", "1"]);
    cmd.arg("--db").arg(&other);
    let o = cmd.output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(6), "{t}");
    assert!(t.contains("1 of 2 databases failed") && t.contains(PRIMARY), "{t}");
    assert_eq!(ledger_ids(&other), vec![1, 2], "the writable database was migrated");
    assert_eq!(std::fs::read(&c.replica).unwrap(), before, "the replica was not");
    assert_eq!(listing(c.replica_dir()), [".primary", "app.db"]);
}

/// The journal mode a database file says it is in: bytes 18 and 19 of the
/// header are 2 for WAL and 1 for a rollback journal.
fn header_mode(db: &Path) -> (u8, u8) {
    let bytes = std::fs::read(db).unwrap();
    (bytes[18], bytes[19])
}

fn journal_mode(db: &Path) -> String {
    Connection::open(db).unwrap().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap()
}

#[test]
fn apply_in_every_mode_leaves_the_journal_mode_as_it_found_it() {
    for mode in ["WAL", "DELETE", "TRUNCATE"] {
        let t = TempDir::new().unwrap();
        let dir = t.path().join("m");
        std::fs::create_dir(&dir).unwrap();
        pack_examples(&dir, 4);
        let dbs: Vec<PathBuf> = (0..4).map(|i| t.path().join(format!("db{i}.db"))).collect();
        for db in &dbs {
            let conn = Connection::open(db).unwrap();
            let set: String =
                conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0)).unwrap();
            assert_eq!(set, mode.to_lowercase());
            conn.execute_batch("CREATE TABLE app (x); INSERT INTO app VALUES (1);").unwrap();
        }
        let header = header_mode(&dbs[0]);
        assert_eq!(header, if mode == "WAL" { (2, 2) } else { (1, 1) }, "{mode}");
        let db = |i: usize| dbs[i].to_str().unwrap().to_owned();
        let trust = test_pub("dev");
        let trust = trust.to_str().unwrap();
        let dir_s = dir.to_str().unwrap();
        let runs: Vec<Vec<String>> = vec![
            vec!["test".into(), "--db".into(), db(0), "--trust".into(), trust.into(), dir_s.into()],
            vec![
                "status".into(),
                "--rehearse".into(),
                "--db".into(),
                db(0),
                "--trust".into(),
                trust.into(),
                dir_s.into(),
            ],
            vec![
                "apply".into(),
                "--dry-run".into(),
                "--db".into(),
                db(0),
                "--trust".into(),
                trust.into(),
                dir_s.into(),
            ],
            vec!["apply".into(), "--db".into(), db(0), "--trust".into(), trust.into(), dir_s.into()],
            vec![
                "apply".into(),
                "--single-transaction".into(),
                "--db".into(),
                db(1),
                "--trust".into(),
                trust.into(),
                dir_s.into(),
            ],
            vec![
                "apply".into(),
                "--db".into(),
                db(2),
                "--db".into(),
                db(3),
                "--trust".into(),
                trust.into(),
                dir_s.into(),
            ],
            // Nothing pending: the no-op start-up.
            vec!["apply".into(), "--db".into(), db(0), "--trust".into(), trust.into(), dir_s.into()],
        ];
        for args in &runs {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = wasmig(&args).output().unwrap();
            assert!(o.status.success(), "{mode} {args:?}: {}", text(&o));
        }
        for db in &dbs {
            assert_eq!(ledger_ids(db), vec![1, 2, 3, 4], "{mode}");
            assert_eq!(header_mode(db), header, "{mode}: {}", db.display());
            // A rollback-journal mode other than WAL is the connection's
            // choice, not the file's: a fresh connection reads DELETE. What
            // must hold is that nothing turned the file into WAL.
            let expected = if mode == "WAL" { "wal" } else { "delete" };
            assert_eq!(journal_mode(db), expected, "{mode}: {}", db.display());
            if mode != "WAL" {
                let wal = PathBuf::from(format!("{}-wal", db.display()));
                assert!(!wal.exists(), "{mode}: {} appeared", wal.display());
            }
        }
    }
}
