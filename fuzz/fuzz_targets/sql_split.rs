//! The pack-sql statement splitter: never panics; the statements it yields
//! appear in the input in order and what lies between them is only
//! whitespace, comments and semicolons; its completeness test agrees with
//! SQLite's own `sqlite3_complete`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmig::fuzzing;

fn sqlite_complete(sql: &str) -> Option<bool> {
    let c = std::ffi::CString::new(sql).ok()?;
    // SAFETY: a valid NUL-terminated string that outlives the call.
    Some(unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) } == 1)
}

fn only_filler(s: &str) -> bool {
    // Whatever separates statements must itself split into no statements.
    matches!(fuzzing::split(s), Ok(v) if v.is_empty())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(expected) = sqlite_complete(text) {
        assert_eq!(fuzzing::is_complete(text), expected, "{text:?}");
    }
    if let Ok(stmts) = fuzzing::split(text) {
        let mut pos = 0;
        for s in &stmts {
            let at = s.offset;
            assert!(at >= pos && text[at..].starts_with(&s.sql), "statement comes from the input, in order");
            assert!(only_filler(&text[pos..at]), "only filler between statements: {:?}", &text[pos..at]);
            pos = at + s.sql.len();
            let _ = fuzzing::check_allowed(s);
        }
        assert!(only_filler(&text[pos..]) || text[pos..].trim().is_empty());
    }
});
