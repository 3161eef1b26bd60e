//! Faulty on purpose. Binds thousands of parameters in one call: refused by the parameter limit.

use wasmig_guest::{Result, Value, exec};

fn up() -> Result<()> {
    exec("CREATE TABLE params_scratch (x)", &[])?;
    let params: Vec<Value> = (0..5000).map(Value::from).collect();
    exec("SELECT ?1", &params)?;
    Ok(())
}

wasmig_guest::migration!(up);
