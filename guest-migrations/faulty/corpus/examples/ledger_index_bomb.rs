//! Faulty on purpose (ledger guard). Leaves an expression index on the
//! ledger that fails for every row after its own, so the database could never
//! be migrated again. The gate allows creating it (the guest writes no ledger
//! row); the ledger guard must refuse it before COMMIT.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    let rows = query("SELECT coalesce(max(id), 0) FROM schema_migrations", &[])?;
    let highest: i64 = rows.iter().next().map(|r| r.get(0)).transpose()?.unwrap_or(0);
    // This migration's own ledger row (the next id) still goes in; every
    // later one hits json('{'), which raises "malformed JSON".
    let own = highest + 1;
    exec(
        &format!("CREATE INDEX ledger_bomb ON schema_migrations (CASE WHEN id > {own} THEN json('{{') END)"),
        &[],
    )?;
    Ok(())
}

wasmig_guest::migration!(up);
