//! Imported migration histories end exactly where SQLite itself ends when it
//! runs the same files one transaction each: same `sqlite_schema` (type,
//! name, table, SQL) and same rows.

use std::path::Path;

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig::ImportTool as Tool;
use wasmig::Manifest;
use wasmig::Snapshot;
use wasmig_test_support::*;

/// A realistic history: tables, indexes, strings and comments full of `;`,
/// triggers (whose bodies contain `;`), a column rename, a view, a 12-step
/// table rebuild, data fixes and a table rename.
const HISTORY: &[(&str, &str)] = &[
    ("create_users", "
-- users; the first table
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);
INSERT INTO users (email, name) VALUES ('ada@example.org', 'Ada; Countess'), ('bob@example.org', 'Bob ''the builder''');
"),
    ("create_posts", "
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    body TEXT DEFAULT 'empty; for now' -- trailing comment; here
);
CREATE INDEX posts_user ON posts (user_id);
/* seed data; two posts */
INSERT INTO posts (user_id, title, body) VALUES (1, '  On engines  ', 'a -- not a comment'), (2, 'Bricks', \"x\" || ';');
"),
    ("add_timestamps", "
ALTER TABLE users ADD COLUMN created_at TEXT;
UPDATE users SET created_at = '2024-01-0' || id;
"),
    ("audit_trigger", "
CREATE TABLE audit (id INTEGER PRIMARY KEY, action TEXT NOT NULL, at TEXT);
CREATE TRIGGER posts_audit AFTER INSERT ON posts BEGIN
    INSERT INTO audit (action, at) VALUES ('insert; post ' || new.id, 'then');
    UPDATE users SET created_at = coalesce(created_at, 'end;') WHERE id = new.user_id;
END;
INSERT INTO posts (user_id, title) VALUES (1, 'Triggered');
"),
    ("rename_column", "
ALTER TABLE users RENAME COLUMN name TO display_name;
CREATE VIEW user_posts AS SELECT u.display_name AS \"end\", p.title FROM users u JOIN posts p ON p.user_id = u.id;
"),
    ("rebuild_posts", "
CREATE TABLE posts_new (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    title TEXT NOT NULL CHECK (length(title) > 0),
    body TEXT DEFAULT 'empty; for now'
);
INSERT INTO posts_new (id, user_id, title, body) SELECT id, user_id, title, body FROM posts;
DROP VIEW user_posts;
DROP TABLE posts;
ALTER TABLE posts_new RENAME TO posts;
CREATE INDEX posts_user ON posts (user_id);
CREATE TRIGGER posts_audit AFTER INSERT ON posts BEGIN
    INSERT INTO audit (action, at) VALUES ('insert; post ' || new.id, 'then');
END;
CREATE VIEW user_posts AS SELECT u.display_name AS \"end\", p.title FROM users u JOIN posts p ON p.user_id = u.id;
"),
    ("data_fix", "
UPDATE posts SET title = trim(title);
DELETE FROM audit WHERE id > 100; /* nothing; yet */
INSERT INTO posts (user_id, title) VALUES (2, 'After the fix');
"),
    ("rename_table", "ALTER TABLE audit RENAME TO audit_log"),
];

/// Writes HISTORY in `tool`'s layout, with each tool's own decorations (down
/// sections, statement markers) that an importer must handle or ignore.
fn write_history(dir: &Path, tool: Tool) {
    for (i, (name, sql)) in HISTORY.iter().enumerate() {
        let n = i + 1;
        let down = format!("DROP TABLE IF EXISTS never_{n};");
        match tool {
            Tool::Diesel => {
                let d = dir.join(format!("2024-01-{n:02}-000000_{name}"));
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("up.sql"), sql).unwrap();
                std::fs::write(d.join("down.sql"), down).unwrap();
            }
            Tool::Sqlx => {
                let v = 20240101000000u64 + n as u64;
                if n % 2 == 0 {
                    std::fs::write(dir.join(format!("{v}_{name}.up.sql")), sql).unwrap();
                    std::fs::write(dir.join(format!("{v}_{name}.down.sql")), down).unwrap();
                } else {
                    std::fs::write(dir.join(format!("{v}_{name}.sql")), sql).unwrap();
                }
            }
            Tool::Refinery => std::fs::write(dir.join(format!("V{n}__{name}.sql")), sql).unwrap(),
            Tool::Goose => {
                let body = sql
                    .replace("CREATE TRIGGER", "-- +goose StatementBegin\nCREATE TRIGGER")
                    .replace("END;\n", "END;\n-- +goose StatementEnd\n");
                let text = format!("-- +goose Up\n{body}\n-- +goose Down\n{down}\n");
                std::fs::write(dir.join(format!("{n:05}_{name}.sql")), text).unwrap();
            }
            Tool::Dbmate => {
                let text = format!("-- migrate:up\n{sql}\n\n-- migrate:down\n{down}\n");
                std::fs::write(dir.join(format!("2024010100000{n}_{name}.sql")), text).unwrap();
            }
        }
    }
    std::fs::write(dir.join(".keep"), "").unwrap();
}

/// What SQLite produces running each file's up SQL in its own transaction.
fn reference() -> Snapshot {
    let conn = Connection::open_in_memory().unwrap();
    for (_, sql) in HISTORY {
        conn.execute_batch(&format!("BEGIN;\n{sql}\n;COMMIT;")).unwrap();
    }
    Snapshot::take(&conn).unwrap()
}

fn without_ledger(mut s: Snapshot) -> Snapshot {
    s.schema.retain(|o| !o.table.starts_with("schema_migrations"));
    s.rows.retain(|t, _| !t.starts_with("schema_migrations"));
    s
}

#[test]
fn every_tools_history_imports_to_the_same_database_as_sqlite() {
    let expected = reference();
    assert!(expected.rows["posts"].len() == 4 && expected.rows["audit_log"].len() == 2, "{expected:?}");
    for tool in [Tool::Diesel, Tool::Sqlx, Tool::Refinery, Tool::Goose, Tool::Dbmate] {
        let t = TempDir::new().unwrap();
        let src = t.path().join("src");
        let out = t.path().join("out");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        write_history(&src, tool);
        let found = wasmig::import_dir(&src, tool).unwrap();
        assert_eq!(found.len(), HISTORY.len(), "{tool:?}");
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, HISTORY.iter().map(|h| h.0).collect::<Vec<_>>(), "{tool:?}: order preserved");
        let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
        for f in &found {
            let component =
                wasmig::component_for_sql(&f.sql).unwrap_or_else(|e| panic!("{tool:?} {}: {e}", f.name));
            // The history renames a column and a table: declared, as
            // `import --destructive` does (undeclared, apply refuses them).
            let manifest = Manifest {
                capabilities: vec![wasmig::CAP_DESTRUCTIVE.to_owned()],
                ..Manifest::new(f.id, f.name.clone())
            };
            let bytes = wasmig::pack(&component, &manifest, Some(&sk)).unwrap();
            std::fs::write(out.join(manifest.file_name()), bytes).unwrap();
        }
        let db = t.path().join("app.db");
        let mut conn = Connection::open(&db).unwrap();
        let report = migrator(&out).unwrap().apply(&mut conn).unwrap();
        assert_eq!(report.applied.len(), HISTORY.len());
        let got = without_ledger(Snapshot::take(&conn).unwrap());
        assert_eq!(got, expected, "{tool:?}");
        // Ids are the tools' versions, so they stay put when imported again.
        let again = wasmig::import_dir(&src, tool).unwrap();
        assert_eq!(
            again.iter().map(|f| f.id).collect::<Vec<_>>(),
            found.iter().map(|f| f.id).collect::<Vec<_>>()
        );
    }
}

#[test]
fn importer_refuses_what_it_cannot_honour() {
    let t = TempDir::new().unwrap();
    let d = t.path();
    std::fs::write(d.join("00001_x.sql"), "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE a (x);\n")
        .unwrap();
    assert!(wasmig::import_dir(d, Tool::Goose).unwrap_err().to_string().contains("NO TRANSACTION"));
    std::fs::remove_file(d.join("00001_x.sql")).unwrap();
    std::fs::write(d.join("1_x.sql"), "-- migrate:up transaction:false\nCREATE TABLE a (x);\n").unwrap();
    assert!(wasmig::import_dir(d, Tool::Dbmate).unwrap_err().to_string().contains("transaction:false"));
    std::fs::write(d.join("1_x.sql"), "CREATE TABLE a (x);\nBEGIN;\n").unwrap();
    let found = wasmig::import_dir(d, Tool::Sqlx).unwrap();
    let e = wasmig::component_for_sql(&found[0].sql).unwrap_err();
    assert_eq!(e.line, 2);
    std::fs::write(d.join("01_y.sql"), "SELECT 1;").unwrap();
    assert!(wasmig::import_dir(d, Tool::Sqlx).unwrap_err().to_string().contains("version 1 appears twice"));
}

#[test]
fn a_failing_statement_rolls_back_the_whole_script() {
    let tmp = TempDir::new().unwrap();
    let mut conn = Connection::open(tmp.path().join("a.db")).unwrap();
    let component = wasmig::component_for_sql(
        "CREATE TABLE first (x);\nINSERT INTO first VALUES (1);\nINSERT INTO missing VALUES (2);\nCREATE TABLE never (y);",
    )
    .unwrap();
    let err = wasmig::testing::assert_fails_unchanged(&component, &mut conn).to_string();
    assert!(err.contains("no such table: missing"), "{err}");
    assert!(err.contains("INSERT INTO missing VALUES (2);"), "the statement is named: {err}");
}

#[test]
fn large_scripts_pack_and_apply() {
    // About 1 MB of SQL in 20,000 statements.
    let mut script = String::from("CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT);\n");
    for i in 0..20_000 {
        script.push_str(&format!(
            "INSERT INTO big (id, payload) VALUES ({i}, '{}; row {i}');\n",
            "x".repeat(20)
        ));
    }
    assert!(script.len() > 1_000_000);
    let component = wasmig::component_for_sql(&script).unwrap();
    let mut conn = Connection::open_in_memory().unwrap();
    let applied = wasmig::testing::assert_applies(&component, &mut conn);
    assert_eq!(applied.stats.rows_changed, 20_000);
    assert_eq!(rows(&conn, "SELECT count(*), sum(id) FROM big"), vec!["20000 | 199990000"]);
}
