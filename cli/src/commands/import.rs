//! `wasmig import`: another tool's migration directory as signed plugins.

use std::path::Path;

use anyhow::{Context, Result};
use wasmig::{ImportTool, Manifest};

use super::pack::write_plugin;
use crate::exit::Refused;

pub fn run(dir: &Path, tool: &str, sk: Option<wasmsign2::SecretKey>, out: &Path, destructive: bool) -> Result<()> {
    let tool: ImportTool = tool.parse().map_err(Refused::of)?;
    let found = wasmig::import_dir(dir, tool).map_err(Refused::of)?;
    // Check every script before writing anything, so a bad file leaves no
    // half-imported directory behind.
    let mut components = Vec::with_capacity(found.len());
    for f in &found {
        let c = wasmig::component_for_sql(&f.sql)
            .map_err(|e| Refused(format!("{}:{}: {}", f.source.display(), e.line, e.reason)))?;
        components.push(c);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (f, c) in found.iter().zip(&components) {
        let mut manifest = Manifest::new(f.id, f.name.clone());
        if destructive {
            manifest.capabilities.push(wasmig::CAP_DESTRUCTIVE.to_owned());
        }
        write_plugin(&f.source, c, &manifest, sk.as_ref(), out)?;
    }
    println!("imported {} migration(s) from {} into {}", found.len(), dir.display(), out.display());
    Ok(())
}
