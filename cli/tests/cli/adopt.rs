//! Switching from another tool: `import`, then `adopt` (or `baseline`),
//! then `apply`, on real files with the binary. Each tool's ledger is built
//! here exactly as that tool's source defines it (the file is named at each
//! one), after running the scripts it would have run; then nothing re-runs,
//! the database is unchanged apart from wasmig's ledger, and the migration
//! the tool had not run applies. Every refusal exits 3 and writes nothing.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;
use sha2::Digest;
use tempfile::TempDir;
use wasmig_test_support::*;

fn wasmig(args: &[&str]) -> Output {
    let mut cmd = crate::wasmig_command();
    cmd.args(args);
    if matches!(args.first(), Some(&"apply" | &"adopt" | &"baseline")) {
        cmd.arg("--trust").arg(test_pub("dev"));
    }
    cmd.output().expect("running wasmig")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The history every layout holds: a table with a row (re-running it would
/// fail, or duplicate the row), a comment-only step, a second table, and a
/// migration the old tool has not run yet.
const STEPS: [(&str, &str); 4] = [
    (
        "users",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO users (name) VALUES ('ada');\n",
    ),
    ("noop", "-- Kept for the record: nothing to do.\n"),
    ("posts", "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));\n"),
    ("tags", "CREATE TABLE tags (name TEXT);\n"),
];

/// How many of STEPS the old tool ran.
const RAN: usize = 3;

struct Switch {
    _tmp: TempDir,
    src: PathBuf,
    out: PathBuf,
    db: PathBuf,
}

/// The tool's files for STEPS (irregular version shapes where the tool
/// allows them), the files of each step, and the SQL that builds the
/// tool's ledger for the first RAN steps.
fn layout(tool: &str) -> (Vec<(String, String)>, String) {
    let files: Vec<(String, String)> = STEPS
        .iter()
        .enumerate()
        .flat_map(|(i, (name, sql))| {
            let sql = sql.to_string();
            match tool {
                "diesel" => {
                    // A date followed by `_` among date-time folders.
                    let v = ["2024-01-01-000000", "2024-01-02", "2024-01-02-000000", "2024-01-03-000000"][i];
                    vec![
                        (format!("{v}_{name}/up.sql"), sql),
                        (format!("{v}_{name}/down.sql"), "SELECT 1;".into()),
                    ]
                }
                "sqlx" => {
                    let v = ["1", "02", "10", "11"][i];
                    if i == 1 {
                        vec![(format!("{v}_{name}.up.sql"), sql), (format!("{v}_{name}.down.sql"), "".into())]
                    } else {
                        vec![(format!("{v}_{name}.sql"), sql)]
                    }
                }
                "refinery" => vec![(format!("V{}__{name}.sql", ["1", "2", "10", "11"][i]), sql)],
                "goose" => vec![(
                    format!("{}_{name}.sql", ["001", "2", "00010", "11"][i]),
                    format!("-- +goose Up\n{sql}-- +goose Down\nSELECT 1;\n"),
                )],
                // A shorter version between longer ones: dbmate sorts file names.
                "dbmate" => vec![(
                    format!(
                        "{}_{name}.sql",
                        ["20240101000010", "2024010100001", "20240101000020", "20240101000030"][i]
                    ),
                    format!("-- migrate:up\n{sql}\n-- migrate:down\nSELECT 1;\n"),
                )],
                "golang-migrate" => {
                    let v = ["1", "2", "10", "11"][i];
                    vec![
                        (format!("{v}_{name}.up.sql"), sql),
                        (format!("{v}_{name}.down.sql"), "SELECT 1;".into()),
                    ]
                }
                other => panic!("{other}"),
            }
        })
        .collect();
    let up_files: Vec<&(String, String)> =
        files.iter().filter(|(f, _)| !f.contains("down.sql")).take(RAN).collect();
    let ledger = match tool {
        // diesel/src/migration/setup_migration_table.sql
        "diesel" => {
            let mut sql = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
                version VARCHAR(50) PRIMARY KEY NOT NULL,
                run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n"
                .to_owned();
            for v in ["20240101000000", "20240102", "20240102000000"] {
                sql += &format!("INSERT INTO __diesel_schema_migrations (version) VALUES ('{v}');\n");
            }
            sql
        }
        // sqlx-sqlite/src/migrate.rs, ensure_migrations_table and apply
        "sqlx" => {
            let mut sql = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
                version BIGINT PRIMARY KEY, description TEXT NOT NULL,
                installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
                checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);\n"
                .to_owned();
            for ((file, body), v) in up_files.iter().zip([1, 2, 10]) {
                let sum = hex::encode(sha2::Sha384::digest(body.as_bytes()));
                sql += &format!(
                    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                     VALUES ({v}, '{file}', TRUE, x'{sum}', 1234);\n"
                );
            }
            sql
        }
        // refinery_core/src/traits/mod.rs, ASSERT_MIGRATIONS_TABLE_QUERY and
        // insert_migration_query; the checksum as runner.rs computes it
        // (SipHash-1-3, keys 0: today's DefaultHasher::new()).
        "refinery" => {
            let mut sql = "CREATE TABLE IF NOT EXISTS refinery_schema_history(
                version int4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255));\n"
                .to_owned();
            for (((_, body), v), (name, _)) in up_files.iter().zip([1i32, 2, 10]).zip(STEPS) {
                #[allow(deprecated)]
                let mut h = std::collections::hash_map::DefaultHasher::new();
                name.to_owned().hash(&mut h);
                v.hash(&mut h);
                body.hash(&mut h);
                sql += &format!(
                    "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
                     VALUES ({v}, '{name}', '2024-01-0{v}T00:00:00Z', '{}');\n",
                    h.finish()
                );
            }
            sql
        }
        // goose internal/dialects/sqlite3.go (CreateTable, InsertVersion) and
        // migrate.go createVersionTable (the version 0 row)
        "goose" => "CREATE TABLE goose_db_version (
                id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL,
                is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));
             INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (2, 1), (10, 1);"
            .to_owned(),
        // dbmate pkg/driver/sqlite/sqlite.go (CreateMigrationsTable, InsertMigration)
        "dbmate" => "create table if not exists schema_migrations (version varchar(128) primary key);
             insert into schema_migrations (version) values ('20240101000010'), ('2024010100001'), ('20240101000020');"
            .to_owned(),
        // golang-migrate database/sqlite3/sqlite3.go (ensureVersionTable, SetVersion)
        "golang-migrate" => "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool);
             CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);
             INSERT INTO schema_migrations (version, dirty) VALUES (10, false);"
            .to_owned(),
        other => panic!("{other}"),
    };
    (files, ledger)
}

/// Writes `tool`'s files, imports them (signed with test key "dev"), and
/// builds the database the tool left: the first RAN steps run, its ledger.
fn switch(tool: &str) -> Switch {
    let tmp = TempDir::new().unwrap();
    let (src, out, db) = (tmp.path().join("src"), tmp.path().join("out"), tmp.path().join("app.db"));
    let (files, ledger) = layout(tool);
    for (name, body) in &files {
        let p = src.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let key = test_key("dev");
    let o = wasmig(&["import", s(&src), "--from", tool, "--key", s(&key), "--out", s(&out)]);
    assert!(o.status.success(), "{tool}: {}", text(&o));
    assert!(text(&o).contains("1 with no statements"), "{tool}: {}", text(&o));
    let conn = Connection::open(&db).unwrap();
    for (_, sql) in &STEPS[..RAN] {
        conn.execute_batch(&format!("BEGIN; {sql} COMMIT;")).unwrap();
    }
    conn.execute_batch(&ledger).unwrap();
    Switch { _tmp: tmp, src, out, db }
}

/// Where adoption moves dbmate's and golang-migrate's `schema_migrations`.
const RENAMED: [&str; 2] = ["dbmate_schema_migrations", "golang_migrate_schema_migrations"];

/// The database without wasmig's tables, and with the old tool's
/// `schema_migrations` under the name adoption gives it.
fn user_visible(db: &Path) -> Snapshot {
    let mut snap = snapshot(db);
    snap.schema.retain(|o| !o.table.starts_with("schema_migrations"));
    snap.rows.retain(|t, _| !t.starts_with("schema_migrations"));
    for t in RENAMED {
        if let Some(rows) = snap.rows.remove(t) {
            snap.rows.insert("theirs".into(), rows);
        }
    }
    snap
}

use wasmig::Snapshot;

#[test]
fn each_tool_adopts_then_apply_runs_only_what_it_had_not_run() {
    for tool in ["diesel", "sqlx", "refinery", "goose", "dbmate", "golang-migrate"] {
        let sw = switch(tool);
        // Before: dbmate's and golang-migrate's table still has the name
        // wasmig's ledger takes.
        let mut before = snapshot(&sw.db);
        if let Some(rows) = before.rows.remove("schema_migrations") {
            before.rows.insert("theirs".into(), rows);
        }
        before.schema.retain(|o| o.table != "schema_migrations");
        let bytes = std::fs::read(&sw.db).unwrap();

        // --dry-run prints the mapping and writes nothing.
        let o = wasmig(&["adopt", "--db", s(&sw.db), "--from", tool, "--dry-run", s(&sw.out)]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        let out = text(&o);
        assert!(out.contains("would record 3 migration(s)") && out.contains("1 pending"), "{tool}: {out}");
        assert!(out.contains(" noop (applied"), "{tool}: {out}");
        assert_eq!(std::fs::read(&sw.db).unwrap(), bytes, "{tool}: dry run wrote");
        let o = wasmig(&["adopt", "--db", s(&sw.db), "--from", tool, "--dry-run", "--json", s(&sw.out)]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["dry_run"], true, "{tool}: {v}");
        assert_eq!(v["tool"], *tool, "{tool}: {v}");
        assert_eq!(v["recorded"].as_array().map(Vec::len), Some(3), "{tool}: {v}");
        assert_eq!(v["pending"].as_array().map(Vec::len), Some(1), "{tool}: {v}");
        assert_eq!(std::fs::read(&sw.db).unwrap(), bytes, "{tool}: dry run wrote");

        let o = wasmig(&["adopt", "--db", s(&sw.db), "--from", tool, s(&sw.out)]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        let mut after = user_visible(&sw.db);
        after.schema.retain(|o| !RENAMED.contains(&o.table.as_str()));
        assert_eq!(after.rows, before.rows, "{tool}: adoption changed only wasmig's ledger");
        assert_eq!(after.schema, before.schema, "{tool}");
        let conn = Connection::open(&sw.db).unwrap();
        assert_eq!(ledger_ids(&sw.db).len(), 3, "{tool}");
        assert_eq!(
            rows(&conn, "SELECT action FROM schema_migrations_audit"),
            vec!["'adopt'"],
            "{tool}: one audit row"
        );
        drop(conn);

        // Then apply runs the one migration the tool had not run.
        let o = wasmig(&["apply", "--db", s(&sw.db), s(&sw.out)]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        assert!(text(&o).contains("1 applied, 3 already applied"), "{tool}: {}", text(&o));
        let conn = Connection::open(&sw.db).unwrap();
        assert_eq!(rows(&conn, "SELECT count(*) FROM users"), vec!["1"], "{tool}: nothing re-ran");
        assert!(has_table(&sw.db, "tags"), "{tool}");

        // A second adoption is refused and writes nothing.
        let bytes = std::fs::read(&sw.db).unwrap();
        let o = wasmig(&["adopt", "--db", s(&sw.db), "--from", tool, s(&sw.out)]);
        assert_eq!(o.status.code(), Some(3), "{tool}: {}", text(&o));
        assert!(text(&o).contains("already"), "{tool}: {}", text(&o));
        assert_eq!(std::fs::read(&sw.db).unwrap(), bytes, "{tool}");

        // Importing again gives the same files, byte for byte.
        let again = sw.src.parent().unwrap().join("again");
        let key = test_key("dev");
        let o = wasmig(&["import", s(&sw.src), "--from", tool, "--key", s(&key), "--out", s(&again)]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        let listing = |d: &Path| {
            let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(listing(&again), listing(&sw.out), "{tool}: re-import is stable");
    }
}

/// `adopt` on a copy of `tool`'s database after `damage`: exit 3, naming
/// `says`, and the file byte for byte as it was.
fn refused(tool: &str, damage: &str, says: &str) {
    let sw = switch(tool);
    Connection::open(&sw.db).unwrap().execute_batch(damage).unwrap();
    let bytes = std::fs::read(&sw.db).unwrap();
    let o = wasmig(&["adopt", "--db", s(&sw.db), "--from", tool, s(&sw.out)]);
    assert_eq!(o.status.code(), Some(3), "{tool} {damage}: {}", text(&o));
    assert!(text(&o).contains(says), "{tool} {damage}: {}", text(&o));
    assert_eq!(std::fs::read(&sw.db).unwrap(), bytes, "{tool} {damage}: nothing written");
}

#[test]
fn adoption_refuses_a_ledger_that_does_not_match() {
    refused(
        "sqlx",
        "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 10",
        "the file changed after sqlx ran it",
    );
    refused(
        "refinery",
        "UPDATE refinery_schema_history SET checksum = '1' WHERE version = 2",
        "checksum siphash13:1",
    );
    refused(
        "sqlx",
        "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 10",
        "recorded migration 10 as failed",
    );
    refused("golang-migrate", "UPDATE schema_migrations SET dirty = true", "dirty at version 10");
    refused(
        "sqlx",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (5, 'x', 1, x'00', 0)",
        "records version 5 as applied, but no plugin",
    );
    refused(
        "diesel",
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20230101')",
        "version 20230101",
    );
    refused("golang-migrate", "UPDATE schema_migrations SET version = 7", "version 7");
    refused("goose", "DROP TABLE goose_db_version", "no goose_db_version table");
    refused("dbmate", "CREATE TABLE dbmate_schema_migrations (x)", "a table dbmate_schema_migrations exists");
}

#[test]
fn adoption_refuses_an_untrusted_plugin_and_a_missing_database() {
    let sw = switch("sqlx");
    let bytes = std::fs::read(&sw.db).unwrap();
    let o = crate::wasmig_command()
        .args(["adopt", "--db", s(&sw.db), "--from", "sqlx", "--trust", s(&test_pub("other")), s(&sw.out)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(std::fs::read(&sw.db).unwrap(), bytes);
    let missing = sw.db.with_file_name("missing.db");
    let o = wasmig(&["adopt", "--db", s(&missing), "--from", "sqlx", s(&sw.out)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(!missing.exists());
    let o = wasmig(&["adopt", "--db", s(&sw.db), "--from", "flyway", s(&sw.out)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[test]
fn apply_before_adopting_from_dbmate_is_refused_and_says_adopt() {
    for tool in ["dbmate", "golang-migrate"] {
        let sw = switch(tool);
        let bytes = std::fs::read(&sw.db).unwrap();
        let o = wasmig(&["apply", "--db", s(&sw.db), s(&sw.out)]);
        assert_eq!(o.status.code(), Some(3), "{tool}: {}", text(&o));
        assert!(text(&o).contains("wasmig adopt"), "{tool}: {}", text(&o));
        assert_eq!(std::fs::read(&sw.db).unwrap(), bytes, "{tool}");
    }
}

#[test]
fn baseline_marks_a_hand_migrated_database_then_apply_runs_the_rest() {
    let sw = switch("sqlx");
    // A database migrated by hand: the same schema, no ledger at all.
    Connection::open(&sw.db).unwrap().execute_batch("DROP TABLE _sqlx_migrations").unwrap();
    let bytes = std::fs::read(&sw.db).unwrap();
    for (args, says) in
        [(vec!["--up-to", "3"], "no plugin has id 3"), (vec!["--up-to", "x"], "invalid value")]
    {
        let mut a = vec!["baseline", "--db", s(&sw.db)];
        a.extend(args);
        a.push(s(&sw.out));
        let o = wasmig(&a);
        assert!(matches!(o.status.code(), Some(2 | 3)), "{}", text(&o));
        assert!(text(&o).contains(says), "{}", text(&o));
        assert_eq!(std::fs::read(&sw.db).unwrap(), bytes);
    }
    let o = wasmig(&["baseline", "--db", s(&sw.db), "--up-to", "10", "--json", s(&sw.out)]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<_> = v["recorded"].as_array().unwrap().iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, [1, 2, 10].map(serde_json::Value::from), "{v}");
    assert_eq!((v["dry_run"].clone(), v["tool"].clone()), (false.into(), serde_json::Value::Null), "{v}");
    assert_eq!(ledger_ids(&sw.db), vec![1, 2, 10]);
    let conn = Connection::open(&sw.db).unwrap();
    assert_eq!(rows(&conn, "SELECT id, action FROM schema_migrations_audit"), vec!["10 | 'baseline'"]);
    drop(conn);
    // Refused once anything up to the id is recorded.
    let bytes = std::fs::read(&sw.db).unwrap();
    let o = wasmig(&["baseline", "--db", s(&sw.db), "--up-to", "2", s(&sw.out)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(std::fs::read(&sw.db).unwrap(), bytes);
    let o = wasmig(&["apply", "--db", s(&sw.db), s(&sw.out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ledger_ids(&sw.db), vec![1, 2, 10, 11]);
    assert!(has_table(&sw.db, "tags"));
}

#[test]
fn import_foreign_keys_off_packs_the_capability_and_inspect_shows_provenance() {
    let sw = switch("goose");
    let fk = sw.src.parent().unwrap().join("fk");
    let o = wasmig(&["import", s(&sw.src), "--from", "goose", "--foreign-keys-off", "--out", s(&fk)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = wasmig(&["inspect", s(&fk.join("0010_posts.wasm")), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["manifest"]["capabilities"], serde_json::json!(["foreign-keys-off"]));
    let p = &v["manifest"]["provenance"];
    assert_eq!(
        (p["tool"].as_str(), p["file"].as_str(), p["version"].as_str()),
        (Some("goose"), Some("00010_posts.sql"), Some("10"))
    );
    let body = std::fs::read(sw.src.join("00010_posts.sql")).unwrap();
    assert_eq!(p["digest"], format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body))));
    let o = wasmig(&["inspect", s(&sw.out.join("0010_posts.wasm"))]);
    assert!(text(&o).contains("imported:   from goose 00010_posts.sql (version 10)"), "{}", text(&o));
    // Without the flag, goose's default is named.
    let plain = sw.src.parent().unwrap().join("plain");
    let o = wasmig(&["import", s(&sw.src), "--from", "goose", "--out", s(&plain)]);
    assert!(text(&o).contains("usually runs with foreign keys off"), "{}", text(&o));
}

/// The real tools (`tests/tool-peer`, built by `just tool-peer`; `just test`
/// runs this with `--ignored`) apply the first steps and leave their own
/// ledger; import, adopt and apply then run nothing again, and the step the
/// tool had not run applies.
#[test]
#[ignore = "needs the real tools: `just test` builds tests/tool-peer and runs this"]
fn real_tools_leave_a_ledger_that_adopts() {
    let peer = std::env::var_os("WASMIG_TOOL_PEER").expect("WASMIG_TOOL_PEER names the tool peer binary");
    for tool in ["diesel", "sqlx", "refinery"] {
        let tmp = TempDir::new().unwrap();
        let (src, out, db) = (tmp.path().join("src"), tmp.path().join("out"), tmp.path().join("app.db"));
        let (files, _) = layout(tool);
        let write = |later: bool| {
            for (name, body) in files.iter().filter(|(n, _)| n.contains("tags") == later) {
                let p = src.join(name);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, body).unwrap();
            }
        };
        write(false);
        let o = Command::new(&peer).args([tool, s(&src), s(&db)]).output().unwrap();
        assert!(o.status.success(), "{tool} itself: {}", text(&o));
        // Adding a migration the tool has not run yet, then switching.
        write(true);
        let key = test_key("dev");
        let o = wasmig(&["import", s(&src), "--from", tool, "--key", s(&key), "--out", s(&out)]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        let before = snapshot(&db);
        let o = wasmig(&["adopt", "--db", s(&db), "--from", tool, s(&out)]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        assert!(text(&o).contains("recorded 3 migration(s)"), "{tool}: {}", text(&o));
        let after = user_visible(&db);
        assert_eq!(
            (after.schema, after.rows),
            (before.schema, before.rows),
            "{tool}: only wasmig's ledger added"
        );
        let o = wasmig(&["apply", "--db", s(&db), s(&out)]);
        assert!(o.status.success(), "{tool}: {}", text(&o));
        assert!(text(&o).contains("1 applied, 3 already applied"), "{tool}: {}", text(&o));
        let conn = Connection::open(&db).unwrap();
        assert_eq!(rows(&conn, "SELECT count(*) FROM users"), vec!["1"], "{tool}: nothing re-ran");
        assert!(has_table(&db, "tags"), "{tool}");
    }
}
