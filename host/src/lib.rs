//! wasmig: SQLite schema migrations shipped as WebAssembly components.
//!
//! Each migration is a component exporting `up` and importing only the
//! `wasmig:migration/sql` interface. The [`Migrator`] loads a directory of
//! them, checks every file before anything runs, and applies the pending ones
//! in id order, each inside its own SQLite transaction: committed when the
//! guest returns `Ok`, rolled back on its `Err`, a trap or any limit.

// Dependencies between these folders point one way (see the README's
// architecture section): apply -> sandbox -> sql -> plugin -> worlds, with
// error and ledger below them all.
mod apply;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod ledger;
mod plugin;
mod sandbox;
mod sql;
pub mod testing;
mod worlds;

// Applying migrations.
pub use apply::{
    Adoption, Applied, Attestation, BlastRadius, CheckReport, DbResult, Destruction, FleetOptions,
    FleetReport, MigrationState, Migrator, Options, Plan, Problem, Recorded, Rehearsal, RehearsedStep,
    Report, RevertReport, Reverted, RoundTrip, RoundTripOutcome, RoundTripStep, SchemaCheck, SchemaObject,
    SchemaState, Snapshot, StatusRow, Step, StepOutcome, TableRows, attest_schema, check_dir, check_schema,
    expand_databases, normal_schema,
};
// Replicas (LiteFS, read-only databases): apply only reads there.
pub use apply::{LITEFS_PRIMARY_FILE, ReplicaWait, litefs_replica};
pub use error::{Error, FormatError, KeyError, ReadOnlyCause, ReleaseError, Result, TrustError};
pub use ledger::{AUDIT_TABLE as LEDGER_AUDIT_TABLE, TABLE as LEDGER_TABLE};
pub use ledger::{ensure as ensure_ledger, exists as ledger_exists, highest_release};

// Plugin files: format, manifest, signatures and trust.
pub use plugin::read_file as read_plugin_file;
pub use plugin::{
    CAP_DESTRUCTIVE, CAP_FOREIGN_KEYS_OFF, DEFAULT_MAX_FILE_SIZE, MANIFEST_FORMAT, MANIFEST_SECTION,
    Manifest, PROVENANCE_TOOLS, Plugin, Provenance, SIGNATURE_SECTION, Section, SignatureInfo, TrustPolicy,
    TrustedKey, Verdict, component_interface, content_digest, key_id, keygen, list_dir, pack, pub_path,
    public_of, read_manifest, read_secret_key, sections, sign, signature_info, validate_name, with_manifest,
};
// Migrations compiled into the application (written by wasmig-embed).
pub use plugin::{Embedded, EmbeddedMigration, recheck_embedded};
// The signed release index of a migrations directory.
pub use plugin::{
    MadeRelease, RELEASE_FILE, RELEASE_FORMAT, ReleaseEntry, ReleaseIndex, ReleaseSignature, check_release,
    decode_release, read_release, release_path, write_release,
};
pub use worlds::{REVERSIBLE_WORLD, WORLD, WORLDS};

// The sandbox's limits, and what a run reports.
pub use sandbox::{
    CallLimits, CompileCache, Compiled, Compiler, Entry, Limits, Outcome, RunStats, Sandbox, SqlLimits,
    default_cache_dir,
};
// What a guest's SQL may call (see docs/authoring.md, section 7).
pub use sandbox::gate::{FUNCTION_ALLOWLIST, FUNCTION_DENYLIST, SQLITE_INTERNAL_FUNCTIONS};
pub use sql::MAX_JSON_PATHS;

// SQL scripts: splitting, pack-sql components, importing other tools.
pub use sql::import::{
    DownScript as ImportedDown, Found as ImportedMigration, Tool as ImportTool, scan as import_dir,
};
pub use sql::script::{
    Script as SqlScript, SqlRefusal, component_for_import, component_for_import_with_down, component_for_sql,
    component_for_sql_with_down, recognise as recognise_sql_component,
};
pub use sql::split::{Statement as SqlStatement, is_complete as is_complete_sql, split as split_sql};

/// This library's version, recorded in the ledger with each migration.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
