//! The section structure of a WebAssembly component, read from bytes
//! without compiling anything: the preamble, each top-level section, and
//! the names a component imports and exports. Signing, the manifest, the
//! digest and `pack-sql` recognition all build on this walk.

use crate::error::FormatError;

/// Name of the custom section that carries the manifest.
pub const MANIFEST_SECTION: &str = "wasmig-manifest";

/// Name of the custom section the WebAssembly signature format uses. Its
/// contents are excluded from a plugin's digest, so re-signing is not a change.
pub const SIGNATURE_SECTION: &str = "signature";

const MAGIC: [u8; 4] = *b"\0asm";
pub(crate) const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
pub(crate) const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

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

pub(crate) fn read_leb_u32(bytes: &[u8], pos: &mut usize) -> Result<u32, String> {
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
pub fn sections(bytes: &[u8]) -> Result<Vec<Section<'_>>, FormatError> {
    walk(bytes).map_err(FormatError::Sections)
}

fn walk(bytes: &[u8]) -> Result<Vec<Section<'_>>, String> {
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

pub(crate) fn encode_custom_section(name: &str, data: &[u8]) -> Vec<u8> {
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

/// The names a component imports and exports at its top level, read without
/// compiling it (nested core modules and components are skipped).
pub fn component_interface(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), FormatError> {
    interface(bytes).map_err(FormatError::Component)
}

fn interface(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
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
