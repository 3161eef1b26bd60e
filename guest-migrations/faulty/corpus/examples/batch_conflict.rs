//! Faulty on purpose. A batch whose 1500th run repeats an id: exec-many
//! stops there, and the migration fails naming that run, with every earlier
//! run (sent in an earlier call or the same one) rolled back.

use wasmig_guest::{Batch, Result, exec, row};

fn up() -> Result<()> {
    exec("CREATE TABLE batch_scratch (id INTEGER PRIMARY KEY, label TEXT)", &[])?;
    let mut batch = Batch::new("INSERT INTO batch_scratch (id, label) VALUES (?1, ?2)");
    for i in 0..2000i64 {
        let id = if i == 1499 { 7 } else { i };
        batch.push(row![id, format!("label {i}")])?;
    }
    batch.finish()?;
    Ok(())
}

wasmig_guest::migration!(up);
