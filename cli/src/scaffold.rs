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

/// The toolchain file of the checkout this binary was built from, which the
/// SDK beside it is built and tested with.
const BUILT_WITH_TOOLCHAIN: &str = include_str!("../../rust-toolchain.toml");

/// The toolchain channel the SDK at `sdk` is built with: its nearest
/// `rust-toolchain.toml` (or `rust-toolchain`), else this checkout's.
fn sdk_channel(sdk: &Path) -> Result<String, String> {
    let found = sdk.ancestors().find_map(|d| {
        ["rust-toolchain.toml", "rust-toolchain"].iter().find_map(|f| std::fs::read_to_string(d.join(f)).ok())
    });
    let text = found.as_deref().unwrap_or(BUILT_WITH_TOOLCHAIN);
    // The legacy `rust-toolchain` file may hold just the channel.
    if !text.contains('=') && !text.trim().is_empty() {
        return Ok(text.trim().to_owned());
    }
    let value: toml::Table =
        toml::from_str(text).map_err(|e| format!("reading the SDK's toolchain file: {e}"))?;
    value
        .get("toolchain")
        .and_then(|t| t.get("channel"))
        .and_then(|c| c.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "the SDK's toolchain file names no channel".to_owned())
}

/// `to` as a path relative to directory `from` (both made absolute), with
/// `/` separators, which Cargo accepts on every platform. `None` when there
/// is no relative path (different Windows drives).
fn relative(from: &Path, to: &Path) -> Option<String> {
    let (from, to) = (resolved(from)?, resolved(to)?);
    let (f, t): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    if f.first() != t.first() {
        return None;
    }
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); f.len() - common];
    parts.extend(t[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    Some(if parts.is_empty() { ".".to_owned() } else { parts.join("/") })
}

/// `p` made absolute with links resolved as far as it exists (the crate
/// being created does not yet), so two paths compare component by component.
fn resolved(p: &Path) -> Option<PathBuf> {
    let p = std::path::absolute(p).ok()?;
    let existing = p.ancestors().find(|a| a.exists())?;
    let rest = p.strip_prefix(existing).ok()?;
    Some(std::fs::canonicalize(existing).ok()?.join(rest))
}

/// `value` as a TOML string (quotes and backslashes escaped).
fn toml_str(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// How the crate at `root` refers to the crate at `dep`: a relative path,
/// so the pair can move together (or a checkout be anywhere).
fn dep_path(root: &Path, dep: &Path) -> String {
    toml_str(&relative(root, dep).unwrap_or_else(|| dep.display().to_string()))
}

/// Writes a new SQL migration file `<id>_<name>.sql` into `parent`, for
/// `wasmig pack-sql`; returns its path.
pub fn scaffold_sql(parent: &Path, name: &str, id: i64) -> Result<PathBuf, String> {
    wasmig::validate_name(name).map_err(|e| e.to_string())?;
    if id < 1 {
        return Err(format!("migration id must be positive, got {id}"));
    }
    let path = parent.join(format!("{id:04}_{name}.sql"));
    let lib = name.replace('-', "_");
    let text = format!(
        "-- Migration {id}: {name}.\n\
         -- The statements run in order inside one transaction, through the same SQL\n\
         -- gate as a Rust migration's exec calls: all of them commit, or none.\n\
         -- No BEGIN/COMMIT, ATTACH or PRAGMA writes (see docs/authoring.md).\n\
         \n\
         CREATE TABLE IF NOT EXISTS {lib}_example (id INTEGER PRIMARY KEY, note TEXT NOT NULL);\n"
    );
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
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
    let channel = sdk_channel(&src.sdk)?;
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
wasmig-guest = {{ path = {sdk} }}

# Native-only: the tests run the built component through wasmig's harness.
[target.'cfg(not(target_arch = "wasm32"))'.dev-dependencies]
wasmig = {{ path = {host} }}
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
                sdk = dep_path(&root, &src.sdk),
                host = dep_path(&root, &src.host)
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
            format!(
                "# The toolchain the wasmig-guest SDK is built and tested with.\n\
                 [toolchain]\nchannel = {}\ntargets = [\"wasm32-unknown-unknown\"]\n",
                toml_str(&channel)
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_out_and_back_down() {
        assert_eq!(relative(Path::new("/a/b/c"), Path::new("/a/x/y")).unwrap(), "../../x/y");
        assert_eq!(relative(Path::new("/a"), Path::new("/a/x")).unwrap(), "x");
        assert_eq!(relative(Path::new("/a"), Path::new("/a")).unwrap(), ".");
    }

    #[test]
    fn windows_paths_stay_valid_toml() {
        let line = format!("p = {}", toml_str(r"C:\Users\dev\wasmig\sdk"));
        let t: toml::Table = toml::from_str(&line).unwrap();
        assert_eq!(t["p"].as_str().unwrap(), r"C:\Users\dev\wasmig\sdk");
    }
}
