//! The team-workflow commands and flags, run as the real binary on real
//! files: `status --exit-code`, secret keys from files, stdin and the
//! environment, `sign`, `check`, `wasmig.toml` and `config`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use wasmig_test_support::*;

/// A `wasmig` command run in `cwd`, with no `WASMIG_*` variables inherited.
fn cmd_in(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmig"));
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
