//! `wasmig-embed`: compiles a wasmig migrations directory into an
//! application binary, from the application's `build.rs`.
//!
//! ```no_run
//! // the body of build.rs's `fn main`:
//! wasmig_embed::embed_dir("migrations");
//! ```
//!
//! ```ignore
//! // src/main.rs
//! mod migrations {
//!     include!(concat!(env!("OUT_DIR"), "/wasmig_migrations.rs"));
//! }
//! let migrator = wasmig::Migrator::from_embedded_set(&migrations::MIGRATIONS, options)?;
//! ```
//!
//! The generated file defines `MIGRATIONS`, a `wasmig::Embedded`: every
//! `*.wasm` in the directory through `include_bytes!`, with the id, name,
//! world and capabilities of its manifest and its content digest, all read
//! here at build time, and the directory's `wasmig-release.json` if it has
//! one. A start-up with nothing pending then hashes and parses nothing: the
//! build-time digests are compared with the ledger. wasmig checks every file
//! that is about to run again from its bytes (digest, manifest, signature),
//! so these values are never trusted for running anything (see
//! `wasmig::Embedded`).
//!
//! This crate depends on no part of wasmig (a build dependency on it would
//! compile wasmtime and SQLite a second time), so it reads the few bytes it
//! needs itself: the section walk and the digest, as wasmig defines them.
//! Its tests hold both to wasmig's own on real plugin files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The file [`embed_dir`] writes in `OUT_DIR`.
pub const GENERATED_FILE: &str = "wasmig_migrations.rs";

/// The release index's file name in a migrations directory.
pub const RELEASE_FILE: &str = "wasmig-release.json";

/// What the build reads from one plugin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Content digest: SHA-256 (hex) of the file without its signature sections.
    pub digest: String,
    /// Manifest id.
    pub id: i64,
    /// Manifest name.
    pub name: String,
    /// Manifest world.
    pub world: String,
    /// Manifest capabilities.
    pub capabilities: Vec<String>,
}

const MANIFEST_SECTION: &str = "wasmig-manifest";
const SIGNATURE_SECTION: &str = "signature";
const COMPONENT_PREAMBLE: [u8; 8] = *b"\0asm\x0d\x00\x01\x00";

fn leb_u32(bytes: &[u8], pos: &mut usize) -> Result<u32, String> {
    let mut v: u64 = 0;
    for i in 0..5 {
        let b = *bytes.get(*pos).ok_or("truncated LEB128 integer")?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(v).map_err(|_| "LEB128 integer exceeds u32".to_owned());
        }
    }
    Err("LEB128 integer longer than 5 bytes".to_owned())
}

/// Reads a plugin's digest and manifest from its bytes.
pub fn describe(bytes: &[u8]) -> Result<Described, String> {
    if bytes.len() < 8 || bytes[..8] != COMPONENT_PREAMBLE {
        return Err("not a WebAssembly component (bad preamble)".into());
    }
    let mut hash = Sha256::new();
    hash.update(&bytes[..8]);
    let mut manifest = None;
    let mut pos = 8;
    while pos < bytes.len() {
        let start = pos;
        let id = bytes[pos];
        pos += 1;
        let size = leb_u32(bytes, &mut pos)? as usize;
        let end = pos.checked_add(size).filter(|e| *e <= bytes.len()).ok_or("a section runs past the end")?;
        let mut name = None;
        if id == 0 {
            let mut p = pos;
            let len = leb_u32(bytes, &mut p)? as usize;
            let name_end =
                p.checked_add(len).filter(|e| *e <= end).ok_or("a section name runs past its end")?;
            name = Some((&bytes[p..name_end], name_end));
        }
        match name {
            Some((n, _)) if n == SIGNATURE_SECTION.as_bytes() => {}
            Some((n, data_start)) if n == MANIFEST_SECTION.as_bytes() => {
                if manifest.replace(&bytes[data_start..end]).is_some() {
                    return Err("more than one manifest section".into());
                }
                hash.update(&bytes[start..end]);
            }
            _ => hash.update(&bytes[start..end]),
        }
        pos = end;
    }
    let manifest = manifest.ok_or("no wasmig manifest section (pack it with `wasmig pack`)")?;
    let v: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let text = |k: &str| v[k].as_str().map(str::to_owned).ok_or(format!("manifest has no {k}"));
    let capabilities = match &v["capabilities"] {
        serde_json::Value::Null => Vec::new(),
        c => c
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
            .ok_or("manifest capabilities are not a list of strings")?,
    };
    Ok(Described {
        digest: hex::encode(hash.finalize()),
        id: v["id"].as_i64().ok_or("manifest has no id")?,
        name: text("name")?,
        world: text("world")?,
        capabilities,
    })
}

/// Writes the Rust source embedding every plugin of `dir` (and its release
/// index, if any) to `out`. Returns the files it embedded, which a build
/// script should watch.
pub fn generate(dir: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    // Messages name the directory as given; include_bytes! needs it absolute.
    let given = dir.display().to_string();
    let dir = dir.canonicalize().map_err(|e| format!("{given}: {e}"))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()).map_err(|e| format!("{}: {e}", dir.display())))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "wasm" || e == "cwasm"));
    files.sort();
    let mut src = format!(
        "// Generated by wasmig-embed from {:?}; do not edit.\n\n\
         /// The migrations of `{}`, compiled into this binary.\n\
         pub static MIGRATIONS: wasmig::Embedded = wasmig::Embedded {{\n    dir: {given:?},\n    migrations: &[\n",
        dir.display().to_string(),
        given,
    );
    for f in &files {
        let shown = f.display().to_string();
        if f.extension().is_some_and(|e| e == "cwasm") {
            return Err(format!("{shown}: precompiled .cwasm files are never accepted"));
        }
        if !std::fs::symlink_metadata(f).map_err(|e| format!("{shown}: {e}"))?.file_type().is_file() {
            return Err(format!("{shown}: not a regular file"));
        }
        let bytes = std::fs::read(f).map_err(|e| format!("{shown}: {e}"))?;
        let d = describe(&bytes).map_err(|e| format!("{shown}: {e}"))?;
        let file_name =
            f.file_name().and_then(|n| n.to_str()).ok_or(format!("{shown}: name is not UTF-8"))?;
        let caps: Vec<String> = d.capabilities.iter().map(|c| format!("{c:?}")).collect();
        let _ = write!(
            src,
            "        wasmig::EmbeddedMigration {{\n            file_name: {file_name:?},\n            \
             bytes: include_bytes!({shown:?}),\n            digest: {:?},\n            id: {},\n            \
             name: {:?},\n            world: {:?},\n            capabilities: &[{}],\n        }},\n",
            d.digest,
            d.id,
            d.name,
            d.world,
            caps.join(", ")
        );
    }
    src.push_str("    ],\n");
    let index = dir.join(RELEASE_FILE);
    if index.is_file() {
        let _ = writeln!(src, "    release: Some(include_bytes!({:?})),", index.display().to_string());
        files.push(index);
    } else {
        src.push_str("    release: None,\n");
    }
    src.push_str("};\n");
    std::fs::write(out, src).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(files)
}

/// For `build.rs`: embeds `dir` (relative to the package) into
/// `$OUT_DIR/wasmig_migrations.rs` and tells cargo to rebuild when the
/// directory or any file in it changes. Fails the build with the reason when
/// a file is not a plugin.
pub fn embed_dir(dir: impl AsRef<Path>) {
    let dir = dir.as_ref();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    println!("cargo:rerun-if-changed={}", dir.display());
    match generate(dir, &out.join(GENERATED_FILE)) {
        Ok(files) => {
            for f in files {
                println!("cargo:rerun-if-changed={}", f.display());
            }
        }
        Err(e) => panic!("wasmig-embed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(note: &[u8]) -> Vec<u8> {
        let mut c = COMPONENT_PREAMBLE.to_vec();
        let mut payload = vec![4u8];
        payload.extend_from_slice(b"note");
        payload.extend_from_slice(note);
        c.push(0);
        c.push(payload.len() as u8);
        c.extend_from_slice(&payload);
        c
    }

    /// The digest and manifest read here are wasmig's, signed or not, with
    /// and without capabilities.
    #[test]
    fn agrees_with_wasmig_on_packed_and_signed_files() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k");
        wasmig::keygen(&key).unwrap();
        let sk = wasmig::read_secret_key(&key).unwrap();
        let mut m = wasmig::Manifest::new(12, "with_caps");
        m.capabilities.push(wasmig::CAP_FOREIGN_KEYS_OFF.into());
        for (manifest, signed) in [(wasmig::Manifest::new(3, "plain"), false), (m, true)] {
            let bytes = wasmig::pack(&component(b"hello"), &manifest, signed.then_some(&sk)).unwrap();
            let d = describe(&bytes).unwrap();
            assert_eq!(d.digest, wasmig::content_digest(&bytes).unwrap());
            let read = wasmig::read_manifest(&bytes).unwrap();
            assert_eq!(
                (d.id, &d.name, &d.world, &d.capabilities),
                (read.id, &read.name, &read.world, &read.capabilities)
            );
        }
        // A real pack-sql component too.
        let sql = wasmig::component_for_sql("CREATE TABLE t (x);").unwrap();
        let bytes = wasmig::pack(&sql, &wasmig::Manifest::new(1, "t"), Some(&sk)).unwrap();
        assert_eq!(describe(&bytes).unwrap().digest, wasmig::content_digest(&bytes).unwrap());
    }

    #[test]
    fn refuses_what_is_not_a_plugin() {
        assert!(describe(b"hello world!").unwrap_err().contains("preamble"));
        assert!(describe(&component(b"x")).unwrap_err().contains("no wasmig manifest"));
        let mut truncated = component(b"xyz");
        truncated.pop();
        assert!(describe(&truncated).unwrap_err().contains("past the end"));
    }

    #[test]
    fn generates_a_file_naming_every_plugin_and_the_index() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("migrations");
        std::fs::create_dir(&dir).unwrap();
        let bytes = wasmig::pack(&component(b"a"), &wasmig::Manifest::new(1, "a"), None).unwrap();
        std::fs::write(dir.join("0001_a.wasm"), &bytes).unwrap();
        std::fs::write(dir.join("README"), "ignored").unwrap();
        let out = tmp.path().join("gen.rs");
        let files = generate(&dir, &out).unwrap();
        assert_eq!(files.len(), 1);
        let src = std::fs::read_to_string(&out).unwrap();
        assert!(src.contains("file_name: \"0001_a.wasm\""), "{src}");
        assert!(src.contains(&wasmig::content_digest(&bytes).unwrap()), "{src}");
        assert!(src.contains("release: None"), "{src}");
        std::fs::write(dir.join(RELEASE_FILE), "{}").unwrap();
        assert_eq!(generate(&dir, &out).unwrap().len(), 2);
        assert!(std::fs::read_to_string(&out).unwrap().contains("release: Some(include_bytes!("));
        std::fs::write(dir.join("0002_b.wasm"), b"junk").unwrap();
        assert!(generate(&dir, &out).unwrap_err().contains("0002_b.wasm"));
    }
}
