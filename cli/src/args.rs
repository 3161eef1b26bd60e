//! Every subcommand and flag, as clap parses them, and how the shared flag
//! groups become library options.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use wasmig::{Compiler, Limits, TrustPolicy};

use crate::exit::{Refused, Usage};

/// SQLite schema migrations shipped as signed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasmig", version, about, long_about = None)]
#[command(after_help = "Exit codes: 0 success; 1 a migration failed and was rolled back; \
2 usage error; 3 input refused before anything ran (bad, duplicate, drifted or out-of-order \
files); 4 database or environment error (cannot open, locked, I/O); 5 migrations pending \
(`status --exit-code`); 6 replica not caught up (a LiteFS replica or read-only database lacks \
migrations; nothing was written).")]
pub struct Cli {
    /// Log what happens to stderr (-v: each migration; -vv: each host call).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations from DIR to the database, each in its own transaction.
    Apply {
        /// The SQLite database file (created if missing). Repeat it, use a
        /// wildcard in the file name ('tenants/*.db') or '@LIST' (a file of
        /// paths) to migrate a fleet of databases in parallel. Default: the
        /// configured database (WASMIG_DB, `db` in wasmig.toml).
        #[arg(long)]
        db: Vec<String>,
        /// Databases migrated at once in a fleet (default: number of CPUs).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Directory of migration plugin files (`<id>_<name>.wasm`; default:
        /// the configured one).
        dir: Option<PathBuf>,
        /// Apply a pending migration whose id is below the highest applied id.
        #[arg(long)]
        allow_out_of_order: bool,
        /// Go on although the ledger records migrations whose files are gone
        /// (or that a newer release applied).
        #[arg(long)]
        allow_missing: bool,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// Show what would be applied (after every check, compilation included)
        /// without changing the database.
        #[arg(long)]
        dry_run: bool,
        /// Seconds to wait for another writer before giving up.
        #[arg(long, default_value_t = 30)]
        busy_timeout: u64,
        /// Keep compiled components in DIR and reuse them on later runs
        /// (signed files only). DIR must be writable only by this user:
        /// whoever can write there can run code as wasmig.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Compile every component afresh and keep nothing (by default
        /// compiled components are kept in $XDG_CACHE_HOME/wasmig, or
        /// ~/.cache/wasmig).
        #[arg(long, conflicts_with = "cache_dir")]
        no_cache: bool,
        /// Apply every pending migration in one transaction: all of them or
        /// none (refused if one needs foreign keys off).
        #[arg(long)]
        single_transaction: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// On a replica (LiteFS `.primary` beside the database, or a database
        /// that opens read-only), where nothing is written: wait up to SECS,
        /// reading the ledger, for the primary's migrations to arrive, then
        /// exit 0 (or 6 when they do not). Without it a replica that lacks
        /// migrations exits 6 at once.
        #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
        replica_wait: Option<Duration>,
        /// Files that declare `destructive` need signatures by at least K
        /// distinct trusted keys (refused, exit 3, before anything runs).
        /// (Default 0, or `min_signers_destructive` in wasmig.toml.)
        #[arg(long, value_name = "K")]
        min_signers_destructive: Option<usize>,
        /// Refuse (exit 3) when the schema was changed outside wasmig since
        /// the last migration, instead of warning.
        #[arg(long)]
        strict_schema: bool,
        /// Refuse unless DIR's signed release index (wasmig-release.json) is
        /// trusted, lists exactly the files present, and is not older than a
        /// release the database records.
        #[arg(long)]
        require_release: bool,
        /// Keep wasmig's header stamp in PRAGMA user_version, so a start-up
        /// with nothing to do reads only the file header. Only for databases
        /// whose application does not use user_version itself; once set,
        /// the database remembers it.
        #[arg(long)]
        stamp_user_version: bool,
    },
    /// Show every migration's state for the database: applied, pending, missing file, drifted.
    Status {
        /// The SQLite database file (opened read-only).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Directory of migration plugin files.
        dir: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        /// Also rehearse the pending migrations on a copy and mark those that
        /// would fail as `failed` (the database is only read).
        #[arg(long)]
        rehearse: bool,
        /// Print the table as JSON.
        #[arg(long)]
        json: bool,
        /// Exit with code 5 when migrations are pending (0 when none), so CI
        /// can gate on it.
        #[arg(long)]
        exit_code: bool,
        /// Refuse unless DIR's signed release index is trusted, matches the
        /// files and is not older than the database's (as `apply` does).
        #[arg(long)]
        require_release: bool,
    },
    /// Rehearse pending migrations on a copy of the database and report what each
    /// would do; the real database is only read.
    Test {
        /// The SQLite database file (opened read-only; may be missing).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Directory of migration plugin files.
        dir: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Rehearse up, down and up again on the copy, and report every
        /// migration whose down does not restore the schema and row counts
        /// it started from.
        #[arg(long)]
        round_trip: bool,
    },
    /// Scaffold a guest migration crate: component linker config, an `up`
    /// to fill in, and a test that runs it through the harness.
    New {
        /// Crate and migration name: letters, digits, '_' and '-'.
        name: String,
        /// Migration id (default: one past the highest in --dir).
        #[arg(long)]
        id: Option<i64>,
        /// Plugin directory used to find the next free id.
        #[arg(long, default_value = "migrations")]
        dir: PathBuf,
        /// Where to create the crate.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// The wasmig-guest SDK crate (default: the checkout wasmig was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
        /// Write an SQL migration file `<id>_<name>.sql` into --out instead
        /// of a crate (for `wasmig pack-sql`; no Rust toolchain needed).
        #[arg(long)]
        sql: bool,
    },
    /// Create an Ed25519 key pair: secret key at PATH, public key at PATH.pub.
    Keygen {
        /// Where to write the secret key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Package a component as a migration plugin: write its manifest (id, name,
    /// world) and sign it. Given an already signed plugin, adds a signature.
    Pack {
        /// The component built from a guest crate.
        component: PathBuf,
        #[command(flatten)]
        plugin: PackArgs,
    },
    /// Package a plain SQL script as a signed migration component (no Rust
    /// toolchain needed): statements run one by one through `exec`.
    PackSql {
        /// The SQL script.
        script: PathBuf,
        #[command(flatten)]
        plugin: PackArgs,
        /// An SQL script that reverts this one: the component also exports
        /// `down` (world 0.3.0), which `wasmig down` runs.
        #[arg(long, value_name = "DOWN.sql")]
        down: Option<PathBuf>,
    },
    /// Convert another tool's migration directory (up and down scripts) into signed plugins.
    Import {
        /// The tool's migration directory.
        dir: PathBuf,
        /// Its layout: diesel, sqlx, refinery, goose, dbmate or golang-migrate.
        #[arg(long, value_name = "TOOL")]
        from: String,
        /// Pack every migration with the foreign-keys-off capability, for a
        /// history written for a connection without foreign key enforcement
        /// (the Go tools' SQLite drivers default to that).
        #[arg(long)]
        foreign_keys_off: bool,
        #[command(flatten)]
        key: KeyArgs,
        /// Directory to write the plugins into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Declare every imported migration `destructive` (allowed to drop
        /// or rename tables and columns).
        #[arg(long)]
        destructive: bool,
    },
    /// Check every plugin file in DIR against the trust policy; print id, name, signers, verdict.
    Verify {
        /// Directory of migration plugin files.
        dir: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept a known change to an applied migration's file (recorded in schema_migrations_audit).
    AcceptDrift {
        /// The SQLite database file.
        #[arg(long)]
        db: Option<PathBuf>,
        /// The migration whose file changed.
        #[arg(long)]
        id: i64,
        /// Why the change is safe; stored in the audit table.
        #[arg(long)]
        reason: String,
        /// Directory of migration plugin files.
        dir: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Take over a database another tool migrated: record in wasmig's ledger
    /// what that tool's ledger says it applied (checked against the imported
    /// plugins' provenance), in one audited transaction. Nothing runs.
    Adopt {
        /// The SQLite database file the other tool migrated.
        #[arg(long)]
        db: PathBuf,
        /// The tool: diesel, sqlx, refinery, goose, dbmate or golang-migrate.
        #[arg(long, value_name = "TOOL")]
        from: String,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print the mapping from the tool's versions to migrations, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print what was (or would be) recorded as JSON.
        #[arg(long)]
        json: bool,
        /// Directory of the plugins `wasmig import` made from that tool's files.
        dir: PathBuf,
    },
    /// Mark every migration up to ID as applied without running it, on a
    /// database whose ledger records none of them (audited).
    Baseline {
        /// The SQLite database file.
        #[arg(long)]
        db: PathBuf,
        /// The last migration the database already has.
        #[arg(long, value_name = "ID")]
        up_to: i64,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print what was recorded as JSON.
        #[arg(long)]
        json: bool,
        /// Directory of migration plugin files.
        dir: PathBuf,
    },
    /// Show a plugin's manifest, imports, exports, signatures and digest.
    Inspect {
        /// The plugin file.
        file: PathBuf,
        /// Public keys to judge the signatures against (repeatable).
        #[arg(long = "trust", value_name = "KEYS")]
        trust: Vec<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// Print the SQL statements of a `pack-sql` or imported plugin, in
        /// the order they run (refused for compiled code).
        #[arg(long)]
        sql: bool,
    },
    /// Add a signature by KEY to every plugin in DIR (a file KEY already
    /// signed is left as it is).
    Sign {
        /// Directory of migration plugin files.
        dir: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
        /// Sign only files these public keys already vouch for (repeatable):
        /// a rotation co-signs exactly what the old key signed.
        #[arg(long = "trust", value_name = "KEYS")]
        trust: Vec<PathBuf>,
    },
    /// Everything `apply` checks before running anything (files, signatures,
    /// duplicates, worlds, compilation; with --db drift, order and missing
    /// files), one line per problem. Runs and writes nothing. Exit 0 or 3.
    Check {
        /// Also check against this database's ledger (opened read-only,
        /// never created).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Directory of migration plugin files.
        dir: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// Print the problems as JSON.
        #[arg(long)]
        json: bool,
        /// As `apply --allow-out-of-order`: a pending id below the highest
        /// applied one is not a problem.
        #[arg(long)]
        allow_out_of_order: bool,
        /// As `apply --allow-missing`: ledger rows without files are not a problem.
        #[arg(long)]
        allow_missing: bool,
        /// As `apply --strict-schema`: a schema changed outside wasmig is a
        /// problem (otherwise a warning).
        #[arg(long)]
        strict_schema: bool,
        /// As `apply --min-signers-destructive K`.
        #[arg(long, value_name = "K")]
        min_signers_destructive: Option<usize>,
        /// As `apply --require-release`: the signed release index must be
        /// trusted, match the files and not be older than the database's.
        #[arg(long)]
        require_release: bool,
    },
    /// Show the effective configuration (wasmig.toml, WASMIG_* variables,
    /// and these flags over them) and where each value came from.
    Config {
        /// A database flag to show over the configured one.
        #[arg(long)]
        db: Option<PathBuf>,
        /// A migrations directory to show over the configured one.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Trusted key files to show over the configured ones (repeatable).
        #[arg(long = "trust", value_name = "KEYS")]
        trust: Vec<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revert every applied migration with an id above ID, newest first, each
    /// by its own `down` in its own transaction (audited in schema_migrations_audit).
    Down {
        /// The SQLite database file.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Keep migrations up to and including this id (0: revert them all).
        #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(0..))]
        to: i64,
        /// Directory of migration plugin files.
        dir: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// List what would be reverted (after every check) without changing the database.
        #[arg(long)]
        dry_run: bool,
        /// Seconds to wait for another writer before giving up.
        #[arg(long, default_value_t = 30)]
        busy_timeout: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compile the migrations in DIR into the compiled-component cache (at
    /// deploy time), so that `apply` only loads them. Checks each file as
    /// `apply` would; changes no database.
    Prepare {
        /// Only the migrations pending for this database (opened read-only);
        /// default: every file in DIR.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Directory of migration plugin files.
        dir: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        /// The limits `apply` will run with: compiled code is kept per engine
        /// configuration, which the memory and stack limits are part of.
        #[command(flatten)]
        limits: LimitArgs,
        /// The cache directory (default: $XDG_CACHE_HOME/wasmig, or
        /// ~/.cache/wasmig). Must be writable only by this user.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write DIR/wasmig-release.json, the signed index of every migration in
    /// DIR (id, name, digest) with a release number; run again with another
    /// key to add its signature (k of n).
    Release {
        /// Directory of migration plugin files.
        dir: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
        /// Release number (default: the previous index's number + 1, or 1;
        /// unchanged when the files are those the index already lists).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        number: Option<i64>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The trust policy flags shared by every command that loads plugins.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trusted public key file (repeatable): wasmig/wasmsign2 key, PEM, DER, or
    /// OpenSSH Ed25519 keys one per line.
    #[arg(long = "trust", value_name = "KEYS")]
    pub keys: Vec<PathBuf>,
    /// Each file needs signatures by at least this many distinct trusted keys
    /// (default: the configured `min_signers`, else 1).
    #[arg(long, value_name = "K")]
    pub min_signers: Option<usize>,
    /// Accept files with no signature at all (local development only).
    #[arg(long)]
    pub allow_unsigned: bool,
}

/// What a packed plugin says about itself, and where it goes.
#[derive(Debug, Args)]
pub struct PackArgs {
    /// Migration id (positive; migrations run in ascending id order).
    #[arg(long)]
    pub id: i64,
    /// Migration name: letters, digits, '_' and '-'.
    #[arg(long)]
    pub name: String,
    /// The migration needs foreign key enforcement off (table rebuilds): the
    /// host switches it off around the transaction and runs foreign_key_check
    /// before COMMIT.
    #[arg(long)]
    pub foreign_keys_off: bool,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output file (named `<id>_<name>.wasm`), or a directory to write it into.
    #[arg(long)]
    pub out: PathBuf,
    /// The migration drops or renames tables or columns on purpose
    /// (capability `destructive`); without it apply refuses such a change.
    #[arg(long)]
    pub destructive: bool,
}

impl PackArgs {
    pub fn manifest(&self) -> wasmig::Manifest {
        let mut m = wasmig::Manifest::new(self.id, self.name.clone());
        if self.foreign_keys_off {
            m.capabilities.push(wasmig::CAP_FOREIGN_KEYS_OFF.to_owned());
        }
        if self.destructive {
            m.capabilities.push(wasmig::CAP_DESTRUCTIVE.to_owned());
        }
        m
    }
}

/// Sandbox limits for each migration (defaults are safe for real migrations).
/// Also the `[limits]` table of `wasmig.toml`, keyed by the flags' names.
#[derive(Debug, Clone, Default, Args, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitArgs {
    /// WebAssembly fuel per migration (roughly, instructions).
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,
    /// Wall-clock seconds per migration, guest and SQLite together.
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<f64>,
    /// Largest guest linear memory, in MiB.
    #[arg(long, value_name = "MIB")]
    pub max_memory_mib: Option<usize>,
    /// SQLite virtual-machine steps per migration.
    #[arg(long, value_name = "STEPS")]
    pub sqlite_ops: Option<u64>,
    /// Heap SQLite itself may allocate for one migration, in MiB.
    #[arg(long, value_name = "MIB")]
    pub max_sqlite_heap_mib: Option<u64>,
    /// Compile and instantiate `pack-sql` components too, instead of running
    /// their recognised statements directly (same calls, gate and limits).
    #[arg(long)]
    pub no_direct_sql: bool,
    /// Code generator for components: `cranelift` (optimising, the default)
    /// or `winch` (baseline: compiles about four times faster, runs loops
    /// slower, charges no fuel per byte of bulk memory operations). The
    /// same limits stop a migration with the same errors either way.
    #[arg(long, value_name = "NAME", value_parser = parse_compiler)]
    pub compiler: Option<Compiler>,
}

/// `--compiler`: one of [`Compiler::ALL`] by name.
fn parse_compiler(s: &str) -> std::result::Result<Compiler, String> {
    s.parse()
}

impl TrustArgs {
    /// The trust policy these flags describe.
    pub fn policy(&self) -> Result<TrustPolicy> {
        let mut p = TrustPolicy::from_key_files(&self.keys).map_err(Refused::of)?;
        let min_signers = self.min_signers.unwrap_or(1);
        p.min_signers = min_signers;
        p.allow_unsigned = self.allow_unsigned;
        if min_signers > p.keys.len() && !p.keys.is_empty() {
            bail!(Refused(format!(
                "--min-signers {} but only {} trusted key(s) given",
                min_signers,
                p.keys.len()
            )));
        }
        Ok(p)
    }
}

impl LimitArgs {
    /// These limits, with the ones not given taken from `other`.
    pub fn or(self, other: &LimitArgs) -> LimitArgs {
        LimitArgs {
            fuel: self.fuel.or(other.fuel),
            deadline: self.deadline.or(other.deadline),
            max_memory_mib: self.max_memory_mib.or(other.max_memory_mib),
            sqlite_ops: self.sqlite_ops.or(other.sqlite_ops),
            max_sqlite_heap_mib: self.max_sqlite_heap_mib.or(other.max_sqlite_heap_mib),
            no_direct_sql: self.no_direct_sql || other.no_direct_sql,
            compiler: self.compiler.or(other.compiler),
        }
    }

    /// The sandbox limits these flags describe (defaults for the others).
    pub fn limits(&self) -> Result<Limits> {
        let mut l = Limits::default();
        if let Some(f) = self.fuel {
            l.fuel = f;
        }
        if let Some(d) = self.deadline {
            if !(d.is_finite() && d > 0.0) {
                bail!(Refused(format!("--deadline must be a positive number of seconds, got {d}")));
            }
            l.deadline = Duration::from_secs_f64(d);
        }
        if let Some(m) = self.max_memory_mib {
            l.max_memory_bytes = m.saturating_mul(1024 * 1024);
        }
        if let Some(o) = self.sqlite_ops {
            l.sqlite_ops = o;
        }
        if let Some(m) = self.max_sqlite_heap_mib {
            l.max_sqlite_heap_bytes = m.saturating_mul(1024 * 1024);
        }
        l.direct_sql = !self.no_direct_sql;
        if let Some(c) = self.compiler {
            l.compiler = c;
        }
        Ok(l)
    }
}

/// Where a secret signing key comes from: a file, standard input (`--key -`)
/// or an environment variable (`--key-env VAR`), so a pipeline can hand over
/// a key without writing it to disk. Shared by every command that signs.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Secret key to sign with: a file (wasmig/wasmsign2 raw, PEM, DER or
    /// OpenSSH Ed25519), or '-' to read it from standard input.
    #[arg(long, value_name = "PATH", conflicts_with = "key_env")]
    pub key: Option<PathBuf>,
    /// Read the secret key from environment variable VAR (PEM or OpenSSH
    /// text, or any key file's bytes in base64 or hex).
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
}

/// The most a secret key read from standard input may be: real keys are a
/// few hundred bytes.
const MAX_KEY_INPUT: u64 = 64 * 1024;

impl KeyArgs {
    /// The secret key these flags name, if any.
    pub fn secret_key(&self) -> Result<Option<wasmsign2::SecretKey>> {
        if let Some(var) = &self.key_env {
            let value = std::env::var_os(var)
                .ok_or_else(|| Refused(format!("--key-env {var}: the variable is not set")))?;
            let value = value
                .into_string()
                .map_err(|_| Refused(format!("--key-env {var}: the value is not valid UTF-8")))?;
            return decode_secret_key(value.as_bytes(), &format!("--key-env {var}")).map(Some);
        }
        match self.key.as_deref() {
            None => Ok(None),
            Some(p) if p.as_os_str() == "-" => {
                use std::io::Read;
                let mut data = Vec::new();
                std::io::stdin()
                    .take(MAX_KEY_INPUT + 1)
                    .read_to_end(&mut data)
                    .map_err(|e| Refused(format!("--key -: reading standard input: {e}")))?;
                if data.len() as u64 > MAX_KEY_INPUT {
                    bail!(Refused(format!("--key -: more than {MAX_KEY_INPUT} bytes on standard input")));
                }
                decode_secret_key(&data, "--key - (standard input)").map(Some)
            }
            Some(p) => Ok(Some(wasmig::read_secret_key(p).map_err(Refused::of)?)),
        }
    }

    /// Like [`KeyArgs::secret_key`], for commands that cannot do without one.
    pub fn required_secret_key(&self) -> Result<wasmsign2::SecretKey> {
        self.secret_key()?.ok_or_else(|| {
            Usage("a secret key is required: --key PATH, --key - or --key-env VAR".into()).into()
        })
    }
}

/// A secret key from bytes handed over directly: any format a key file may
/// have, or those bytes encoded as base64 or hex text (binary keys cannot
/// travel in an environment variable).
fn decode_secret_key(data: &[u8], source: &str) -> Result<wasmsign2::SecretKey> {
    use ct_codecs::Decoder;
    if let Ok(sk) = wasmsign2::SecretKey::from_any(data) {
        return Ok(sk);
    }
    let text = std::str::from_utf8(data).unwrap_or_default().trim();
    let decoded = ct_codecs::Hex::decode_to_vec(text, None)
        .or_else(|_| ct_codecs::Base64::decode_to_vec(text, Some(b"\r\n ")))
        .ok();
    decoded.and_then(|bytes| wasmsign2::SecretKey::from_any(&bytes).ok()).ok_or_else(|| {
        Refused(format!(
            "{source}: not a secret key (raw, PEM, DER or OpenSSH Ed25519, or such a key in base64 or hex)"
        ))
        .into()
    })
}

/// A number of seconds (fractions allowed), as `--replica-wait` takes it.
fn parse_seconds(s: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a number of seconds (0 or more)"))
}
