//! Faulty on purpose (SQL gate). Runs ANALYZE (allowed: SQLite writes the
//! statistics itself), then writes a forged `sqlite_stat1` row claiming an
//! index is nearly unique, which would steer the application's query plans
//! long after the migration. The write must be denied, naming the table.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE stat_target (k INTEGER)", &[])?;
    exec("CREATE INDEX stat_target_k ON stat_target (k)", &[])?;
    exec("INSERT INTO stat_target (k) VALUES (1), (1), (1), (2)", &[])?;
    exec("ANALYZE", &[])?;
    exec("UPDATE sqlite_stat1 SET stat = '1000000 1' WHERE idx = 'stat_target_k'", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
