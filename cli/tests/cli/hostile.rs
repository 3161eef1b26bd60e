//! Hostile migrations against the real `wasmig` binary: for each, the
//! process ends with an exit code (never a signal, never past a generous
//! bound), the error names the cause, the database file is byte-for-byte
//! what it was, and the next good migration still applies.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use wasmig_test_support::*;

/// Longest any hostile run may take. Far above what the limits allow (a few
/// seconds), far below what the unbounded behaviour would take (minutes to
/// hours), so a regression fails here instead of hanging the suite.
const BOUND: Duration = Duration::from_secs(120);

struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    took: Duration,
}

/// Runs wasmig with `args` (trusting test key "dev"), killing it past BOUND.
fn run(args: &[&str]) -> Ended {
    let start = Instant::now();
    let mut child = crate::wasmig_command()
        .args(args)
        .arg("--trust")
        .arg(test_pub("dev"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting wasmig");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).ok();
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > BOUND {
            child.kill().ok();
            child.wait().ok();
            panic!("wasmig {args:?} still running after {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ended {
        code: status.code(),
        signal: status.signal(),
        stderr: reader.join().unwrap(),
        took: start.elapsed(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Packs faulty-corpus example `name` as migration `id`, signed by "dev".
fn pack_corpus(dir: &Path, name: &str, id: i64) -> std::path::PathBuf {
    let manifest = wasmig::Manifest::new(id, name);
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    let bytes = wasmig::pack(&corpus_bytes(name), &manifest, Some(&sk)).unwrap();
    let path = dir.join(manifest.file_name());
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The whole check for one hostile component, applied as migration 2 on top
/// of an applied baseline, with extra `flags` for `apply`.
fn contained(name: &str, flags: &[&str], needles: &[&str]) {
    let e = scratch();
    pack(&e.dir, "example-baseline", 1, "baseline");
    let first = run(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert_eq!(first.code, Some(0), "baseline: {}", first.stderr);
    let before = std::fs::read(&e.db).unwrap();

    let faulty = pack_corpus(&e.dir, name, 2);
    let mut args = vec!["apply", "--db", s(&e.db)];
    args.extend_from_slice(flags);
    args.push(s(&e.dir));
    let ended = run(&args);
    assert_eq!(ended.signal, None, "{name}: killed by a signal after {:?}: {}", ended.took, ended.stderr);
    assert_eq!(ended.code, Some(1), "{name}: a failed migration exits 1: {}", ended.stderr);
    for n in needles {
        assert!(ended.stderr.contains(n), "{name}: expected {n:?} in:\n{}", ended.stderr);
    }
    assert!(ended.stderr.contains(name), "{name}: the error names the migration:\n{}", ended.stderr);
    assert_eq!(std::fs::read(&e.db).unwrap(), before, "{name}: the database file changed");

    // The host is fine and so is the file: a good migration 2 applies.
    std::fs::remove_file(faulty).unwrap();
    pack(&e.dir, "example-add-index", 2, "add_index");
    let next = run(&["apply", "--db", s(&e.db), s(&e.dir)]);
    assert_eq!(next.code, Some(0), "{name}: next migration: {}", next.stderr);
    assert_eq!(ledger_ids(&e.db), vec![1, 2]);
}

#[test]
fn a_flood_of_statements_in_one_exec_is_refused_in_bounded_stack() {
    contained("statement_flood_exec", &[], &["more than one statement"]);
}

#[test]
fn a_flood_of_statements_in_one_query_is_refused_in_bounded_stack() {
    contained("statement_flood_query", &[], &["more than one statement"]);
}

#[test]
fn a_json_call_with_many_paths_is_refused_before_sqlite_runs_it() {
    contained("json_paths_bomb", &["--deadline", "60"], &["json_extract() with 126 paths", "denied"]);
}

#[test]
fn nested_json_calls_within_the_path_bound_meet_the_deadline() {
    contained("json_nested_walks", &["--deadline", "2"], &["deadline"]);
}

#[test]
fn quadratic_instr_meets_the_deadline() {
    contained("instr_bomb", &["--deadline", "2"], &["deadline"]);
}

#[test]
fn quadratic_replace_meets_the_deadline() {
    contained("replace_bomb", &["--deadline", "2"], &["deadline"]);
}

#[test]
fn backtracking_like_meets_the_deadline() {
    contained("like_bomb", &["--deadline", "2"], &["deadline"]);
}

#[test]
fn backtracking_glob_meets_the_deadline() {
    contained("glob_bomb", &["--deadline", "2"], &["deadline"]);
}

#[test]
fn quadratic_trim_meets_the_deadline() {
    contained("trim_bomb", &["--deadline", "2"], &["deadline"]);
}

#[test]
fn a_wide_row_of_large_values_hits_the_sqlite_heap_limit() {
    contained("heap_wide_row", &[], &["SQLite heap limit reached"]);
}

#[test]
fn aggregates_holding_large_values_hit_the_sqlite_heap_limit() {
    contained("heap_aggregate", &[], &["SQLite heap limit reached"]);
}
