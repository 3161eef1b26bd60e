//! Blast radius, through the real binary on real files: declared destructive
//! intent (refusing undeclared drops and renames, extra signers for declared
//! ones), schema attestation (changes made outside wasmig) and the
//! rehearsal report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;
use wasmig_test_support::*;

/// Runs wasmig; `apply`, `status` and `test` trust test key "dev" unless
/// `--trust` is given.
fn wasmig(args: &[&str]) -> Output {
    let mut cmd = crate::wasmig_command();
    cmd.args(args);
    let subcommand = args.iter().find(|a| !a.starts_with('-'));
    if matches!(subcommand, Some(&"apply" | &"status" | &"test")) && !args.contains(&"--trust") {
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

/// Packs `sql` as migration `id`/`name` into `dir` with `pack-sql`, signed
/// by test key "dev", with `extra` flags (`--destructive`).
fn pack_sql(dir: &Path, id: i64, name: &str, sql: &str, extra: &[&str]) -> PathBuf {
    let script = dir.parent().unwrap().join(format!("{name}.sql"));
    std::fs::write(&script, sql).unwrap();
    let key = test_key("dev");
    let id = id.to_string();
    let mut args =
        vec!["pack-sql", s(&script), "--id", &id, "--name", name, "--key", s(&key), "--out", s(dir)];
    args.extend_from_slice(extra);
    let o = wasmig(&args);
    assert!(o.status.success(), "{}", text(&o));
    dir.join(format!("{:04}_{name}.wasm", id.parse::<i64>().unwrap()))
}

const BASELINE: &str = "CREATE TABLE images (id INTEGER PRIMARY KEY, name TEXT NOT NULL, build_size INTEGER);
CREATE TABLE legacy (id INTEGER PRIMARY KEY, note TEXT);
CREATE TABLE vms (id INTEGER PRIMARY KEY, image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE, name TEXT);
INSERT INTO images (name, build_size) VALUES ('a', 10), ('b', NULL), ('c', 30);
INSERT INTO legacy (note) VALUES ('x'), ('y');
INSERT INTO vms (image_id, name) VALUES (1, 'v1'), (1, 'v2'), (2, 'v3'), (3, 'v4');
";

/// A scratch directory with the baseline applied.
fn baseline() -> Scratch {
    let e = scratch();
    pack_sql(&e.dir, 1, "baseline", BASELINE, &[]);
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert!(o.status.success(), "{}", text(&o));
    e
}

#[test]
fn an_undeclared_drop_table_is_refused_and_the_file_is_byte_identical_the_declared_one_applies() {
    let e = baseline();
    let before = std::fs::read(&e.db).unwrap();
    pack_sql(&e.dir, 2, "drop_legacy", "DROP TABLE legacy;", &[]);
    for extra in [&[][..], &["--single-transaction"][..]] {
        let mut args = vec!["apply", "--db", s(&e.db), s(&e.dir)];
        args.extend_from_slice(extra);
        let o = wasmig(&args);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", text(&o));
        let out = text(&o);
        assert!(out.contains("drops table legacy") && out.contains("rolled back"), "{out}");
        assert!(out.contains("--destructive"), "says how to declare it: {out}");
        assert_eq!(std::fs::read(&e.db).unwrap(), before, "{extra:?}: the file is byte-identical");
    }
    // The same SQL, declared, applies, and says what it dropped.
    pack_sql(&e.dir, 2, "drop_legacy", "DROP TABLE legacy;", &["--destructive"]);
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("    declared destructive: drops table legacy"), "{}", text(&o));
    assert!(!has_table(&e.db, "legacy"));
    assert_eq!(ledger_ids(&e.db), [1, 2]);
}

#[test]
fn undeclared_column_drops_and_renames_are_refused_but_a_rebuild_keeping_every_column_is_not() {
    let e = baseline();
    let before = std::fs::read(&e.db).unwrap();
    let cases = [
        ("ALTER TABLE images DROP COLUMN build_size;", "drops column images.build_size"),
        (
            "ALTER TABLE images RENAME COLUMN build_size TO size;",
            "renames column images.build_size to images.size",
        ),
        ("ALTER TABLE legacy RENAME TO old_legacy;", "renames table legacy to old_legacy"),
        (
            // A rebuild that leaves a column behind.
            "CREATE TABLE legacy_new (id INTEGER PRIMARY KEY);
             INSERT INTO legacy_new (id) SELECT id FROM legacy;
             DROP TABLE legacy;
             ALTER TABLE legacy_new RENAME TO legacy;",
            "drops column legacy.note",
        ),
    ];
    for (sql, named) in cases {
        let file = pack_sql(&e.dir, 2, "change", sql, &[]);
        let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
        assert_eq!(o.status.code(), Some(1), "{sql}: {}", text(&o));
        assert!(text(&o).contains(named), "{sql}: {}", text(&o));
        assert_eq!(std::fs::read(&e.db).unwrap(), before, "{sql}");
        std::fs::remove_file(file).unwrap();
    }
    // Create new, copy, drop old, rename new to old, every column kept (and
    // one added): the table and its data are still there, nothing to declare.
    pack_sql(
        &e.dir,
        2,
        "rebuild",
        "CREATE TABLE legacy_new (id INTEGER PRIMARY KEY, note TEXT NOT NULL DEFAULT '', added TEXT);
         INSERT INTO legacy_new (id, note) SELECT id, note FROM legacy;
         DROP TABLE legacy;
         ALTER TABLE legacy_new RENAME TO legacy;",
        &[],
    );
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert!(o.status.success(), "{}", text(&o));
    let conn = Connection::open(&e.db).unwrap();
    assert_eq!(rows(&conn, "SELECT id, note FROM legacy"), ["1 | 'x'", "2 | 'y'"]);
}

#[test]
fn a_destructive_file_with_one_signer_is_refused_under_min_signers_destructive_2() {
    let e = baseline();
    let (dev, second) = (test_pub("dev"), test_pub("second"));
    let file = pack_sql(&e.dir, 2, "drop_legacy", "DROP TABLE legacy;", &["--destructive"]);
    let before = std::fs::read(&e.db).unwrap();
    let trust = ["--trust", s(&dev), "--trust", s(&second), "--min-signers-destructive", "2"];
    for extra in [&[][..], &["--single-transaction"][..], &["--dry-run"][..]] {
        let mut args = vec!["apply", "--db", s(&e.db), s(&e.dir)];
        args.extend_from_slice(&trust);
        args.extend_from_slice(extra);
        let o = wasmig(&args);
        assert_eq!(o.status.code(), Some(3), "{extra:?}: {}", text(&o));
        let out = text(&o);
        assert!(
            out.contains("migration 2 (drop_legacy) declares destructive") && out.contains("needs 2"),
            "{out}"
        );
        assert_eq!(std::fs::read(&e.db).unwrap(), before);
    }
    // More signers than trusted keys can never be met: a usage refusal.
    let o =
        wasmig(&["apply", "--db", s(&e.db), s(&e.dir), "--trust", s(&dev), "--min-signers-destructive", "2"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("--min-signers-destructive 2 but only 1 trusted key"), "{}", text(&o));
    // A non-destructive file is not held to it; a second signature lets the destructive one run.
    let key2 = test_key("second");
    let o = wasmig(&[
        "pack",
        s(&file),
        "--key",
        s(&key2),
        "--id",
        "2",
        "--name",
        "drop_legacy",
        "--destructive",
        "--out",
        s(&file),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    pack_sql(&e.dir, 3, "add_index", "CREATE INDEX images_name ON images (name);", &[]);
    let mut args = vec!["apply", "--db", s(&e.db), s(&e.dir)];
    args.extend_from_slice(&trust);
    let o = wasmig(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ledger_ids(&e.db), [1, 2, 3]);
}

/// Runs `sql` on `db` with the sqlite3 shell, as an operator would (plain
/// rusqlite when this machine has no shell).
fn out_of_band(db: &Path, sql: &str) {
    match Command::new("sqlite3").arg(db).arg(sql).output() {
        Ok(o) => assert!(o.status.success(), "sqlite3: {}", text(&o)),
        Err(_) => Connection::open(db).unwrap().execute_batch(sql).unwrap(),
    }
}

#[test]
fn an_index_made_outside_wasmig_is_reported_and_refused_under_strict_schema() {
    let e = baseline();
    let o = wasmig(&["status", "--db", s(&e.db), s(&e.dir)]);
    assert!(text(&o).contains("schema: as recorded after migration 0001"), "{}", text(&o));
    let conn = Connection::open(&e.db).unwrap();
    let recorded: String =
        conn.query_row("SELECT schema_sha256 FROM schema_migrations WHERE id = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(recorded, wasmig::attest_schema(&conn).unwrap().sha256);
    drop(conn);

    out_of_band(&e.db, "CREATE INDEX images_by_name ON images (name); DROP TABLE legacy;");
    let o = wasmig(&["status", "--db", s(&e.db), s(&e.dir), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"]["state"], "changed", "{v}");
    assert_eq!(v["schema"]["after_id"], 1);
    assert_eq!(
        v["schema"]["changes"],
        serde_json::json!(["index images_by_name created", "table legacy dropped"])
    );
    let o = wasmig(&["status", "--db", s(&e.db), s(&e.dir)]);
    assert!(text(&o).contains("CHANGED OUTSIDE WASMIG") && text(&o).contains("index images_by_name created"));

    pack_sql(&e.dir, 2, "add_column", "ALTER TABLE images ADD COLUMN arch TEXT;", &[]);
    let before = std::fs::read(&e.db).unwrap();
    for extra in [&[][..], &["--single-transaction"][..]] {
        let mut args = vec!["apply", "--db", s(&e.db), s(&e.dir), "--strict-schema"];
        args.extend_from_slice(extra);
        let o = wasmig(&args);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(text(&o).contains("changed outside wasmig since migration 1"), "{}", text(&o));
        assert!(text(&o).contains("index images_by_name created"), "{}", text(&o));
        assert_eq!(std::fs::read(&e.db).unwrap(), before, "refused before anything ran");
    }
    // By default: a warning naming the objects, and the migration applies.
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning: the schema was changed outside wasmig"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"]["changes"][0], "index images_by_name created", "{v}");
    // The new attestation includes the index: nothing to report any more.
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir), "--strict-schema"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = wasmig(&["status", "--db", s(&e.db), s(&e.dir)]);
    assert!(text(&o).contains("schema: as recorded after migration 0002"), "{}", text(&o));
}

/// The JSON Schema documented in `docs/rehearsal-report.md` (its first
/// `json` block).
fn documented_schema() -> serde_json::Value {
    let doc = std::fs::read_to_string(repo_root().join("docs").join("rehearsal-report.md")).unwrap();
    let start = doc.find("```json\n").expect("a json block") + "```json\n".len();
    let end = start + doc[start..].find("```").unwrap();
    serde_json::from_str(&doc[start..end]).expect("the documented schema is JSON")
}

/// Checks `v` against the JSON Schema keywords the document uses (`type`,
/// `enum`, `properties`, `required`, `additionalProperties: false`,
/// `items`); every problem found, with its path.
fn conforms(v: &serde_json::Value, schema: &serde_json::Value, path: &str, problems: &mut Vec<String>) {
    use serde_json::Value;
    let type_of = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if let Some(t) = schema.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type keyword at {path}"),
        };
        if !allowed.contains(&type_of(v)) {
            problems.push(format!("{path}: {} is not {allowed:?}", type_of(v)));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        problems.push(format!("{path}: {v} is not one of {e:?}"));
    }
    if let Value::Object(map) = v {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !map.contains_key(r) {
                problems.push(format!("{path}: missing {r}"));
            }
        }
        for (k, child) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => conforms(child, s, &format!("{path}.{k}"), problems),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    problems.push(format!("{path}: {k} is not documented"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(item, s, &format!("{path}[{i}]"), problems);
        }
    }
}

#[test]
fn the_schema_checker_catches_what_it_should() {
    let schema = documented_schema();
    let mut problems = Vec::new();
    let bad = serde_json::json!({"database": 1, "ok": true, "extra": 0, "rehearsal": {"already_applied": [], "steps": [{"outcome": "maybe"}]}});
    conforms(&bad, &schema, "$", &mut problems);
    for expected in
        ["$.database: integer", "$: extra is not documented", "$.rehearsal.steps[0]: missing id", "maybe"]
    {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected}: {problems:?}");
    }
}

#[test]
fn a_rebuild_cascading_into_children_reports_the_rows_lost_and_the_json_matches_its_schema() {
    let e = baseline();
    // More images with a build size, so the count needs a separator.
    Connection::open(&e.db)
        .unwrap()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3212)
             INSERT INTO images (name, build_size) SELECT 'img' || i, i FROM n;",
        )
        .unwrap();
    // A rebuild that keeps every column (so apply does not call it
    // destructive) but runs with foreign keys on: dropping the old table
    // deletes its children through ON DELETE CASCADE.
    pack_sql(
        &e.dir,
        2,
        "rebuild_images",
        "CREATE TABLE images_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL CHECK (name <> ''), build_size INTEGER);
         INSERT INTO images_new SELECT id, name, build_size FROM images;
         DROP TABLE images;
         ALTER TABLE images_new RENAME TO images;",
        &[],
    );
    pack_sql(&e.dir, 3, "drop_build_size", "ALTER TABLE images DROP COLUMN build_size;", &["--destructive"]);
    pack_sql(
        &e.dir,
        4,
        "backfill",
        "UPDATE images SET name = upper(name) WHERE id <= 2; CREATE INDEX images_name ON images (name);",
        &[],
    );
    let before = std::fs::read(&e.db).unwrap();

    let o = wasmig(&["test", "--db", s(&e.db), s(&e.dir)]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("    destructive: deletes 4 rows of vms"), "{out}");
    assert!(out.contains("    rows vms: 4 -> 0 (0 inserted, 0 updated, 4 deleted)"), "{out}");
    assert!(out.contains("    destructive: drops column images.build_size (3,214 non-null values)"), "{out}");
    assert!(out.contains("    dropped: column images.build_size"), "{out}");
    assert!(out.contains("    created: index images_name"), "{out}");
    assert!(out.contains("    safe: drops and deletes nothing (2 rows updated)"), "{out}");
    assert!(out.contains("write transaction held"), "{out}");

    let o = wasmig(&["test", "--db", s(&e.db), s(&e.dir), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut problems = Vec::new();
    conforms(&v, &documented_schema(), "$", &mut problems);
    assert!(problems.is_empty(), "{problems:?}\n{v:#}");
    let steps = v["rehearsal"]["steps"].as_array().unwrap();
    let rebuild = &steps[0]["blast_radius"];
    let vms = rebuild["tables"].as_array().unwrap().iter().find(|t| t["table"] == "vms").unwrap();
    assert_eq!(
        (vms["rows_before"].as_u64(), vms["rows_after"].as_u64(), vms["deleted"].as_u64()),
        (Some(4), Some(0), Some(4))
    );
    assert_eq!(rebuild["changed"], serde_json::json!(["table images"]), "{rebuild}");
    assert_eq!(rebuild["destroyed"], serde_json::json!([]));
    assert_eq!(rebuild["destructive"], true);
    assert_eq!(
        steps[1]["blast_radius"]["destroyed"],
        serde_json::json!([{"kind": "drop-column", "table": "images", "column": "build_size"}])
    );
    assert_eq!(steps[2]["blast_radius"]["destructive"], false);
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "only the copy was written");

    // A failed and a not-reached step still match the schema.
    pack_sql(&e.dir, 5, "broken", "INSERT INTO nowhere VALUES (1);", &[]);
    pack_sql(&e.dir, 6, "after", "CREATE TABLE later (x);", &[]);
    let o = wasmig(&["test", "--db", s(&e.db), s(&e.dir), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut problems = Vec::new();
    conforms(&v, &documented_schema(), "$", &mut problems);
    assert!(problems.is_empty(), "{problems:?}\n{v:#}");
    assert_eq!(v["rehearsal"]["steps"][3]["outcome"], "failed");
    assert_eq!(v["rehearsal"]["steps"][4]["outcome"], "not-reached");
}

#[test]
fn check_reports_an_outside_schema_change_and_wasmig_toml_can_make_it_and_destructive_signers_strict() {
    let e = baseline();
    out_of_band(&e.db, "CREATE INDEX images_by_name ON images (name);");
    let before = std::fs::read(&e.db).unwrap();
    let trust = test_pub("dev");
    let check = |extra: &[&str], cwd: &Path| {
        let mut args = vec!["check", "--db", s(&e.db), "--trust", s(&trust)];
        args.extend_from_slice(extra);
        args.push(s(&e.dir));
        crate::wasmig_command().args(&args).current_dir(cwd).output().unwrap()
    };
    let elsewhere = e.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    // A warning by default, a problem under --strict-schema.
    let o = check(&[], &elsewhere);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("warning: the schema was changed outside wasmig"), "{}", text(&o));
    let o = check(&["--strict-schema", "--json"], &elsewhere);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["problems"][0]["kind"], "schema-changed", "{v}");
    assert!(v["problems"][0]["message"].as_str().unwrap().contains("index images_by_name created"), "{v}");

    // The same from wasmig.toml, and min_signers_destructive for apply.
    let project = e.tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("wasmig.toml"), "strict_schema = true\nmin_signers_destructive = 2\n")
        .unwrap();
    let o = check(&[], &project);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("index images_by_name created"), "{}", text(&o));
    std::fs::write(project.join("wasmig.toml"), "min_signers_destructive = 2\n").unwrap();
    pack_sql(&e.dir, 2, "drop_legacy", "DROP TABLE legacy;", &["--destructive"]);
    let o = check(&[], &project);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("needs 2 distinct trusted signer(s)"), "{}", text(&o));
    let o = crate::wasmig_command()
        .args(["apply", "--db", s(&e.db), "--trust", s(&trust), s(&e.dir)])
        .current_dir(&project)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "nothing ran");
}
