//! `wasmig inspect`: what a plugin file says about itself.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;
use wasmig::{Manifest, TrustPolicy};

use crate::exit::Refused;
use crate::output::print_json;

/// `inspect --json`.
#[derive(Serialize)]
struct InspectJson<'a> {
    file: &'a Path,
    manifest: Option<&'a Manifest>,
    manifest_error: Option<String>,
    digest: &'a str,
    size: usize,
    imports: &'a [String],
    exports: &'a [String],
    custom_sections: &'a [&'a str],
    signature_key_ids: Option<&'a [String]>,
    signature_count: usize,
    verdict: Option<&'a str>,
}

pub fn run(file: &Path, trust_keys: &[PathBuf], json: bool) -> Result<()> {
    let bytes = wasmig::read_plugin_file(file, wasmig::DEFAULT_MAX_FILE_SIZE)?;
    let sections = wasmig::sections(&bytes).map_err(|r| Refused(format!("{}: {r}", file.display())))?;
    let manifest = wasmig::read_manifest(&bytes);
    let digest = wasmig::content_digest(&bytes).map_err(Refused::of)?;
    let custom: Vec<&str> = sections.iter().filter_map(|s| s.name).collect();
    let (imports, exports) = wasmig::component_interface(&bytes).map_err(Refused::of)?;
    let sig = wasmig::signature_info(&bytes).map_err(Refused::of)?;
    let verdict = verdict(&bytes, trust_keys)?;
    if json {
        print_json(&InspectJson {
            file,
            manifest: manifest.as_ref().ok(),
            manifest_error: manifest.as_ref().err().map(ToString::to_string),
            digest: &digest,
            size: bytes.len(),
            imports: &imports,
            exports: &exports,
            custom_sections: &custom,
            signature_key_ids: sig.as_ref().map(|s| s.key_ids.as_slice()),
            signature_count: sig.as_ref().map(|s| s.count).unwrap_or(0),
            verdict: verdict.as_deref(),
        });
    } else {
        println!("file:       {}", file.display());
        println!("size:       {} bytes", bytes.len());
        println!("digest:     sha256:{digest} (signature sections excluded)");
        match &manifest {
            Ok(m) => {
                println!("id:         {}", m.id);
                println!("name:       {}", m.name);
                println!("world:      {}", m.world);
                if !m.capabilities.is_empty() {
                    println!("needs:      {}", m.capabilities.join(", "));
                }
                if let Some(p) = &m.provenance {
                    println!("imported:   from {} {} (version {})", p.tool, p.file, p.version);
                    println!("checksum:   {} (as {} keeps it)", p.digest, p.tool);
                }
            }
            Err(e) => println!("manifest:   none ({e})"),
        }
        println!("imports:    {}", imports.join(", "));
        println!("exports:    {}", exports.join(", "));
        match &sig {
            Some(s) => println!("signatures: {} by key id(s) {}", s.count, s.key_ids.join(", ")),
            None => println!("signatures: none (UNSIGNED)"),
        }
        if let Some(v) = &verdict {
            println!("trust:      {v}");
        }
        println!("sections:   {} top-level; custom: {}", sections.len(), custom.join(", "));
    }
    if manifest.is_err() {
        bail!(Refused(format!("{}: not a wasmig plugin", file.display())));
    }
    Ok(())
}

/// `inspect --sql --json`.
#[derive(Serialize)]
struct SqlJson<'a> {
    file: &'a Path,
    manifest: &'a Manifest,
    digest: &'a str,
    verdict: Option<&'a str>,
    statements: &'a [String],
    /// The statements `down` runs (`null`: forward-only).
    down: Option<&'a [String]>,
}

/// `inspect --sql`: what a `pack-sql` (or imported) plugin will run. The
/// statements are read with the host's own recognition, so what is shown
/// is exactly what `apply` would execute.
pub fn sql(file: &Path, trust_keys: &[PathBuf], json: bool) -> Result<()> {
    let bytes = wasmig::read_plugin_file(file, wasmig::DEFAULT_MAX_FILE_SIZE)?;
    wasmig::sections(&bytes).map_err(|r| Refused(format!("{}: {r}", file.display())))?;
    let manifest = wasmig::read_manifest(&bytes)
        .map_err(|e| Refused(format!("{}: not a wasmig plugin: {e}", file.display())))?;
    let digest = wasmig::content_digest(&bytes).map_err(Refused::of)?;
    let verdict = verdict(&bytes, trust_keys)?;
    let script = wasmig::recognise_sql_component(&bytes).ok_or_else(|| {
        Refused(format!(
            "{}: not a pack-sql component (compiled code; there are no statements to show)",
            file.display()
        ))
    })?;
    if json {
        print_json(&SqlJson {
            file,
            manifest: &manifest,
            digest: &digest,
            verdict: verdict.as_deref(),
            statements: &script.statements,
            down: script.down.as_deref(),
        });
        return Ok(());
    }
    println!("-- {} (id {}, name {}, digest sha256:{digest})", file.display(), manifest.id, manifest.name);
    if let Some(v) = &verdict {
        println!("-- trust: {v}");
    }
    if let Some(p) = &manifest.provenance {
        println!(
            "-- imported from {} {} (version {}; {} keeps checksum {})",
            p.tool, p.file, p.version, p.tool, p.digest
        );
    }
    println!("-- {} statement(s), run in this order", script.statements.len());
    for st in &script.statements {
        println!("{st}");
    }
    if let Some(down) = &script.down {
        println!("-- down: {} statement(s), run in this order by `wasmig down`", down.len());
        for st in down {
            println!("{st}");
        }
    }
    Ok(())
}

/// What `trust_keys` (if any) say about `bytes`.
fn verdict(bytes: &[u8], trust_keys: &[PathBuf]) -> Result<Option<String>> {
    if trust_keys.is_empty() {
        return Ok(None);
    }
    let policy = TrustPolicy::from_key_files(trust_keys).map_err(Refused::of)?;
    Ok(Some(match policy.check(bytes) {
        Ok(v) => format!("trusted ({})", v.signers().join(", ")),
        Err(e) => format!("NOT TRUSTED: {e}"),
    }))
}
