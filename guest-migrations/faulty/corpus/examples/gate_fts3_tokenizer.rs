//! Faulty on purpose (SQL gate). Hands `fts3_tokenizer()` an 8-byte fake
//! pointer as a bound blob: SQLite accepts that form even with the FTS3
//! tokenizer setting off, stores the address as the 'simple' tokenizer, and
//! the next full-text table on the connection to use it jumps through it
//! (the host, or later the application, dies with SIGSEGV). Also tries the
//! same with a blob literal and the one-argument form that reads a
//! tokenizer's address back. Every form must be denied; the guest reports
//! what each one got and fails.

use wasmig_guest::{Error, Result, exec, params, query};

fn up() -> Result<()> {
    exec("CREATE TABLE gate_scratch (x)", &[])?;
    exec("INSERT INTO gate_scratch (x) VALUES (1)", &[])?;
    let fake_pointer = 0x4141_4141_4141_4141_u64.to_le_bytes().to_vec();
    let attempts = [
        query("SELECT fts3_tokenizer('simple', ?1)", params![fake_pointer]),
        query("SELECT fts3_tokenizer('simple', x'4141414141414141')", &[]),
        query("SELECT fts3_tokenizer('simple')", &[]),
    ];
    let report: Vec<String> = attempts
        .iter()
        .map(|a| match a {
            Ok(_) => "ALLOWED".to_owned(),
            Err(e) => e.to_string(),
        })
        .collect();
    Err(Error::new(report.join("; ")))
}

wasmig_guest::migration!(up);
