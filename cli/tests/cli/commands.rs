//! The `wasmig` binary, run as a real process on real files: output, JSON
//! and the documented exit codes.

use std::path::Path;
use std::process::{Command, Output};

use rusqlite::Connection;
use wasmig_test_support::*;

/// Runs wasmig; `apply`, `status`, `verify` and `prepare` get `--trust` for test key "dev".
pub(crate) fn wasmig(args: &[&str]) -> Output {
    command(args).output().expect("running wasmig")
}

/// The command [`wasmig`] runs.
fn command(args: &[&str]) -> Command {
    let mut cmd = crate::wasmig_command();
    cmd.args(args);
    let subcommand = args.iter().find(|a| !a.starts_with('-'));
    if matches!(subcommand, Some(&"apply" | &"status" | &"verify" | &"prepare")) && !args.contains(&"--trust")
    {
        cmd.arg("--trust").arg(test_pub("dev"));
    }
    cmd
}

/// Like [`wasmig`], but fails the test (and kills the process, by its id)
/// if it has not exited within a generous 120 s: for inputs that would make
/// a careless reader block forever (a FIFO) or read for a very long time.
fn wasmig_or_hang(args: &[&str]) -> Output {
    let mut child = command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running wasmig");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().expect("waiting for wasmig").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wasmig {args:?} did not finish within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("collecting wasmig's output")
}

pub(crate) fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn env() -> Scratch {
    scratch()
}

#[test]
fn pack_apply_status_on_a_real_file() {
    let e = env();
    // Pack through the CLI, exactly as the README does.
    for (krate, id, name) in EXAMPLES {
        let component = guest_out_dir().join(format!("{}.wasm", krate.replace('-', "_")));
        let key = test_key("dev");
        let o = wasmig(&[
            "pack",
            s(&component),
            "--key",
            s(&key),
            "--id",
            &id.to_string(),
            "--name",
            name,
            "--out",
            s(&e.dir),
        ]);
        assert!(o.status.success(), "{:?}", text(&o));
    }
    let o = wasmig(&["status", "--db", s(&e.db), s(&e.dir)]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    assert!(out.contains("does not exist yet"), "{out}");
    assert_eq!(out.lines().filter(|l| l.split_whitespace().nth(2) == Some("pending")).count(), 4, "{out}");
    assert!(!e.db.exists(), "status never creates the database");

    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("applied ")).collect();
    assert_eq!(lines.len(), 4, "one line per migration: {out}");
    assert!(lines[0].starts_with("applied 0001 baseline"), "{out}");
    assert!(lines[3].starts_with("applied 0004 rebuild"), "{out}");

    let o = wasmig(&["status", "--db", s(&e.db), s(&e.dir), "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let states: Vec<(i64, String)> = v["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_i64().unwrap(), m["state"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(states, (1..=4).map(|i| (i, "applied".to_owned())).collect::<Vec<_>>());
    assert_eq!(ledger_ids(&e.db), vec![1, 2, 3, 4]);

    // A migration whose file disappeared is reported, not forgotten.
    std::fs::remove_file(e.dir.join("0004_rebuild.wasm")).unwrap();
    let (out, _) = text(&wasmig(&["status", "--db", s(&e.db), s(&e.dir)]));
    assert!(out.lines().any(|l| l.starts_with("0004") && l.contains("applied-but-missing-file")), "{out}");
}

#[test]
fn failed_migration_exits_1_and_leaves_the_file_unchanged() {
    let e = env();
    pack_examples(&e.dir, 1);
    assert!(wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]).status.success());
    let before = std::fs::read(&e.db).unwrap();
    pack(&e.dir, "faulty-err-after-create", 2, "broken");
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("migration 2 (broken) failed and was rolled back"), "{err}");
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
}

#[test]
fn a_guest_handing_fts3_tokenizer_a_pointer_is_denied_and_the_process_exits_cleanly() {
    let e = env();
    pack_examples(&e.dir, 1);
    assert!(wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]).status.success());
    let before = std::fs::read(&e.db).unwrap();
    let component = guest_out_dir().join("examples").join("gate_fts3_tokenizer.wasm");
    let key = test_key("dev");
    let packed = wasmig(&[
        "pack",
        s(&component),
        "--key",
        s(&key),
        "--id",
        "2",
        "--name",
        "tokenizer",
        "--out",
        s(&e.dir),
    ]);
    assert!(packed.status.success(), "{:?}", text(&packed));
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    let (_, err) = text(&o);
    // An exit code, not a signal: the host process survived.
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("migration 2 (tokenizer) failed and was rolled back"), "{err}");
    assert!(err.contains("function fts3_tokenizer() (not on the SQL function allowlist"), "{err}");
    assert!(!err.contains("ALLOWED"), "every form was refused: {err}");
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
    // The next migration still applies.
    std::fs::remove_file(e.dir.join("0002_tokenizer.wasm")).unwrap();
    pack(&e.dir, "example-add-index", 2, "add_index");
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(ledger_ids(&e.db), vec![1, 2]);
}

#[test]
fn single_transaction_applies_all_or_nothing_and_pack_sql_runs_as_direct_sql() {
    let e = env();
    let sql = e.tmp.path().join("notes.sql");
    std::fs::write(
        &sql,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\nINSERT INTO notes (body) VALUES ('a;b');\n",
    )
    .unwrap();
    let key = test_key("dev");
    let packed =
        wasmig(&["pack-sql", s(&sql), "--id", "1", "--name", "notes", "--key", s(&key), "--out", s(&e.dir)]);
    assert!(packed.status.success(), "{:?}", text(&packed));
    pack(&e.dir, "example-baseline", 2, "baseline");
    pack(&e.dir, "faulty-err-after-create", 3, "broken");
    // 1 and 2 would apply, 3 fails: with --single-transaction nothing stays.
    Connection::open(&e.db)
        .unwrap()
        .execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
        .unwrap();
    let before = std::fs::read(&e.db).unwrap();
    let o = wasmig(&["apply", "--db", s(&e.db), "--single-transaction", s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("migration 3 (broken) failed and was rolled back"), "{err}");
    assert!(!out.contains("applied 0001"), "nothing is reported applied when nothing committed: {out}");
    // The ledger is created inside the same transaction: not a byte changed.
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
    assert_eq!(rows(&Connection::open(&e.db).unwrap(), "SELECT x FROM keep"), vec!["1"]);
    // Without the broken file, all apply in one go; the JSON says which ran
    // as direct SQL.
    std::fs::remove_file(e.dir.join("0003_broken.wasm")).unwrap();
    let o = wasmig(&["apply", "--db", s(&e.db), "--single-transaction", "--json", s(&e.dir)]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let applied = v["applied"].as_array().expect("applied list");
    let direct: Vec<(i64, bool)> =
        applied.iter().map(|a| (a["id"].as_i64().unwrap(), a["direct_sql"].as_bool().unwrap())).collect();
    assert_eq!(direct, vec![(1, true), (2, false)]);
    assert_eq!(ledger_ids(&e.db), vec![1, 2]);
    let conn = Connection::open(&e.db).unwrap();
    assert_eq!(rows(&conn, "SELECT body FROM notes"), vec!["'a;b'"]);
}

#[test]
fn refused_input_exits_3_naming_the_files() {
    let e = env();
    pack(&e.dir, "example-baseline", 1, "baseline");
    pack(&e.dir, "example-add-index", 1, "other");
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("duplicate migration id 1")
            && err.contains("0001_baseline.wasm")
            && err.contains("0001_other.wasm"),
        "{err}"
    );
    assert!(!e.db.exists());

    // A renamed file (trying to run earlier) is refused too.
    let e = env();
    let p = pack(&e.dir, "example-add-index", 2, "add_index");
    std::fs::rename(&p, e.dir.join("0000_add_index.wasm")).unwrap();
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("file name does not match its manifest"), "{err}");

    // A core module (not a component) is refused when packing.
    let core = e.dir.join("core.bin");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let o = wasmig(&["pack", s(&core), "--id", "5", "--name", "x", "--out", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).1.contains("core WebAssembly module"));
}

#[test]
fn usage_and_environment_errors_have_their_own_codes() {
    let o = wasmig(&["apply"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
    let e = env();
    pack_examples(&e.dir, 1);
    let missing = e.dir.join("no-such-dir").join("app.db");
    let o = wasmig(&["apply", "--db", s(&missing), s(&e.dir)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("no-such-dir"), "{err}");
}

#[test]
fn keygen_pack_verify_inspect() {
    let e = env();
    let key = e.dir.parent().unwrap().join("release.key");
    let o = wasmig(&["keygen", "--out", s(&key)]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pub_key = e.dir.parent().unwrap().join("release.key.pub");
    assert!(key.exists() && pub_key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let o = wasmig(&["keygen", "--out", s(&key)]);
    assert_eq!(o.status.code(), Some(3), "never overwrites a key");

    let component = guest_out_dir().join("example_baseline.wasm");
    let out = e.dir.join("0001_baseline.wasm");
    let o = wasmig(&[
        "pack",
        s(&component),
        "--id",
        "1",
        "--name",
        "baseline",
        "--key",
        s(&key),
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));

    let o = wasmig(&["verify", "--trust", s(&pub_key), s(&e.dir)]);
    let (out_text, err) = text(&o);
    assert!(o.status.success(), "{out_text}{err}");
    assert!(
        out_text.starts_with("0001") && out_text.contains("baseline") && out_text.contains("trusted"),
        "{out_text}"
    );

    // Judged against another key, the same file is refused (exit 3).
    let o = wasmig(&["verify", "--trust", s(&test_pub("dev")), s(&e.dir), "--json"]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["refused"], 1);
    assert!(v["files"][0]["verdict"].as_str().unwrap().starts_with("REFUSED"));
    assert_eq!(v["files"][0]["signers"].as_array().unwrap().len(), 1);

    let o = wasmig(&["inspect", s(&out), "--json", "--trust", s(&pub_key)]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["manifest"]["id"], 1);
    // Built with the SDK, which targets world 0.2.0; pack recorded that world.
    assert_eq!(v["imports"], serde_json::json!(["wasmig:migration/sql@0.2.0"]));
    assert_eq!(v["manifest"]["world"], "wasmig:migration/migration@0.2.0");
    assert_eq!(v["exports"], serde_json::json!(["up"]));
    assert_eq!(v["signature_count"], 1);
    assert!(v["verdict"].as_str().unwrap().starts_with("trusted"));
}

#[test]
fn unsigned_files_need_an_explicit_flag_and_are_flagged_loudly() {
    let e = env();
    pack_with(&e.dir, "example-baseline", 1, "baseline", &[]);
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).1.contains("not signed"));
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir), "--allow-unsigned"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).1.contains("WARNING: 1 UNSIGNED migration(s)"));
    let o = wasmig(&["status", "--db", s(&e.db), s(&e.dir), "--allow-unsigned"]);
    let (out, err) = text(&o);
    assert!(err.contains("UNSIGNED") && out.contains("UNSIGNED"), "{out}{err}");
    // A signed file beside it is not named, pending or applied.
    pack(&e.dir, "example-add-index", 2, "add_index");
    for _ in 0..2 {
        let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir), "--allow-unsigned"]);
        assert!(o.status.success(), "{:?}", text(&o));
        assert!(
            text(&o)
                .1
                .contains("WARNING: 1 UNSIGNED migration(s) accepted because of --allow-unsigned: 0001\n")
        );
    }
}

#[test]
fn test_rehearses_on_a_copy_and_never_writes_the_real_file() {
    let e = env();
    load_fixture(&e.db, "legacy-versioned.sql");
    let before = std::fs::read(&e.db).unwrap();
    pack_examples(&e.dir, 3);
    let o = wasmig(&["test", "--trust", s(&test_pub("dev")), "--db", s(&e.db), s(&e.dir), "--json"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let steps = v["rehearsal"]["steps"].as_array().unwrap();
    assert_eq!(v["rehearsal"]["already_applied"], serde_json::json!([1]));
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["outcome"], "ok");
    assert_eq!(steps[1]["rows_changed"], 2, "the backfill updated both images");
    assert!(steps[0]["schema_diff"][0].as_str().unwrap().starts_with("+ index vms_image_state"));
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "the real database was not written");

    // A failing migration is reported with its reason; later ones are not reached.
    pack(&e.dir, "faulty-err-after-create", 4, "broken");
    pack(&e.dir, "example-rebuild", 5, "rebuild");
    let o = wasmig(&["test", "--trust", s(&test_pub("dev")), "--db", s(&e.db), s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("0004 broken — FAILED") && out.contains("deliberate failure"), "{out}");
    assert!(out.contains("0005 rebuild — not reached"), "{out}");
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
}

#[test]
fn pack_sql_and_import_from_the_command_line() {
    let e = env();
    let root = e.dir.parent().unwrap().to_owned();
    let script = root.join("notes.sql");
    std::fs::write(
        &script,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT DEFAULT 'a;b');\n\
         CREATE TRIGGER notes_upper AFTER INSERT ON notes BEGIN UPDATE notes SET body = upper(body) WHERE id = new.id; END;\n\
         INSERT INTO notes (body) VALUES ('hi; there');\n",
    )
    .unwrap();
    let key = test_key("dev");
    let o = wasmig(&[
        "pack-sql",
        s(&script),
        "--id",
        "1",
        "--name",
        "notes",
        "--key",
        s(&key),
        "--out",
        s(&e.dir),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert!(o.status.success(), "{:?}", text(&o));
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    assert_eq!(rows(&conn, "SELECT body FROM notes"), vec!["'HI; THERE'"]);

    // Transaction control is refused at pack time with file and line.
    let bad = root.join("bad.sql");
    std::fs::write(&bad, "CREATE TABLE x (a);\n\nCOMMIT;\n").unwrap();
    let o = wasmig(&["pack-sql", s(&bad), "--id", "2", "--name", "bad", "--out", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).1.contains("bad.sql:3: COMMIT"), "{:?}", text(&o));

    // A refinery directory becomes signed plugins named by version.
    let src = root.join("refinery");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("V1__create_tags.sql"), "CREATE TABLE tags (name TEXT);").unwrap();
    std::fs::write(src.join("V2__seed_tags.sql"), "INSERT INTO tags VALUES ('a;b');").unwrap();
    let out = root.join("imported");
    let o = wasmig(&["import", s(&src), "--from", "refinery", "--key", s(&key), "--out", s(&out)]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(out.join("0001_create_tags.wasm").exists() && out.join("0002_seed_tags.wasm").exists());
    let db2 = root.join("tags.db");
    let o = wasmig(&["apply", "--db", s(&db2), s(&out)]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = wasmig(&["import", s(&src), "--from", "flyway", "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn new_scaffolds_a_crate_that_builds_packs_and_applies() {
    let e = env();
    pack_examples(&e.dir, 2);
    let parent = e.dir.parent().unwrap().join("crates");
    std::fs::create_dir(&parent).unwrap();
    let o = wasmig(&["new", "add_tags", "--dir", s(&e.dir), "--out", s(&parent)]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("--id 3 --name add_tags"), "next free id is 3: {:?}", text(&o));
    let krate = parent.join("add_tags");
    for f in ["Cargo.toml", ".cargo/config.toml", "src/lib.rs", "tests/migration.rs"] {
        assert!(krate.join(f).is_file(), "{f}");
    }
    // Builds with the plain command (sharing the guests' target directory
    // only to reuse already compiled dependencies).
    let target = guest_out_dir().parent().unwrap().parent().unwrap().to_owned();
    let status = Command::new(env!("CARGO"))
        .current_dir(&krate)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success());
    let built = target.join("wasm32-unknown-unknown/release/add_tags.wasm");
    let key = test_key("dev");
    let o =
        wasmig(&["pack", s(&built), "--id", "3", "--name", "add_tags", "--key", s(&key), "--out", s(&e.dir)]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(has_table(&e.db, "add_tags_example"));
    // Refuses to overwrite.
    let o = wasmig(&["new", "add_tags", "--id", "9", "--out", s(&parent)]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn dry_run_checks_everything_and_writes_nothing() {
    let e = env();
    pack_examples(&e.dir, 2);
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir), "--dry-run", "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["would_apply"].as_array().unwrap().len(), 2);
    assert!(!e.db.exists(), "a dry run creates nothing");
    assert!(wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]).status.success());
    let before = std::fs::read(&e.db).unwrap();
    pack(&e.dir, "example-backfill", 3, "backfill");
    let (out, _) = text(&wasmig(&["apply", "--db", s(&e.db), s(&e.dir), "--dry-run"]));
    assert!(out.contains("would apply 0003 backfill"), "{out}");
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
}

#[test]
fn json_errors_and_verbose_logs() {
    let e = env();
    pack_examples(&e.dir, 1);
    pack(&e.dir, "faulty-bad-sql", 2, "bad_sql");
    let o = wasmig(&["-v", "apply", "--db", s(&e.db), s(&e.dir), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["applied"][0]["id"], 1, "what committed before the failure is reported");
    assert_eq!(v["error"]["exit_code"], 1);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("migration 2 (bad_sql)") && msg.contains("0002_bad_sql.wasm") && msg.contains("code 1"),
        "{msg}"
    );
    let (_, err) = text(&o);
    assert!(err.contains("running migration") && err.contains("rolled back"), "{err}");
    // Not a terminal: no colour codes.
    let (out, _) = text(&wasmig(&["status", "--db", s(&e.db), s(&e.dir)]));
    assert!(!out.contains('\x1b'), "{out:?}");
}

#[test]
fn fleet_apply_from_the_command_line() {
    let e = env();
    pack_examples(&e.dir, 2);
    let tenants = e.dir.parent().unwrap().join("tenants");
    std::fs::create_dir(&tenants).unwrap();
    for i in 0..6 {
        rusqlite::Connection::open(tenants.join(format!("t{i}.db")))
            .unwrap()
            .execute_batch("CREATE TABLE app (x)")
            .unwrap();
    }
    std::fs::write(tenants.join("t3.db"), vec![7u8; 2048]).unwrap();
    let pattern = format!("{}/*.db", tenants.display());
    let o = wasmig(&["apply", "--db", &pattern, "--jobs", "3", s(&e.dir), "--json"]);
    assert_eq!(o.status.code(), Some(4), "an environment failure in one database: {:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["total"], 6);
    assert_eq!(v["summary"]["applied"], 5);
    assert_eq!(v["summary"]["failed"], 1);
    assert_eq!(v["databases"][3]["status"], "failed");
    let o = wasmig(&["apply", "--db", &pattern, s(&e.dir)]);
    let (out, _) = text(&o);
    assert!(out.contains("6 databases: 0 applied, 5 up to date, 1 failed"), "{out}");
}

#[test]
fn status_rehearse_marks_migrations_that_would_fail() {
    let e = env();
    pack_examples(&e.dir, 1);
    assert!(wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]).status.success());
    pack(&e.dir, "example-add-index", 2, "add_index");
    pack(&e.dir, "faulty-err-after-create", 3, "broken");
    let before = std::fs::read(&e.db).unwrap();
    let o = wasmig(&["status", "--db", s(&e.db), s(&e.dir), "--rehearse"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let state = |id: &str| {
        out.lines().find(|l| l.starts_with(id)).and_then(|l| l.split_whitespace().nth(2)).unwrap().to_owned()
    };
    assert_eq!(
        (state("0001"), state("0002"), state("0003")),
        ("applied".into(), "pending".into(), "failed".into()),
        "{out}"
    );
    assert!(out.contains("0003 would fail: migration 3 (broken) failed and was rolled back"), "{out}");
    let o = wasmig(&["status", "--db", s(&e.db), s(&e.dir), "--rehearse", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["migrations"][2]["state"], "failed");
    assert!(v["migrations"][2]["failure"].as_str().unwrap().contains("deliberate failure"));
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "status only reads");
}

#[test]
fn cache_dir_is_filled_reused_and_refused_when_others_can_write() {
    let e = env();
    pack_examples(&e.dir, 2);
    let cache = e.tmp.path().join("cc");
    let o = wasmig(&["apply", "--db", s(&e.db), "--cache-dir", s(&cache), s(&e.dir)]);
    assert!(o.status.success(), "{:?}", text(&o));
    let count = || {
        std::fs::read_dir(&cache)
            .unwrap()
            .filter(|d| d.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
            .count()
    };
    assert_eq!(count(), 2);
    let other = e.tmp.path().join("other.db");
    let o = wasmig(&["apply", "--db", s(&other), "--cache-dir", s(&cache), s(&e.dir)]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(ledger_ids(&other), vec![1, 2]);
    assert_eq!(count(), 2);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let third = e.tmp.path().join("third.db");
        let o = wasmig(&["apply", "--db", s(&third), "--cache-dir", s(&cache), s(&e.dir)]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(4), "{err}");
        assert!(err.contains("cc") && err.contains("chmod 700"), "{err}");
        assert!(!third.exists() || !has_table(&third, "schema_migrations"), "nothing written");
    }
}

/// A database with one application table, as an application would have
/// before its first migration, and its bytes.
fn existing_db(path: &Path) -> Vec<u8> {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE app (x); INSERT INTO app VALUES (1);").unwrap();
    drop(conn);
    std::fs::read(path).unwrap()
}

/// Asserts `o` is a refusal (exit 3) naming `file` and saying `what`.
fn assert_refused(o: &Output, file: &Path, what: &str) {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert!(err.contains(&file.display().to_string()), "names the file: {err}");
    assert!(err.contains(what), "says {what:?}: {err}");
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_valid_plugin_is_refused_and_the_database_untouched() {
    let e = env();
    let elsewhere = e.tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let real = pack(&elsewhere, "example-baseline", 1, "baseline");
    let link = e.dir.join("0001_baseline.wasm");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let before = existing_db(&e.db);
    for args in [
        vec!["apply", "--db", s(&e.db), s(&e.dir)],
        vec!["status", "--db", s(&e.db), s(&e.dir)],
        vec!["verify", s(&e.dir)],
        vec!["inspect", s(&link)],
    ] {
        let o = wasmig(&args);
        if args[0] == "verify" {
            // verify reports each file on stdout, then exits 3.
            assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
            assert!(text(&o).0.contains("is a symbolic link, not a regular file"), "{:?}", text(&o));
        } else {
            assert_refused(&o, &link, "is a symbolic link, not a regular file");
        }
    }
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "the database is byte-for-byte as it was");

    // The same plugin as a regular file applies: the refusal was the link.
    std::fs::remove_file(&link).unwrap();
    std::fs::copy(&real, &link).unwrap();
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(ledger_ids(&e.db), vec![1]);
}

#[cfg(unix)]
#[test]
fn a_fifo_named_like_a_migration_is_refused_without_hanging() {
    let e = env();
    pack(&e.dir, "example-baseline", 1, "baseline");
    let fifo = e.dir.join("0002_pipe.wasm");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let before = existing_db(&e.db);
    // Nobody ever writes to the FIFO: a blocking open or read would hang.
    let o = wasmig_or_hang(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert_refused(&o, &fifo, "is a FIFO (named pipe), not a regular file");
    let o = wasmig_or_hang(&["inspect", s(&fifo)]);
    assert_refused(&o, &fifo, "FIFO");
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "the database is byte-for-byte as it was");
    std::fs::remove_file(&fifo).unwrap();
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[cfg(unix)]
#[test]
fn a_device_named_like_a_migration_is_refused() {
    let e = env();
    // /dev/zero never ends: reading it whole would exhaust memory.
    let o = wasmig_or_hang(&["inspect", "/dev/zero"]);
    assert_refused(&o, Path::new("/dev/zero"), "is a character device, not a regular file");

    // The same device (char 1:5) inside a migrations directory, where root
    // can make one; a container without CAP_MKNOD cannot, and says so.
    let dev = e.dir.join("0001_zero.wasm");
    let made = Command::new("mknod").arg(&dev).args(["c", "1", "5"]).output().unwrap();
    if !made.status.success() {
        eprintln!("mknod not permitted here ({:?}); device-in-directory case not exercised", text(&made).1);
        return;
    }
    let before = existing_db(&e.db);
    let o = wasmig_or_hang(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert_refused(&o, &dev, "is a character device, not a regular file");
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "the database is byte-for-byte as it was");
}

#[test]
fn a_sparse_file_far_over_the_size_limit_is_refused_without_reading_it() {
    let e = env();
    pack(&e.dir, "example-baseline", 1, "baseline");
    let huge = e.dir.join("0002_huge.wasm");
    // 10 GiB of holes: nothing on disk, but reading it whole would need
    // 10 GiB of memory and a long while.
    std::fs::File::create(&huge).unwrap().set_len(10 << 30).unwrap();
    let before = existing_db(&e.db);
    let o = wasmig_or_hang(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert_refused(&o, &huge, "too large");
    assert!(text(&o).1.contains("the limit is 16777216"), "{:?}", text(&o));
    let o = wasmig_or_hang(&["inspect", s(&huge)]);
    assert_refused(&o, &huge, "too large");
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "the database is byte-for-byte as it was");
}

#[test]
fn a_migration_leaving_a_ledger_forging_trigger_exits_1_in_apply_and_test() {
    let e = env();
    pack_examples(&e.dir, 1);
    assert!(wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]).status.success());
    let before = std::fs::read(&e.db).unwrap();
    // A faulty-corpus component, packed and signed like any release file.
    let manifest = wasmig::Manifest::new(2, "forge");
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    let bytes = wasmig::pack(&corpus_bytes("ledger_forging_trigger"), &manifest, Some(&sk)).unwrap();
    std::fs::write(e.dir.join(manifest.file_name()), bytes).unwrap();
    let o = wasmig(&["apply", "--db", s(&e.db), s(&e.dir)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("migration 2 (forge) left schema objects that can reach the ledger"), "{err}");
    assert!(err.contains("trigger audit_forge on forge_images inserts into schema_migrations"), "{err}");
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
    let o = wasmig(&["test", "--trust", s(&test_pub("dev")), "--db", s(&e.db), s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("0002 forge — FAILED") && out.contains("trigger audit_forge on forge_images"),
        "{out}"
    );
    assert_eq!(std::fs::read(&e.db).unwrap(), before);
}
