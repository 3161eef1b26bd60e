//! `wasmig new`: a guest migration crate, ready to build and test.

use std::path::{Path, PathBuf};

/// Where the generated crate finds wasmig's own crates.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The guest SDK crate (`guest-migrations/sdk`).
    pub sdk: PathBuf,
    /// The host library crate (`host/`), for the crate's native tests.
    pub host: PathBuf,
}

impl Sources {
    /// The crates of the wasmig checkout this binary was built from, if it
    /// is still on this machine.
    pub fn from_build() -> Option<Sources> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent()?.to_owned();
        let host = root.join("host");
        let sdk = root.join("guest-migrations").join("sdk");
        (sdk.join("Cargo.toml").is_file() && host.join("Cargo.toml").is_file())
            .then_some(Sources { sdk, host })
    }
}

/// The next free migration id for `dir`: one past the highest id of the
/// plugins there (manifests read without verifying), or 1.
pub fn next_free_id(dir: &Path) -> i64 {
    let Ok(files) = wasmig::list_dir(dir) else { return 1 };
    files
        .iter()
        .filter_map(|f| wasmig::read_plugin_file(f, wasmig::DEFAULT_MAX_FILE_SIZE).ok())
        .filter_map(|b| wasmig::read_manifest(&b).ok())
        .map(|m| m.id)
        .max()
        .map_or(1, |m| m + 1)
}

/// Writes a new guest crate called `name` under `parent`; returns the files.
pub fn scaffold(parent: &Path, name: &str, id: i64, src: &Sources) -> Result<Vec<PathBuf>, String> {
    wasmig::validate_name(name).map_err(|e| e.to_string())?;
    if id < 1 {
        return Err(format!("migration id must be positive, got {id}"));
    }
    let root = parent.join(name);
    if root.exists() {
        return Err(format!("{} already exists", root.display()));
    }
    let lib = name.replace('-', "_");
    let table = format!("{lib}_example");
    let files: Vec<(PathBuf, String)> = vec![
        (
            root.join("Cargo.toml"),
            format!(
                r#"[package]
name = "{name}"
description = "wasmig migration {id}: {name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
wasmig-guest = {{ path = "{sdk}" }}

# Native-only: the tests run the built component through wasmig's harness.
[target.'cfg(not(target_arch = "wasm32"))'.dev-dependencies]
wasmig = {{ path = "{host}" }}
rusqlite = {{ version = "0.43", features = ["bundled"] }}

[package.metadata.wasmig]
id = {id}
name = "{name}"

# The measured smallest profile (a one-statement migration is about 15 KB).
# "debuginfo" drops the standard library's debug info but keeps function
# names, so a trap still shows a readable backtrace.
[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"

# A workspace of its own, so it builds wherever it is placed.
[workspace]
"#,
                sdk = src.sdk.display(),
                host = src.host.display()
            ),
        ),
        (
            root.join(".cargo").join("config.toml"),
            "# Link wasm32-unknown-unknown cdylibs as components (no WASI imports).\n\
             [target.wasm32-unknown-unknown]\nlinker = \"wasm-component-ld\"\n"
                .to_owned(),
        ),
        (
            root.join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"stable\"\ntargets = [\"wasm32-unknown-unknown\"]\n".to_owned(),
        ),
        (
            root.join("src").join("lib.rs"),
            format!(
                r#"//! Migration {id}: {name}.
//!
//! Runs inside one transaction: return `Ok(())` to commit, an error (or a
//! panic) to roll everything back.

use wasmig_guest::{{Result, exec}};

fn up() -> Result<()> {{
    exec("CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, note TEXT NOT NULL)", &[])?;
    Ok(())
}}

wasmig_guest::migration!(up);
"#
            ),
        ),
        (
            root.join("tests").join("migration.rs"),
            format!(
                r#"//! Builds the component and runs it through wasmig's test harness.
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;
use std::process::Command;

fn component() -> Vec<u8> {{
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = dir.join("target").join("component");
    let status = Command::new(env!("CARGO"))
        .current_dir(&dir)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("running cargo");
    assert!(status.success());
    std::fs::read(target.join("wasm32-unknown-unknown/release/{lib}.wasm")).expect("built component")
}}

#[test]
fn applies_to_an_empty_database() {{
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    wasmig::testing::assert_applies(&component(), &mut conn);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema WHERE name = '{table}'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}}
"#
            ),
        ),
    ];
    let mut written = Vec::new();
    for (path, text) in files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
