//! `wasmig pack` and `wasmig pack-sql`: package a component (or a plain SQL
//! script) as a signed plugin, checked exactly as a host will check it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasmig::{Manifest, Plugin, TrustPolicy, TrustedKey};
use wasmsign2::SecretKey;

use crate::exit::Refused;

pub fn pack(component: &Path, manifest: Manifest, sk: Option<SecretKey>, out: &Path) -> Result<()> {
    // The input may be an already-signed plugin (adding a signature): read it
    // like any plugin file, bounded and regular files only.
    let bytes = wasmig::read_plugin_file(component, wasmig::DEFAULT_MAX_FILE_SIZE)?;
    write_plugin(component, &bytes, &manifest, sk.as_ref(), out).map(drop)
}

pub fn pack_sql(
    script: &Path,
    down: Option<&Path>,
    manifest: Manifest,
    sk: Option<SecretKey>,
    out: &Path,
) -> Result<()> {
    let text = std::fs::read_to_string(script).with_context(|| format!("reading {}", script.display()))?;
    let component = match down {
        None => wasmig::component_for_sql(&text)
            .map_err(|e| Refused(format!("{}:{}: {}", script.display(), e.line, e.reason)))?,
        Some(down) => {
            let down_text =
                std::fs::read_to_string(down).with_context(|| format!("reading {}", down.display()))?;
            // Check each script alone first, so a refusal names its own file.
            wasmig::component_for_sql(&text)
                .map_err(|e| Refused(format!("{}:{}: {}", script.display(), e.line, e.reason)))?;
            wasmig::component_for_sql(&down_text)
                .map_err(|e| Refused(format!("{}:{}: {}", down.display(), e.line, e.reason)))?;
            wasmig::component_for_sql_with_down(&text, &down_text)
                .map_err(|e| Refused(format!("{}:{}: {}", script.display(), e.line, e.reason)))?
        }
    };
    write_plugin(script, &component, &manifest, sk.as_ref(), out)?;
    Ok(())
}

/// Packs `bytes` (from `source`) with `manifest`, signs with `sk`, checks the
/// result exactly as a host will, and writes it to `out` (a file, or a
/// directory to put `<id>_<name>.wasm` in).
pub(super) fn write_plugin(
    source: &Path,
    bytes: &[u8],
    manifest: &Manifest,
    sk: Option<&wasmsign2::SecretKey>,
    out: &Path,
) -> Result<PathBuf> {
    let packed =
        wasmig::pack(bytes, manifest, sk).map_err(|r| Refused(format!("{}: {r}", source.display())))?;
    let into_dir = names_a_directory(out);
    let target: PathBuf = if into_dir { out.join(manifest.file_name()) } else { out.to_owned() };
    let mut check = TrustPolicy { allow_unsigned: sk.is_none(), ..TrustPolicy::default() };
    if let Some(sk) = sk {
        let pk = wasmig::public_of(sk);
        check.keys.push(TrustedKey { id: wasmig::key_id(&pk), key: pk, source: PathBuf::new() });
    }
    let plugin = Plugin::from_bytes(&target, packed.clone(), &check, wasmig::DEFAULT_MAX_FILE_SIZE)?;
    // Only now, with the plugin checked, create where it goes.
    if let Some(dir) = if into_dir { Some(out) } else { out.parent().filter(|p| !p.as_os_str().is_empty()) } {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&target, &packed).with_context(|| format!("writing {}", target.display()))?;
    let signed = match wasmig::signature_info(&packed).map_err(Refused::of)? {
        Some(info) => format!("signed by {}", info.key_ids.join(", ")),
        None => "UNSIGNED".to_owned(),
    };
    println!(
        "packed {} -> {} (id {}, name {}, {signed}, digest {})",
        source.display(),
        target.display(),
        manifest.id,
        manifest.name,
        plugin.digest
    );
    Ok(target)
}

/// `--out` names a directory to write `<id>_<name>.wasm` into when it is
/// one, ends with a path separator, or is not a `.wasm` file name (a plugin
/// file must be called `<id>_<name>.wasm`); missing ones are created.
fn names_a_directory(out: &Path) -> bool {
    let text = out.as_os_str().to_string_lossy();
    out.is_dir()
        || text.ends_with('/')
        || text.ends_with(std::path::MAIN_SEPARATOR)
        || out.extension().is_none_or(|e| e != "wasm")
}
