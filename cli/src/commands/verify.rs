//! `wasmig verify`: every plugin file of a directory against the trust policy.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;
use wasmig::{Plugin, TrustPolicy, Verdict};

use crate::exit::Refused;
use crate::output::print_json;

/// `verify --json`.
#[derive(Serialize)]
struct VerifyJson<'a> {
    directory: &'a Path,
    files: Vec<FileJson>,
    refused: usize,
}

/// One file's verdict.
#[derive(Serialize)]
struct FileJson {
    file: PathBuf,
    id: Option<i64>,
    name: Option<String>,
    /// Every key id its signatures name, trusted or not.
    signers: Vec<String>,
    /// The trusted ones.
    trusted_signers: Vec<String>,
    verdict: String,
}

pub fn run(dir: &Path, trust: &TrustPolicy, json: bool) -> Result<()> {
    let mut files = Vec::new();
    let mut refused = 0;
    for path in wasmig::list_dir(dir)? {
        // Each file is read once, through the bounded reader, and every
        // report below comes from those same bytes.
        let (bytes, checked) = match wasmig::read_plugin_file(&path, wasmig::DEFAULT_MAX_FILE_SIZE) {
            Ok(b) => {
                let checked = Plugin::from_bytes(&path, b.clone(), trust, wasmig::DEFAULT_MAX_FILE_SIZE);
                (Some(b), checked)
            }
            Err(e) => (None, Err(e)),
        };
        let signers = bytes
            .as_deref()
            .and_then(|b| wasmig::signature_info(b).ok().flatten())
            .map(|i| i.key_ids)
            .unwrap_or_default();
        let (id, name, verdict, trusted_signers) = match checked {
            Ok(p) => {
                let v = match &p.verdict {
                    Verdict::Trusted(_) => "trusted".to_owned(),
                    Verdict::Unsigned | Verdict::Deferred => "UNSIGNED (allowed)".to_owned(),
                };
                (Some(p.id()), Some(p.name().to_owned()), v, p.verdict.signers().to_vec())
            }
            Err(e) => {
                refused += 1;
                let manifest = bytes.as_deref().and_then(|b| wasmig::read_manifest(b).ok());
                (manifest.as_ref().map(|m| m.id), manifest.map(|m| m.name), format!("REFUSED: {e}"), vec![])
            }
        };
        if !json {
            println!(
                "{:<6} {:<20} signers [{}] {verdict}",
                id.map(|i| format!("{i:04}")).unwrap_or_else(|| "?".into()),
                name.as_deref().unwrap_or("?"),
                signers.join(", ")
            );
        }
        files.push(FileJson { file: path, id, name, signers, trusted_signers, verdict });
    }
    if json {
        print_json(&VerifyJson { directory: dir, files, refused });
    }
    if refused > 0 {
        bail!(Refused(format!("{refused} file(s) refused")));
    }
    Ok(())
}
