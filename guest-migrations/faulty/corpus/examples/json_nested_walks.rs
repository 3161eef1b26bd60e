//! Faulty on purpose. Keeps to the per-call bound on JSON paths but makes one statement call json_extract() with four paths on a 1-million-element array 100 000 times (hours in all): each call is a step SQLite can interrupt, so the deadline must stop the statement.

use wasmig_guest::{Result, exec, query};

fn up() -> Result<()> {
    exec("CREATE TABLE json_scratch (d)", &[])?;
    exec(
        "INSERT INTO json_scratch \
         SELECT json_group_array(x) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT x FROM c)",
        &[],
    )?;
    query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
         SELECT sum(length(json_extract(d || '', '$[#-1]', '$[#-1]', '$[#-1]', '$[#-1]'))) FROM json_scratch, n",
        &[],
    )?;
    Ok(())
}

wasmig_guest::migration!(up);
