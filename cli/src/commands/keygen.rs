//! `wasmig keygen`: a new Ed25519 key pair.

use std::path::Path;

use anyhow::Result;

use crate::exit::Refused;

pub fn run(out: &Path) -> Result<()> {
    let id = wasmig::keygen(out).map_err(Refused::of)?;
    println!("secret key: {}", out.display());
    println!("public key: {}", wasmig::pub_path(out).display());
    println!("key id:     {id}");
    Ok(())
}
