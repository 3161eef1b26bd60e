//! `wasmig status`: every migration's state for a database, optionally
//! with a rehearsal of the pending ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use wasmig::{MigrationState, Migrator, Options, StatusRow, StepOutcome, Verdict};

use crate::exit::Pending;
use crate::output::{color_enabled, paint, print_json, verdicts, warn_unsigned};

/// `status --json`.
#[derive(Serialize)]
struct StatusJson<'a> {
    database: &'a Path,
    exists: bool,
    migrations: Vec<RowJson<'a>>,
    /// The schema compared with the ledger's last attestation.
    schema: &'a wasmig::SchemaCheck,
}

/// One migration: the library's status row, with what a rehearsal found
/// and what the trust policy says about its file.
#[derive(Serialize)]
struct RowJson<'a> {
    id: i64,
    name: &'a str,
    /// The row's state, or `failed` when the rehearsal failed it.
    state: &'static str,
    applied_at: Option<&'a str>,
    file: Option<&'a PathBuf>,
    digest: Option<&'a str>,
    recorded_digest: Option<&'a str>,
    /// The file exports `down` (`wasmig down` can revert it); `null`
    /// without a file.
    reversible: Option<bool>,
    /// Why the rehearsal failed it (only then present).
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'a str>,
    /// Signed by trusted keys; `null` when there is no file or it is not trusted.
    signed: Option<bool>,
    /// The trusted signers; `null` when there is no file.
    signers: Option<&'a [String]>,
    /// Why the file is not trusted, if it is not.
    untrusted: Option<&'a str>,
}

pub fn run(
    db: &Path,
    dir: &Path,
    options: Options,
    rehearse: bool,
    json: bool,
    exit_code: bool,
) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, options)?;
    let exists = db.exists();
    let conn = super::open_read_only(db)?;
    let rows = migrator.status(&conn)?;
    let schema = wasmig::check_schema(&conn)?;
    // id -> why it would fail, from a rehearsal on a copy.
    let failures: HashMap<i64, String> = if rehearse {
        match migrator.rehearse(db) {
            Ok(r) => r
                .steps
                .into_iter()
                .filter_map(|st| match st.outcome {
                    StepOutcome::Failed(why) => Some((st.id, why)),
                    _ => None,
                })
                .collect(),
            Err(e) => rows
                .iter()
                .filter(|r| r.state == MigrationState::Pending)
                .map(|r| (r.id, e.to_string()))
                .collect(),
        }
    } else {
        Default::default()
    };
    let label = |r: &StatusRow| if failures.contains_key(&r.id) { "failed" } else { r.state.label() };
    let verdicts = verdicts(&migrator);
    let signed_by = |id: i64| verdicts.get(&id);
    if json {
        let migrations = rows
            .iter()
            .map(|r| {
                const NONE: &[String] = &[];
                let (signed, signers, untrusted) = match signed_by(r.id) {
                    Some(Ok(Verdict::Trusted(ids))) => (Some(true), Some(ids.as_slice()), None),
                    Some(Ok(_)) => (Some(false), Some(NONE), None),
                    Some(Err(e)) => (None, Some(NONE), Some(e.as_str())),
                    None => (None, None, None),
                };
                RowJson {
                    id: r.id,
                    name: &r.name,
                    state: label(r),
                    applied_at: r.applied_at.as_deref(),
                    file: r.file.as_ref(),
                    digest: r.digest.as_deref(),
                    recorded_digest: r.recorded_digest.as_deref(),
                    reversible: r.reversible,
                    failure: failures.get(&r.id).map(String::as_str),
                    signed,
                    signers,
                    untrusted,
                }
            })
            .collect();
        print_json(&StatusJson { database: db, exists, migrations, schema: &schema });
        return pending_gate(&rows, exit_code);
    }
    warn_unsigned(&migrator);
    if !exists {
        println!("{} does not exist yet: every migration is pending", db.display());
    }
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let color = color_enabled(std::io::stdout());
    println!("{:<6} {:<name_w$} {:<25} {:<21} {:<4} SIGNED BY", "ID", "NAME", "STATE", "APPLIED AT", "DOWN");
    for r in &rows {
        let signed = match signed_by(r.id) {
            Some(Ok(Verdict::Trusted(ids))) => ids.join(","),
            Some(Ok(_)) => paint("UNSIGNED", "1;31", color),
            Some(Err(_)) => paint("NOT TRUSTED", "1;31", color),
            None => "-".to_owned(),
        };
        // Pad before painting so escape codes do not upset the columns.
        let state = format!("{:<25}", label(r));
        let state = match r.state {
            _ if failures.contains_key(&r.id) => paint(&state, "1;31", color),
            MigrationState::Applied => paint(&state, "32", color),
            MigrationState::Pending => paint(&state, "33", color),
            MigrationState::AppliedButMissingFile | MigrationState::Drifted => paint(&state, "1;31", color),
        };
        let down = match r.reversible {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        println!(
            "{:<6} {:<name_w$} {state} {:<21} {down:<4} {signed}",
            format!("{:04}", r.id),
            r.name,
            r.applied_at.as_deref().unwrap_or("-")
        );
    }
    match (&schema.state, schema.after_id) {
        (wasmig::SchemaState::Unchanged, Some(id)) => {
            println!("schema: as recorded after migration {id:04} (sha256 {})", &schema.current_sha256[..16])
        }
        (wasmig::SchemaState::Changed, id) => println!(
            "schema: {} since migration {:04}:\n  {}",
            paint("CHANGED OUTSIDE WASMIG", "1;31", color),
            id.unwrap_or_default(),
            schema.changes.join("\n  ")
        ),
        _ => println!("schema: not attested (no migration recorded a schema digest yet)"),
    }
    let mut failed: Vec<(&i64, &String)> = failures.iter().collect();
    failed.sort();
    for (id, why) in failed {
        println!("{id:04} would fail: {}", why.lines().next().unwrap_or_default());
    }
    pending_gate(&rows, exit_code)
}

/// With `--exit-code`, pending migrations end the command with exit code 5.
fn pending_gate(rows: &[StatusRow], exit_code: bool) -> Result<()> {
    let pending = rows.iter().filter(|r| r.state == MigrationState::Pending).count();
    if exit_code && pending > 0 {
        return Err(Pending(pending).into());
    }
    Ok(())
}
