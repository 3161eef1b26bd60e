//! The library's one error type.
//!
//! Every variant names what failed (file, migration, statement) so that a
//! message read in a deployment log is enough to act on.

use std::path::PathBuf;
use std::time::Duration;

/// Anything that can go wrong while loading, validating or applying migrations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A plugin file is malformed: bad preamble, broken section, missing or
    /// invalid manifest, name that does not match its manifest.
    #[error("{path}: {reason}")]
    BadPlugin {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A plugin file is not trusted: unsigned, signed by unknown keys, too
    /// few trusted signers, or modified after signing.
    #[error("{path}: refused by the trust policy: {reason}")]
    Untrusted {
        /// The offending file.
        path: PathBuf,
        /// Why.
        reason: TrustError,
    },

    /// Bytes that are not a well-formed component or plugin (see
    /// [`FormatError`]), outside the loading of a named file.
    #[error(transparent)]
    Format(#[from] FormatError),

    /// Bytes the trust policy refuses, outside the loading of a named file.
    #[error(transparent)]
    Trust(#[from] TrustError),

    /// A key file cannot be read or written.
    #[error(transparent)]
    Key(#[from] KeyError),

    /// Another tool's migration directory cannot be imported as it is.
    #[error("{0}")]
    Import(String),

    /// The caller asked for something that cannot be done (no reason given
    /// to accept a change, an unknown tool, a database list naming nothing).
    #[error("{0}")]
    Usage(String),

    /// A fault inside wasmig itself (a worker that stopped, a poisoned
    /// lock); not caused by the input.
    #[error("internal error: {0}")]
    Internal(String),

    /// Two files claim the same migration id.
    #[error("duplicate migration id {id}: {first} and {second}")]
    DuplicateId {
        /// The id both claim.
        id: i64,
        /// One file.
        first: PathBuf,
        /// The other file.
        second: PathBuf,
    },

    /// A component failed to compile or does not match the migration world.
    #[error("{path}: component rejected: {reason}")]
    InvalidComponent {
        /// The offending file.
        path: PathBuf,
        /// The compiler's or linker's explanation.
        reason: String,
    },

    /// A pending migration's id is lower than one already applied.
    #[error(
        "migration {id} ({name}) is pending but migration {highest_applied} is already applied; \
         refusing to apply out of order (pass --allow-out-of-order if this is intended)"
    )]
    OutOfOrder {
        /// The pending migration's id.
        id: i64,
        /// Its name.
        name: String,
        /// The highest id already in the ledger.
        highest_applied: i64,
    },

    /// An applied migration's file no longer has the content that was applied.
    #[error(
        "drift: migration {id} ({name}) was applied with digest {recorded} but {path} now has digest {actual}"
    )]
    Drift {
        /// The migration id.
        id: i64,
        /// Its name.
        name: String,
        /// The file now on disk.
        path: PathBuf,
        /// Digest stored in the ledger.
        recorded: String,
        /// Digest of the file now.
        actual: String,
    },

    /// A revert was refused before anything ran: a migration it would
    /// revert has no `down`, no file, or no recorded digest to match.
    #[error(
        "cannot revert to migration {to}; nothing was run:\n  {}",
        .problems.join("\n  ")
    )]
    Irreversible {
        /// The id the revert was asked to go back to.
        to: i64,
        /// One line per migration that cannot be reverted, newest first.
        problems: Vec<String>,
    },

    /// The ledger records migrations that have no file here.
    #[error(
        "the ledger records migration(s) {} but no file with that id is present; restore the files \
         or pass --allow-missing",
        join_ids(.ids)
    )]
    MissingFiles {
        /// The ids without files.
        ids: Vec<i64>,
    },

    /// The database was migrated by a newer release than this one.
    #[error(
        "the database was migrated further than this release knows: applied migration(s) {} are \
         beyond the newest one here ({newest_known}); refusing to guess (upgrade, or pass --allow-missing)",
        join_ids(.ids)
    )]
    NewerDatabase {
        /// Applied ids beyond the known set.
        ids: Vec<i64>,
        /// The newest id known here.
        newest_known: i64,
    },

    /// A migration that ran with foreign keys off left violations; rolled back.
    #[error(
        "migration {id} ({name}) left {} foreign key violation(s) and was rolled back:\n  {}\n  file: {}",
        .violations.len(),
        .violations.join("\n  "),
        file.display()
    )]
    ForeignKeyViolations {
        /// The migration id.
        id: i64,
        /// Its name.
        name: String,
        /// Its plugin file.
        file: PathBuf,
        /// One line per violating row.
        violations: Vec<String>,
    },

    /// A migration left schema objects that can reach the ledger (an index,
    /// trigger, view or foreign key on a ledger table, a trigger or view
    /// whose compiled code reads or writes one, or a ledger-like name), or
    /// the database already held such objects before it ran; rolled back
    /// before COMMIT. See `apply::ledger_guard`.
    #[error("{}", ledger_tampering(.id, .name, .file, .objects, .before_run))]
    LedgerTampering {
        /// The migration id.
        id: i64,
        /// Its name.
        name: String,
        /// Its plugin file.
        file: PathBuf,
        /// One line per offending object, naming it and saying why.
        objects: Vec<String>,
        /// The objects were there before the migration ran (made outside
        /// wasmig, or before this check existed), so it was not run.
        before_run: bool,
    },

    /// A pending migration cannot run inside one transaction with the others
    /// (`single_transaction`); nothing was run.
    #[error(
        "migration {id} ({name}) cannot share a single transaction: {reason}; \
         apply without --single-transaction\n  file: {}",
        file.display()
    )]
    NotInOneTransaction {
        /// The migration id.
        id: i64,
        /// Its name.
        name: String,
        /// Its plugin file.
        file: PathBuf,
        /// Why.
        reason: String,
    },

    /// A migration whose manifest does not declare `destructive` dropped or
    /// renamed a table or column; rolled back before COMMIT.
    #[error(
        "migration {id} ({name}) drops or renames schema objects without declaring it and was rolled \
         back:\n  {}\n  file: {}\n  (if that is intended, pack it with --destructive)",
        .changes.join("\n  "),
        file.display()
    )]
    UndeclaredDestructive {
        /// The migration id.
        id: i64,
        /// Its name.
        name: String,
        /// Its plugin file.
        file: PathBuf,
        /// One line per dropped or renamed table or column
        /// (`drops table legacy`).
        changes: Vec<String>,
    },

    /// A file that declares `destructive` has fewer distinct trusted signers
    /// than `min_signers_destructive` requires; nothing was run.
    #[error(
        "migration {id} ({name}) declares destructive changes and needs {need} distinct trusted \
         signer(s), but is signed by {} ({})\n  file: {}",
        .signers.len(),
        if .signers.is_empty() { "none".to_owned() } else { .signers.join(", ") },
        file.display()
    )]
    DestructiveNeedsSigners {
        /// The migration id.
        id: i64,
        /// Its name.
        name: String,
        /// Its plugin file.
        file: PathBuf,
        /// The trusted keys that did sign.
        signers: Vec<String>,
        /// How many are required.
        need: usize,
    },

    /// The schema differs from the one the ledger recorded after the last
    /// migration (changed outside wasmig) and the options ask for a strict
    /// check; nothing was run.
    #[error(
        "the schema was changed outside wasmig since migration {after_id} was applied:\n  {}\n  \
         (refused because of --strict-schema)",
        .changes.join("\n  ")
    )]
    SchemaChangedOutside {
        /// The last migration whose ledger row attests the schema.
        after_id: i64,
        /// One line per object created, dropped or changed since
        /// (`index images_by_name created`).
        changes: Vec<String>,
    },

    /// `adopt` or `baseline` refused the database as it is: another tool's
    /// ledger that does not match the plugins (a checksum, a version with
    /// no plugin), a failed or dirty state, or a database already adopted.
    /// Nothing was written.
    #[error("cannot adopt: {0}")]
    Adoption(String),

    /// The ledger table exists but is not one this version understands.
    #[error("schema_migrations: {0}")]
    Ledger(String),

    /// The guest's `up` returned `Err`; everything it did was rolled back.
    #[error(
        "migration {id} ({name}) failed and was rolled back: {message}\n  file: {}{}",
        file.display(),
        statement_suffix(.last_statement)
    )]
    GuestFailed {
        /// The migration id.
        id: i64,
        /// Its name.
        name: String,
        /// Its plugin file.
        file: PathBuf,
        /// The guest's own error message.
        message: String,
        /// The last statement that failed inside the guest, if any, with its
        /// parameters summarised and SQLite's error and code.
        last_statement: Option<String>,
    },

    /// The guest trapped (panic, fuel, deadline, memory, stack) or a host
    /// call aborted it; everything it did was rolled back.
    #[error(
        "migration {id} ({name}) trapped and was rolled back: {reason}\n  file: {}{}",
        file.display(),
        statement_suffix(.last_statement)
    )]
    Trap {
        /// The migration id.
        id: i64,
        /// Its name.
        name: String,
        /// Its plugin file.
        file: PathBuf,
        /// What stopped it (the limit hit, or the panic), with the guest
        /// backtrace when available.
        reason: String,
        /// The last statement that failed inside the guest, if any.
        last_statement: Option<String>,
    },

    /// SQLite failed outside any guest code (opening, BEGIN, ledger, COMMIT).
    #[error("{context}: {source}")]
    Sqlite {
        /// What the host was doing.
        context: String,
        /// SQLite's error, including its result code.
        #[source]
        source: rusqlite::Error,
    },

    /// The sandbox could not be set up.
    #[error("sandbox: {0}")]
    Sandbox(String),

    /// The database is a replica (a LiteFS replica, or a database that opens
    /// read-only here) and migrations in the directory are not in its ledger
    /// yet: wasmig never writes there, so it refused, or waited
    /// ([`crate::Options::replica_wait`]) and they did not arrive. Nothing
    /// was written.
    #[error("{}", replica_not_caught_up(.db, .cause, .pending, .waited))]
    ReplicaNotCaughtUp {
        /// The database.
        db: PathBuf,
        /// Why it is not written here.
        cause: ReadOnlyCause,
        /// The migrations of the directory its ledger does not record.
        pending: Vec<i64>,
        /// How long apply waited for them (`None`: it did not wait).
        waited: Option<Duration>,
    },

    /// The release index (`wasmig-release.json`) was required and refused:
    /// missing, untrusted, not matching the files, or older than a release
    /// the ledger records. Nothing ran.
    #[error("release index {}: {reason}", index.display())]
    Release {
        /// The index file.
        index: PathBuf,
        /// Why it was refused (boxed: it names files and digests, and
        /// every `Result` in the crate carries this enum).
        reason: Box<ReleaseError>,
    },

    /// The compiled-component cache directory was refused (it could let
    /// someone else plant code) or could not be created.
    #[error("compiled-component cache {dir}: {reason}")]
    Cache {
        /// The cache directory.
        dir: PathBuf,
        /// Why it was refused.
        reason: String,
    },
}

fn join_ids(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

fn ledger_tampering(
    id: &i64,
    name: &str,
    file: &std::path::Path,
    objects: &[String],
    before_run: &bool,
) -> String {
    let what = if *before_run {
        "was not run: the database already holds schema objects that can reach the ledger \
         (made outside wasmig, or before this check existed; drop them first)"
    } else {
        "left schema objects that can reach the ledger and was rolled back"
    };
    format!("migration {id} ({name}) {what}:\n  {}\n  file: {}", objects.join("\n  "), file.display())
}

fn replica_not_caught_up(
    db: &std::path::Path,
    cause: &ReadOnlyCause,
    pending: &[i64],
    waited: &Option<Duration>,
) -> String {
    let waited = match waited {
        Some(d) => format!(" after waiting {:.1} s", d.as_secs_f64()),
        None => String::new(),
    };
    let ids = join_ids(pending);
    match cause {
        ReadOnlyCause::LiteFs { primary, marker } => format!(
            "{} is on a LiteFS replica (primary: {primary}, named in {}): wasmig never writes on a \
             replica, and migration(s) {ids} have not reached it{waited}; apply them on the primary, \
             or pass --replica-wait SECS to wait for replication",
            db.display(),
            marker.display()
        ),
        ReadOnlyCause::ReadOnly { reason } => format!(
            "{} is read-only here ({reason}): wasmig cannot apply, and migration(s) {ids} are not \
             applied{waited}; apply them where the database is writable, or pass --replica-wait SECS \
             to wait for them to arrive",
            db.display()
        ),
    }
}

fn statement_suffix(last: &Option<String>) -> String {
    match last {
        Some(s) => format!("\n  last failed statement: {s}"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn sqlite(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Error {
        let context = context.into();
        move |source| Error::Sqlite { context, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn bad_plugin(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::BadPlugin { path: path.into(), reason: reason.into() }
    }

    /// True when the error means a migration ran and was rolled back (as
    /// opposed to input refused before anything ran, or an environment failure).
    pub fn is_migration_failure(&self) -> bool {
        matches!(
            self,
            Error::GuestFailed { .. }
                | Error::Trap { .. }
                | Error::ForeignKeyViolations { .. }
                | Error::LedgerTampering { .. }
                | Error::UndeclaredDestructive { .. }
        )
    }

    /// True when the error means the database is a replica (or read-only)
    /// that has not caught up with the migrations here (exit code 6).
    pub fn is_replica_not_caught_up(&self) -> bool {
        matches!(self, Error::ReplicaNotCaughtUp { .. })
    }

    /// True when the error means the input (files, ledger state) was refused
    /// before any migration ran.
    pub fn is_refused_input(&self) -> bool {
        matches!(
            self,
            Error::BadPlugin { .. }
                | Error::Untrusted { .. }
                | Error::DuplicateId { .. }
                | Error::InvalidComponent { .. }
                | Error::OutOfOrder { .. }
                | Error::Drift { .. }
                | Error::MissingFiles { .. }
                | Error::Irreversible { .. }
                | Error::NewerDatabase { .. }
                | Error::NotInOneTransaction { .. }
                | Error::DestructiveNeedsSigners { .. }
                | Error::SchemaChangedOutside { .. }
                | Error::Release { .. }
                | Error::Ledger(_)
                | Error::Adoption(_)
                | Error::Format(_)
                | Error::Trust(_)
                | Error::Key(_)
                | Error::Import(_)
                | Error::Usage(_)
        )
    }
}

/// Why a database is not written here (see [`Error::ReplicaNotCaughtUp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOnlyCause {
    /// A LiteFS replica: the database's directory holds LiteFS's `.primary`
    /// file, which names the node holding the write lease.
    LiteFs {
        /// The primary, as that file names it (its first line).
        primary: String,
        /// The `.primary` file.
        marker: PathBuf,
    },
    /// The database opened read-only for another reason (file not
    /// writable, read-only mount, or a connection opened read-only).
    ReadOnly {
        /// What was found.
        reason: String,
    },
}

impl std::fmt::Display for ReadOnlyCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadOnlyCause::LiteFs { primary, .. } => write!(f, "LiteFS replica of {primary}"),
            ReadOnlyCause::ReadOnly { reason } => write!(f, "read-only ({reason})"),
        }
    }
}

/// Bytes that are not what a component or plugin file must be. Each
/// variant carries the message shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The preamble or the section structure is broken: not WebAssembly, a
    /// core module instead of a component, a section running past the end.
    #[error("{0}")]
    Sections(String),
    /// The component's imports or exports cannot be read.
    #[error("{0}")]
    Component(String),
    /// The manifest is missing, duplicated or invalid (including the
    /// migration name).
    #[error("{0}")]
    Manifest(String),
    /// The signature section is malformed or misplaced, or a signature cannot
    /// be written.
    #[error("{0}")]
    Signature(String),
    /// The input is already signed, so the change asked for would
    /// invalidate its signatures.
    #[error("{0}")]
    Signed(String),
}

/// Why the trust policy refuses a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The file has no signature and unsigned files are not allowed.
    #[error("file is not signed (pass --allow-unsigned for local development only)")]
    NotSigned,
    /// The file is signed but no keys are trusted.
    #[error("file is signed by key(s) {} but no trusted keys were given (--trust)", .key_ids.join(", "))]
    NoTrustedKeys {
        /// The key ids the signatures name.
        key_ids: Vec<String>,
    },
    /// The signature section names a hash function the format does not define.
    #[error("signature section is not valid: unsupported hash function {hash_function:#04x}")]
    UnsupportedHash {
        /// The hash function id.
        hash_function: u8,
    },
    /// No trusted key signed the whole file as it is now.
    #[error(
        "no valid signature by a trusted key over the whole file (signature key ids: {}); \
         the file was modified after signing or is signed by other keys",
        .key_ids.join(", ")
    )]
    NoValidSignature {
        /// The key ids the signatures name.
        key_ids: Vec<String>,
    },
    /// Fewer distinct trusted keys signed the file than the policy requires.
    #[error(
        "signed by {} trusted key(s) ({}) but the policy requires at least {need}",
        .signers.len(),
        .signers.join(", ")
    )]
    TooFewSigners {
        /// The trusted keys that did sign.
        signers: Vec<String>,
        /// How many the policy requires.
        need: usize,
    },
    /// The file (or its signature section) is malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Why a required release index was refused (see [`Error::Release`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// There is no index in the directory.
    #[error("missing: --require-release needs a signed index (make one with `wasmig release`)")]
    Missing,
    /// The index is not a well-formed index (or not a regular file).
    #[error("{0}")]
    Malformed(String),
    /// The index's signatures do not satisfy the trust policy.
    #[error("refused by the trust policy: {0}")]
    Untrusted(TrustError),
    /// The index lists a migration whose file is not there.
    #[error("withheld: the release lists migration {id} ({name}) but no file with that id is present")]
    Withheld {
        /// The listed id.
        id: i64,
        /// Its listed name.
        name: String,
    },
    /// A file whose migration the index does not list.
    #[error("unlisted: {} (migration {id}, {name}) is not part of the release", path.display())]
    Unlisted {
        /// Its id.
        id: i64,
        /// Its name.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// A file whose name or digest differs from what the index lists.
    #[error("changed: {} (migration {id}) is `{actual}` but the release lists `{listed}`", path.display())]
    Changed {
        /// Its id.
        id: i64,
        /// Its name.
        name: String,
        /// The file.
        path: PathBuf,
        /// Name and digest the index lists.
        listed: String,
        /// Name and digest of the file.
        actual: String,
    },
    /// The index's release is older than one the ledger records (a rollback
    /// to an older signed set).
    #[error(
        "rollback: this is release {release} but the database already has migrations from release {recorded}"
    )]
    Rollback {
        /// The index's release number.
        release: i64,
        /// The highest release number in the ledger.
        recorded: i64,
    },
}

impl ReleaseError {
    /// The migration id the problem is about (0 for the index as a whole).
    pub fn id(&self) -> i64 {
        match self {
            ReleaseError::Withheld { id, .. }
            | ReleaseError::Unlisted { id, .. }
            | ReleaseError::Changed { id, .. } => *id,
            _ => 0,
        }
    }
}

/// A key file that cannot be read, parsed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file holds no public key in any supported form.
    #[error("{}: not a public key file", path.display())]
    NotAPublicKey {
        /// The key file.
        path: PathBuf,
    },
    /// A line of an OpenSSH key list is not an Ed25519 public key.
    #[error("{}: not an Ed25519 public key: {line}", path.display())]
    NotEd25519 {
        /// The key file.
        path: PathBuf,
        /// The line.
        line: String,
    },
    /// An OpenSSH key list without any key.
    #[error("{}: no public keys found", path.display())]
    NoPublicKeys {
        /// The key file.
        path: PathBuf,
    },
    /// The file holds no Ed25519 secret key in any supported form.
    #[error("{}: not an Ed25519 secret key", path.display())]
    NotASecretKey {
        /// The key file.
        path: PathBuf,
    },
    /// Key generation refuses to overwrite an existing file.
    #[error("{} already exists; refusing to overwrite a key", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
