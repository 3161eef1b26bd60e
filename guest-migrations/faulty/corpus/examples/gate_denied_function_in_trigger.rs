//! Faulty on purpose (SQL gate). Hides a denied function in a trigger body:
//! creating the trigger is fine, but the INSERT that fires it compiles the
//! body under the gate, and the call to `sqlite_compileoption_get()` must be
//! denied, naming the function.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE build_info (opt TEXT)", &[])?;
    exec(
        "CREATE TRIGGER build_info_fill AFTER INSERT ON build_info BEGIN \
         UPDATE build_info SET opt = sqlite_compileoption_get(0) WHERE rowid = new.rowid; END",
        &[],
    )?;
    exec("INSERT INTO build_info (opt) VALUES ('x')", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
