//! `wasmig adopt` and `wasmig baseline`: take over a database another tool
//! (or a person) migrated, recording what it already has without running it.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use wasmig::{Adoption, ImportTool, Migrator, Options, TrustPolicy};

use crate::exit::Refused;
use crate::output::print_json;

/// `adopt --json` and `baseline --json`.
#[derive(Serialize)]
struct AdoptionJson<'a> {
    database: &'a Path,
    /// True for `adopt --dry-run`: nothing was written.
    dry_run: bool,
    #[serde(flatten)]
    adoption: &'a Adoption,
}

pub fn adopt(db: &Path, tool: &str, dir: &Path, trust: TrustPolicy, dry_run: bool, json: bool) -> Result<()> {
    let tool: ImportTool = tool.parse().map_err(Refused::of)?;
    let migrator = Migrator::from_dir_with(dir, Options { trust, ..Options::default() })?;
    let conn = open_existing(db)?;
    let plan = if dry_run { migrator.plan_adopt(&conn, tool)? } else { migrator.adopt(&conn, tool)? };
    report(db, &plan, dry_run, json, &format!("from {tool}'s ledger"));
    Ok(())
}

pub fn baseline(db: &Path, up_to: i64, dir: &Path, trust: TrustPolicy, json: bool) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, Options { trust, ..Options::default() })?;
    let conn = open_existing(db)?;
    let plan = migrator.baseline(&conn, up_to)?;
    report(db, &plan, false, json, &format!("up to {up_to}"));
    Ok(())
}

fn report(db: &Path, plan: &Adoption, dry_run: bool, json: bool, what: &str) {
    if json {
        print_json(&AdoptionJson { database: db, dry_run, adoption: plan });
    } else {
        print(plan, dry_run, what);
    }
}

/// Adoption is about a database that exists: a missing file is refused, not created.
fn open_existing(db: &Path) -> Result<rusqlite::Connection> {
    if !db.is_file() {
        anyhow::bail!(Refused(format!("{}: no such database; there is nothing to adopt", db.display())));
    }
    super::open_for_write(db, 30)
}

fn print(plan: &Adoption, dry_run: bool, what: &str) {
    for r in &plan.recorded {
        let from = match (&r.version, &r.source_file) {
            (Some(v), Some(f)) => format!("version {v} ({f}) -> "),
            _ => String::new(),
        };
        let checked = r.checksum.as_deref().map(|c| format!(", checksum {c} matches")).unwrap_or_default();
        println!("{from}{:04} {} (applied {}{checked})", r.id, r.name, r.applied_at);
    }
    if let (Some(from), Some(to)) = (&plan.table, &plan.renamed_to) {
        println!(
            "{from} {} {to} (wasmig's ledger takes its name)",
            if dry_run { "would be renamed to" } else { "renamed to" }
        );
    }
    let verb = if dry_run { "would record" } else { "recorded" };
    let pending = match plan.pending.as_slice() {
        [] => "nothing pending".to_owned(),
        ids => format!(
            "{} pending for apply: {}",
            ids.len(),
            ids.iter().map(|i| format!("{i:04}")).collect::<Vec<_>>().join(", ")
        ),
    };
    let audited = if dry_run { "dry run: nothing written" } else { "audited in schema_migrations_audit" };
    println!("{verb} {} migration(s) {what} as applied; {pending} ({audited})", plan.recorded.len());
}
