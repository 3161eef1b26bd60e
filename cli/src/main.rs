//! The `wasmig` command line: parses arguments, calls the library, prints.
//!
//! `args` holds the clap definitions, `commands/` one module per subcommand,
//! `output` the shared printing helpers and `exit` the documented exit codes.

mod args;
mod commands;
mod config;
mod exit;
mod output;
mod scaffold;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    if cli.verbose > 0 {
        let level = if cli.verbose == 1 { tracing::Level::INFO } else { tracing::Level::DEBUG };
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .with_ansi(output::color_enabled(std::io::stderr()))
            .init();
    }
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<exit::Pending>().is_some() {
                // Not a failure: the answer `status --exit-code` was asked for.
                eprintln!("{e}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(exit::exit_code(&e))
        }
    }
}
