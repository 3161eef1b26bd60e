//! Importing an existing directory of SQL migrations from another tool.
//!
//! Each tool's directory is read the way that tool reads it (`layouts`):
//! which files count, how a version and a name are taken from a file name,
//! which part of a file is the "up" SQL, and which annotations it honours.
//! A script with no statements (only comments or whitespace) is a step the
//! tool applies and records, so it becomes a migration that does nothing.
//!
//! Ids come from the tool's version by a fixed rule per tool (`ids`), so
//! they stay the same when the directory is imported again after more
//! migrations are added, and they sort exactly as the tool orders its
//! migrations; every import checks that against the tool's own order and
//! refuses a directory the rule cannot express. Each migration keeps its
//! [`Provenance`]: the file, the version the tool records and the digest the
//! tool keeps (`digest`), which `wasmig adopt` checks the tool's ledger
//! against.
//!
//! Down scripts are kept: sqlx `.down.sql`, diesel `down.sql`,
//! golang-migrate `.down.sql` files, goose's `-- +goose Down` section and
//! dbmate's `-- migrate:down` block become the plugin's `down` (world
//! 0.3.0), so `wasmig down` reverts an imported history as the tool would.
//! refinery keeps no down scripts. A down with no statements reverts
//! nothing, as the tools run it.

mod digest;
mod ids;
mod layouts;

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::plugin::{CAP_FOREIGN_KEYS_OFF, Manifest, Provenance};

/// The tools whose directories can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    /// `<version>_<name>/up.sql` folders; versions ordered as strings.
    Diesel,
    /// `<version>_<name>.sql` or `<version>_<name>.up.sql`; numeric versions.
    Sqlx,
    /// `V<version>__<name>.sql` and `U<version>__<name>.sql`, in any
    /// subdirectory; numeric versions.
    Refinery,
    /// `<version>_<name>.sql` with `-- +goose Up` / `-- +goose Down` sections.
    Goose,
    /// `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down`
    /// sections; ordered by file name.
    Dbmate,
    /// `<version>_<name>.up.<ext>` and `.down.<ext>`; numeric versions.
    GolangMigrate,
}

impl Tool {
    /// Every tool, in the order the documentation lists them.
    pub const ALL: [Tool; 6] =
        [Tool::Diesel, Tool::Sqlx, Tool::Refinery, Tool::Goose, Tool::Dbmate, Tool::GolangMigrate];

    /// The name used on the command line and in provenance.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Diesel => "diesel",
            Tool::Sqlx => "sqlx",
            Tool::Refinery => "refinery",
            Tool::Goose => "goose",
            Tool::Dbmate => "dbmate",
            Tool::GolangMigrate => "golang-migrate",
        }
    }

    /// Whether the tool's usual SQLite connection enforces foreign keys:
    /// sqlx turns them on, diesel and refinery get SQLite as the bundled
    /// `libsqlite3-sys` builds it (foreign keys on by default); the Go
    /// drivers under goose, dbmate and golang-migrate (mattn/go-sqlite3,
    /// modernc.org/sqlite) leave SQLite's default, off. A history written
    /// with them off needs `import --foreign-keys-off`.
    pub fn enforces_foreign_keys(self) -> bool {
        matches!(self, Tool::Diesel | Tool::Sqlx | Tool::Refinery)
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl std::str::FromStr for Tool {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Tool::ALL.into_iter().find(|t| t.label() == s).ok_or_else(|| {
            Error::Usage(format!(
                "unknown tool {s:?}; use diesel, sqlx, refinery, goose, dbmate or golang-migrate"
            ))
        })
    }
}

/// One migration found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The id it gets, from the tool's version (see the module docs).
    pub id: i64,
    /// Its name, made safe for a plugin file name.
    pub name: String,
    /// The file its SQL came from.
    pub source: PathBuf,
    /// The up SQL, with the tool's own annotations blanked out (line numbers
    /// kept).
    pub sql: String,
    /// The script has no statements: the tool applies and records it, and
    /// so does the plugin, which does nothing.
    pub no_op: bool,
    /// Tool, file, version and digest, for the manifest.
    pub provenance: Provenance,
    /// The tool's down script for it, if it has one: imported as the
    /// plugin's `down` (world 0.3.0), so `wasmig down` can revert it.
    pub down: Option<DownScript>,
}

impl Found {
    /// The manifest for this migration, with its provenance, and the
    /// `foreign-keys-off` capability when asked for.
    pub fn manifest(&self, foreign_keys_off: bool) -> Manifest {
        let mut m = Manifest::new(self.id, self.name.clone());
        if foreign_keys_off {
            m.capabilities.push(CAP_FOREIGN_KEYS_OFF.to_owned());
        }
        m.provenance = Some(self.provenance.clone());
        m
    }
}

/// What a layout reads from one file (or diesel folder), before ids.
struct Entry {
    /// The version as the tool records it in its ledger.
    version: String,
    /// The tool's sort key for this migration.
    order: Order,
    /// The name, before sanitising.
    name: String,
    /// The file holding the up SQL (for messages and `Found::source`).
    source: PathBuf,
    /// `source` relative to the imported directory.
    file: String,
    /// The up SQL, annotations blanked out.
    up: String,
    /// The digest the tool keeps, as provenance spells it.
    digest: String,
    /// The down script, when the layout has one.
    down: Option<DownScript>,
}

/// A migration's down script, as the tool keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownScript {
    /// The file it came from (the up file itself for goose and dbmate,
    /// which keep both parts in one file).
    pub source: PathBuf,
    /// Its SQL, with the tool's own annotations and the up part blanked out
    /// (line numbers kept).
    pub sql: String,
}

/// How a tool sorts its migrations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Order {
    /// By a number.
    Number(i128),
    /// By a string, byte by byte (diesel's version, dbmate's file name).
    Text(String),
}

/// Reads `dir` as `tool` lays it out; returns its migrations in order.
pub fn scan(dir: &Path, tool: Tool) -> Result<Vec<Found>, Error> {
    scan_dir(dir, tool).map_err(Error::Import)
}

fn scan_dir(dir: &Path, tool: Tool) -> Result<Vec<Found>, String> {
    let mut entries = layouts::read(dir, tool)?;
    entries.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.source.cmp(&b.source)));
    let mut seen: std::collections::HashMap<&str, &Path> = std::collections::HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let same_order = i > 0 && entries[i - 1].order == e.order;
        let first = if same_order {
            Some(entries[i - 1].source.as_path())
        } else {
            seen.get(e.version.as_str()).copied()
        };
        if let Some(first) = first {
            return Err(format!(
                "version {} appears twice: {} and {}",
                e.version,
                first.display(),
                e.source.display()
            ));
        }
        seen.insert(&e.version, &e.source);
    }
    let mut found = Vec::with_capacity(entries.len());
    for e in entries {
        let id = ids::id_for(tool, &e.version).map_err(|why| format!("{}: {why}", e.source.display()))?;
        let no_op = match super::split::split(&e.up) {
            Ok(stmts) => stmts.is_empty(),
            // Reported with its line when the script is packed.
            Err(_) => false,
        };
        found.push(Found {
            id,
            name: sanitize(&e.name),
            no_op,
            provenance: Provenance {
                tool: tool.label().to_owned(),
                file: e.file,
                version: e.version,
                digest: e.digest,
            },
            source: e.source,
            sql: e.up,
            down: e.down,
        });
    }
    // The tool's order, now with ids: they must rise with it.
    if let Some(w) = found.windows(2).find(|w| w[0].id >= w[1].id) {
        return Err(format!(
            "{tool} runs {} (version {}) before {} (version {}), but the ids wasmig gives them \
             ({} and {}) would not; rename one so both orders agree (see docs/authoring.md, \"Importing\")",
            w[0].source.display(),
            w[0].provenance.version,
            w[1].source.display(),
            w[1].provenance.version,
            w[0].id,
            w[1].id
        ));
    }
    if found.is_empty() {
        return Err(format!("{}: no {tool} migrations found in the layout expected", dir.display()));
    }
    Ok(found)
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .take(100)
        .collect();
    if s.is_empty() { "migration".into() } else { s }
}
