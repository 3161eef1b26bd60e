//! `wasmig prepare`: compile at deploy time into the compiled-component
//! cache, and the cache `apply` uses by default.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;
use wasmig::{Limits, Migrator, Options, TrustPolicy, Verdict};

use crate::exit::Refused;
use crate::output::{print_json, warn_unsigned};

/// The cache `apply` uses: `--cache-dir` when given (refused later if it is
/// unsafe), none with `--no-cache`, else the per-user default. An unusable
/// default (wrong owner or mode, no home) only costs speed, so it is a
/// warning and the components are compiled afresh.
pub fn cache_for_apply(explicit: Option<PathBuf>, no_cache: bool) -> Option<PathBuf> {
    if no_cache {
        return None;
    }
    if explicit.is_some() {
        return explicit;
    }
    let dir = wasmig::default_cache_dir()?;
    match wasmig::CompileCache::open(&dir) {
        Ok(_) => Some(dir),
        Err(e) => {
            eprintln!("warning: {e}; compiling without a cache (pass --cache-dir DIR, or --no-cache)");
            None
        }
    }
}

/// `prepare --json`.
#[derive(Serialize)]
struct PrepareJson<'a> {
    cache_dir: &'a Path,
    migrations: Vec<MigrationJson<'a>>,
    elapsed_ms: u64,
}

/// One prepared migration.
#[derive(Serialize)]
struct MigrationJson<'a> {
    id: i64,
    name: &'a str,
    /// In the cache now (false: runs as direct SQL, or unsigned, so there
    /// is nothing to keep).
    cached: bool,
}

pub fn run(
    db: Option<&Path>,
    dir: &Path,
    trust: TrustPolicy,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    let Some(cache_dir) = cache_dir.or_else(wasmig::default_cache_dir) else {
        bail!(Refused("no cache directory: HOME and XDG_CACHE_HOME are unset; pass --cache-dir DIR".into()));
    };
    let options = Options { trust, limits, cache_dir: Some(cache_dir.clone()), ..Options::default() };
    let started = Instant::now();
    let migrator = Migrator::from_dir_with(dir, options)?;
    warn_unsigned(&migrator);
    let prepared = match db {
        Some(db) => migrator.dry_run(&super::open_read_only(db)?)?,
        None => migrator.prepare_all()?,
    };
    let elapsed = started.elapsed();
    let migrations: Vec<MigrationJson> = prepared
        .iter()
        .map(|p| MigrationJson {
            id: p.id(),
            name: p.name(),
            cached: migrator.is_compiled_component(p.id())
                && matches!(migrator.verdict_of(p), Ok(Verdict::Trusted(_))),
        })
        .collect();
    if json {
        print_json(&PrepareJson {
            cache_dir: &cache_dir,
            migrations,
            elapsed_ms: elapsed.as_millis() as u64,
        });
        return Ok(());
    }
    for m in &migrations {
        let how =
            if m.cached { "compiled into the cache" } else { "nothing to cache (direct SQL or unsigned)" };
        println!("{:04} {}: {how}", m.id, m.name);
    }
    println!(
        "prepared {} migration(s) in {} ms; cache: {}",
        migrations.len(),
        elapsed.as_millis(),
        cache_dir.display()
    );
    Ok(())
}
