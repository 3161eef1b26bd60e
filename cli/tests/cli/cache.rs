//! The compiled-component cache as the CLI uses it: on by default in the
//! per-user cache directory, `--no-cache`, and `wasmig prepare`.

use std::path::Path;

use wasmig_test_support::*;

use crate::commands::{s, text, wasmig};

/// The compiled entries in `dir` (none when it does not exist).
fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "cwasm")).count()
    })
}

/// Runs wasmig with `XDG_CACHE_HOME` set to `home`.
fn wasmig_with_home(home: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wasmig"));
    cmd.env("XDG_CACHE_HOME", home).args(args).arg("--trust").arg(test_pub("dev"));
    cmd.output().expect("running wasmig")
}

#[test]
fn apply_caches_in_the_per_user_directory_unless_told_not_to() {
    let e = scratch();
    pack_examples(&e.dir, 2);
    let home = e.tmp.path().join("cache-home");
    std::fs::create_dir(&home).unwrap();
    let o = wasmig_with_home(&home, &["apply", "--db", s(&e.db), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(entries(&home.join("wasmig")), 2, "both components compiled into the default cache");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("wasmig")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "created private");
    }

    let other = scratch();
    pack_examples(&other.dir, 2);
    let home2 = other.tmp.path().join("cache-home");
    std::fs::create_dir(&home2).unwrap();
    let o = wasmig_with_home(&home2, &["apply", "--no-cache", "--db", s(&other.db), s(&other.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(ledger_ids(&other.db), vec![1, 2]);
    assert!(!home2.join("wasmig").exists(), "--no-cache writes nothing");

    let o = wasmig_with_home(
        &home2,
        &["apply", "--no-cache", "--cache-dir", "x", "--db", s(&other.db), s(&other.dir)],
    );
    assert_eq!(o.status.code(), Some(2), "--no-cache with --cache-dir is a usage error");
}

#[cfg(unix)]
#[test]
fn an_unsafe_default_cache_is_not_used_and_apply_still_works() {
    use std::os::unix::fs::PermissionsExt;
    let e = scratch();
    pack_examples(&e.dir, 2);
    let home = e.tmp.path().join("cache-home");
    std::fs::create_dir_all(home.join("wasmig")).unwrap();
    std::fs::set_permissions(home.join("wasmig"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = wasmig_with_home(&home, &["apply", "--db", s(&e.db), s(&e.dir)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("warning") && err.contains("compiling without a cache"), "{err}");
    assert_eq!(entries(&home.join("wasmig")), 0, "nothing written into a world-writable cache");
    assert_eq!(ledger_ids(&e.db), vec![1, 2]);
}

#[test]
fn prepare_compiles_what_is_pending_and_apply_then_only_loads() {
    let e = scratch();
    pack_examples(&e.dir, 4);
    let before_db = std::fs::read(&e.db).ok();

    // Every file, without a database.
    let all = e.tmp.path().join("all");
    let o = wasmig(&["prepare", "--cache-dir", s(&all), s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert_eq!(entries(&all), 4, "{out}");
    assert!(out.contains("prepared 4 migration(s)"), "{out}");

    // Only what is pending for a database that has the first two.
    pack_examples(&e.dir, 4);
    let two = scratch();
    pack_examples(&two.dir, 2);
    assert!(wasmig(&["apply", "--no-cache", "--db", s(&e.db), s(&two.dir)]).status.success());
    let db_bytes = std::fs::read(&e.db).unwrap();
    let pending = e.tmp.path().join("pending");
    let o = wasmig(&["prepare", "--json", "--db", s(&e.db), "--cache-dir", s(&pending), s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<i64> =
        v["migrations"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![3, 4]);
    assert!(v["migrations"].as_array().unwrap().iter().all(|m| m["cached"] == true), "{out}");
    assert_eq!(entries(&pending), 2);
    assert_eq!(std::fs::read(&e.db).unwrap(), db_bytes, "prepare changes no database");
    assert!(before_db.is_none());

    // apply with that cache loads the two entries and writes no new one.
    let o = wasmig(&["apply", "--db", s(&e.db), "--cache-dir", s(&pending), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(ledger_ids(&e.db), vec![1, 2, 3, 4]);
    assert_eq!(entries(&pending), 2);
}

#[test]
fn prepare_refuses_a_bad_file_like_apply() {
    let e = scratch();
    pack_examples(&e.dir, 1);
    let path = e.dir.join("0002_unsigned.wasm");
    pack_with(&e.dir, "example-add-index", 2, "unsigned", &[]);
    assert!(path.exists());
    let cache = e.tmp.path().join("c");
    let o = wasmig(&["prepare", "--cache-dir", s(&cache), s(&e.dir)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert!(err.contains("0002_unsigned.wasm"), "{err}");
}

#[test]
fn without_an_absolute_xdg_cache_home_the_default_is_under_home() {
    let e = scratch();
    pack_examples(&e.dir, 1);
    let home = e.tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wasmig"));
    // A relative XDG_CACHE_HOME is ignored, as the XDG rules say.
    cmd.env("XDG_CACHE_HOME", "relative/cache").env("HOME", &home).current_dir(e.tmp.path());
    let o = cmd
        .args(["apply", "--db", s(&e.db), s(&e.dir), "--trust"])
        .arg(test_pub("dev"))
        .output()
        .expect("running wasmig");
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(entries(&home.join(".cache").join("wasmig")), 1);
    assert!(!e.tmp.path().join("relative").exists());
}

#[test]
fn compiled_code_is_kept_per_compiler_and_an_unknown_compiler_is_a_usage_error() {
    let e = scratch();
    pack_examples(&e.dir, 2);
    let cache = e.tmp.path().join("c");
    let o = wasmig(&["prepare", "--compiler", "winch", "--cache-dir", s(&cache), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(entries(&cache), 2);
    // apply with the same compiler only loads what prepare compiled.
    let o = wasmig(&["apply", "--compiler", "winch", "--db", s(&e.db), "--cache-dir", s(&cache), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(entries(&cache), 2, "Winch's entries were loaded, none written");
    assert_eq!(ledger_ids(&e.db), vec![1, 2]);
    // Cranelift (the default) cannot use them and compiles its own.
    let other = e.tmp.path().join("other.db");
    let o = wasmig(&["apply", "--db", s(&other), "--cache-dir", s(&cache), s(&e.dir)]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(entries(&cache), 4, "one entry per file and compiler");
    assert_eq!(snapshot(&other).schema, snapshot(&e.db).schema, "the same schema either way");

    let o = wasmig(&["apply", "--compiler", "llvm", "--db", s(&other), s(&e.dir)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("llvm") && err.contains("winch"), "{err}");
}
