//! The documented exit codes, and the errors the CLI itself raises.
//!
//! 0 success; 1 a migration failed and was rolled back (an undeclared
//! destructive change included); 2 usage error (clap's own); 3 input refused
//! before anything ran (a destructive file with too few signers, a schema
//! changed outside wasmig under `--strict-schema` included); 4 database or
//! environment error.

/// A migration ran and was rolled back.
pub const MIGRATION_FAILED: u8 = 1;
/// Input refused before anything ran.
pub const REFUSED: u8 = 3;
/// Database or environment failure.
pub const ENVIRONMENT: u8 = 4;

/// Maps an error to the documented exit code.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<wasmig::Error>() {
        Some(w) => library_code(w),
        None if e.downcast_ref::<Refused>().is_some() => REFUSED,
        None if let Some(f) = e.downcast_ref::<FleetFailed>() => f.1,
        None if e.downcast_ref::<RehearsalFailed>().is_some() => MIGRATION_FAILED,
        None => ENVIRONMENT,
    }
}

/// The exit code of a library error.
pub fn library_code(e: &wasmig::Error) -> u8 {
    if e.is_migration_failure() {
        MIGRATION_FAILED
    } else if e.is_refused_input() {
        REFUSED
    } else {
        ENVIRONMENT
    }
}

/// An input the CLI itself refused (as opposed to the library).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Refused {
    /// Refuses with `e`'s message.
    pub fn of(e: impl std::fmt::Display) -> Refused {
        Refused(e.to_string())
    }
}

/// Some databases of a fleet failed; carries the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FleetFailed(pub String, pub u8);

/// A rehearsed migration failed (exit code 1, as a failed apply).
#[derive(Debug, thiserror::Error)]
#[error("a rehearsed migration failed; the real database was not touched")]
pub struct RehearsalFailed;
