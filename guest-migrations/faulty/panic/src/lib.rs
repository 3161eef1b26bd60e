//! Faulty on purpose: changes the database, then panics. A panic is a trap;
//! the host must roll back and report it with the guest's backtrace.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE panic_scratch (id INTEGER PRIMARY KEY)", &[])?;
    explode(3)
}

#[inline(never)]
fn explode(depth: u32) -> Result<()> {
    if depth == 0 {
        panic!("deliberate panic inside the migration");
    }
    explode(depth - 1)
}

wasmig_guest::migration!(up);
