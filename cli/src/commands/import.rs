//! `wasmig import`: another tool's migration directory as signed plugins.

use std::path::Path;

use anyhow::{Context, Result};
use wasmig::ImportTool;

use super::pack::write_plugin;
use crate::exit::Refused;

pub fn run(
    dir: &Path,
    tool: &str,
    foreign_keys_off: bool,
    sk: Option<wasmsign2::SecretKey>,
    out: &Path,
    destructive: bool,
) -> Result<()> {
    let tool: ImportTool = tool.parse().map_err(Refused::of)?;
    let found = wasmig::import_dir(dir, tool).map_err(Refused::of)?;
    // Check every script before writing anything, so a bad file leaves no
    // half-imported directory behind.
    let mut components = Vec::with_capacity(found.len());
    for f in &found {
        let refused = |source: &Path, e: wasmig::SqlRefusal| {
            Refused(format!("{}:{}: {}", source.display(), e.line, e.reason))
        };
        let c = match &f.down {
            None => wasmig::component_for_import(&f.sql).map_err(|e| refused(&f.source, e))?,
            Some(down) => {
                // Check each part alone first, so a refusal names the file
                // (and line) it is in.
                wasmig::component_for_import(&f.sql).map_err(|e| refused(&f.source, e))?;
                wasmig::component_for_import(&down.sql).map_err(|e| refused(&down.source, e))?;
                wasmig::component_for_import_with_down(&f.sql, &down.sql)
                    .map_err(|e| refused(&f.source, e))?
            }
        };
        components.push(c);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (f, c) in found.iter().zip(&components) {
        let mut manifest = f.manifest(foreign_keys_off);
        if destructive {
            manifest.capabilities.push(wasmig::CAP_DESTRUCTIVE.to_owned());
        }
        write_plugin(&f.source, c, &manifest, sk.as_ref(), out)?;
    }
    let no_ops = found.iter().filter(|f| f.no_op).count();
    let reversible = found.iter().filter(|f| f.down.is_some()).count();
    let mut notes = Vec::new();
    if reversible > 0 {
        notes.push(format!("{reversible} with a down script, which `wasmig down` can run"));
    }
    if no_ops > 0 {
        notes.push(format!("{no_ops} with no statements, kept as steps that do nothing"));
    }
    if foreign_keys_off {
        notes.push("each runs with foreign keys off".to_owned());
    } else if !tool.enforces_foreign_keys() {
        notes.push(format!(
            "{tool} usually runs with foreign keys off; if this history relies on that, import with --foreign-keys-off"
        ));
    }
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
    println!("imported {} migration(s) from {} into {}{notes}", found.len(), dir.display(), out.display());
    Ok(())
}
