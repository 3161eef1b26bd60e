//! The team-workflow commands and flags, run as the real binary on real
//! files: `status --exit-code`, secret keys from files, stdin and the
//! environment, `sign`, `check`, `wasmig.toml` and `config`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use wasmig_test_support::*;

/// A `wasmig` command run in `cwd`, with no `WASMIG_*` variables inherited.
fn cmd_in(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = crate::wasmig_command();
    cmd.args(args).current_dir(cwd);
    for var in ["WASMIG_DB", "WASMIG_DIR", "WASMIG_TRUST"] {
        cmd.env_remove(var);
    }
    cmd
}

fn run_in(cwd: &Path, args: &[&str]) -> Output {
    cmd_in(cwd, args).output().expect("running wasmig")
}

/// Runs wasmig with `input` on its standard input.
fn run_with_stdin(cwd: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = cmd_in(cwd, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running wasmig");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn dev_pub() -> String {
    s(&test_pub("dev")).to_owned()
}

#[test]
fn status_exit_code_is_5_while_pending_and_0_after_apply_and_never_creates_the_db() {
    let e = scratch();
    pack_examples(&e.dir, 2);
    let cwd = e.tmp.path();
    let trust = dev_pub();
    let o = run_in(cwd, &["status", "--db", s(&e.db), "--trust", &trust, "--exit-code", s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(5), "{out}{err}");
    assert!(err.contains("2 migration(s) pending"), "{err}");
    assert!(!err.contains("error"), "pending is not an error: {err}");
    assert!(!e.db.exists(), "status never creates the database");
    // The same with --json: the report is printed, the code still says pending.
    let o = run_in(cwd, &["status", "--db", s(&e.db), "--trust", &trust, "--exit-code", "--json", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(5));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exists"], false);
    assert!(!e.db.exists(), "status --json never creates the database");
    // Without --exit-code, pending is still success.
    let o = run_in(cwd, &["status", "--db", s(&e.db), "--trust", &trust, s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!e.db.exists());

    let o = run_in(cwd, &["apply", "--db", s(&e.db), "--trust", &trust, s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = run_in(cwd, &["status", "--db", s(&e.db), "--trust", &trust, "--exit-code", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // One more file: pending again.
    pack(&e.dir, "example-backfill", 3, "backfill");
    let o = run_in(cwd, &["status", "--db", s(&e.db), "--trust", &trust, "--exit-code", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(5), "{:?}", text(&o));
}

#[test]
fn status_on_a_missing_database_in_a_missing_directory_creates_nothing() {
    let e = scratch();
    pack_examples(&e.dir, 1);
    let db = e.tmp.path().join("nowhere").join("app.db");
    let o =
        run_in(e.tmp.path(), &["status", "--db", s(&db), "--trust", &dev_pub(), "--exit-code", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(5), "{:?}", text(&o));
    assert!(!db.exists() && !db.parent().unwrap().exists(), "nothing created");
}

/// Writes `sql` as `name.sql` in `dir` and returns its path.
fn sql_file(dir: &Path, name: &str, sql: &str) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.sql"));
    std::fs::write(&p, sql).unwrap();
    p
}

/// Key ids that signed `file`.
fn signers(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).unwrap();
    wasmig::signature_info(&bytes).unwrap().map(|i| i.key_ids).unwrap_or_default()
}

fn dev_key_id() -> String {
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    wasmig::key_id(&wasmig::public_of(&sk))
}

#[test]
fn pack_reads_the_secret_key_from_stdin() {
    let e = scratch();
    let cwd = e.tmp.path();
    let component = guest_out_dir().join("example_baseline.wasm");
    let key = std::fs::read(test_key("dev")).unwrap();
    let o = run_with_stdin(
        cwd,
        &["pack", s(&component), "--id", "1", "--name", "baseline", "--key", "-", "--out", s(&e.dir)],
        &key,
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let file = e.dir.join("0001_baseline.wasm");
    assert_eq!(signers(&file), vec![dev_key_id()]);
    // The file is what a host trusting dev applies.
    let o = run_in(cwd, &["apply", "--db", s(&e.db), "--trust", &dev_pub(), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(ledger_ids(&e.db), vec![1]);

    // Garbage on stdin is refused, naming where the key came from; nothing written.
    let script = sql_file(cwd, "t", "CREATE TABLE t (x);");
    let out = cwd.join("out");
    std::fs::create_dir(&out).unwrap();
    let o = run_with_stdin(
        cwd,
        &["pack-sql", s(&script), "--id", "2", "--name", "t", "--key", "-", "--out", s(&out)],
        b"not a key",
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("--key - (standard input): not a secret key"), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "nothing written");
}

#[test]
fn pack_sql_and_import_read_the_secret_key_from_an_environment_variable() {
    let e = scratch();
    let cwd = e.tmp.path();
    let raw = std::fs::read(test_key("dev")).unwrap();
    let pem = wasmsign2::SecretKey::from_any(&raw).unwrap().to_pem();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let script = sql_file(cwd, "t", "CREATE TABLE t (x);");

    let o = cmd_in(
        cwd,
        &["pack-sql", s(&script), "--id", "1", "--name", "t", "--key-env", "SIGNING_KEY", "--out", s(&e.dir)],
    )
    .env("SIGNING_KEY", &pem)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(signers(&e.dir.join("0001_t.wasm")), vec![dev_key_id()]);

    // Another tool's directory, the key as hex text.
    let diesel = cwd.join("diesel");
    std::fs::create_dir_all(diesel.join("2024-01-01-000000_create_u")).unwrap();
    std::fs::write(diesel.join("2024-01-01-000000_create_u").join("up.sql"), "CREATE TABLE u (y);").unwrap();
    let out = cwd.join("imported");
    let o = cmd_in(
        cwd,
        &["import", s(&diesel), "--from", "diesel", "--key-env", "SIGNING_KEY", "--out", s(&out)],
    )
    .env("SIGNING_KEY", &hex)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().map(|f| f.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    assert_eq!(signers(&files[0]), vec![dev_key_id()]);

    // An unset variable is refused by name.
    let o = cmd_in(
        cwd,
        &[
            "pack-sql",
            s(&script),
            "--id",
            "2",
            "--name",
            "t",
            "--key-env",
            "NO_SUCH_KEY_VAR",
            "--out",
            s(&e.dir),
        ],
    )
    .env_remove("NO_SUCH_KEY_VAR")
    .output()
    .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("--key-env NO_SUCH_KEY_VAR: the variable is not set"), "{err}");
    assert!(!e.dir.join("0002_t.wasm").exists());

    // --key and --key-env together is a usage error.
    let o = run_in(
        cwd,
        &[
            "pack-sql",
            s(&script),
            "--id",
            "2",
            "--name",
            "t",
            "--key",
            "-",
            "--key-env",
            "X",
            "--out",
            s(&e.dir),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
}

#[test]
fn sign_adds_one_signature_per_key_to_every_plugin_and_is_idempotent() {
    let e = scratch();
    let cwd = e.tmp.path();
    for (id, name) in [(1, "a"), (2, "b")] {
        let script = sql_file(cwd, name, &format!("CREATE TABLE {name} (x);"));
        let o = run_in(
            cwd,
            &["pack-sql", s(&script), "--id", &id.to_string(), "--name", name, "--out", s(&e.dir)],
        );
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    }
    let files = [e.dir.join("0001_a.wasm"), e.dir.join("0002_b.wasm")];
    assert!(files.iter().all(|f| signers(f).is_empty()));
    let dev = test_key("dev");

    // Without a key: a usage error, nothing changed.
    let unsigned: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let o = run_in(cwd, &["sign", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    // --trust: only files those keys vouch for may be co-signed; these are
    // unsigned, so nothing is signed at all.
    let o = run_in(cwd, &["sign", s(&e.dir), "--key", s(&dev), "--trust", s(&test_pub("second"))]);
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert_eq!(files.iter().map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>(), unsigned);

    let o = run_in(cwd, &["sign", s(&e.dir), "--key", s(&dev)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(files.iter().all(|f| signers(f) == vec![dev_key_id()]));
    let once: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();

    // Again with the same key (from stdin this time): byte-for-byte unchanged.
    let o = run_with_stdin(cwd, &["sign", s(&e.dir), "--key", "-"], &std::fs::read(&dev).unwrap());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("0 signed") && out.contains("2 already were"), "{out}");
    assert_eq!(files.iter().map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>(), once);

    // A second key co-signs what dev signed; now 2 of 2 applies.
    let second = test_key("second");
    let o = run_in(cwd, &["sign", s(&e.dir), "--key", s(&second), "--trust", &dev_pub()]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(files.iter().all(|f| signers(f).len() == 2));
    let second_pub = test_pub("second");
    let o = run_in(
        cwd,
        &[
            "apply",
            "--db",
            s(&e.db),
            "--trust",
            &dev_pub(),
            "--trust",
            s(&second_pub),
            "--min-signers",
            "2",
            s(&e.dir),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(ledger_ids(&e.db), vec![1, 2]);
}

/// Every file of `dir` with its bytes, to show a command changed none.
fn tree(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| {
            let p = f.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Migration 3 with its code corrupted but its sections intact, signed by
/// dev: only compiling can tell.
fn corrupt_but_signed(dir: &Path) {
    let third = pack_with(dir, "example-backfill", 3, "backfill", &[]);
    let mut bytes = std::fs::read(&third).unwrap();
    let code = wasmig::sections(&bytes).unwrap().iter().find(|s| s.id != 0).unwrap().range.clone();
    for b in &mut bytes[code.start + 8..code.start + 40] {
        *b = 0xff;
    }
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    let signed = wasmig::pack(&bytes, &wasmig::Manifest::new(3, "backfill"), Some(&sk)).unwrap();
    std::fs::write(&third, signed).unwrap();
}

#[test]
fn check_passes_a_good_directory_and_lists_every_problem_of_a_bad_one() {
    let e = scratch();
    let cwd = e.tmp.path();
    let trust = dev_pub();
    pack_examples(&e.dir, 2);
    let o = run_in(cwd, &["check", "--trust", &trust, s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("2 file(s) checked, 2 pending, no problems"), "{out}");

    corrupt_but_signed(&e.dir);
    pack_with(&e.dir, "example-rebuild", 4, "rebuild", &[]); // unsigned
    std::fs::write(e.dir.join("0005_junk.wasm"), b"not webassembly").unwrap();
    pack(&e.dir, "example-add-index", 6, "six"); // id 6 twice
    pack(&e.dir, "example-add-index", 6, "six_again");
    // A file renamed to run elsewhere in the queue.
    std::fs::copy(e.dir.join("0001_baseline.wasm"), e.dir.join("0007_baseline.wasm")).unwrap();
    let before = tree(&e.dir);

    let o = run_in(cwd, &["check", "--trust", &trust, s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "one line per problem: {out}");
    for (file, what) in [
        ("0003_backfill.wasm", "component rejected"),
        ("0004_rebuild.wasm", "not signed"),
        ("0005_junk.wasm", ""),
        ("0006_six_again.wasm", "duplicate migration id 6"),
        ("0007_baseline.wasm", ""),
    ] {
        assert!(lines.iter().any(|l| l.contains(file) && l.contains(what)), "{file} {what}: {out}");
    }
    assert!(err.contains("5 problem(s) found"), "{err}");

    let o = run_in(cwd, &["check", "--trust", &trust, "--json", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["files"], 8);
    let mut kinds: Vec<&str> =
        v["problems"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["bad-plugin", "bad-plugin", "duplicate-id", "invalid-component", "untrusted"]);
    assert_eq!(tree(&e.dir), before, "check wrote nothing");
    assert!(!e.db.exists());
}

#[test]
fn check_with_a_database_reports_drift_order_and_missing_files_and_writes_nothing() {
    let e = scratch();
    let cwd = e.tmp.path();
    let trust = dev_pub();
    pack_examples(&e.dir, 3);
    std::fs::remove_file(e.dir.join("0002_add_index.wasm")).unwrap();
    let o = run_in(cwd, &["apply", "--db", s(&e.db), "--trust", &trust, s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(ledger_ids(&e.db), vec![1, 3]);

    // A missing database is not created, and checks as empty.
    let absent = cwd.join("absent.db");
    let o = run_in(cwd, &["check", "--db", s(&absent), "--trust", &trust, s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(!absent.exists(), "check never creates the database");
    let o = run_in(cwd, &["check", "--db", s(&e.db), "--trust", &trust, s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    // Id 2 arrives late (out of order); 1 is replaced (drift); 3 is deleted
    // (applied, file missing).
    pack(&e.dir, "example-add-index", 2, "add_index");
    pack(&e.dir, "example-add-index", 1, "baseline");
    std::fs::remove_file(e.dir.join("0003_backfill.wasm")).unwrap();
    pack(&e.dir, "example-rebuild", 4, "rebuild");
    let db_before = std::fs::read(&e.db).unwrap();
    let o = run_in(cwd, &["check", "--db", s(&e.db), "--trust", &trust, "--json", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems = v["problems"].as_array().unwrap();
    let kinds: Vec<&str> = problems.iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["missing-files", "drift", "out-of-order"], "{v}");
    assert_eq!(problems[1]["id"], 1);
    assert_eq!(problems[2]["id"], 2);
    assert!(problems[0]["message"].as_str().unwrap().contains("migration(s) 3"), "{v}");
    assert_eq!(v["pending"], serde_json::json!([2, 4]));
    assert_eq!(std::fs::read(&e.db).unwrap(), db_before, "the database is byte-for-byte unchanged");
    // apply's own overrides, the same way: only the drift is left.
    let o = run_in(
        cwd,
        &["check", "--db", s(&e.db), "--trust", &trust, "--allow-missing", "--allow-out-of-order", s(&e.dir)],
    );
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert_eq!(out.lines().collect::<Vec<_>>().len(), 1, "{out}");
    assert!(out.starts_with("drift: migration 1 (baseline)"), "{out}");
}

/// A project: `wasmig.toml` at the root naming `app.db`, `migrations/`
/// (examples 1 and 2, signed by dev) and `keys/dev.pub`, plus `extra` lines;
/// returns the scratch space and a subdirectory two levels down.
fn project(extra: &str) -> (Scratch, std::path::PathBuf) {
    let e = scratch();
    pack_examples(&e.dir, 2);
    let root = e.tmp.path();
    std::fs::create_dir(root.join("keys")).unwrap();
    std::fs::copy(test_pub("dev"), root.join("keys").join("dev.pub")).unwrap();
    std::fs::write(
        root.join("wasmig.toml"),
        format!(
            "db = \"app.db\"\ndir = \"migrations\"\ntrust = [\"keys/dev.pub\"]\nmin_signers = 1\n{extra}"
        ),
    )
    .unwrap();
    let sub = root.join("src").join("deeper");
    std::fs::create_dir_all(&sub).unwrap();
    (e, sub)
}

#[test]
fn wasmig_toml_is_found_from_a_subdirectory_and_its_paths_are_relative_to_it() {
    let (e, sub) = project("");
    let o = run_in(&sub, &["status", "--exit-code"]);
    assert_eq!(o.status.code(), Some(5), "{:?}", text(&o));
    let o = run_in(&sub, &["apply"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(ledger_ids(&e.db), vec![1, 2], "applied to the configured database");
    assert!(!sub.join("app.db").exists());
    let o = run_in(&sub, &["status", "--exit-code"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = run_in(&sub, &["check"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = run_in(&sub, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    let o = run_in(&sub, &["config", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let toml = e.tmp.path().join("wasmig.toml");
    assert_eq!(v["file"], s(&toml));
    let get = |k: &str| v["settings"].as_array().unwrap().iter().find(|x| x["key"] == k).unwrap().clone();
    assert_eq!(get("db")["value"], s(&e.db));
    assert_eq!(get("db")["source"], "file");
    assert_eq!(get("db")["origin"], s(&toml));
    assert_eq!(get("trust")["value"], serde_json::json!([s(&e.tmp.path().join("keys").join("dev.pub"))]));
    assert_eq!(get("cache_dir")["source"], serde_json::Value::Null);
    let (out, _) = text(&run_in(&sub, &["config"]));
    assert!(out.contains(&format!("db = \"{}\" (from {})", s(&e.db), s(&toml))), "{out}");
    assert!(out.contains("cache_dir: not set"), "{out}");
}

#[test]
fn flags_override_the_environment_which_overrides_the_file() {
    let (e, sub) = project("");
    let env_db = sub.join("env.db");
    let flag_db = sub.join("flag.db");
    let database = |o: &Output| -> String {
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{:?}", text(o)));
        v["database"].as_str().unwrap().to_owned()
    };
    assert_eq!(database(&run_in(&sub, &["status", "--json"])), s(&e.db));
    let o = cmd_in(&sub, &["status", "--json"]).env("WASMIG_DB", "env.db").output().unwrap();
    assert_eq!(database(&o), "env.db", "the environment is relative to the working directory");
    let o =
        cmd_in(&sub, &["status", "--json", "--db", s(&flag_db)]).env("WASMIG_DB", &env_db).output().unwrap();
    assert_eq!(database(&o), s(&flag_db));
    let o = cmd_in(&sub, &["config", "--json"]).env("WASMIG_DB", &env_db).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let db = v["settings"].as_array().unwrap().iter().find(|x| x["key"] == "db").unwrap().clone();
    assert_eq!(
        (db["value"].as_str(), db["source"].as_str(), db["origin"].as_str()),
        (Some(s(&env_db)), Some("env"), Some("WASMIG_DB"))
    );

    // Trust: the file trusts dev; WASMIG_TRUST (a list) replaces it; --trust beats both.
    assert_eq!(run_in(&sub, &["check"]).status.code(), Some(0));
    let other = format!("{}:{}", s(&test_pub("second")), s(&test_pub("third")));
    let o = cmd_in(&sub, &["check"]).env("WASMIG_TRUST", &other).output().unwrap();
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert_eq!(out.lines().count(), 2, "both files untrusted: {out}");
    let o = cmd_in(&sub, &["check", "--trust", &dev_pub()]).env("WASMIG_TRUST", &other).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    // The migrations directory likewise.
    let empty = sub.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = cmd_in(&sub, &["check", "--json"]).env("WASMIG_DIR", "empty").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["directory"].as_str(), v["files"].as_u64()), (Some("empty"), Some(0)));
    let o = cmd_in(&sub, &["check", "--json", s(&e.dir)]).env("WASMIG_DIR", "empty").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"], 2);
}

#[test]
fn configured_limits_apply_and_a_flag_overrides_each() {
    let (e, sub) = project("\n[limits]\nfuel = 1\n");
    let o = run_in(&sub, &["apply"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "one unit of fuel cannot run a guest: {err}");
    assert!(err.contains("fuel"), "{err}");
    assert!(!has_table(&e.db, "schema_migrations"), "the failed first migration left no trace");
    let o = run_in(&sub, &["apply", "--fuel", "10000000000"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(ledger_ids(&e.db), vec![1, 2]);
    let (out, _) = text(&run_in(&sub, &["config"]));
    assert!(out.contains("limits.fuel = 1 (from"), "{out}");
}

#[test]
fn a_bad_configuration_or_a_missing_dir_is_a_usage_error() {
    let (e, sub) = project("databse = \"typo.db\"\n");
    let toml = e.tmp.path().join("wasmig.toml");
    let o = run_in(&sub, &["status"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("databse") && err.contains(s(&toml)), "names the key and the file: {err}");
    std::fs::write(&toml, "[limits]\nfuell = 3\n").unwrap();
    let (_, err) = text(&run_in(&sub, &["config"]));
    assert!(err.contains("fuell") && err.contains(s(&toml)), "{err}");

    // No configuration at all: DIR and --db must be given.
    std::fs::remove_file(&toml).unwrap();
    let o = run_in(&sub, &["status", "--db", s(&e.db)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no migrations directory"), "{err}");
    let o = run_in(&sub, &["apply", s(&e.dir)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no database"), "{err}");
    assert!(!e.db.exists());
}

#[test]
fn inspect_sql_shows_the_statements_a_pack_sql_plugin_runs_and_refuses_compiled_code() {
    let e = scratch();
    let cwd = e.tmp.path();
    let script =
        sql_file(cwd, "t", "-- a table and a row\nCREATE TABLE t (x TEXT);\nINSERT INTO t VALUES ('a;b');\n");
    let key = test_key("dev");
    let o = run_in(
        cwd,
        &["pack-sql", s(&script), "--id", "1", "--name", "t", "--key", s(&key), "--out", s(&e.dir)],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let file = e.dir.join("0001_t.wasm");
    let o = run_in(cwd, &["inspect", "--sql", s(&file)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let statements: Vec<&str> = out.lines().filter(|l| !l.starts_with("--")).collect();
    assert_eq!(statements, ["CREATE TABLE t (x TEXT);", "INSERT INTO t VALUES ('a;b');"], "{out}");
    assert!(out.contains("2 statement(s)"), "{out}");

    let o = run_in(cwd, &["inspect", "--sql", "--json", "--trust", &dev_pub(), s(&file)]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["statements"],
        serde_json::json!(["CREATE TABLE t (x TEXT);", "INSERT INTO t VALUES ('a;b');"])
    );
    assert_eq!(v["manifest"]["id"], 1);
    assert!(v["verdict"].as_str().unwrap().starts_with("trusted"), "{v}");

    // An imported plugin is a pack-sql component too.
    let sqlx = cwd.join("sqlx");
    std::fs::create_dir(&sqlx).unwrap();
    std::fs::write(sqlx.join("20240101000000_users.sql"), "CREATE TABLE users (id INTEGER);").unwrap();
    let imported = cwd.join("imported");
    let o = run_in(cwd, &["import", s(&sqlx), "--from", "sqlx", "--out", s(&imported)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let file = std::fs::read_dir(&imported).unwrap().next().unwrap().unwrap().path();
    let (out, _) = text(&run_in(cwd, &["inspect", "--sql", s(&file)]));
    assert!(out.lines().any(|l| l == "CREATE TABLE users (id INTEGER);"), "{out}");

    // Compiled code has no statements to show.
    let compiled = pack(&e.dir, "example-baseline", 2, "baseline");
    let o = run_in(cwd, &["inspect", "--sql", s(&compiled)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert!(err.contains("not a pack-sql component"), "{err}");
}

#[test]
fn pack_out_creates_the_directory_it_names_and_nothing_when_refused() {
    let e = scratch();
    let cwd = e.tmp.path();
    let component = guest_out_dir().join("example_baseline.wasm");
    let key = test_key("dev");
    let pack_to = |out: &Path, id: &str| {
        run_in(
            cwd,
            &["pack", s(&component), "--id", id, "--name", "baseline", "--key", s(&key), "--out", s(out)],
        )
    };
    // A refused pack (the file name disagrees with the manifest) creates nothing.
    let refused_dir = cwd.join("refused");
    let o = pack_to(&refused_dir.join("0002_other.wasm"), "1");
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert!(!refused_dir.exists(), "nothing created for a refused pack");

    let with_slash = format!("{}/", s(&cwd.join("dist")));
    let o = pack_to(Path::new(&with_slash), "1");
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(cwd.join("dist").join("0001_baseline.wasm").is_file());
    let nested = cwd.join("release").join("v2");
    let o = pack_to(&nested, "1");
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(nested.join("0001_baseline.wasm").is_file());
    let file = cwd.join("new-parent").join("0001_baseline.wasm");
    let o = pack_to(&file, "1");
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(file.is_file());
    let o = run_in(cwd, &["verify", "--trust", &dev_pub(), s(&nested)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}

#[test]
fn new_sql_scaffolds_a_migration_that_packs_and_applies() {
    let e = scratch();
    let cwd = e.tmp.path();
    pack_examples(&e.dir, 2);
    let sql_dir = cwd.join("sql");
    let o = run_in(cwd, &["new", "--sql", "add_notes", "--dir", s(&e.dir), "--out", s(&sql_dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let file = sql_dir.join("0003_add_notes.sql");
    assert!(file.is_file(), "{out}");
    assert!(out.contains("--id 3 --name add_notes"), "{out}");
    let key = test_key("dev");
    let o = run_in(
        cwd,
        &["pack-sql", s(&file), "--id", "3", "--name", "add_notes", "--key", s(&key), "--out", s(&e.dir)],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = run_in(cwd, &["apply", "--db", s(&e.db), "--trust", &dev_pub(), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(has_table(&e.db, "add_notes_example"));
    // Never overwrites.
    let before = std::fs::read(&file).unwrap();
    let o = run_in(cwd, &["new", "--sql", "add_notes", "--id", "3", "--out", s(&sql_dir)]);
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn new_writes_relative_paths_and_the_sdks_pinned_toolchain() {
    let e = scratch();
    let cwd = e.tmp.path();
    let o = run_in(cwd, &["new", "tags", "--id", "1", "--out", "crates"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let krate = cwd.join("crates").join("tags");
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(krate.join("Cargo.toml")).unwrap()).unwrap();
    let sdk = manifest["dependencies"]["wasmig-guest"]["path"].as_str().unwrap();
    assert!(Path::new(sdk).is_relative(), "{sdk}");
    assert_eq!(
        std::fs::canonicalize(krate.join(sdk)).unwrap(),
        std::fs::canonicalize(repo_root().join("guest-migrations").join("sdk")).unwrap()
    );
    let host = manifest["target"]["cfg(not(target_arch = \"wasm32\"))"]["dev-dependencies"]["wasmig"]["path"]
        .as_str()
        .unwrap();
    assert!(Path::new(host).is_relative(), "{host}");
    assert!(krate.join(host).join("Cargo.toml").is_file());
    let channel = |p: &Path| -> String {
        let t: toml::Table = toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        t["toolchain"]["channel"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        channel(&krate.join("rust-toolchain.toml")),
        channel(&repo_root().join("rust-toolchain.toml"))
    );
}

#[test]
fn a_trap_prints_the_guest_backtrace_once() {
    let cases: [(&str, &[&str], &str); 2] = [
        ("examples/memory_bomb.wasm", &["--max-memory-mib", "2"], "__rust_alloc"),
        ("faulty_panic.wasm", &[], "faulty_panic::explode"),
    ];
    for (component, flags, frame) in cases {
        let e = scratch();
        let cwd = e.tmp.path();
        let component = guest_out_dir().join(component);
        let key = test_key("dev");
        let o = run_in(
            cwd,
            &["pack", s(&component), "--id", "1", "--name", "x", "--key", s(&key), "--out", s(&e.dir)],
        );
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        let mut args = vec!["apply", "--db", s(&e.db), "--trust"];
        let trust = dev_pub();
        args.push(&trust);
        args.extend_from_slice(flags);
        args.push(s(&e.dir));
        let o = run_in(cwd, &args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.matches("wasm backtrace").count(), 1, "{err}");
        assert_eq!(err.matches(frame).count(), 1, "{err}");
        assert_eq!(err.matches("wasm!up").count(), 1, "{err}");
    }
}

fn user_version(db: &Path) -> i32 {
    rusqlite::Connection::open(db).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
}

#[test]
fn stamp_user_version_makes_a_no_op_apply_read_the_header_and_a_revert_clears_it() {
    let e = scratch();
    pack_sql(&e.dir, 1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY);", Some("DROP TABLE items;"));
    pack_sql(&e.dir, 2, "seed", "INSERT INTO items VALUES (1);", Some("DELETE FROM items;"));
    let cwd = e.tmp.path();
    let trust = dev_pub();
    let apply = |extra: &[&str]| {
        let mut args = vec!["apply", "--db", s(&e.db), "--trust", &trust, "--json"];
        args.extend_from_slice(extra);
        args.push(s(&e.dir));
        let o = run_in(cwd, &args);
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let first = apply(&["--stamp-user-version"]);
    assert_eq!(first["applied"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["header_stamp_matched"], false);
    let stamp = user_version(&e.db);
    assert_ne!(stamp, 0);
    // Later runs need no flag: the database remembers stamp mode.
    let again = apply(&[]);
    assert_eq!(again["header_stamp_matched"], true, "{again}");
    assert_eq!(again["already_applied"], serde_json::json!([1, 2]));

    let o = run_in(cwd, &["down", "--db", s(&e.db), "--trust", &trust, "--to", "1", s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(user_version(&e.db), 0, "the revert cleared the stamp");
    let back = apply(&[]);
    assert_eq!(back["applied"][0]["id"], 2, "{back}");
    assert_eq!(user_version(&e.db), stamp, "the same set and schema give the same stamp");
}

#[test]
fn stamp_user_version_from_wasmig_toml_and_never_without_it() {
    let e = scratch();
    pack_sql(&e.dir, 1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY);", None);
    let cwd = e.tmp.path();
    let trust = dev_pub();
    let apply = || run_in(cwd, &["apply", "--db", s(&e.db), "--trust", &trust, s(&e.dir)]);
    rusqlite::Connection::open(&e.db).unwrap().pragma_update(None, "user_version", 7).unwrap();
    assert_eq!(apply().status.code(), Some(0));
    assert_eq!(user_version(&e.db), 7, "the application's user_version is left alone");

    std::fs::write(cwd.join("wasmig.toml"), "stamp_user_version = true\n").unwrap();
    let o = apply();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_ne!(user_version(&e.db), 7, "stamped when configured");
    let o = apply();
    assert!(text(&o).0.contains("(header stamp: nothing changed)"), "{:?}", text(&o));
    let o = run_in(cwd, &["config"]);
    assert!(text(&o).0.contains("stamp_user_version"), "{:?}", text(&o));
}
