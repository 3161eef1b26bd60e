//! The migration plugin file format.
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

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use super::signing::{self, TrustPolicy, Verdict};

/// Name of the custom section that carries the manifest.
pub const MANIFEST_SECTION: &str = "wasmig-manifest";

/// Name of the custom section the WebAssembly signature format uses. Its
/// contents are excluded from a plugin's digest, so re-signing is not a change.
pub const SIGNATURE_SECTION: &str = "signature";

/// Every world this release runs, oldest first, each with the one interface
/// a component targeting it may import. Released worlds are never dropped:
/// a file packed for 0.1.0 keeps running on every later host.
pub const WORLDS: &[(&str, &str)] = &[
    ("wasmig:migration/migration@0.1.0", "wasmig:migration/sql@0.1.0"),
    ("wasmig:migration/migration@0.2.0", "wasmig:migration/sql@0.2.0"),
];

/// The first world, which every release runs: what [`Manifest::new`]
/// records until [`pack`] reads the `sql` version the component imports. A
/// component that imports no `sql` at all keeps it, so the oldest hosts can
/// run it too.
pub const WORLD: &str = "wasmig:migration/migration@0.1.0";

/// The `sql` interface a component targeting `world` may import, if this
/// release runs that world.
pub fn sql_import_of(world: &str) -> Option<&'static str> {
    WORLDS.iter().find(|(w, _)| *w == world).map(|(_, sql)| *sql)
}

/// The manifest format this release writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// Largest plugin file accepted, in bytes. Real migrations are a few hundred
/// KiB; anything near this is a mistake or an attack on the compiler.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

const MAGIC: [u8; 4] = *b"\0asm";
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

/// Capability: run with foreign key enforcement off (for table rebuilds).
/// The host turns it off outside the transaction, runs
/// `PRAGMA foreign_key_check` before COMMIT, and restores the setting.
pub const CAP_FOREIGN_KEYS_OFF: &str = "foreign-keys-off";

const KNOWN_CAPABILITIES: &[&str] = &[CAP_FOREIGN_KEYS_OFF];

/// The manifest a plugin carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version; this release reads [`MANIFEST_FORMAT`].
    pub format: u32,
    /// Migration id: migrations run in ascending id order.
    pub id: i64,
    /// Human-readable name, also part of the file name.
    pub name: String,
    /// The WIT world the component targets.
    pub world: String,
    /// Declared capabilities; format 1 knows [`CAP_FOREIGN_KEYS_OFF`].
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl Manifest {
    /// A manifest for migration `id` called `name`, targeting [`WORLD`]
    /// (packing records the world the component actually imports).
    pub fn new(id: i64, name: impl Into<String>) -> Self {
        Manifest {
            format: MANIFEST_FORMAT,
            id,
            name: name.into(),
            world: WORLD.to_owned(),
            capabilities: Vec::new(),
        }
    }

    /// Decodes and validates manifest bytes.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("manifest is not valid: {e}"))?;
        m.validate()?;
        Ok(m)
    }

    /// Encodes the manifest as stored in the section.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serialises")
    }

    /// Checks the fields a host relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!(
                "manifest format {} is not supported (this wasmig reads format {MANIFEST_FORMAT})",
                self.format
            ));
        }
        if self.id < 1 {
            return Err(format!("migration id must be a positive integer, got {}", self.id));
        }
        validate_name(&self.name)?;
        if sql_import_of(&self.world).is_none() {
            let known: Vec<String> = WORLDS.iter().map(|(w, _)| format!("{w:?}")).collect();
            return Err(format!(
                "component targets world {:?}; this wasmig supports {}",
                self.world,
                known.join(", ")
            ));
        }
        let unknown: Vec<&str> = self
            .capabilities
            .iter()
            .map(String::as_str)
            .filter(|c| !KNOWN_CAPABILITIES.contains(c))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown capabilities requested: {} (this wasmig knows: {})",
                unknown.join(", "),
                KNOWN_CAPABILITIES.join(", ")
            ));
        }
        Ok(())
    }

    /// This manifest with `world` set to the one whose `sql` interface
    /// `component` imports, so a 0.1.0 component is never labelled 0.2.0 or
    /// the reverse. A component that imports no known `sql` interface keeps
    /// the world given (loading it then names what it imports instead).
    pub fn targeting(&self, component: &[u8]) -> std::result::Result<Manifest, String> {
        let (imports, _) = component_interface(component)?;
        let mut m = self.clone();
        if let Some((world, _)) = WORLDS.iter().find(|(_, sql)| imports.iter().any(|i| i == sql)) {
            m.world = (*world).to_owned();
        }
        Ok(m)
    }

    /// True when the migration declared [`CAP_FOREIGN_KEYS_OFF`].
    pub fn needs_foreign_keys_off(&self) -> bool {
        self.capabilities.iter().any(|c| c == CAP_FOREIGN_KEYS_OFF)
    }

    /// The canonical file name for this migration: `<id>_<name>.wasm`, with
    /// the id zero-padded to four digits so directory listings sort by id.
    pub fn file_name(&self) -> String {
        format!("{:04}_{}.wasm", self.id, self.name)
    }
}

/// Checks a migration name: 1 to 100 characters of `[A-Za-z0-9_-]`.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err(format!("migration name must be 1 to 100 characters, got {}", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(format!("migration name {name:?} contains {c:?}; use letters, digits, '_' and '-'"));
    }
    Ok(())
}

/// One top-level section of a component or module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// Section id (0 for custom sections).
    pub id: u8,
    /// For custom sections, the section's name.
    pub name: Option<&'a str>,
    /// The payload after the name (custom) or the whole payload (others).
    pub data: &'a [u8],
    /// Byte range of the whole section (id, size and payload) in the file.
    pub range: std::ops::Range<usize>,
}

pub(crate) fn read_leb_u32(bytes: &[u8], pos: &mut usize) -> std::result::Result<u32, String> {
    let mut result: u64 = 0;
    for i in 0..5 {
        let b = *bytes.get(*pos).ok_or("truncated LEB128 integer")?;
        *pos += 1;
        result |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(result).map_err(|_| "LEB128 integer exceeds u32".to_owned());
        }
    }
    Err("LEB128 integer longer than 5 bytes".to_owned())
}

/// Checks the 8-byte preamble says "component" and splits the file into its
/// top-level sections. Nested modules and components are not entered.
pub fn sections(bytes: &[u8]) -> std::result::Result<Vec<Section<'_>>, String> {
    if bytes.len() < 8 || bytes[..4] != MAGIC {
        return Err("not a WebAssembly file (bad magic number)".to_owned());
    }
    let version: [u8; 4] = bytes[4..8].try_into().expect("4 bytes");
    if version == CORE_MODULE_VERSION {
        return Err("this is a core WebAssembly module, not a component; build the migration \
                    with the component linker (wasm-component-ld)"
            .to_owned());
    }
    if version != COMPONENT_VERSION {
        return Err(format!(
            "unsupported WebAssembly preamble version/layer {:02x?}; expected a component {:02x?}",
            version, COMPONENT_VERSION
        ));
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < bytes.len() {
        let start = pos;
        let id = bytes[pos];
        pos += 1;
        let size =
            read_leb_u32(bytes, &mut pos).map_err(|e| format!("section at byte {start}: {e}"))? as usize;
        let end = pos
            .checked_add(size)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| format!("section at byte {start} runs past the end of the file"))?;
        let payload = &bytes[pos..end];
        let (name, data) = if id == 0 {
            let mut p = 0;
            let len = read_leb_u32(payload, &mut p)
                .map_err(|e| format!("custom section at byte {start}: {e}"))? as usize;
            let name_end = p
                .checked_add(len)
                .filter(|e| *e <= payload.len())
                .ok_or_else(|| format!("custom section at byte {start}: name runs past section"))?;
            let name = std::str::from_utf8(&payload[p..name_end])
                .map_err(|_| format!("custom section at byte {start}: name is not UTF-8"))?;
            (Some(name), &payload[name_end..])
        } else {
            (None, payload)
        };
        out.push(Section { id, name, data, range: start..end });
        pos = end;
    }
    Ok(out)
}

/// SHA-256 (hex) of the file with every signature section left out: the
/// identity of a migration's content, unchanged by signing or re-signing.
pub fn content_digest(bytes: &[u8]) -> std::result::Result<String, String> {
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

fn encode_custom_section(name: &str, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(name.len() + data.len() + 5);
    leb_u32(&mut payload, name.len() as u32);
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    let mut out = vec![0u8];
    leb_u32(&mut out, payload.len() as u32);
    out.extend_from_slice(&payload);
    out
}

fn leb_u32(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Returns `component` with `manifest` as its manifest section (replacing an
/// existing one). Refuses a file that already carries signatures, since
/// changing the manifest would silently invalidate them.
///
/// ```
/// use wasmig::{Manifest, plugin};
///
/// // The smallest component: just the preamble.
/// let component = b"\0asm\x0d\x00\x01\x00".to_vec();
/// let packed = plugin::with_manifest(&component, &Manifest::new(3, "backfill")).unwrap();
/// let m = plugin::read_manifest(&packed).unwrap();
/// assert_eq!((m.id, m.name.as_str()), (3, "backfill"));
/// assert_eq!(m.file_name(), "0003_backfill.wasm");
/// ```
pub fn with_manifest(component: &[u8], manifest: &Manifest) -> std::result::Result<Vec<u8>, String> {
    attach_manifest(component, &manifest.targeting(component)?)
}

/// [`with_manifest`] for a manifest already targeting `component`'s world.
fn attach_manifest(component: &[u8], manifest: &Manifest) -> std::result::Result<Vec<u8>, String> {
    manifest.validate()?;
    let secs = sections(component)?;
    if secs.iter().any(|s| s.name == Some(SIGNATURE_SECTION)) {
        return Err("the component is already signed; pack the unsigned component instead".into());
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
pub fn read_manifest(bytes: &[u8]) -> std::result::Result<Manifest, String> {
    let secs = sections(bytes)?;
    let mut found = secs.iter().filter(|s| s.name == Some(MANIFEST_SECTION));
    let section =
        found.next().ok_or("no wasmig manifest section; package the component with `wasmig pack`")?;
    if found.next().is_some() {
        return Err("more than one wasmig manifest section".to_owned());
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
        sections(&bytes).map_err(|r| Error::bad_plugin(path, r))?;
        let verdict = match trust {
            Some(t) => {
                t.check(&bytes).map_err(|reason| Error::Untrusted { path: path.to_owned(), reason })?
            }
            None => Verdict::Deferred,
        };
        let manifest = read_manifest(&bytes).map_err(|r| Error::bad_plugin(path, r))?;
        check_file_name(path, &manifest)?;
        let digest = content_digest(&bytes).map_err(|r| Error::bad_plugin(path, r))?;
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
) -> std::result::Result<Vec<u8>, String> {
    let manifest = &manifest.targeting(component)?;
    manifest.validate()?;
    let already_signed = signing::signature_info(component)?.is_some();
    let unsigned = if already_signed {
        let existing =
            read_manifest(component).map_err(|e| format!("signed input has no usable manifest: {e}"))?;
        if existing != *manifest {
            return Err(format!(
                "the input is already signed as id {} name {:?}; changing its manifest would \
                 invalidate those signatures (pack the unsigned component instead)",
                existing.id, existing.name
            ));
        }
        if key.is_none() {
            return Err("the input is already signed; give --key to add a signature".into());
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

/// The names a component imports and exports at its top level, read without
/// compiling it (nested core modules and components are skipped).
pub fn component_interface(bytes: &[u8]) -> std::result::Result<(Vec<String>, Vec<String>), String> {
    use wasmparser::{Parser, Payload};
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("malformed component: {e}"))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    imports.push(import.map_err(|e| format!("malformed import: {e}"))?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    exports.push(export.map_err(|e| format!("malformed export: {e}"))?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
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
        assert!(sections(&core).unwrap_err().contains("core WebAssembly module"));
        assert!(sections(b"hello world!").unwrap_err().contains("magic"));
        let mut truncated = tiny_component();
        truncated.pop();
        assert!(sections(&truncated).unwrap_err().contains("past the end"));
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
            e.contains("supports \"wasmig:migration/migration@0.1.0\", \"wasmig:migration/migration@0.2.0\""),
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
