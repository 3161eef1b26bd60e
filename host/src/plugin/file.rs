//! The migration plugin file format: writing the manifest into a
//! component, packing and signing, the content digest, and the checks a
//! file passes when loaded.
//!
//! A plugin is an ordinary WebAssembly component with one extra custom
//! section, [`MANIFEST_SECTION`], holding a small JSON manifest (format
//! version, migration id, name, target world). Because the manifest lives in
//! the component bytes, the id and name are covered by the same digest (and,
//! once signed, the same signature) as the code: renaming a file cannot
//! change which migration it is.
//!
//! Everything here works on bytes only; nothing is compiled. The loader checks
//! the preamble, walks the sections, decodes the manifest and checks the
//! file name before any compiler sees the bytes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::Manifest;
use super::sections::{MANIFEST_SECTION, SIGNATURE_SECTION, encode_custom_section, sections};
use super::signing;
use super::trust::{TrustPolicy, Verdict};
use crate::error::{Error, FormatError, Result};

/// Largest plugin file accepted, in bytes. Real migrations are a few hundred
/// KiB; anything near this is a mistake or an attack on the compiler.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// SHA-256 (hex) of the file with every signature section left out: the
/// identity of a migration's content, unchanged by signing or re-signing.
pub fn content_digest(bytes: &[u8]) -> std::result::Result<String, FormatError> {
    let secs = sections(bytes)?;
    let mut h = Sha256::new();
    h.update(&bytes[..8]);
    for s in &secs {
        if s.name != Some(SIGNATURE_SECTION) {
            h.update(&bytes[s.range.clone()]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Returns `component` with `manifest` as its manifest section (replacing an
/// existing one). Refuses a file that already carries signatures, since
/// changing the manifest would silently invalidate them.
///
/// ```
/// use wasmig::{Manifest, read_manifest, with_manifest};
///
/// // The smallest component: just the preamble.
/// let component = b"\0asm\x0d\x00\x01\x00".to_vec();
/// let packed = with_manifest(&component, &Manifest::new(3, "backfill")).unwrap();
/// let m = read_manifest(&packed).unwrap();
/// assert_eq!((m.id, m.name.as_str()), (3, "backfill"));
/// assert_eq!(m.file_name(), "0003_backfill.wasm");
/// ```
pub fn with_manifest(component: &[u8], manifest: &Manifest) -> std::result::Result<Vec<u8>, FormatError> {
    attach_manifest(component, &manifest.targeting(component)?)
}

/// [`with_manifest`] for a manifest already targeting `component`'s world.
fn attach_manifest(component: &[u8], manifest: &Manifest) -> std::result::Result<Vec<u8>, FormatError> {
    manifest.validate()?;
    let secs = sections(component)?;
    if secs.iter().any(|s| s.name == Some(SIGNATURE_SECTION)) {
        return Err(FormatError::Signed(
            "the component is already signed; pack the unsigned component instead".into(),
        ));
    }
    let mut out = Vec::with_capacity(component.len() + 256);
    out.extend_from_slice(&component[..8]);
    for s in &secs {
        if s.name != Some(MANIFEST_SECTION) {
            out.extend_from_slice(&component[s.range.clone()]);
        }
    }
    out.extend_from_slice(&encode_custom_section(MANIFEST_SECTION, &manifest.encode()));
    Ok(out)
}

/// Finds and decodes the manifest section of a plugin.
pub fn read_manifest(bytes: &[u8]) -> std::result::Result<Manifest, FormatError> {
    let secs = sections(bytes)?;
    let mut found = secs.iter().filter(|s| s.name == Some(MANIFEST_SECTION));
    let section = found.next().ok_or_else(|| {
        FormatError::Manifest("no wasmig manifest section; package the component with `wasmig pack`".into())
    })?;
    if found.next().is_some() {
        return Err(FormatError::Manifest("more than one wasmig manifest section".to_owned()));
    }
    Manifest::decode(section.data)
}

/// A plugin file that passed every byte-level check, the trust policy included.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The file's bytes, exactly as checked; these same bytes are compiled.
    pub bytes: Vec<u8>,
    /// Content digest (see [`content_digest`]).
    pub digest: String,
    /// What the trust policy concluded.
    pub verdict: Verdict,
}

impl Plugin {
    /// Migration id.
    pub fn id(&self) -> i64 {
        self.manifest.id
    }

    /// Migration name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Checks `bytes` read from `path`, in this order: size, preamble and
    /// section structure, signature against `trust`, manifest, and that the
    /// file name agrees with the manifest. Nothing signed is parsed beyond
    /// the section walk until its signature has been checked.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>, trust: &TrustPolicy, max_size: u64) -> Result<Plugin> {
        Plugin::checked(path, bytes, Some(trust), max_size)
    }

    /// Like [`Plugin::from_bytes`] but leaves the signature for later
    /// ([`Verdict::Deferred`]): the migrator verifies only the files that are
    /// about to run, since an applied file whose digest still matches the
    /// ledger never runs again.
    pub fn from_bytes_deferred(path: &Path, bytes: Vec<u8>, max_size: u64) -> Result<Plugin> {
        Plugin::checked(path, bytes, None, max_size)
    }

    fn checked(path: &Path, bytes: Vec<u8>, trust: Option<&TrustPolicy>, max_size: u64) -> Result<Plugin> {
        if bytes.len() as u64 > max_size {
            return Err(Error::bad_plugin(
                path,
                format!("file is {} bytes; the limit is {max_size}", bytes.len()),
            ));
        }
        sections(&bytes).map_err(|r| Error::bad_plugin(path, r.to_string()))?;
        let verdict = match trust {
            Some(t) => {
                t.check(&bytes).map_err(|reason| Error::Untrusted { path: path.to_owned(), reason })?
            }
            None => Verdict::Deferred,
        };
        let manifest = read_manifest(&bytes).map_err(|r| Error::bad_plugin(path, r.to_string()))?;
        check_file_name(path, &manifest)?;
        let digest = content_digest(&bytes).map_err(|r| Error::bad_plugin(path, r.to_string()))?;
        Ok(Plugin { path: path.to_owned(), manifest, bytes, digest, verdict })
    }

    /// Reads and checks one plugin file (see [`Plugin::from_bytes`]).
    pub fn load(path: &Path, trust: &TrustPolicy, max_size: u64) -> Result<Plugin> {
        Plugin::checked(path, read_limited(path, max_size)?, Some(trust), max_size)
    }

    /// Reads one plugin file, leaving its signature for later (see
    /// [`Plugin::from_bytes_deferred`]).
    pub fn load_deferred(path: &Path, max_size: u64) -> Result<Plugin> {
        Plugin::checked(path, read_limited(path, max_size)?, None, max_size)
    }
}

fn read_limited(path: &Path, max_size: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(Error::io(path))?;
    if meta.len() > max_size {
        return Err(Error::bad_plugin(
            path,
            format!("file is {} bytes; the limit is {max_size}", meta.len()),
        ));
    }
    std::fs::read(path).map_err(Error::io(path))
}

/// Builds a plugin file from a component: writes the manifest, then signs
/// with `key` if given. When `component` is already a signed plugin with the
/// same manifest, adds `key`'s signature to the existing ones (key rotation);
/// any other change to a signed file is refused.
pub fn pack(
    component: &[u8],
    manifest: &Manifest,
    key: Option<&wasmsign2::SecretKey>,
) -> std::result::Result<Vec<u8>, FormatError> {
    let manifest = &manifest.targeting(component)?;
    manifest.validate()?;
    let already_signed = signing::signature_info(component)?.is_some();
    let unsigned = if already_signed {
        let existing = read_manifest(component)
            .map_err(|e| FormatError::Manifest(format!("signed input has no usable manifest: {e}")))?;
        if existing != *manifest {
            return Err(FormatError::Signed(format!(
                "the input is already signed as id {} name {:?}; changing its manifest would \
                 invalidate those signatures (pack the unsigned component instead)",
                existing.id, existing.name
            )));
        }
        if key.is_none() {
            return Err(FormatError::Signed(
                "the input is already signed; give --key to add a signature".into(),
            ));
        }
        component.to_vec()
    } else {
        attach_manifest(component, manifest)?
    };
    match key {
        Some(k) => signing::sign(&unsigned, k),
        None => Ok(unsigned),
    }
}

/// The file name must be `<id>_<name>.wasm` (any zero padding) and agree with
/// the manifest, so a file cannot be renamed to run earlier or later.
fn check_file_name(path: &Path, m: &Manifest) -> Result<()> {
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
    let stem = file.strip_suffix(".wasm").unwrap_or(file);
    let parsed = stem.split_once('_').and_then(|(id, name)| {
        let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        id_ok.then(|| (id.parse::<i64>().ok(), name))
    });
    match parsed {
        Some((Some(id), name)) if id == m.id && name == m.name => Ok(()),
        _ => Err(Error::bad_plugin(
            path,
            format!(
                "file name does not match its manifest (id {}, name {:?}); expected {:?}",
                m.id,
                m.name,
                m.file_name()
            ),
        )),
    }
}

/// Lists the plugin files of a directory: every `*.wasm`, sorted by name.
/// Precompiled `.cwasm` files are refused outright: native code is never input.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = entry.map_err(Error::io(dir))?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") => out.push(path),
            Some("cwasm") => {
                return Err(Error::bad_plugin(
                    &path,
                    "precompiled .cwasm files are never accepted; ship the signed .wasm component",
                ));
            }
            _ => {}
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::sections::{COMPONENT_VERSION, CORE_MODULE_VERSION};
    use crate::worlds::WORLD;

    fn tiny_component() -> Vec<u8> {
        // Preamble plus one empty custom section: enough for byte-level checks.
        let mut b = b"\0asm".to_vec();
        b.extend_from_slice(&COMPONENT_VERSION);
        b.extend_from_slice(&encode_custom_section("note", b"hi"));
        b
    }

    #[test]
    fn manifest_round_trips_and_is_found() {
        let m = Manifest::new(7, "add_index");
        let packed = with_manifest(&tiny_component(), &m).unwrap();
        assert_eq!(read_manifest(&packed).unwrap(), m);
        // Re-packing replaces rather than duplicates.
        let m2 = Manifest::new(8, "other");
        let repacked = with_manifest(&packed, &m2).unwrap();
        assert_eq!(read_manifest(&repacked).unwrap(), m2);
        assert_eq!(sections(&repacked).unwrap().len(), 2);
    }

    #[test]
    fn core_module_and_garbage_are_refused() {
        let mut core = b"\0asm".to_vec();
        core.extend_from_slice(&CORE_MODULE_VERSION);
        assert!(sections(&core).unwrap_err().to_string().contains("core WebAssembly module"));
        assert!(sections(b"hello world!").unwrap_err().to_string().contains("magic"));
        let mut truncated = tiny_component();
        truncated.pop();
        assert!(sections(&truncated).unwrap_err().to_string().contains("past the end"));
    }

    #[test]
    fn digest_ignores_signature_sections_only() {
        let base = with_manifest(&tiny_component(), &Manifest::new(1, "a")).unwrap();
        let mut signed = base.clone();
        signed.extend_from_slice(&encode_custom_section(SIGNATURE_SECTION, b"sig"));
        assert_eq!(content_digest(&base).unwrap(), content_digest(&signed).unwrap());
        let other = with_manifest(&tiny_component(), &Manifest::new(1, "b")).unwrap();
        assert_ne!(content_digest(&base).unwrap(), content_digest(&other).unwrap());
    }

    #[test]
    fn manifest_validation() {
        assert!(
            Manifest::decode(br#"{"format":1,"id":0,"name":"x","world":"wasmig:migration/migration@0.1.0"}"#)
                .is_err()
        );
        assert!(
            Manifest::decode(br#"{"format":2,"id":1,"name":"x","world":"wasmig:migration/migration@0.1.0"}"#)
                .is_err()
        );
        assert!(
            Manifest::decode(
                br#"{"format":1,"id":1,"name":"a b","world":"wasmig:migration/migration@0.1.0"}"#
            )
            .is_err()
        );
        assert!(Manifest::decode(br#"{"format":1,"id":1,"name":"x","world":"other:w/w@1.0.0"}"#).is_err());
        assert!(
            Manifest::decode(
                br#"{"format":1,"id":1,"name":"x","world":"wasmig:migration/migration@0.1.0","extra":1}"#
            )
            .is_err()
        );
        assert!(
            Manifest::decode(br#"{"format":1,"id":1,"name":"x","world":"wasmig:migration/migration@0.1.0"}"#)
                .is_ok()
        );
        assert!(
            Manifest::decode(br#"{"format":1,"id":1,"name":"x","world":"wasmig:migration/migration@0.2.0"}"#)
                .is_ok()
        );
        let e =
            Manifest::decode(br#"{"format":1,"id":1,"name":"x","world":"wasmig:migration/migration@0.3.0"}"#)
                .unwrap_err();
        assert!(
            e.to_string().contains(
                "supports \"wasmig:migration/migration@0.1.0\", \"wasmig:migration/migration@0.2.0\""
            ),
            "{e}"
        );
        // A component that imports no `sql` keeps the first world.
        let packed = with_manifest(&tiny_component(), &Manifest::new(1, "x")).unwrap();
        assert_eq!(read_manifest(&packed).unwrap().world, WORLD);
    }

    #[test]
    fn file_name_must_match_manifest() {
        let m = Manifest::new(12, "backfill");
        assert!(check_file_name(Path::new("d/0012_backfill.wasm"), &m).is_ok());
        assert!(check_file_name(Path::new("d/12_backfill.wasm"), &m).is_ok());
        assert!(check_file_name(Path::new("d/0001_backfill.wasm"), &m).is_err());
        assert!(check_file_name(Path::new("d/0012_other.wasm"), &m).is_err());
        assert!(check_file_name(Path::new("d/backfill.wasm"), &m).is_err());
    }
}
