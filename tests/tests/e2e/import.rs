//! Imported migration histories end exactly where SQLite itself ends when it
//! runs the same files one transaction each: same `sqlite_schema` (type,
//! name, table, SQL) and same rows.

use std::path::Path;

use rusqlite::Connection;
use sha2::Digest;
use tempfile::TempDir;
use wasmig::ImportTool as Tool;
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
    ("nothing_yet", "-- A step kept for the record; it has no statements.\n/* none; at all */\n"),
    ("rename_table", "ALTER TABLE audit RENAME TO audit_log"),
];

/// Versions of irregular shapes that each tool still runs in HISTORY's
/// order: numbers of mixed widths (numeric tools), a diesel date followed
/// by `_` among `date-time` folders, a shorter dbmate version between
/// longer ones (dbmate sorts file names).
const NUMERIC: [&str; 9] = ["001", "2", "03", "9", "10", "011", "100", "1000", "2024010"];
const DIESEL: [&str; 9] = [
    "2024-01-01-000000",
    "2024-01-02-000000",
    "2024-01-03-000000",
    "2024-01-04-000000",
    "2024-01-05",
    "2024-01-05-000000",
    "2024-01-06-000000",
    "2024-01-07-000000",
    "2024-01-08-120000",
];
const DBMATE: [&str; 9] = [
    "20240101000010",
    "20240101000011",
    "2024010100001",
    "20240101000020",
    "20240101000021",
    "20240101000030",
    "20240101000031",
    "20240101000040",
    "20240101000041",
];

/// Writes HISTORY in `tool`'s layout, with each tool's own decorations (down
/// sections, statement markers) that an importer must handle or ignore.
fn write_history(dir: &Path, tool: Tool) {
    for (i, (name, sql)) in HISTORY.iter().enumerate() {
        let n = i + 1;
        let down = format!("DROP TABLE IF EXISTS never_{n};");
        let v = NUMERIC[i];
        match tool {
            Tool::Diesel => {
                let d = dir.join(format!("{}_{name}", DIESEL[i]));
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("up.sql"), sql).unwrap();
                std::fs::write(d.join("down.sql"), down).unwrap();
            }
            Tool::Sqlx => {
                if n % 2 == 0 {
                    std::fs::write(dir.join(format!("{v}_{name}.up.sql")), sql).unwrap();
                    std::fs::write(dir.join(format!("{v}_{name}.down.sql")), down).unwrap();
                } else {
                    std::fs::write(dir.join(format!("{v}_{name}.sql")), sql).unwrap();
                }
            }
            Tool::Refinery => {
                // refinery finds files in subdirectories too.
                let sub = dir.join(if n < 5 { "early" } else { "" });
                std::fs::create_dir_all(&sub).unwrap();
                std::fs::write(sub.join(format!("V{v}__{name}.sql")), sql).unwrap();
            }
            Tool::Goose => {
                let body = sql
                    .replace("CREATE TRIGGER", "-- +goose StatementBegin\nCREATE TRIGGER")
                    .replace("END;\n", "END;\n-- +goose StatementEnd\n");
                let text = format!("-- +goose Up\n{body}\n-- +goose Down\n{down}\n");
                std::fs::write(dir.join(format!("{v}_{name}.sql")), text).unwrap();
            }
            Tool::Dbmate => {
                let text = format!("-- migrate:up\n{sql}\n\n-- migrate:down\n{down}\n");
                std::fs::write(dir.join(format!("{}_{name}.sql", DBMATE[i])), text).unwrap();
            }
            Tool::GolangMigrate => {
                std::fs::write(dir.join(format!("{v}_{name}.up.sql")), sql).unwrap();
                std::fs::write(dir.join(format!("{v}_{name}.down.sql")), down).unwrap();
            }
        }
    }
    std::fs::write(dir.join(".keep"), "").unwrap();
    std::fs::write(dir.join("README.md"), "not a migration").unwrap();
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
    for tool in Tool::ALL {
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
        let no_ops: Vec<&str> = found.iter().filter(|f| f.no_op).map(|f| f.name.as_str()).collect();
        assert_eq!(no_ops, ["nothing_yet"], "{tool:?}");
        for f in &found {
            let component =
                wasmig::component_for_import(&f.sql).unwrap_or_else(|e| panic!("{tool:?} {}: {e}", f.name));
            // The history renames a column and a table: declared, as
            // `import --destructive` does (undeclared, apply refuses them).
            let mut manifest = f.manifest(false);
            manifest.capabilities.push(wasmig::CAP_DESTRUCTIVE.to_owned());
            let p = manifest.provenance.as_ref().unwrap();
            assert_eq!(p.tool, tool.label());
            let text = std::fs::read(&f.source).unwrap();
            let expected_digest = match tool {
                Tool::Sqlx => format!("sha384:{}", hex::encode(sha2::Sha384::digest(&text))),
                Tool::Refinery => p.digest.clone(), // checked against refinery's own hash in the unit tests
                _ => format!("sha256:{}", hex::encode(sha2::Sha256::digest(&text))),
            };
            assert_eq!(p.digest, expected_digest, "{tool:?} {}", f.name);
            assert!(f.source.ends_with(&p.file), "{tool:?}: {} vs {}", f.source.display(), p.file);
            let bytes = wasmig::pack(&component, &manifest, Some(&sk)).unwrap();
            std::fs::write(out.join(manifest.file_name()), bytes).unwrap();
        }
        let db = t.path().join("app.db");
        let mut conn = Connection::open(&db).unwrap();
        let report = migrator(&out).unwrap().apply(&mut conn).unwrap();
        assert_eq!(report.applied.len(), HISTORY.len());
        let got = without_ledger(Snapshot::take(&conn).unwrap());
        assert_eq!(got, expected, "{tool:?}");
        // Ids follow the versions by a fixed rule, so they stay put when
        // imported again, also after a later migration is added.
        match tool {
            Tool::Diesel => {
                let d = src.join("2025-01-01-000000_later");
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("up.sql"), "SELECT 1;").unwrap();
            }
            Tool::Dbmate => std::fs::write(
                src.join("20250101000000_later.sql"),
                "-- migrate:up\nSELECT 1;\n-- migrate:down\n",
            )
            .unwrap(),
            Tool::Refinery => std::fs::write(src.join("V3000000__later.sql"), "SELECT 1;").unwrap(),
            Tool::Goose => {
                std::fs::write(src.join("3000000_later.sql"), "-- +goose Up\nSELECT 1;\n").unwrap()
            }
            Tool::GolangMigrate => std::fs::write(src.join("3000000_later.up.sql"), "SELECT 1;").unwrap(),
            _ => std::fs::write(src.join("3000000_later.sql"), "SELECT 1;").unwrap(),
        }
        let again = wasmig::import_dir(&src, tool).unwrap();
        assert_eq!(again.len(), found.len() + 1, "{tool:?}");
        assert_eq!(again[..found.len()], found[..], "{tool:?}");
        assert_eq!(again.last().unwrap().name, "later");
    }
}

/// The irregular shapes would have run out of order under plain numeric
/// ids: the diesel date with `_` (version 20240105) and the shorter dbmate
/// version both sort where their tool runs them.
#[test]
fn irregular_versions_get_ids_in_the_tools_order() {
    for (tool, irregular, before, after) in [
        (
            Tool::Diesel,
            "2024-01-05_rename_column",
            "2024-01-04-000000_audit_trigger",
            "2024-01-05-000000_rebuild_posts",
        ),
        (Tool::Dbmate, "2024010100001_create_users", "20240101000011_x", "20240101000020_y"),
    ] {
        let t = TempDir::new().unwrap();
        write_history(t.path(), tool);
        let found = wasmig::import_dir(t.path(), tool).unwrap();
        let pos = |prefix: &str| {
            let v = prefix.split('_').next().unwrap().replace('-', "");
            found
                .iter()
                .position(|f| f.provenance.version == v)
                .unwrap_or_else(|| panic!("{tool:?} {prefix}"))
        };
        let i = pos(irregular);
        assert!(
            pos(before) < i && i < pos(after),
            "{tool:?}: {:?}",
            found.iter().map(|f| f.id).collect::<Vec<_>>()
        );
        assert!(found.windows(2).all(|w| w[0].id < w[1].id));
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

    let refused = |files: &[(&str, &str)], tool: Tool, says: &str| {
        let t = TempDir::new().unwrap();
        for (name, text) in files {
            let p = t.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let e = wasmig::import_dir(t.path(), tool).unwrap_err().to_string();
        assert!(e.contains(says), "{tool:?}: {e}");
    };
    refused(&[("2024-01-01-000000_a/up.sql", "")], Tool::Diesel, "diesel refuses to run an empty migration");
    refused(
        &[
            ("2024-01-01-000000_a/up.sql", "SELECT 1;"),
            ("2024-01-01-000000_a/metadata.toml", "run_in_transaction = false\n"),
        ],
        Tool::Diesel,
        "run_in_transaction = false",
    );
    refused(&[("2024-01-01-000000_a/down.sql", "SELECT 1;")], Tool::Diesel, "needs an up.sql");
    refused(&[("1_a.sql", "-- no-transaction\nSELECT 1;")], Tool::Sqlx, "no-transaction");
    refused(&[("x_a.sql", "SELECT 1;")], Tool::Sqlx, "integer version");
    refused(&[("1_a.sql", "-- migrate:up\nSELECT 1;\n")], Tool::Dbmate, "no '-- migrate:down'");
    refused(
        &[("1_a.sql", "SELECT 0;\n-- migrate:up\nSELECT 1;\n-- migrate:down\n")],
        Tool::Dbmate,
        "before the",
    );
    refused(&[("1_a.sql", "-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\n")], Tool::Goose, "ENVSUB ON");
    refused(&[("1_a.sql", "SELECT 1;\n")], Tool::Goose, "-- +goose Up");
    refused(&[("V1__a.rs", "")], Tool::Refinery, "Rust migrations");
    refused(&[("0_a.up.sql", "SELECT 1;")], Tool::GolangMigrate, "ids start at 1");
    // dbmate sorts `1-a.sql` before `10_b.sql` ('-' < '0'); the id rule,
    // made for the usual '_', cannot: refused rather than reordered.
    refused(
        &[("1-a.sql", "-- migrate:up\n-- migrate:down\n"), ("10_b.sql", "-- migrate:up\n-- migrate:down\n")],
        Tool::Dbmate,
        "would not",
    );
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
