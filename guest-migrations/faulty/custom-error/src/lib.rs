//! Faulty on purpose: creates a table, then fails with an error type of its
//! own. `migration!` must report it through `Display` (the SDK's own `Error`
//! takes a path without `core::fmt`), and the host must roll the table back.

use std::fmt;

use wasmig_guest::exec;

struct Refusal {
    table: &'static str,
    rows: u64,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "custom error type: {} has {} row(s)", self.table, self.rows)
    }
}

fn up() -> Result<(), Refusal> {
    exec("CREATE TABLE custom_scratch (id INTEGER PRIMARY KEY)", &[])
        .map_err(|_| Refusal { table: "custom_scratch", rows: 0 })?;
    let rows = exec("INSERT INTO custom_scratch (id) VALUES (1), (2)", &[])
        .map_err(|_| Refusal { table: "custom_scratch", rows: 0 })?;
    Err(Refusal { table: "custom_scratch", rows })
}

wasmig_guest::migration!(up);
