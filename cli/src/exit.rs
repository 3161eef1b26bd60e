//! The documented exit codes, and the errors the CLI itself raises.
//!
//! 0 success; 1 a migration failed and was rolled back (an undeclared
//! destructive change included); 2 usage error (clap's own); 3 input refused
//! before anything ran (a destructive file with too few signers, a schema
//! changed outside wasmig under `--strict-schema` included); 4 database or
//! environment error; 5 migrations pending (`status --exit-code`); 6 a
//! replica (or read-only database) that has not caught up.

/// A migration ran and was rolled back.
pub const MIGRATION_FAILED: u8 = 1;
/// Input refused before anything ran.
pub const REFUSED: u8 = 3;
/// Database or environment failure.
pub const ENVIRONMENT: u8 = 4;
/// A replica (or read-only database) whose ledger lacks migrations here:
/// nothing was written.
pub const REPLICA_NOT_CAUGHT_UP: u8 = 6;

/// Usage error (clap's own, and a missing DIR or database no configuration supplies).
pub const USAGE: u8 = 2;
/// `status --exit-code` found pending migrations.
pub const PENDING: u8 = 5;

/// Maps an error to the documented exit code.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<wasmig::Error>() {
        Some(w) => library_code(w),
        None if e.downcast_ref::<Refused>().is_some() => REFUSED,
        None if let Some(f) = e.downcast_ref::<FleetFailed>() => f.1,
        None if e.downcast_ref::<RehearsalFailed>().is_some() => MIGRATION_FAILED,
        None if e.downcast_ref::<Pending>().is_some() => PENDING,
        None if e.downcast_ref::<Usage>().is_some() => USAGE,
        None => ENVIRONMENT,
    }
}

/// The exit code of a library error.
pub fn library_code(e: &wasmig::Error) -> u8 {
    if e.is_migration_failure() {
        MIGRATION_FAILED
    } else if e.is_refused_input() {
        REFUSED
    } else if e.is_replica_not_caught_up() {
        REPLICA_NOT_CAUGHT_UP
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

/// `status --exit-code` found this many pending migrations (exit code 5). Not
/// a failure: `main` prints it as a note, not as an error.
#[derive(Debug, thiserror::Error)]
#[error("{0} migration(s) pending")]
pub struct Pending(pub usize);

/// A usage error the CLI finds after clap has parsed (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);
