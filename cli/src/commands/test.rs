//! `wasmig test`: rehearse the pending migrations on a copy of the database.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use wasmig::{Migrator, Options, Rehearsal, StepOutcome};

use crate::exit::RehearsalFailed;
use crate::output::{print_json, warn_unsigned};

/// `test --json`.
#[derive(Serialize)]
struct RehearsalJson<'a> {
    database: &'a Path,
    rehearsal: &'a Rehearsal,
    ok: bool,
}

pub fn run(db: &Path, dir: &Path, options: Options, json: bool) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, options)?;
    warn_unsigned(&migrator);
    let r = migrator.rehearse(db)?;
    if json {
        print_json(&RehearsalJson { database: db, rehearsal: &r, ok: r.all_ok() });
    } else {
        println!("rehearsing on a copy of {} (the real file is only read)", db.display());
        for s in &r.steps {
            let verdict = match &s.outcome {
                StepOutcome::Ok => "ok".to_owned(),
                StepOutcome::Failed(why) => format!("FAILED: {why}"),
                StepOutcome::NotReached => "not reached (an earlier migration failed)".to_owned(),
            };
            println!(
                "{:04} {} — {verdict} ({} ms, {} rows changed, write transaction held {} ms)",
                s.id, s.name, s.duration_ms, s.rows_changed, s.write_ms
            );
            for line in &s.schema_diff {
                println!("    {line}");
            }
            if let Some(b) = &s.blast_radius {
                print_blast_radius(b);
            }
        }
        println!("{} pending, {} already applied", r.steps.len(), r.already_applied.len());
    }
    if !r.all_ok() {
        return Err(RehearsalFailed.into());
    }
    Ok(())
}

/// The blast radius lines of one applied step, indented under it.
fn print_blast_radius(b: &wasmig::BlastRadius) {
    for (label, list) in [("created", &b.created), ("dropped", &b.dropped), ("changed", &b.changed)] {
        if !list.is_empty() {
            println!("    {label}: {}", list.join(", "));
        }
    }
    // Every table is in --json; here only those whose rows moved.
    let count = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
    for t in &b.tables {
        if t.rows_before == t.rows_after && t.inserted + t.updated + t.deleted == 0 {
            continue;
        }
        println!(
            "    rows {}: {} -> {} ({} inserted, {} updated, {} deleted)",
            t.table,
            count(t.rows_before),
            count(t.rows_after),
            t.inserted,
            t.updated,
            t.deleted
        );
    }
    println!("    {}", b.verdict);
}
