//! Printing shared by the commands: colours, JSON, and the trust verdicts
//! shown beside each migration.

use std::collections::HashMap;

use wasmig::{Migrator, Verdict};

/// Colours only on a terminal, and never when NO_COLOR is set.
pub fn color_enabled(stream: impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in ANSI colour `code` when `on`.
pub fn paint(text: &str, code: &str, on: bool) -> String {
    if on { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
}

/// Prints `value` as one line of JSON.
pub fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string(value).expect("reports serialise"));
}

/// Every plugin's verdict by id (checked now where loading deferred it).
pub fn verdicts(migrator: &Migrator) -> HashMap<i64, Result<Verdict, String>> {
    migrator.plugins().iter().map(|p| (p.id(), migrator.verdict_of(p).map_err(|e| e.to_string()))).collect()
}

/// Warns on stderr about every unsigned migration `--allow-unsigned` let in.
/// Telling them apart needs no signature checked (a start-up with nothing
/// pending verifies none), only whether a file carries one.
pub fn warn_unsigned(migrator: &Migrator) {
    if !migrator.options().trust.allow_unsigned {
        return;
    }
    let unsigned: Vec<String> =
        migrator.plugins().iter().filter(|p| p.is_unsigned()).map(|p| format!("{:04}", p.id())).collect();
    if !unsigned.is_empty() {
        eprintln!(
            "WARNING: {} UNSIGNED migration(s) accepted because of --allow-unsigned: {}",
            unsigned.len(),
            unsigned.join(", ")
        );
    }
}
