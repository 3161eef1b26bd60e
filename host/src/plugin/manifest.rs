//! The manifest a plugin carries: format version, migration id, name,
//! target world and capabilities, with the checks a host relies on.

use serde::{Deserialize, Serialize};

use super::sections::component_interface;
use crate::error::FormatError;
use crate::worlds::{DOWN_EXPORT, REVERSIBLE_WORLD, WORLD, WORLDS, sql_import_of};

/// The manifest format this release writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// Capability: run with foreign key enforcement off (for table rebuilds).
/// The host turns it off outside the transaction, runs
/// `PRAGMA foreign_key_check` before COMMIT, and restores the setting.
pub const CAP_FOREIGN_KEYS_OFF: &str = "foreign-keys-off";

/// Capability: the migration drops or renames tables or columns, on
/// purpose. Without it the host refuses (before COMMIT) a migration whose net
/// effect on the schema drops or renames a table or column; see
/// `apply::shape`. Files that declare it may need more signers
/// (`Options::min_signers_destructive`).
pub const CAP_DESTRUCTIVE: &str = "destructive";

const KNOWN_CAPABILITIES: &[&str] = &[CAP_FOREIGN_KEYS_OFF, CAP_DESTRUCTIVE];

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
    /// Declared capabilities; format 1 knows [`CAP_FOREIGN_KEYS_OFF`] and
    /// [`CAP_DESTRUCTIVE`].
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Where an imported migration came from (see [`Provenance`]); absent,
    /// and left out of the encoding, for everything else, so manifests
    /// without it encode exactly as before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// The tool an imported migration came from, the file, the version that
/// tool records for it and the digest that tool keeps (or SHA-256 of the
/// file when it keeps none). Signed with the rest of the manifest, so
/// `wasmig adopt` can hold the other tool's ledger against exactly what was
/// imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The tool: `diesel`, `sqlx`, `refinery`, `goose`, `dbmate` or `golang-migrate`.
    pub tool: String,
    /// The source file, relative to the directory imported
    /// (`2024-01-01-120000_users/up.sql` for diesel).
    pub file: String,
    /// The version as the tool writes it in its own ledger.
    pub version: String,
    /// `sha384:<hex>` (sqlx's checksum of the file), `siphash13:<decimal>`
    /// (refinery's checksum) or `sha256:<hex>` of the file (the others).
    pub digest: String,
}

/// The tools a [`Provenance`] may name.
pub const PROVENANCE_TOOLS: &[&str] = &["diesel", "sqlx", "refinery", "goose", "dbmate", "golang-migrate"];

impl Provenance {
    fn check(&self) -> Result<(), String> {
        if !PROVENANCE_TOOLS.contains(&self.tool.as_str()) {
            return Err(format!(
                "provenance names tool {:?}; known: {}",
                self.tool,
                PROVENANCE_TOOLS.join(", ")
            ));
        }
        if self.file.is_empty() || self.file.len() > 1024 {
            return Err(format!("provenance file name must be 1 to 1024 bytes, got {}", self.file.len()));
        }
        if self.version.is_empty() || self.version.len() > 128 {
            return Err(format!("provenance version must be 1 to 128 bytes, got {}", self.version.len()));
        }
        let hex = |h: &str, n: usize| h.len() == n && h.bytes().all(|b| b.is_ascii_hexdigit());
        let ok = match self.digest.split_once(':') {
            Some(("sha256", h)) => hex(h, 64),
            Some(("sha384", h)) => hex(h, 96),
            Some(("siphash13", d)) => d.parse::<u64>().is_ok_and(|v| v.to_string() == d),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "provenance digest {:?} is not sha256:<hex>, sha384:<hex> or siphash13:<decimal>",
                self.digest
            ));
        }
        Ok(())
    }
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
            provenance: None,
        }
    }

    /// Decodes and validates manifest bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::Manifest(format!("manifest is not valid: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    /// Encodes the manifest as stored in the section.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serialises")
    }

    /// Checks the fields a host relies on.
    pub fn validate(&self) -> Result<(), FormatError> {
        self.check().map_err(FormatError::Manifest)
    }

    fn check(&self) -> Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!(
                "manifest format {} is not supported (this wasmig reads format {MANIFEST_FORMAT})",
                self.format
            ));
        }
        if self.id < 1 {
            return Err(format!("migration id must be a positive integer, got {}", self.id));
        }
        check_name(&self.name)?;
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
        if let Some(p) = &self.provenance {
            p.check()?;
        }
        Ok(())
    }

    /// This manifest with `world` set to the one whose `sql` interface
    /// `component` imports, so a 0.1.0 component is never labelled 0.2.0 or
    /// the reverse. A component that imports no known `sql` interface keeps
    /// the world given (loading it then names what it imports instead).
    /// A component that exports `down` targets the reversible world when it
    /// imports that world's `sql` (or none), so it is never recorded as a
    /// forward-only world whose hosts would not know to call its `down`.
    pub fn targeting(&self, component: &[u8]) -> Result<Manifest, FormatError> {
        let (imports, exports) = component_interface(component)?;
        let mut m = self.clone();
        let found = WORLDS.iter().find(|(_, sql)| imports.iter().any(|i| i == sql));
        if exports.iter().any(|e| e == DOWN_EXPORT) {
            let reversible_sql = sql_import_of(REVERSIBLE_WORLD);
            if found.is_none_or(|(_, sql)| Some(*sql) == reversible_sql) {
                m.world = REVERSIBLE_WORLD.to_owned();
                return Ok(m);
            }
        }
        if let Some((world, _)) = found {
            m.world = (*world).to_owned();
        }
        Ok(m)
    }

    /// True when the migration's world exports `down`, so it can be reverted.
    pub fn is_reversible(&self) -> bool {
        crate::worlds::is_reversible(&self.world)
    }

    /// True when the migration declared [`CAP_FOREIGN_KEYS_OFF`].
    pub fn needs_foreign_keys_off(&self) -> bool {
        self.capabilities.iter().any(|c| c == CAP_FOREIGN_KEYS_OFF)
    }

    /// True when the migration declared [`CAP_DESTRUCTIVE`].
    pub fn declares_destructive(&self) -> bool {
        self.capabilities.iter().any(|c| c == CAP_DESTRUCTIVE)
    }

    /// The canonical file name for this migration: `<id>_<name>.wasm`, with
    /// the id zero-padded to four digits so directory listings sort by id.
    pub fn file_name(&self) -> String {
        format!("{:04}_{}.wasm", self.id, self.name)
    }
}

/// Checks a migration name: 1 to 100 characters of `[A-Za-z0-9_-]`.
pub fn validate_name(name: &str) -> Result<(), FormatError> {
    check_name(name).map_err(FormatError::Manifest)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err(format!("migration name must be 1 to 100 characters, got {}", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(format!("migration name {name:?} contains {c:?}; use letters, digits, '_' and '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_without_provenance_encodes_as_before() {
        let m = Manifest::new(3, "backfill");
        assert_eq!(
            String::from_utf8(m.encode()).unwrap(),
            r#"{"format":1,"id":3,"name":"backfill","world":"wasmig:migration/migration@0.1.0","capabilities":[]}"#
        );
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn provenance_round_trips_and_is_checked() {
        let mut m = Manifest::new(20240101120000, "users");
        m.provenance = Some(Provenance {
            tool: "sqlx".into(),
            file: "20240101120000_users.sql".into(),
            version: "20240101120000".into(),
            digest: format!("sha384:{}", "ab".repeat(48)),
        });
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        let bad = |f: &dyn Fn(&mut Provenance)| {
            let mut m = m.clone();
            f(m.provenance.as_mut().unwrap());
            Manifest::decode(&m.encode()).unwrap_err().to_string()
        };
        assert!(bad(&|p| p.tool = "flyway".into()).contains("flyway"));
        assert!(bad(&|p| p.digest = "sha384:ab".into()).contains("not sha256"));
        assert!(bad(&|p| p.digest = "siphash13:0123".into()).contains("not sha256"));
        assert!(bad(&|p| p.version = String::new()).contains("version"));
        let extra = String::from_utf8(m.encode()).unwrap().replace(r#""tool""#, r#""x":1,"tool""#);
        assert!(Manifest::decode(extra.as_bytes()).unwrap_err().to_string().contains("unknown field"));
    }
}
