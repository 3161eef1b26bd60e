//! `wasmig down`: revert the applied migrations above an id, newest first,
//! each by its own `down` in its own transaction (or, with `--dry-run`, list
//! what would be reverted after every check).

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use wasmig::{Migrator, Options, Reverted};

use crate::output::{print_json, warn_unsigned};

/// `down --json`.
#[derive(Serialize)]
struct DownJson<'a> {
    database: &'a Path,
    to: i64,
    dry_run: bool,
    /// With `--dry-run`: what would be reverted, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    would_revert: Option<Vec<PlannedJson<'a>>>,
    /// Without: what was reverted, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    reverted: Option<Vec<RevertedJson<'a>>>,
}

#[derive(Serialize)]
struct PlannedJson<'a> {
    id: i64,
    name: &'a str,
    file: &'a Path,
}

#[derive(Serialize)]
struct RevertedJson<'a> {
    id: i64,
    name: &'a str,
    duration_ms: u64,
    calls: u64,
    rows_changed: u64,
    direct_sql: bool,
}

impl<'a> RevertedJson<'a> {
    fn of(r: &'a Reverted) -> Self {
        RevertedJson {
            id: r.id,
            name: &r.name,
            duration_ms: r.duration.as_millis() as u64,
            calls: r.stats.calls,
            rows_changed: r.stats.rows_changed,
            direct_sql: r.stats.direct_sql,
        }
    }
}

/// The `down` command's settings beyond the migrator's options.
pub struct DownArgs<'a> {
    pub db: &'a Path,
    pub to: i64,
    pub dir: &'a Path,
    pub dry_run: bool,
    pub busy_timeout: u64,
    pub json: bool,
}

pub fn run(args: DownArgs<'_>, options: Options) -> Result<()> {
    let DownArgs { db, to, dir, dry_run, busy_timeout, json } = args;
    let migrator = Migrator::from_dir_with(dir, options)?;
    warn_unsigned(&migrator);
    // A database that does not exist has nothing applied: never create it.
    if dry_run || !db.exists() {
        let conn = super::open_read_only(db)?;
        let plan = migrator.revert_plan(&conn, to)?;
        if json {
            let would =
                plan.iter().map(|p| PlannedJson { id: p.id(), name: p.name(), file: &p.path }).collect();
            print_json(&DownJson { database: db, to, dry_run, would_revert: Some(would), reverted: None });
        } else {
            let verb = if dry_run { "would revert" } else { "reverted" };
            for p in &plan {
                println!("{verb} {:04} {} ({})", p.id(), p.name(), p.path.display());
            }
            println!(
                "{} migration(s) above {to} {}",
                plan.len(),
                if dry_run { "would be reverted" } else { "reverted" }
            );
        }
        return Ok(());
    }
    let mut conn = super::open_for_write(db, busy_timeout)?;
    let report = migrator.revert_to_with(&mut conn, to, |r| {
        if !json {
            println!("reverted {:04} {} ({} ms)", r.id, r.name, r.duration.as_millis());
        }
    })?;
    if json {
        let reverted = report.reverted.iter().map(RevertedJson::of).collect();
        print_json(&DownJson { database: db, to, dry_run, would_revert: None, reverted: Some(reverted) });
    } else {
        println!("{} migration(s) above {to} reverted", report.reverted.len());
    }
    Ok(())
}
