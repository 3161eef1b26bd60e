//! Migrations compiled into the application binary.
//!
//! An application can ship its migrations inside its executable instead of
//! next to it. The `wasmig-embed` crate, called from the application's
//! `build.rs`, lists the migrations directory at build time and writes a Rust
//! file that `include_bytes!`s each plugin with its id, name, world,
//! capabilities and content digest worked out then (an [`Embedded`]). At
//! start-up, [`Plugin::from_embedded`] builds plugins from those values
//! without hashing or parsing anything, so a start-up with nothing pending
//! costs a ledger read and a comparison of digests.
//!
//! What is trusted: the bytes compiled into the binary, exactly as much as
//! the binary itself (whoever can change them can change the code that
//! checks them). The build-time values are used only to compare against the
//! ledger; every file that is about to *run* is checked again from its bytes
//! first ([`recheck_embedded`]): its digest recomputed, its manifest decoded
//! and compared, its signature verified against the trust policy like any
//! file. So a build-time value that was wrong can make start-up refuse
//! (drift), never run something else, and what the ledger records is always
//! wasmig's own digest of what ran.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::file::Plugin;
use super::manifest::{MANIFEST_FORMAT, Manifest};
use super::release::RELEASE_FILE;
use super::trust::Verdict;
use crate::error::{Error, Result};

/// One migration compiled into the binary, with what was read from it at
/// build time. Written by `wasmig-embed`; the fields are public so generated
/// code can build it in a `static`.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedMigration {
    /// The plugin's file name (`<id>_<name>.wasm`).
    pub file_name: &'static str,
    /// The plugin file's bytes.
    pub bytes: &'static [u8],
    /// Its content digest (see [`content_digest`](super::file::content_digest)),
    /// computed at build time.
    pub digest: &'static str,
    /// Migration id, from the manifest.
    pub id: i64,
    /// Migration name, from the manifest.
    pub name: &'static str,
    /// Target world, from the manifest.
    pub world: &'static str,
    /// Capabilities, from the manifest.
    pub capabilities: &'static [&'static str],
}

/// A migrations directory compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// The directory it was read from at build time (for messages only).
    pub dir: &'static str,
    /// Every plugin, in file-name order.
    pub migrations: &'static [EmbeddedMigration],
    /// The directory's `wasmig-release.json`, if it had one.
    pub release: Option<&'static [u8]>,
}

impl Embedded {
    /// Where the release index came from, for messages.
    pub fn release_path(&self) -> PathBuf {
        Path::new(self.dir).join(RELEASE_FILE)
    }
}

impl Plugin {
    /// A plugin from an embedded migration, trusting its build-time values
    /// for the comparison with the ledger: nothing is hashed or parsed. Its
    /// verdict is deferred, and a migrator re-derives everything from the
    /// bytes before it can run ([`recheck_embedded`]).
    pub fn from_embedded(m: &EmbeddedMigration) -> Plugin {
        Plugin {
            path: PathBuf::from(m.file_name),
            manifest: Manifest {
                format: MANIFEST_FORMAT,
                id: m.id,
                name: m.name.to_owned(),
                world: m.world.to_owned(),
                capabilities: m.capabilities.iter().map(|c| (*c).to_owned()).collect(),
                // Informational only (where an imported file came from);
                // the build-time description does not carry it.
                provenance: None,
            },
            bytes: Cow::Borrowed(m.bytes),
            digest: m.digest.to_owned(),
            verdict: Verdict::Deferred,
        }
    }
}

/// Checks an embedded plugin from its bytes, as loading a file would (size,
/// sections, manifest, file name), and that the build-time manifest and
/// digest it carries are what the bytes say. Called before it can run.
pub fn recheck_embedded(p: &Plugin, max_size: u64) -> Result<()> {
    let fresh = Plugin::from_bytes_deferred(&p.path, p.bytes.to_vec(), max_size)?;
    // Provenance is not part of what the build-time description states.
    let stated = Manifest { provenance: None, ..fresh.manifest.clone() };
    if stated != p.manifest || fresh.digest != p.digest {
        return Err(Error::bad_plugin(
            &p.path,
            format!(
                "the values recorded at build time (id {}, name {:?}, digest {}) are not what the \
                 embedded bytes say (id {}, name {:?}, digest {}); rebuild the application",
                p.manifest.id,
                p.manifest.name,
                p.digest,
                fresh.manifest.id,
                fresh.manifest.name,
                fresh.digest
            ),
        ));
    }
    Ok(())
}
