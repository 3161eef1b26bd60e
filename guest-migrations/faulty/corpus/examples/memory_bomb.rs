//! Faulty on purpose. Allocates until memory runs out: stopped by the memory limit.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE memory_scratch (x)", &[])?;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(core::hint::black_box(vec![7u8; 1 << 20]));
    }
}

wasmig_guest::migration!(up);
