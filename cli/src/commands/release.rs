//! `wasmig release`: write (or add a signature to) the signed release index.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::output::print_json;

/// `release --json`.
#[derive(Serialize)]
struct ReleaseJson<'a> {
    index: &'a Path,
    release: i64,
    migrations: usize,
    signed_by: &'a str,
    added_signature: bool,
    signers: Vec<&'a str>,
}

pub fn run(dir: &Path, sk: &wasmsign2::SecretKey, number: Option<i64>, json: bool) -> Result<()> {
    let made = wasmig::write_release(dir, sk, number, wasmig::DEFAULT_MAX_FILE_SIZE)?;
    let signers: Vec<&str> = made.index.signatures.iter().map(|s| s.key_id.as_str()).collect();
    if json {
        print_json(&ReleaseJson {
            index: &made.path,
            release: made.index.release,
            migrations: made.index.migrations.len(),
            signed_by: &made.signed_by,
            added_signature: made.added_signature,
            signers,
        });
    } else {
        let what = if made.added_signature { "added a signature to" } else { "wrote" };
        println!(
            "{what} {} (release {}, {} migrations, signed by {})",
            made.path.display(),
            made.index.release,
            made.index.migrations.len(),
            signers.join(", ")
        );
    }
    Ok(())
}
