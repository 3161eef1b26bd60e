//! `wasmig check`: every refusal `apply` would make, listed, with nothing
//! run and nothing written (the database, if given, is opened read-only).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;
use wasmig::Options;

use crate::exit::Refused;
use crate::output::print_json;

/// `check --json`.
#[derive(Serialize)]
struct CheckJson<'a> {
    directory: &'a Path,
    database: Option<&'a Path>,
    ok: bool,
    files: usize,
    pending: &'a [i64],
    unsigned: &'a [i64],
    problems: Vec<ProblemJson<'a>>,
    /// With `--db`: the schema against the ledger's last attestation.
    schema: Option<&'a wasmig::SchemaCheck>,
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    kind: &'static str,
    file: Option<&'a PathBuf>,
    id: Option<i64>,
    message: String,
}

pub fn run(db: Option<&Path>, dir: &Path, options: Options, json: bool) -> Result<()> {
    let conn = db.map(super::open_read_only).transpose()?;
    let report = wasmig::check_dir(dir, options, conn.as_ref())?;
    if json {
        let problems = report
            .problems
            .iter()
            .map(|p| ProblemJson {
                kind: p.kind(),
                file: p.file.as_ref(),
                id: p.id,
                message: p.error.to_string(),
            })
            .collect();
        print_json(&CheckJson {
            directory: dir,
            database: db,
            ok: report.ok(),
            files: report.files,
            pending: &report.pending,
            unsigned: &report.unsigned,
            problems,
            schema: report.schema.as_ref(),
        });
    } else {
        super::apply::warn_schema_changed(report.schema.as_ref());
        for p in &report.problems {
            println!("{}", p.error);
        }
        if !report.unsigned.is_empty() {
            let ids: Vec<String> = report.unsigned.iter().map(|id| format!("{id:04}")).collect();
            eprintln!(
                "WARNING: UNSIGNED migration(s) accepted because of --allow-unsigned: {}",
                ids.join(", ")
            );
        }
        if report.ok() {
            println!(
                "{}: {} file(s) checked, {} pending, no problems",
                dir.display(),
                report.files,
                report.pending.len()
            );
        }
    }
    if !report.ok() {
        bail!(Refused(format!(
            "{}: {} problem(s) found; nothing was run",
            dir.display(),
            report.problems.len()
        )));
    }
    Ok(())
}
