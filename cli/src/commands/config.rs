//! `wasmig config`: the effective configuration and where each value came
//! from (flag, environment variable or file).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::config::{Config, Entry, FILE_NAME, Setting, Source};
use crate::output::print_json;

/// `config --json`.
#[derive(Serialize)]
struct ConfigJson<'a> {
    /// The `wasmig.toml` in force, if any.
    file: Option<&'a Path>,
    settings: Vec<Entry>,
}

pub fn run(
    mut cfg: Config,
    db: Option<PathBuf>,
    dir: Option<PathBuf>,
    trust: Vec<PathBuf>,
    json: bool,
) -> Result<()> {
    // The flags given here show over the rest, as on any other command.
    let flag = |value| Some(Setting { value, source: Source::Flag });
    if let Some(db) = db {
        cfg.db = flag(db);
    }
    if let Some(dir) = dir {
        cfg.dir = flag(dir);
    }
    if !trust.is_empty() {
        cfg.trust = Some(Setting { value: trust, source: Source::Flag });
    }
    let entries = cfg.entries();
    if json {
        print_json(&ConfigJson { file: cfg.file.as_deref(), settings: entries });
        return Ok(());
    }
    match &cfg.file {
        Some(f) => println!("config file: {}", f.display()),
        None => println!("config file: none ({FILE_NAME} not found in the working directory or above)"),
    }
    for e in &entries {
        print_entry(e.key, &e.value, e.origin.as_deref());
    }
    Ok(())
}

/// One line per key; a table (`[limits]`) as one line per key inside it.
fn print_entry(key: &str, value: &serde_json::Value, origin: Option<&str>) {
    match (value, origin) {
        (serde_json::Value::Object(map), Some(_)) => {
            for (k, v) in map.iter().filter(|(_, v)| !v.is_null() && **v != serde_json::Value::Bool(false)) {
                print_entry(&format!("{key}.{k}"), v, origin);
            }
        }
        (_, Some(origin)) => println!("{key} = {value} (from {origin})"),
        (_, None) => println!("{key}: not set"),
    }
}
