//! Faulty on purpose. Creates a trigger that calls `app_side_effect()`, a
//! function the application registered, then fires it. The function is not
//! on the gate's SQL function allowlist, so compiling the trigger body for
//! the INSERT is denied and the function never runs (with `TRUSTED_SCHEMA`
//! off, SQLite would refuse it from schema code as well).

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE watched (x)", &[])?;
    exec("CREATE TRIGGER watched_spy AFTER INSERT ON watched BEGIN SELECT app_side_effect(new.x); END", &[])?;
    exec("INSERT INTO watched (x) VALUES (42)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
