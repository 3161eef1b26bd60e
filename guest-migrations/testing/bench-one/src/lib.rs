//! The benchmark's one-statement SDK migration (B6/B7). The bench writes a
//! different number over `0000` in each copy, so every copy has its own
//! digest (nothing is shared through the compiled-component cache) and
//! creates its own table, while carrying the SDK's real code.

use wasmig_guest::{Result, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE bench_one_0000 (id INTEGER PRIMARY KEY, v TEXT NOT NULL)", &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
