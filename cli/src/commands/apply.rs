//! `wasmig apply`: one database, a fleet of them, or a dry run.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;
use wasmig::{Applied, FleetOptions, Migrator, Options};

use crate::exit::{self, FleetFailed, Refused};
use crate::output::{print_json, warn_unsigned};

/// One applied migration, as `--json` reports it.
#[derive(Serialize)]
struct AppliedJson<'a> {
    id: i64,
    name: &'a str,
    duration_ms: u64,
    calls: u64,
    rows_changed: u64,
    direct_sql: bool,
    /// Tables and columns it dropped or renamed (declared `destructive`).
    destroyed: Vec<String>,
}

impl<'a> AppliedJson<'a> {
    fn of(m: &'a Applied) -> Self {
        AppliedJson {
            id: m.id,
            name: &m.name,
            duration_ms: m.duration.as_millis() as u64,
            calls: m.stats.calls,
            rows_changed: m.stats.rows_changed,
            direct_sql: m.stats.direct_sql,
            destroyed: m.destroyed.iter().map(ToString::to_string).collect(),
        }
    }
}

/// An error, as `--json` reports it.
#[derive(Serialize)]
pub(super) struct ErrorJson {
    exit_code: u8,
    message: String,
}

impl ErrorJson {
    pub(super) fn of(e: &anyhow::Error) -> Self {
        ErrorJson { exit_code: exit::exit_code(e), message: format!("{e:#}") }
    }
}

/// `apply --json` on one database.
#[derive(Serialize)]
struct ApplyJson<'a> {
    database: &'a Path,
    applied: Vec<AppliedJson<'a>>,
    #[serde(flatten)]
    result: ApplyResultJson<'a>,
}

/// How the run ended: what else the ledger held, or the error (what
/// committed before a failure stays committed, and `applied` says so).
#[derive(Serialize)]
#[serde(untagged)]
enum ApplyResultJson<'a> {
    Done {
        already_applied: &'a [i64],
        applied_concurrently: &'a [i64],
        elapsed_ms: u64,
        /// The schema found compared with the ledger's attestation (null
        /// without a ledger); `state: "changed"` names what changed outside wasmig.
        schema: Option<&'a wasmig::SchemaCheck>,
        /// The header stamp showed nothing changed (`--stamp-user-version`):
        /// the ledger was not read, and `schema` is null.
        header_stamp_matched: bool,
    },
    Failed {
        error: ErrorJson,
    },
}

/// `apply --dry-run --json`.
#[derive(Serialize)]
struct PlanJson<'a> {
    database: &'a Path,
    dry_run: bool,
    would_apply: Vec<PlannedJson<'a>>,
}

#[derive(Serialize)]
struct PlannedJson<'a> {
    id: i64,
    name: &'a str,
    file: &'a Path,
    digest: &'a str,
}

/// `apply --json` on a fleet.
#[derive(Serialize)]
struct FleetJson<'a> {
    databases: Vec<FleetRowJson<'a>>,
    summary: FleetSummaryJson,
}

#[derive(Serialize)]
struct FleetRowJson<'a> {
    database: &'a Path,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    elapsed_ms: u64,
}

#[derive(Serialize)]
struct FleetSummaryJson {
    total: usize,
    applied: usize,
    up_to_date: usize,
    failed: usize,
    elapsed_ms: u64,
}

pub fn run(
    db: &[String],
    jobs: Option<usize>,
    dir: &Path,
    options: Options,
    busy_timeout: u64,
    json: bool,
    dry_run: bool,
) -> Result<()> {
    let dbs = wasmig::expand_databases(db).map_err(Refused::of)?;
    let single = db.len() == 1 && !db[0].starts_with('@') && !db[0].contains(['*', '?']);
    if single {
        return apply_one(&dbs[0], dir, options, busy_timeout, json, dry_run);
    }
    if dry_run {
        bail!(Refused("--dry-run takes a single --db".into()));
    }
    let fleet = FleetOptions {
        parallelism: jobs.unwrap_or(FleetOptions::default().parallelism),
        busy_timeout: Duration::from_secs(busy_timeout),
    };
    apply_fleet(&dbs, dir, options, fleet, json)
}

fn apply_one(
    db: &Path,
    dir: &Path,
    options: Options,
    busy_timeout: u64,
    json: bool,
    dry_run: bool,
) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, options)?;
    warn_unsigned(&migrator);
    if dry_run {
        return plan(db, &migrator, json);
    }
    if let Some(cause) = wasmig::litefs_replica(db) {
        return apply_on_replica(db, &migrator, &cause, busy_timeout, json);
    }
    let mut conn = super::open_for_write(db, busy_timeout)?;
    let mut applied = Vec::new();
    let result = migrator.apply_with(&mut conn, |m| {
        if json {
            applied.push(m.clone());
        } else {
            println!(
                "applied {:04} {} ({} ms, {} calls, {} rows changed)",
                m.id,
                m.name,
                m.duration.as_millis(),
                m.stats.calls,
                m.stats.rows_changed
            );
            for d in &m.destroyed {
                println!("    declared destructive: {d}");
            }
        }
    });
    let applied_json = || applied.iter().map(AppliedJson::of).collect();
    let report = match result {
        Ok(r) => {
            warn_schema_changed(r.schema_check.as_ref());
            r
        }
        Err(e) => {
            let e = anyhow::Error::from(e);
            if json {
                let result = ApplyResultJson::Failed { error: ErrorJson::of(&e) };
                print_json(&ApplyJson { database: db, applied: applied_json(), result });
            }
            return Err(e);
        }
    };
    if let Some(replica) = &report.replica {
        print_replica(db, &report, replica, json);
        return Ok(());
    }
    if json {
        let result = ApplyResultJson::Done {
            already_applied: &report.already_applied,
            applied_concurrently: &report.applied_concurrently,
            elapsed_ms: report.elapsed.as_millis() as u64,
            schema: report.schema_check.as_ref(),
            header_stamp_matched: report.header_stamp_matched,
        };
        print_json(&ApplyJson { database: db, applied: applied_json(), result });
    } else {
        for id in &report.applied_concurrently {
            println!("skipped {id:04} (applied by another process meanwhile)");
        }
        println!(
            "{}: {} applied, {} already applied{}",
            db.display(),
            report.applied.len(),
            report.already_applied.len() + report.applied_concurrently.len(),
            if report.header_stamp_matched { " (header stamp: nothing changed)" } else { "" }
        );
    }
    Ok(())
}

fn apply_fleet(dbs: &[PathBuf], dir: &Path, options: Options, fleet: FleetOptions, json: bool) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, options)?;
    warn_unsigned(&migrator);
    let bar = std::io::stderr().is_terminal();
    let report = migrator.apply_fleet(dbs, fleet, |done, total| {
        if bar {
            let width = 30;
            let filled = done * width / total.max(1);
            eprint!("\r[{}{}] {done}/{total}", "#".repeat(filled), " ".repeat(width - filled));
            if done == total {
                eprintln!();
            }
        }
    });
    if json {
        let databases = report
            .results
            .iter()
            .map(|r| FleetRowJson {
                database: &r.db,
                status: r.label(),
                applied: r.outcome.as_ref().ok().map(|rep| rep.applied.iter().map(|a| a.id).collect()),
                error: r.outcome.as_ref().err().map(|e| e.to_string()),
                elapsed_ms: r.elapsed.as_millis() as u64,
            })
            .collect();
        let summary = FleetSummaryJson {
            total: report.results.len(),
            applied: report.count("applied"),
            up_to_date: report.count("up-to-date"),
            failed: report.count("failed"),
            elapsed_ms: report.elapsed.as_millis() as u64,
        };
        print_json(&FleetJson { databases, summary });
    } else {
        let w = report.results.iter().map(|r| r.db.display().to_string().len()).max().unwrap_or(8);
        println!("{:<w$}  {:<10}  DETAIL", "DATABASE", "RESULT");
        for r in &report.results {
            let detail = match &r.outcome {
                Ok(rep) if rep.applied.is_empty() => "-".to_owned(),
                Ok(rep) => {
                    format!(
                        "applied {}",
                        rep.applied.iter().map(|a| format!("{:04}", a.id)).collect::<Vec<_>>().join(", ")
                    )
                }
                Err(e) => e.to_string().lines().next().unwrap_or_default().to_owned(),
            };
            println!("{:<w$}  {:<10}  {detail}", r.db.display(), r.label());
        }
        println!(
            "{} databases: {} applied, {} up to date, {} failed ({} ms)",
            report.results.len(),
            report.count("applied"),
            report.count("up-to-date"),
            report.count("failed"),
            report.elapsed.as_millis()
        );
    }
    // The worst outcome decides the exit code: a failed migration, then
    // refused input, then a replica not caught up, then an environment error.
    let errors: Vec<&wasmig::Error> =
        report.results.iter().filter_map(|r| r.outcome.as_ref().err()).collect();
    let worst = errors
        .iter()
        .find(|e| e.is_migration_failure())
        .or_else(|| errors.iter().find(|e| e.is_refused_input()))
        .or_else(|| errors.iter().find(|e| e.is_replica_not_caught_up()))
        .or_else(|| errors.first());
    if let Some(e) = worst {
        let msg = format!("{} of {} databases failed; first: {e}", errors.len(), report.results.len());
        return Err(FleetFailed(msg, exit::library_code(e)).into());
    }
    Ok(())
}

/// `apply --dry-run`: every check apply makes (trust, drift, order, missing
/// files, compilation), then the plan; the database is only read.
fn plan(db: &Path, migrator: &Migrator, json: bool) -> Result<()> {
    let conn = super::open_read_only(db)?;
    let pending = migrator.dry_run(&conn)?;
    if json {
        let would_apply = pending
            .iter()
            .map(|p| PlannedJson { id: p.id(), name: p.name(), file: &p.path, digest: &p.digest })
            .collect();
        print_json(&PlanJson { database: db, dry_run: true, would_apply });
    } else {
        for p in &pending {
            println!("would apply {:04} {} ({})", p.id(), p.name(), p.path.display());
        }
        println!("{}: {} pending; nothing was changed (dry run)", db.display(), pending.len());
    }
    Ok(())
}

/// `apply` on a LiteFS replica: opened read-only (never created) and only
/// read; waits when `--replica-wait` says so, telling stderr once.
fn apply_on_replica(
    db: &Path,
    migrator: &Migrator,
    cause: &wasmig::ReadOnlyCause,
    busy_timeout: u64,
    json: bool,
) -> Result<()> {
    let wait = migrator.options().replica_wait;
    let mut told = false;
    let result = migrator.apply_replica(db, Duration::from_secs(busy_timeout), |pending| {
        if let (Some(wait), false) = (wait, told) {
            told = true;
            let ids = pending.iter().map(|id| format!("{id:04}")).collect::<Vec<_>>().join(", ");
            eprintln!(
                "{}: {cause}; waiting up to {:.1} s for migration(s) {ids} to arrive",
                db.display(),
                wait.as_secs_f64()
            );
        }
    });
    match result {
        Ok(report) => {
            if let Some(replica) = &report.replica {
                print_replica(db, &report, replica, json);
            }
            Ok(())
        }
        Err(e) => {
            let e = anyhow::Error::from(e);
            if json {
                let result = ApplyResultJson::Failed { error: ErrorJson::of(&e) };
                print_json(&ApplyJson { database: db, applied: Vec::new(), result });
            }
            Err(e)
        }
    }
}

/// `apply --json` on a replica found caught up.
#[derive(Serialize)]
struct ReplicaApplyJson<'a> {
    database: &'a Path,
    applied: [i64; 0],
    already_applied: &'a [i64],
    elapsed_ms: u64,
    replica: ReplicaJson,
}

/// How a replica was found caught up.
#[derive(Serialize)]
struct ReplicaJson {
    /// `LiteFS replica of NODE` or `read-only (why)`.
    cause: String,
    /// The primary named by LiteFS's `.primary`, when that is the cause.
    primary: Option<String>,
    waited_ms: u64,
    looks: u32,
}

/// The one line (or JSON document) for a replica that was caught up.
fn print_replica(db: &Path, report: &wasmig::Report, replica: &wasmig::ReplicaWait, json: bool) {
    if json {
        let primary = match &replica.cause {
            wasmig::ReadOnlyCause::LiteFs { primary, .. } => Some(primary.clone()),
            _ => None,
        };
        print_json(&ReplicaApplyJson {
            database: db,
            applied: [],
            already_applied: &report.already_applied,
            elapsed_ms: report.elapsed.as_millis() as u64,
            replica: ReplicaJson {
                cause: replica.cause.to_string(),
                primary,
                waited_ms: replica.waited.as_millis() as u64,
                looks: replica.looks,
            },
        });
    } else {
        println!(
            "{}: {}: caught up, {} already applied, nothing written (waited {} ms)",
            db.display(),
            replica.cause,
            report.already_applied.len(),
            replica.waited.as_millis()
        );
    }
}

/// Warns on stderr when the schema was changed outside wasmig (refused
/// instead under `--strict-schema`).
pub(super) fn warn_schema_changed(check: Option<&wasmig::SchemaCheck>) {
    if let Some(c) = check.filter(|c| c.state == wasmig::SchemaState::Changed) {
        eprintln!(
            "warning: the schema was changed outside wasmig since migration {} was applied:\n  {}",
            c.after_id.unwrap_or_default(),
            c.changes.join("\n  ")
        );
    }
}
