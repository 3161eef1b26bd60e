//! Faulty on purpose. Spins forever in pure computation: stopped by the fuel or deadline limit.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE fuel_scratch (x)", &[])?;
    let mut n: u64 = 0;
    loop {
        n = core::hint::black_box(n.wrapping_add(1));
    }
}

wasmig_guest::migration!(up);
