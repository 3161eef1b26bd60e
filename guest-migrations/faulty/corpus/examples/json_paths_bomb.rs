//! Faulty on purpose. Builds a 1-million-element JSON array, then asks json_extract() for its last element 126 times in one call: SQLite walks the whole array once per path inside one uninterruptible call (minutes on the largest document a guest may build). The host must refuse the call before SQLite runs it, naming the function.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    exec("CREATE TABLE json_scratch (d)", &[])?;
    exec(
        "INSERT INTO json_scratch \
         SELECT json_group_array(x) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT x FROM c)",
        &[],
    )?;
    let paths = vec!["'$[#-1]'"; 126].join(", ");
    query(&format!("SELECT json_extract(d, {paths}) FROM json_scratch"), &[])?;
    Ok(())
}

wasmig_guest::migration!(up);
