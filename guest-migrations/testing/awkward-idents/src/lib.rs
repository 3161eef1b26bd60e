//! Exercises `add-column-if-missing` with identifiers that need quoting and
//! checks every answer itself, failing with a description on the first
//! surprise (so the host test sees exactly what went wrong).

use wasmig_guest::{Error, ErrorKind, Result, add_column_if_missing, exec};

fn expect(what: &str, got: bool, want: bool) -> Result<()> {
    if got == want { Ok(()) } else { Err(Error::new(format!("{what}: got {got}, want {want}"))) }
}

fn up() -> Result<()> {
    exec(r#"CREATE TABLE "order details" ("select" INTEGER, "say ""hi""" TEXT)"#, &[])?;
    expect(
        "new column with quote in name",
        add_column_if_missing("order details", "it's \"quoted\"", "TEXT DEFAULT 'a;b'")?,
        true,
    )?;
    expect("same column again", add_column_if_missing("order details", "it's \"quoted\"", "TEXT")?, false)?;
    expect(
        "keyword column, other case",
        add_column_if_missing("order details", "SELECT", "INTEGER")?,
        false,
    )?;
    expect(
        "existing column with quotes",
        add_column_if_missing("order details", "say \"hi\"", "TEXT")?,
        false,
    )?;
    expect(
        "column named like a keyword",
        add_column_if_missing("order details", "group", "INTEGER NOT NULL DEFAULT 0")?,
        true,
    )?;
    // A declaration that tries to run a second statement must be refused.
    match add_column_if_missing("order details", "smuggled", "TEXT; DROP TABLE \"order details\"") {
        Err(e) if e.kind == ErrorKind::Invalid || e.kind == ErrorKind::Sqlite => {}
        Err(e) => {
            return Err(Error::new(format!("smuggling refused with unexpected kind: {e}")));
        }
        Ok(added) => return Err(Error::new(format!("smuggling accepted (added = {added})"))),
    }
    match add_column_if_missing("no such table", "c", "TEXT") {
        Err(_) => {}
        Ok(_) => return Err(Error::new("adding to a missing table succeeded")),
    }
    Ok(())
}

wasmig_guest::migration!(up);
