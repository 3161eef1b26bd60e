//! Every subcommand and flag, as clap parses them, and how the shared flag
//! groups become library options.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use wasmig::{Limits, TrustPolicy};

use crate::exit::Refused;

/// SQLite schema migrations shipped as signed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasmig", version, about, long_about = None)]
#[command(after_help = "Exit codes: 0 success; 1 a migration failed and was rolled back; \
2 usage error; 3 input refused before anything ran (bad, duplicate, drifted or out-of-order \
files); 4 database or environment error (cannot open, locked, I/O).")]
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
        /// paths) to migrate a fleet of databases in parallel.
        #[arg(long, required = true)]
        db: Vec<String>,
        /// Databases migrated at once in a fleet (default: number of CPUs).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Directory of migration plugin files (`<id>_<name>.wasm`).
        dir: PathBuf,
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
        /// Apply every pending migration in one transaction: all of them or
        /// none (refused if one needs foreign keys off).
        #[arg(long)]
        single_transaction: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Refuse unless DIR's signed release index (wasmig-release.json) is
        /// trusted, lists exactly the files present, and is not older than a
        /// release the database records.
        #[arg(long)]
        require_release: bool,
    },
    /// Show every migration's state for the database: applied, pending, missing file, drifted.
    Status {
        /// The SQLite database file (opened read-only).
        #[arg(long)]
        db: PathBuf,
        /// Directory of migration plugin files.
        dir: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// Also rehearse the pending migrations on a copy and mark those that
        /// would fail as `failed` (the database is only read).
        #[arg(long)]
        rehearse: bool,
        /// Print the table as JSON.
        #[arg(long)]
        json: bool,
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
        db: PathBuf,
        /// Directory of migration plugin files.
        dir: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
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
    },
    /// Convert another tool's migration directory (up migrations) into signed plugins.
    Import {
        /// The tool's migration directory.
        dir: PathBuf,
        /// Its layout: diesel, sqlx, refinery, goose or dbmate.
        #[arg(long, value_name = "TOOL")]
        from: String,
        /// Secret key to sign with.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Directory to write the plugins into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check every plugin file in DIR against the trust policy; print id, name, signers, verdict.
    Verify {
        /// Directory of migration plugin files.
        dir: PathBuf,
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
        db: PathBuf,
        /// The migration whose file changed.
        #[arg(long)]
        id: i64,
        /// Why the change is safe; stored in the audit table.
        #[arg(long)]
        reason: String,
        /// Directory of migration plugin files.
        dir: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
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
    },
    /// Write DIR/wasmig-release.json, the signed index of every migration in
    /// DIR (id, name, digest) with a release number; run again with another
    /// key to add its signature (k of n).
    Release {
        /// Directory of migration plugin files.
        dir: PathBuf,
        /// Secret key to sign the index with.
        #[arg(long)]
        key: PathBuf,
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
    /// Each file needs signatures by at least this many distinct trusted keys.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub min_signers: usize,
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
    /// Secret key to sign with (wasmig/wasmsign2 raw, PEM, DER or OpenSSH Ed25519).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Output file (named `<id>_<name>.wasm`), or a directory to write it into.
    #[arg(long)]
    pub out: PathBuf,
}

impl PackArgs {
    pub fn manifest(&self) -> wasmig::Manifest {
        let mut m = wasmig::Manifest::new(self.id, self.name.clone());
        if self.foreign_keys_off {
            m.capabilities.push(wasmig::CAP_FOREIGN_KEYS_OFF.to_owned());
        }
        m
    }
}

/// Sandbox limits for each migration (defaults are safe for real migrations).
#[derive(Debug, Args)]
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
}

impl TrustArgs {
    /// The trust policy these flags describe.
    pub fn policy(&self) -> Result<TrustPolicy> {
        let mut p = TrustPolicy::from_key_files(&self.keys).map_err(Refused::of)?;
        p.min_signers = self.min_signers;
        p.allow_unsigned = self.allow_unsigned;
        if self.min_signers > p.keys.len() && !p.keys.is_empty() {
            bail!(Refused(format!(
                "--min-signers {} but only {} trusted key(s) given",
                self.min_signers,
                p.keys.len()
            )));
        }
        Ok(p)
    }
}

impl LimitArgs {
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
        Ok(l)
    }
}
