//! `wasmig new`: scaffold a guest migration crate.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::exit::Refused;
use crate::scaffold::{self, Sources};

pub fn run(name: &str, id: Option<i64>, dir: &Path, out: &Path, sdk: Option<PathBuf>) -> Result<()> {
    let mut sources = Sources::from_build();
    if let Some(sdk) = sdk {
        let host = sources.as_ref().map(|s| s.host.clone()).unwrap_or_default();
        sources = Some(Sources { sdk, host });
    }
    let sources = sources.ok_or_else(|| {
        Refused("the wasmig checkout this binary was built from is gone; pass --sdk PATH".into())
    })?;
    let id = id.unwrap_or_else(|| scaffold::next_free_id(dir));
    let files = scaffold::scaffold(out, name, id, &sources).map_err(Refused)?;
    for f in &files {
        println!("created {}", f.display());
    }
    let crate_dir = out.join(name);
    println!("\nnext:");
    println!("  cd {} && cargo build --release --target wasm32-unknown-unknown", crate_dir.display());
    println!(
        "  wasmig pack target/wasm32-unknown-unknown/release/{}.wasm --id {id} --name {name} --key KEY --out DIR",
        name.replace('-', "_")
    );
    Ok(())
}

/// `wasmig new --sql`: an SQL migration file, with the next free id.
pub fn sql(name: &str, id: Option<i64>, dir: &Path, out: &Path) -> Result<()> {
    let id = id.unwrap_or_else(|| scaffold::next_free_id(dir));
    let file = scaffold::scaffold_sql(out, name, id).map_err(Refused)?;
    println!("created {}", file.display());
    println!("\nnext:");
    println!(
        "  wasmig pack-sql {} --id {id} --name {name} --key KEY --out {}",
        file.display(),
        dir.display()
    );
    Ok(())
}
