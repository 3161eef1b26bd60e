//! `wasmig sign`: add a signature by one key to every plugin of a directory
//! (key rotation, a second reviewer's k-of-n signature). Idempotent per key:
//! a file that key already signed is left exactly as it is.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use wasmig::{Plugin, TrustPolicy, TrustedKey};
use wasmsign2::SecretKey;

use crate::exit::Refused;

pub fn run(dir: &Path, sk: &SecretKey, require: Option<&TrustPolicy>) -> Result<()> {
    let pk = wasmig::public_of(sk);
    let key_id = wasmig::key_id(&pk);
    let own = TrustPolicy {
        keys: vec![TrustedKey { id: key_id.clone(), key: pk, source: PathBuf::new() }],
        ..TrustPolicy::default()
    };
    // Check and sign every file in memory first, so one bad file leaves the
    // whole directory as it was.
    let mut to_write = Vec::new();
    let mut already = 0;
    let paths = wasmig::list_dir(dir)?;
    for path in &paths {
        let plugin = Plugin::load_deferred(path, wasmig::DEFAULT_MAX_FILE_SIZE)?;
        if let Some(policy) = require {
            // Signing vouches for the bytes as they are now: with --trust,
            // only files the existing keys vouch for get the new signature.
            policy
                .check(&plugin.bytes)
                .map_err(|reason| wasmig::Error::Untrusted { path: path.clone(), reason })?;
        }
        if own.check(&plugin.bytes).is_ok() {
            println!("unchanged {} (already signed by {key_id})", path.display());
            already += 1;
            continue;
        }
        let signed =
            wasmig::sign(&plugin.bytes, sk).map_err(|e| Refused(format!("{}: {e}", path.display())))?;
        // What is written must be what a host accepts: same manifest and
        // name, and the new signature verifies.
        Plugin::from_bytes(path, signed.clone(), &own, wasmig::DEFAULT_MAX_FILE_SIZE)?;
        to_write.push((path, signed));
    }
    if paths.is_empty() {
        bail!(Refused(format!("{}: no plugin files (*.wasm) to sign", dir.display())));
    }
    for (path, bytes) in &to_write {
        replace_file(path, bytes)?;
        let count = wasmig::signature_info(bytes).ok().flatten().map_or(0, |i| i.count);
        println!("signed {} ({count} signature(s))", path.display());
    }
    println!("{}: {} signed by {key_id}, {already} already were", dir.display(), to_write.len());
    Ok(())
}

/// Replaces `path` with `bytes` through a temporary file in the same
/// directory and a rename, so a reader never sees a half-written plugin.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("plugin");
    let tmp = path.with_file_name(format!(".{name}.signing"));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}
