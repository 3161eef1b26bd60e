//! Taking over a database another tool migrated (`adopt`), or one migrated
//! by hand (`baseline`), without running anything again.
//!
//! Adoption reads the other tool's ledger (`foreign_ledger`), matches each
//! applied version to the plugin imported from it (by the provenance in its
//! signed manifest), checks the checksum the tool keeps where it keeps one
//! (sqlx, refinery), and records those migrations in wasmig's ledger, with
//! an audit row, in one transaction. Every check comes first and only reads:
//! a refused database is left byte for byte as it was.
//!
//! The other tool's ledger is kept with its rows. dbmate and golang-migrate
//! call theirs `schema_migrations`, which is wasmig's ledger's name, so
//! adopting from them renames it (`dbmate_schema_migrations`,
//! `golang_migrate_schema_migrations`), rows, columns and index unchanged.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::foreign_ledger::{self, Applied};
use super::migrator::Migrator;
use crate::error::{Error, Result};
use crate::ledger::{self, LedgerRow};
use crate::plugin::Plugin;
use crate::sql::import::Tool;

/// One migration an adoption or a baseline records as applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    /// Migration id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The other tool's version (adoption only).
    pub version: Option<String>,
    /// The file the plugin was imported from (adoption only).
    pub source_file: Option<String>,
    /// The other tool's checksum, when it keeps one; it matched the plugin.
    pub checksum: Option<String>,
    /// When it was applied: the other tool's time when it kept one, else now.
    pub applied_at: String,
}

/// What [`Migrator::adopt`] and [`Migrator::baseline`] record (or, planned,
/// would record).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Adoption {
    /// The tool adopted from; `None` for a baseline.
    pub tool: Option<String>,
    /// The other tool's ledger table, for an adoption.
    pub table: Option<String>,
    /// Its new name, when it had to move out of wasmig's way.
    pub renamed_to: Option<String>,
    /// The migrations recorded, in id order.
    pub recorded: Vec<Recorded>,
    /// Plugins left pending: `apply` runs them.
    pub pending: Vec<i64>,
}

impl Migrator {
    /// Everything [`Migrator::adopt`] checks, without writing: what it would
    /// record.
    pub fn plan_adopt(&self, conn: &Connection, tool: Tool) -> Result<Adoption> {
        // While dbmate's or golang-migrate's table holds the name, wasmig's
        // ledger cannot exist; the audit table still tells.
        let theirs = matches!(tool, Tool::Dbmate | Tool::GolangMigrate)
            && table_exists(conn, foreign_ledger::table(tool))?;
        refuse_if_adopted(conn, !theirs)?;
        let applied = foreign_ledger::read(conn, tool)?;
        let by_version: BTreeMap<&str, &Plugin> = self
            .plugins()
            .iter()
            .filter_map(|p| {
                let prov = p.manifest.provenance.as_ref()?;
                (prov.tool == tool.label()).then_some((prov.version.as_str(), p))
            })
            .collect();
        let table = foreign_ledger::table(tool);
        let no_plugin = |v: &str| {
            Error::Adoption(format!(
                "{tool}'s ledger ({table}) records version {v} as applied, but no plugin here was \
                 imported from {tool} version {v}; import the directory that migrated this database"
            ))
        };
        let mut recorded = Vec::new();
        match applied {
            Applied::Rows(rows) => {
                for row in rows {
                    let p = by_version.get(row.version.as_str()).ok_or_else(|| no_plugin(&row.version))?;
                    let prov = p.manifest.provenance.as_ref().expect("filtered on provenance");
                    if let Some(kept) = &row.checksum
                        && *kept != prov.digest
                    {
                        return Err(Error::Adoption(format!(
                            "{tool} applied version {} with checksum {kept}, but {} was imported from a \
                             file with checksum {} ({}): the file changed after {tool} ran it",
                            row.version,
                            p.path.display(),
                            prov.digest,
                            prov.file
                        )));
                    }
                    recorded.push(self.recorded(p, row.checksum, row.applied_at)?);
                }
            }
            Applied::UpTo(None) => {}
            Applied::UpTo(Some(current)) => {
                let current_s = current.to_string();
                by_version.get(current_s.as_str()).ok_or_else(|| no_plugin(&current_s))?;
                for (v, p) in &by_version {
                    if v.parse::<u64>().is_ok_and(|n| n <= current) {
                        recorded.push(self.recorded(p, None, None)?);
                    }
                }
            }
        }
        recorded.sort_by_key(|r| r.id);
        let renamed_to = matches!(tool, Tool::Dbmate | Tool::GolangMigrate)
            .then(|| format!("{}_schema_migrations", tool.label().replace('-', "_")));
        if let Some(to) = &renamed_to
            && table_exists(conn, to)?
        {
            return Err(Error::Adoption(format!(
                "{tool}'s ledger must move out of wasmig's way to {to}, but a table {to} exists"
            )));
        }
        Ok(self.adoption(Some(tool), recorded, renamed_to))
    }

    /// Records in wasmig's ledger every migration `tool`'s ledger says it
    /// applied, in one transaction with an audit row (action `adopt`), after
    /// the checks of [`Migrator::plan_adopt`]. Refused with
    /// [`Error::Adoption`] (nothing written): a checksum that does not match
    /// the plugin's provenance, a failed sqlx row, a dirty golang-migrate
    /// database, an applied version with no plugin, a database already
    /// adopted or with migrations in wasmig's ledger, or an untrusted plugin.
    pub fn adopt(&self, conn: &Connection, tool: Tool) -> Result<Adoption> {
        self.plan_adopt(conn, tool)?;
        let mut done = None;
        ledger::in_immediate_tx(conn, || {
            // Planned again under the write lock: another process may have
            // adopted or migrated meanwhile.
            let plan = self.plan_adopt(conn, tool)?;
            if let (Some(from), Some(to)) = (&plan.table, &plan.renamed_to) {
                conn.execute_batch(&format!("ALTER TABLE \"{from}\" RENAME TO \"{to}\""))
                    .map_err(Error::sqlite(format!("renaming {tool}'s {from} to {to}")))?;
            }
            let ids = id_range(&plan.recorded);
            let reason = format!(
                "adopted {} migration(s) ({ids}) from {tool}'s ledger {}{}",
                plan.recorded.len(),
                foreign_ledger::table(tool),
                plan.renamed_to.as_ref().map(|t| format!(", renamed to {t}")).unwrap_or_default()
            );
            self.record_all(conn, &plan, "adopt", &reason)?;
            done = Some(plan);
            Ok(())
        })?;
        done.ok_or_else(|| Error::Internal("adoption left no plan".into()))
    }

    /// Everything [`Migrator::baseline`] checks, without writing.
    pub fn plan_baseline(&self, conn: &Connection, up_to: i64) -> Result<Adoption> {
        refuse_if_adopted(conn, true)?;
        if !self.plugins().iter().any(|p| p.id() == up_to) {
            return Err(Error::Adoption(format!(
                "no plugin has id {up_to}; --up-to must name a migration here"
            )));
        }
        let ledger = ledger::read_all(conn)?;
        let recorded: Vec<i64> = self
            .plugins()
            .iter()
            .map(Plugin::id)
            .filter(|id| *id <= up_to && ledger.contains_key(id))
            .collect();
        if !recorded.is_empty() {
            return Err(Error::Adoption(format!(
                "migration(s) {} up to {up_to} are already recorded in schema_migrations; a baseline \
                 is for a database that has none of them",
                recorded.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
        let recorded = self
            .plugins()
            .iter()
            .filter(|p| p.id() <= up_to)
            .map(|p| self.recorded(p, None, None))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.adoption(None, recorded, None))
    }

    /// Records every migration up to `up_to` as applied, in one transaction
    /// with an audit row (action `baseline`), on a database whose ledger
    /// records none of them. Nothing runs.
    pub fn baseline(&self, conn: &Connection, up_to: i64) -> Result<Adoption> {
        self.plan_baseline(conn, up_to)?;
        let mut done = None;
        ledger::in_immediate_tx(conn, || {
            let plan = self.plan_baseline(conn, up_to)?;
            let reason = format!(
                "marked {} migration(s) ({}) as applied without running them",
                plan.recorded.len(),
                id_range(&plan.recorded)
            );
            self.record_all(conn, &plan, "baseline", &reason)?;
            done = Some(plan);
            Ok(())
        })?;
        done.ok_or_else(|| Error::Internal("baseline left no plan".into()))
    }

    fn recorded(&self, p: &Plugin, checksum: Option<String>, applied_at: Option<String>) -> Result<Recorded> {
        // Recorded migrations never run, but their digests stand in the
        // ledger from now on: only trusted files may put them there.
        self.verdict_of(p)?;
        let prov = p.manifest.provenance.as_ref();
        Ok(Recorded {
            id: p.id(),
            name: p.name().to_owned(),
            version: prov.map(|v| v.version.clone()),
            source_file: prov.map(|v| v.file.clone()),
            checksum,
            applied_at: applied_at.filter(|t| !t.is_empty()).unwrap_or_else(ledger::now_rfc3339),
        })
    }

    fn adoption(&self, tool: Option<Tool>, recorded: Vec<Recorded>, renamed_to: Option<String>) -> Adoption {
        let pending = self
            .plugins()
            .iter()
            .map(Plugin::id)
            .filter(|id| !recorded.iter().any(|r| r.id == *id))
            .collect();
        Adoption {
            tool: tool.map(|t| t.label().to_owned()),
            table: tool.map(|t| foreign_ledger::table(t).to_owned()),
            renamed_to,
            recorded,
            pending,
        }
    }

    fn record_all(&self, conn: &Connection, plan: &Adoption, action: &str, reason: &str) -> Result<()> {
        ledger::ensure_in_tx(conn)?;
        // The schema as the other tool left it is what these migrations
        // produced: attest it on the newest row, so a later change made
        // outside wasmig is reported like after any apply.
        let attestation = super::attest::attest(conn)?;
        let newest = plan.recorded.last().map(|r| r.id);
        for r in &plan.recorded {
            let attested = (Some(r.id) == newest).then_some(&attestation);
            let p = self.plugins().iter().find(|p| p.id() == r.id).expect("planned from these plugins");
            let verdict = self.verdict_of(p)?;
            ledger::record(
                conn,
                &LedgerRow {
                    id: r.id,
                    name: r.name.clone(),
                    applied_at: r.applied_at.clone(),
                    checksum: Some(p.digest.clone()),
                    duration_ms: None,
                    signers: Some(verdict.signers().join(",")).filter(|s| !s.is_empty()),
                    world: Some(p.manifest.world.clone()),
                    host_version: Some(crate::VERSION.to_owned()),
                    schema_sha256: attested.map(|a| a.sha256.clone()),
                    release: None,
                },
                attested.map(|a| a.objects.as_str()),
            )?;
        }
        let last = plan.recorded.last().map_or(0, |r| r.id);
        ledger::audit(conn, last, action, None, None, reason)
    }
}

/// A database adopted or baselined once, or already migrated by wasmig, is
/// not adopted again: its ledger is wasmig's now.
fn refuse_if_adopted(conn: &Connection, read_ledger: bool) -> Result<()> {
    if let Some(done) = ledger::audit_actions(conn)?.into_iter().find(|a| a == "adopt" || a == "baseline") {
        return Err(Error::Adoption(format!(
            "the database was already taken over ({done} in schema_migrations_audit); use apply"
        )));
    }
    let rows = if read_ledger { ledger::read_all(conn)? } else { BTreeMap::new() };
    if !rows.is_empty() {
        return Err(Error::Adoption(format!(
            "schema_migrations already records {} migration(s); wasmig already migrates this database",
            rows.len()
        )));
    }
    Ok(())
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row("SELECT 1 FROM sqlite_schema WHERE name = ?1", [name], |_| Ok(()))
        .optional()
        .map_err(Error::sqlite("reading sqlite_schema"))?
        .is_some())
}

fn id_range(recorded: &[Recorded]) -> String {
    match (recorded.first(), recorded.last()) {
        (Some(a), Some(b)) if a.id == b.id => format!("id {}", a.id),
        (Some(a), Some(b)) => format!("ids {} to {}", a.id, b.id),
        _ => "none".to_owned(),
    }
}
