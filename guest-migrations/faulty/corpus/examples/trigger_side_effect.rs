//! Faulty on purpose. Creates a trigger that calls `app_side_effect()`, a
//! function the application registered, then fires it. With trusted_schema
//! off, SQLite refuses to run such a function from schema code.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE watched (x)", &[])?;
    exec("CREATE TRIGGER watched_spy AFTER INSERT ON watched BEGIN SELECT app_side_effect(new.x); END", &[])?;
    exec("INSERT INTO watched (x) VALUES (42)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
