//! Migrators over migrations that came with the application rather than
//! from a directory: `(file name, bytes)` pairs, or a set compiled into the
//! binary by `wasmig-embed` (see [`crate::Embedded`] for what is trusted).

use std::path::Path;

use super::{Migrator, Options, par_map};
use crate::error::{Error, Result};
use crate::plugin::{self, Embedded, Plugin, RELEASE_FILE};

impl Migrator {
    /// A migrator over `(file name, bytes)` pairs, each checked exactly as a
    /// file of that name in a directory would be (size, sections, manifest,
    /// name; signatures when it is about to run). As in a directory, names
    /// ending `.wasm` are plugins, `.cwasm` is refused, a pair named
    /// `wasmig-release.json` is the release index (read only with
    /// [`Options::require_release`]) and anything else is ignored. Every
    /// plugin is hashed here; [`Migrator::from_embedded_set`] is the
    /// start-up path that hashes nothing.
    pub fn from_embedded(files: &[(&str, &[u8])], options: Options) -> Result<Migrator> {
        let mut index = None;
        let mut wasm = Vec::new();
        for (name, bytes) in files {
            let path = Path::new(name);
            match path.extension().and_then(|e| e.to_str()) {
                _ if *name == RELEASE_FILE && options.require_release => {
                    index = Some(plugin::decode_release(path, bytes)?);
                }
                _ if *name == RELEASE_FILE => {}
                Some("wasm") => wasm.push((path, *bytes)),
                Some("cwasm") => {
                    return Err(Error::bad_plugin(
                        path,
                        "precompiled .cwasm files are never accepted; embed the signed .wasm component",
                    ));
                }
                _ => {}
            }
        }
        let max = options.max_file_size;
        let plugins = par_map(&wasm, |(path, bytes)| {
            if bytes.len() as u64 > max {
                // Refused before copying, as a file would be before reading.
                return Err(Error::bad_plugin(
                    *path,
                    format!("file is too large: {} bytes; the limit is {max}", bytes.len()),
                ));
            }
            Plugin::from_bytes_deferred(path, bytes.to_vec(), max)
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        Migrator::from_plugins_and_release(plugins, options, Path::new(RELEASE_FILE), index)
    }

    /// A migrator over a set compiled into the binary by `wasmig-embed`.
    /// Nothing is hashed or parsed for files the ledger shows applied and
    /// unchanged: their build-time digests are compared with the ledger.
    /// A file about to run is first checked again from its bytes (digest,
    /// manifest, name, then its signature, as any file), so a wrong
    /// build-time value can only make start-up refuse. With
    /// [`Options::require_release`], the embedded index is decoded and its
    /// signatures verified here.
    pub fn from_embedded_set(set: &Embedded, options: Options) -> Result<Migrator> {
        let plugins = set.migrations.iter().map(Plugin::from_embedded).collect();
        let path = set.release_path();
        let index = match set.release {
            Some(bytes) if options.require_release => Some(plugin::decode_release(&path, bytes)?),
            _ => None,
        };
        let mut migrator = Migrator::from_plugins_and_release(plugins, options, &path, index)?;
        migrator.precomputed = true;
        Ok(migrator)
    }
}
