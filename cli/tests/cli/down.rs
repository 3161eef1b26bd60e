//! `wasmig down`, `pack-sql --down` and `test --round-trip`, run as the real
//! binary on real files: what they print, their exit codes, and that a
//! refused or failed revert leaves the database byte for byte as it was.

use std::path::Path;
use std::process::Output;

use rusqlite::Connection;
use wasmig_test_support::*;

fn wasmig(args: &[&str]) -> Output {
    crate::wasmig_command().args(args).output().expect("running wasmig")
}

fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes `up` (and `down`) as SQL files in the scratch root and packs them
/// with `wasmig pack-sql`, signed by test key "dev".
fn pack_sql(e: &Scratch, id: i64, name: &str, up: &str, down: Option<&str>) -> Output {
    let root = e.tmp.path();
    let up_file = root.join(format!("{id}.up.sql"));
    std::fs::write(&up_file, up).unwrap();
    let key = test_key("dev");
    let id = id.to_string();
    let mut args =
        vec!["pack-sql", s(&up_file), "--id", &id, "--name", name, "--key", s(&key), "--out", s(&e.dir)];
    let down_file = root.join(format!("{id}.down.sql"));
    if let Some(down) = down {
        std::fs::write(&down_file, down).unwrap();
        args.extend(["--down", s(&down_file)]);
    }
    wasmig(&args)
}

/// A database that starts with a `base` table, and three reversible
/// migrations: two pack-sql files with --down and the SDK guest.
fn reversible(e: &Scratch) {
    Connection::open(&e.db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE base (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO base (v) VALUES ('a'), ('b');",
        )
        .unwrap();
    let o = pack_sql(
        e,
        1,
        "items",
        "CREATE TABLE items (x);\nINSERT INTO items VALUES (1);",
        Some("DROP TABLE items;"),
    );
    assert!(o.status.success(), "{}", out(&o));
    pack(&e.dir, "testing-reversible", 2, "notes");
    let o = pack_sql(
        e,
        3,
        "tag",
        "ALTER TABLE base ADD COLUMN tag TEXT;\nUPDATE base SET tag = 'x';",
        Some("ALTER TABLE base DROP COLUMN tag;"),
    );
    assert!(o.status.success(), "{}", out(&o));
}

fn dev() -> String {
    test_pub("dev").to_str().unwrap().to_owned()
}

/// Schema and rows without wasmig's own tables.
fn user_content(db: &Path) -> wasmig::Snapshot {
    let mut snap = snapshot(db);
    snap.schema.retain(|o| !o.table.starts_with("schema_migrations"));
    snap.rows.retain(|t, _| !t.starts_with("schema_migrations"));
    snap
}

#[test]
fn down_to_0_restores_the_start_and_apply_again_round_trips() {
    let e = scratch();
    reversible(&e);
    let start = user_content(&e.db);
    let o = wasmig(&["apply", "--db", s(&e.db), "--trust", &dev(), s(&e.dir)]);
    assert!(o.status.success(), "{}", out(&o));
    let migrated = user_content(&e.db);

    // --dry-run lists newest first and writes nothing.
    let bytes = std::fs::read(&e.db).unwrap();
    let o = wasmig(&["down", "--db", s(&e.db), "--to", "0", "--trust", &dev(), "--dry-run", s(&e.dir)]);
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    let (three, two, one) = (
        text.find("would revert 0003 tag").unwrap(),
        text.find("0002 notes").unwrap(),
        text.find("0001 items").unwrap(),
    );
    assert!(three < two && two < one, "{text}");
    assert_eq!(std::fs::read(&e.db).unwrap(), bytes);

    let o = wasmig(&["down", "--db", s(&e.db), "--to", "0", "--trust", &dev(), s(&e.dir)]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("reverted 0003 tag") && out(&o).contains("3 migration(s) above 0 reverted"),
        "{}",
        out(&o)
    );
    assert_eq!(user_content(&e.db), start);
    assert!(ledger_ids(&e.db).is_empty());
    let conn = Connection::open(&e.db).unwrap();
    assert_eq!(
        rows(&conn, "SELECT id, action FROM schema_migrations_audit"),
        ["1 | 'revert'", "2 | 'revert'", "3 | 'revert'"]
    );
    drop(conn);

    let o = wasmig(&["apply", "--db", s(&e.db), "--trust", &dev(), s(&e.dir)]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(user_content(&e.db), migrated);

    // --json, part of the way.
    let o = wasmig(&["down", "--db", s(&e.db), "--to", "2", "--trust", &dev(), "--json", s(&e.dir)]);
    assert!(o.status.success(), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["reverted"][0]["id"], 3);
    assert_eq!(v["reverted"].as_array().unwrap().len(), 1);
    assert_eq!(ledger_ids(&e.db), [1, 2]);
}

#[test]
fn a_failing_down_exits_1_and_leaves_the_file_byte_identical() {
    let e = scratch();
    reversible(&e);
    pack(&e.dir, "faulty-down-err", 4, "kept");
    assert!(wasmig(&["apply", "--db", s(&e.db), "--trust", &dev(), s(&e.dir)]).status.success());
    let bytes = std::fs::read(&e.db).unwrap();
    let o = wasmig(&["down", "--db", s(&e.db), "--to", "0", "--trust", &dev(), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("migration 4 (kept)") && out(&o).contains("down refuses"), "{}", out(&o));
    assert_eq!(std::fs::read(&e.db).unwrap(), bytes);
}

#[test]
fn missing_down_missing_file_drift_and_untrusted_exit_3_before_anything_runs() {
    let e = scratch();
    reversible(&e);
    let o = pack_sql(&e, 4, "forward", "CREATE TABLE forward (x);", None);
    assert!(o.status.success(), "{}", out(&o));
    assert!(wasmig(&["apply", "--db", s(&e.db), "--trust", &dev(), s(&e.dir)]).status.success());
    let bytes = std::fs::read(&e.db).unwrap();
    let down = |trust: &str| wasmig(&["down", "--db", s(&e.db), "--to", "0", "--trust", trust, s(&e.dir)]);

    let o = down(&dev());
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(out(&o).contains("migration 4 (forward)") && out(&o).contains("has no down"), "{}", out(&o));
    assert_eq!(std::fs::read(&e.db).unwrap(), bytes);

    // To 4 there is nothing to revert, so nothing is refused.
    let o = wasmig(&["down", "--db", s(&e.db), "--to", "4", "--trust", &dev(), s(&e.dir)]);
    assert!(o.status.success() && out(&o).contains("0 migration(s) above 4"), "{}", out(&o));

    std::fs::remove_file(e.dir.join("0004_forward.wasm")).unwrap();
    let o = down(&dev());
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(out(&o).contains("migration 4 (forward): no file"), "{}", out(&o));
    assert_eq!(std::fs::read(&e.db).unwrap(), bytes);

    // Drift: file 4 back, but another one with the same id and name.
    let o = pack_sql(&e, 4, "forward", "CREATE TABLE forward (x);", Some("DROP TABLE forward;"));
    assert!(o.status.success(), "{}", out(&o));
    let o = down(&dev());
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(out(&o).contains("drift: migration 4 (forward)"), "{}", out(&o));
    assert_eq!(std::fs::read(&e.db).unwrap(), bytes);

    // Untrusted: signed by "dev", judged against "other".
    std::fs::remove_file(e.dir.join("0004_forward.wasm")).unwrap();
    let e2 = scratch();
    reversible(&e2);
    assert!(wasmig(&["apply", "--db", s(&e2.db), "--trust", &dev(), s(&e2.dir)]).status.success());
    let bytes = std::fs::read(&e2.db).unwrap();
    let other = test_pub("other");
    let o = wasmig(&["down", "--db", s(&e2.db), "--to", "0", "--trust", s(&other), s(&e2.dir)]);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(out(&o).contains("refused by the trust policy"), "{}", out(&o));
    assert_eq!(std::fs::read(&e2.db).unwrap(), bytes);
}

#[test]
fn pack_sql_down_refuses_a_bad_down_script_naming_it() {
    let e = scratch();
    let o = pack_sql(&e, 1, "a", "CREATE TABLE a (x);", Some("DROP TABLE a;\nCOMMIT;"));
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(out(&o).contains("1.down.sql:2") && out(&o).contains("COMMIT"), "{}", out(&o));
    assert!(std::fs::read_dir(&e.dir).unwrap().next().is_none(), "nothing written");
    let o = pack_sql(&e, 1, "a", "CREATE TABLE a (x);", Some("DROP TABLE a;"));
    assert!(o.status.success(), "{}", out(&o));
    let o = wasmig(&["inspect", s(&e.dir.join("0001_a.wasm"))]);
    assert!(
        out(&o).contains("wasmig:migration/migration@0.3.0") && out(&o).contains("up, down"),
        "{}",
        out(&o)
    );
}

#[test]
fn test_round_trip_reports_a_down_that_does_not_restore_and_never_writes() {
    let e = scratch();
    reversible(&e);
    let bytes = std::fs::read(&e.db).unwrap();
    let o = wasmig(&["test", "--round-trip", "--db", s(&e.db), "--trust", &dev(), s(&e.dir)]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("3 of 3 pending round-trip"), "{}", out(&o));

    // A down that forgets a row and an index.
    let o = pack_sql(
        &e,
        4,
        "leaky",
        "CREATE TABLE leaky (x);\nCREATE INDEX leaky_x ON leaky (x);\nINSERT INTO base (v) VALUES ('c');",
        Some("DROP TABLE leaky;"),
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = wasmig(&["test", "--round-trip", "--db", s(&e.db), "--trust", &dev(), "--json", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let steps = v["round_trip"]["steps"].as_array().unwrap();
    assert_eq!(
        steps.iter().map(|s| s["outcome"].as_str().unwrap()).collect::<Vec<_>>(),
        ["ok", "ok", "ok", "not-restored"]
    );
    let diffs: Vec<&str> =
        steps[3]["differences"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert!(diffs.contains(&"base: 2 rows before up, 3 after down"), "{diffs:?}");
    assert_eq!(std::fs::read(&e.db).unwrap(), bytes, "the real database is only read");
}

/// One two-step reversible history, written in `tool`'s layout: its down
/// scripts as the tool keeps them (own files, a goose section, a dbmate
/// block), one of them with no statements (it reverts nothing).
fn write_reversible_history(dir: &Path, tool: &str) {
    let steps = [
        (
            "items",
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO items (v) VALUES ('x');\n",
            "DROP TABLE items;\n",
        ),
        (
            "tags",
            "CREATE TABLE tags (t TEXT);\nCREATE INDEX tags_t ON tags (t);\n",
            "DROP INDEX tags_t;\nDROP TABLE tags;\n",
        ),
        ("noted", "UPDATE base SET v = v || '!';\n", "-- nothing to undo on purpose\n"),
    ];
    for (i, (name, up, down)) in steps.iter().enumerate() {
        let n = i + 1;
        match tool {
            "sqlx" | "golang-migrate" => {
                std::fs::write(dir.join(format!("{n}_{name}.up.sql")), up).unwrap();
                std::fs::write(dir.join(format!("{n}_{name}.down.sql")), down).unwrap();
            }
            "diesel" => {
                let d = dir.join(format!("2024-01-0{n}-000000_{name}"));
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("up.sql"), up).unwrap();
                std::fs::write(d.join("down.sql"), down).unwrap();
            }
            "goose" => std::fs::write(
                dir.join(format!("{n}_{name}.sql")),
                format!("-- +goose Up\n{up}-- +goose Down\n{down}"),
            )
            .unwrap(),
            "dbmate" => std::fs::write(
                dir.join(format!("2024010100000{n}_{name}.sql")),
                format!("-- migrate:up\n{up}\n-- migrate:down\n{down}"),
            )
            .unwrap(),
            other => panic!("no reversible layout for {other}"),
        }
    }
}

#[test]
fn an_imported_history_keeps_each_tools_down_scripts_and_reverts() {
    for tool in ["sqlx", "diesel", "goose", "dbmate", "golang-migrate"] {
        let e = scratch();
        let src = e.tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        write_reversible_history(&src, tool);
        let key = test_key("dev");
        let o = wasmig(&[
            "import",
            s(&src),
            "--from",
            tool,
            "--key",
            s(&key),
            "--out",
            s(&e.dir),
            "--destructive",
        ]);
        assert!(o.status.success(), "{tool}: {}", out(&o));
        assert!(out(&o).contains("3 with a down script"), "{tool}: {}", out(&o));
        // A reviewer sees both parts and where they came from.
        let first = std::fs::read_dir(&e.dir).unwrap().map(|d| d.unwrap().path()).min().unwrap();
        let o = wasmig(&["inspect", "--sql", s(&first)]);
        assert!(o.status.success(), "{tool}: {}", out(&o));
        let shown = out(&o);
        assert!(shown.contains(&format!("-- imported from {tool} ")), "{tool}: {shown}");
        assert!(
            shown.contains("CREATE TABLE items") && shown.contains("-- down: 1 statement(s)"),
            "{tool}: {shown}"
        );
        assert!(shown.contains("DROP TABLE items;"), "{tool}: {shown}");
        Connection::open(&e.db)
            .unwrap()
            .execute_batch("CREATE TABLE base (v TEXT); INSERT INTO base VALUES ('a');")
            .unwrap();
        let start = snapshot(&e.db);
        let trust = test_pub("dev");
        let o = wasmig(&["apply", "--db", s(&e.db), "--trust", s(&trust), s(&e.dir)]);
        assert!(o.status.success(), "{tool}: {}", out(&o));
        assert!(has_table(&e.db, "items") && has_table(&e.db, "tags"), "{tool}");
        let o = wasmig(&["down", "--db", s(&e.db), "--to", "0", "--trust", s(&trust), s(&e.dir)]);
        assert!(o.status.success(), "{tool}: {}", out(&o));
        assert_eq!(ledger_ids(&e.db), Vec::<i64>::new(), "{tool}");
        // Everything the history made is gone; the step whose down does
        // nothing leaves its data change, exactly as the tool would.
        let mut end = snapshot(&e.db);
        end.schema.retain(|o| !o.table.starts_with("schema_migrations"));
        end.rows.retain(|t, _| !t.starts_with("schema_migrations"));
        assert_eq!(end.schema, start.schema, "{tool}");
        assert_eq!(rows(&Connection::open(&e.db).unwrap(), "SELECT v FROM base"), ["'a!'"], "{tool}");
    }
}

#[test]
fn an_imported_down_script_that_is_refused_names_its_own_file() {
    let e = scratch();
    let src = e.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("1_items.up.sql"), "CREATE TABLE items (x);\n").unwrap();
    std::fs::write(src.join("1_items.down.sql"), "DROP TABLE items;\nVACUUM;\n").unwrap();
    let key = test_key("dev");
    let o = wasmig(&["import", s(&src), "--from", "sqlx", "--key", s(&key), "--out", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(out(&o).contains("1_items.down.sql:2") && out(&o).contains("VACUUM"), "{}", out(&o));
    assert_eq!(std::fs::read_dir(&e.dir).map(|d| d.count()).unwrap_or(0), 0, "nothing written");
}

#[test]
fn status_says_which_migrations_can_be_reverted() {
    let e = scratch();
    assert!(pack_sql(&e, 1, "items", "CREATE TABLE items (x);", Some("DROP TABLE items;")).status.success());
    assert!(pack_sql(&e, 2, "seed", "INSERT INTO items VALUES (1);", None).status.success());
    let trust = test_pub("dev");
    let o = wasmig(&["status", "--db", s(&e.db), "--trust", s(&trust), "--json", s(&e.dir)]);
    assert!(o.status.success(), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let reversible: Vec<_> =
        v["migrations"].as_array().unwrap().iter().map(|m| m["reversible"].clone()).collect();
    assert_eq!(reversible, [serde_json::json!(true), serde_json::json!(false)], "{v}");

    let o = wasmig(&["status", "--db", s(&e.db), "--trust", s(&trust), s(&e.dir)]);
    let text = out(&o);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("000") || l.starts_with("ID")).collect();
    assert!(lines[0].contains(" DOWN "), "{text}");
    assert!(lines[1].contains(" yes "), "{text}");
    assert!(lines[2].contains(" no "), "{text}");
}
