//! The `wasmig` command line: parses arguments and calls the library.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// SQLite schema migrations shipped as signed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasmig", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success; 1 a migration failed and was rolled back; \
2 usage error; 3 input refused before anything ran (bad, duplicate, drifted or out-of-order \
files); 4 database or environment error (cannot open, locked, I/O)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations from DIR to the database, each in its own transaction.
    Apply {
        /// The SQLite database file (created if missing).
        #[arg(long)]
        db: PathBuf,
        /// Directory of migration plugin files (`<id>_<name>.wasm`).
        dir: PathBuf,
        /// Apply a pending migration whose id is below the highest applied id.
        #[arg(long)]
        allow_out_of_order: bool,
        /// Seconds to wait for another writer before giving up.
        #[arg(long, default_value_t = 30)]
        busy_timeout: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show every migration's state for the database: applied, pending, missing file, drifted.
    Status {
        /// The SQLite database file (opened read-only).
        #[arg(long)]
        db: PathBuf,
        /// Directory of migration plugin files.
        dir: PathBuf,
        /// Print the table as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Package a component as a migration plugin: write its manifest (id, name, world).
    Pack {
        /// The component built from a guest crate.
        component: PathBuf,
        /// Migration id (positive; migrations run in ascending id order).
        #[arg(long)]
        id: i64,
        /// Migration name: letters, digits, '_' and '-'.
        #[arg(long)]
        name: String,
        /// Output file, or a directory to write `<id>_<name>.wasm` into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Show a plugin's manifest, imports, exports and digest.
    Inspect {
        /// The plugin file.
        file: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(commands::exit_code(&e))
        }
    }
}
