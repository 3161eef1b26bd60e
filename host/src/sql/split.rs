//! Splitting an SQL script into statements the way SQLite does.
//!
//! SQLite decides where a statement ends with `sqlite3_complete`: a small
//! state machine over tokens that knows string literals, quoted identifiers,
//! comments, and that the semicolons inside `CREATE TRIGGER … BEGIN … END;`
//! do not end the statement. This module runs the same state machine (its
//! transition table is SQLite's), in one pass, and remembers where each
//! statement started. The tests compare it with SQLite's own function.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement's text, from its first token to its terminating `;`
    /// (or the end of the script); comments inside are kept.
    pub sql: String,
    /// 1-based line of its first token.
    pub line: usize,
    /// Byte offset of its first token in the script.
    pub offset: usize,
}

/// Why a script cannot be split (or, as `sqlpack::SqlRefusal`, packed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    /// 1-based line where the problem starts.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    Semi,
    Ws,
    Other,
    Explain,
    Create,
    Temp,
    Trigger,
    End,
}

// SQLite's complete.c transition table: trans[state][token].
// States: 0 INVALID, 1 START, 2 NORMAL, 3 EXPLAIN, 4 CREATE, 5 TRIGGER, 6 SEMI, 7 END.
const TRANS: [[u8; 8]; 8] = [
    /* INVALID */ [1, 0, 2, 3, 4, 2, 2, 2],
    /* START   */ [1, 1, 2, 3, 4, 2, 2, 2],
    /* NORMAL  */ [1, 2, 2, 2, 2, 2, 2, 2],
    /* EXPLAIN */ [1, 3, 3, 2, 4, 2, 2, 2],
    /* CREATE  */ [1, 4, 2, 2, 2, 4, 5, 2],
    /* TRIGGER */ [6, 5, 5, 5, 5, 5, 5, 5],
    /* SEMI    */ [6, 6, 5, 5, 5, 5, 5, 7],
    /* END     */ [1, 7, 5, 5, 5, 5, 5, 5],
];

fn index(t: Token) -> usize {
    match t {
        Token::Semi => 0,
        Token::Ws => 1,
        Token::Other => 2,
        Token::Explain => 3,
        Token::Create => 4,
        Token::Temp => 5,
        Token::Trigger => 6,
        Token::End => 7,
    }
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Reads the token at `pos`; returns it with the position after it, or an
/// error for an unterminated literal or comment (with the position it began).
pub(super) fn next_token(s: &[u8], pos: usize) -> Result<(Token, usize), usize> {
    let c = s[pos];
    Ok(match c {
        b';' => (Token::Semi, pos + 1),
        b' ' | b'\r' | b'\t' | b'\n' | b'\x0c' => (Token::Ws, pos + 1),
        b'/' if s.get(pos + 1) == Some(&b'*') => {
            let end = s[pos + 2..].windows(2).position(|w| w == b"*/").ok_or(pos)?;
            (Token::Ws, pos + 2 + end + 2)
        }
        b'-' if s.get(pos + 1) == Some(&b'-') => {
            let end = s[pos..].iter().position(|&b| b == b'\n').map_or(s.len(), |e| pos + e + 1);
            (Token::Ws, end)
        }
        b'[' => {
            let end = s[pos + 1..].iter().position(|&b| b == b']').ok_or(pos)?;
            (Token::Other, pos + 1 + end + 1)
        }
        b'`' | b'"' | b'\'' => {
            // A doubled quote inside is an escaped quote: scanning for the
            // next quote and continuing handles it as two adjacent literals.
            let end = s[pos + 1..].iter().position(|&b| b == c).ok_or(pos)?;
            (Token::Other, pos + 1 + end + 1)
        }
        _ if is_id_char(c) => {
            let len = s[pos..].iter().position(|&b| !is_id_char(b)).unwrap_or(s.len() - pos);
            let word = &s[pos..pos + len];
            let tok = if c.is_ascii_digit() {
                Token::Other
            } else if word.eq_ignore_ascii_case(b"create") {
                Token::Create
            } else if word.eq_ignore_ascii_case(b"trigger") {
                Token::Trigger
            } else if word.eq_ignore_ascii_case(b"temp") || word.eq_ignore_ascii_case(b"temporary") {
                Token::Temp
            } else if word.eq_ignore_ascii_case(b"end") {
                Token::End
            } else if word.eq_ignore_ascii_case(b"explain") {
                Token::Explain
            } else {
                Token::Other
            };
            (tok, pos + len)
        }
        _ => (Token::Other, pos + 1),
    })
}

/// True when `sql` ends with a complete statement, exactly as
/// `sqlite3_complete` answers (1 for complete). Since SQLite 3.54 a `--`
/// comment that runs to the end of the input without a newline leaves the
/// input incomplete, like an unterminated literal.
pub fn is_complete(sql: &str) -> bool {
    let s = sql.as_bytes();
    let (mut state, mut pos) = (0u8, 0usize);
    while pos < s.len() {
        match next_token(s, pos) {
            Ok((_, next)) if next == s.len() && s[pos..].starts_with(b"--") && s[next - 1] != b'\n' => {
                return false;
            }
            Ok((tok, next)) => {
                state = TRANS[state as usize][index(tok)];
                pos = next;
            }
            Err(_) => return false,
        }
    }
    state == 1
}

/// Splits `script` into statements. Whitespace and comments between
/// statements are dropped; a final statement without `;` is kept. Fails on
/// an unterminated literal, comment or `CREATE TRIGGER` body.
///
/// ```
/// let script = "CREATE TABLE t (a TEXT DEFAULT 'x;y'); -- note; here
/// CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN UPDATE t SET a = 'z;'; END;
/// INSERT INTO t VALUES ('done')";
/// let stmts = wasmig::split_sql(script).unwrap();
/// assert_eq!(stmts.len(), 3);
/// assert!(stmts[1].sql.ends_with("END;"));
/// assert_eq!(stmts[2].line, 3);
/// ```
pub fn split(script: &str) -> Result<Vec<Statement>, SplitError> {
    let s = script.as_bytes();
    let mut out = Vec::new();
    let (mut state, mut pos) = (0u8, 0usize);
    // (byte offset, line) of the current statement's first token. Lines are
    // counted as tokens pass, keeping the whole split linear in the input.
    let mut start: Option<(usize, usize)> = None;
    let mut line = 1;
    while pos < s.len() {
        let (tok, next) = next_token(s, pos).map_err(|_| SplitError {
            line,
            reason: "unterminated string, quoted identifier or comment".into(),
        })?;
        if start.is_none() && tok != Token::Ws && tok != Token::Semi {
            start = Some((pos, line));
        }
        let new_state = TRANS[state as usize][index(tok)];
        if tok == Token::Semi
            && new_state == 1
            && let Some((b, l)) = start.take()
        {
            out.push(Statement { sql: script[b..next].to_owned(), line: l, offset: b });
        }
        line += s[pos..next].iter().filter(|&&c| c == b'\n').count();
        state = new_state;
        pos = next;
    }
    if let Some((b, l)) = start {
        if matches!(state, 5..=7) {
            return Err(SplitError { line: l, reason: "CREATE TRIGGER body is not closed with END;".into() });
        }
        out.push(Statement { sql: script[b..].trim_end().to_owned(), line: l, offset: b });
    }
    Ok(out)
}

/// Where a second statement starts in `sql`, if there is one after the
/// first: `None` when the text holds at most one statement (trailing `;`,
/// whitespace and comments do not count).
///
/// A host call runs exactly one statement, and rusqlite's own check for a
/// second one prepares the rest of the text recursively, one native stack
/// frame per statement: tens of thousands of `;`-separated statements
/// overflow the stack and abort the process. This check is one loop over
/// the tokens, in constant stack, so the host refuses such text before
/// SQLite sees more than one statement. Text that cannot be tokenized (an
/// unterminated literal) answers `None`: SQLite then reports the error.
/// For example `SELECT 1;  -- done` and a whole `CREATE TRIGGER … END;` are
/// one statement; in `SELECT 1; SELECT 2` the second starts at byte 10.
pub(crate) fn second_statement(sql: &str) -> Option<usize> {
    let s = sql.as_bytes();
    // Most host calls hold no `;` at all: nothing to scan.
    if !s.contains(&b';') {
        return None;
    }
    let (mut state, mut pos, mut ended) = (0u8, 0usize, false);
    while pos < s.len() {
        let (tok, next) = next_token(s, pos).ok()?;
        if ended && tok != Token::Ws && tok != Token::Semi {
            return Some(pos);
        }
        let new_state = TRANS[state as usize][index(tok)];
        // A `;` that brings the machine back to START ends a statement, as
        // in `split`; one that follows only whitespace is an empty one.
        if tok == Token::Semi && new_state == 1 && state != 1 && state != 0 {
            ended = true;
        }
        state = new_state;
        pos = next;
    }
    None
}

/// The words of a statement's start, upper-cased, skipping comments: enough
/// to recognise what kind of statement it is.
fn leading_words(sql: &str, n: usize) -> Vec<String> {
    let s = sql.as_bytes();
    let mut words = Vec::new();
    let mut pos = 0;
    while pos < s.len() && words.len() < n {
        let Ok((tok, next)) = next_token(s, pos) else { break };
        if tok != Token::Ws {
            words.push(sql[pos..next].to_ascii_uppercase());
        }
        pos = next;
    }
    words
}

/// Refuses statements a transaction-per-migration host cannot honour:
/// transaction control, PRAGMA assignments (and PRAGMAs the gate does not
/// allow), ATTACH/DETACH and VACUUM. Returns the reason.
pub fn check_allowed(stmt: &Statement) -> Result<(), String> {
    super::json_paths::check(&stmt.sql)?;
    let words = leading_words(&stmt.sql, 4);
    let first = words.first().map(String::as_str).unwrap_or("");
    let first = if first == "EXPLAIN" { words.get(1).map(String::as_str).unwrap_or("") } else { first };
    match first {
        "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => Err(format!(
            "{first}: each migration already runs in one transaction owned by the host; remove transaction control"
        )),
        "ATTACH" | "DETACH" => Err(format!("{first}: a migration may only touch the database it migrates")),
        "VACUUM" => Err("VACUUM cannot run inside a migration's transaction".into()),
        "PRAGMA" => {
            let name = words.get(1).map(|w| w.to_ascii_lowercase()).unwrap_or_default();
            let name = name.rsplit('.').next().unwrap_or_default().to_owned();
            let assigns = words.get(2).is_some_and(|w| w == "=");
            let allowed = super::policy::PRAGMA_ALLOWLIST.contains(&name.as_str());
            if assigns {
                Err(format!("PRAGMA {name} = …: PRAGMA assignments are not honoured inside a migration"))
            } else if !allowed {
                Err(format!("PRAGMA {name}: not on the read-only allowlist"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's own answer, for comparison. One of wasmig's two audited uses
    /// of `unsafe` (the other loads cached compiled components): a call into
    /// the bundled SQLite with a NUL-terminated copy.
    #[allow(unsafe_code)]
    fn sqlite_complete(sql: &str) -> bool {
        let c = std::ffi::CString::new(sql).expect("no NUL in test input");
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call;
        // sqlite3_complete only reads it.
        unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) == 1 }
    }

    const TRICKY: &str = "
-- a comment; with a semicolon
CREATE TABLE t (a TEXT DEFAULT 'x;y', \"b;c\" INTEGER, [d;e] BLOB, `f;g` REAL);
/* block ; comment */ INSERT INTO t (a) VALUES ('it''s; fine');
CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN
  UPDATE t SET a = 'end;' WHERE rowid = new.rowid;
  INSERT INTO t (a) SELECT 'nested; end' WHERE 0;
END;
CREATE TEMP TRIGGER tt AFTER DELETE ON t BEGIN SELECT 1; END ;
CREATE VIEW v AS SELECT a AS \"end\" FROM t;
EXPLAIN SELECT 1;
SELECT 'no semicolon at the end'";

    #[test]
    fn splits_tricky_scripts_like_sqlite() {
        let stmts = split(TRICKY).unwrap();
        let firsts: Vec<&str> = stmts.iter().map(|s| s.sql.split_whitespace().next().unwrap()).collect();
        assert_eq!(firsts, ["CREATE", "INSERT", "CREATE", "CREATE", "CREATE", "EXPLAIN", "SELECT"]);
        assert_eq!(stmts[0].line, 3);
        assert_eq!(stmts[2].line, 5);
        assert!(stmts[2].sql.ends_with("END;"));
        assert!(stmts[3].sql.ends_with("END ;"));
        // Every statement but the last is complete by SQLite's own test, and
        // no proper prefix ending at a ';' is.
        for s in &stmts[..stmts.len() - 1] {
            assert!(sqlite_complete(&s.sql), "{}", s.sql);
            assert!(is_complete(&s.sql));
            for (i, _) in s.sql.match_indices(';').filter(|(i, _)| *i + 1 < s.sql.len()) {
                assert!(!sqlite_complete(&s.sql[..=i]), "prefix ending at {i} of {}", s.sql);
            }
        }
        // The statements run, in order, on a real database.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for s in &stmts {
            conn.execute_batch(&s.sql).unwrap();
        }
    }

    #[test]
    fn agrees_with_sqlite3_complete_on_many_inputs() {
        let pieces = [
            "SELECT 1", ";", " ", "'", "\"", "--x\n", "--", "/*", "*/", "CREATE", "TEMP", "TRIGGER", "END",
            "BEGIN", "EXPLAIN", "x", "[", "]", "`", "\n", "tr", "''",
        ];
        // Every sequence of up to 4 pieces (21^4 ≈ 200k inputs).
        let mut checked = 0;
        let mut idx = vec![0usize; 0];
        for len in 1..=4 {
            idx.clear();
            idx.resize(len, 0);
            loop {
                let s: String = idx.iter().map(|&i| pieces[i]).collect();
                assert_eq!(is_complete(&s), sqlite_complete(&s), "{s:?}");
                checked += 1;
                let mut k = 0;
                while k < len {
                    idx[k] += 1;
                    if idx[k] < pieces.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == len {
                    break;
                }
            }
        }
        assert!(checked > 190_000);
    }

    /// Found by the `sql_split` fuzz target: the same statement text appears
    /// twice, once inside a comment, so statements must be located by
    /// offset, not by searching for their text.
    #[test]
    fn offsets_locate_statements_even_when_their_text_repeats() {
        let script = "-- notes; wiSELECT 'a;b'; /* c; */ SELECT \"d;\" -- e;\nc; */ SELECT \"d;\" -- e;\n; x";
        let stmts = split(script).unwrap();
        let mut pos = 0;
        for s in &stmts {
            assert!(s.offset >= pos, "in order");
            assert!(script[s.offset..].starts_with(&s.sql));
            assert!(split(&script[pos..s.offset]).unwrap().is_empty(), "only filler before {:?}", s.sql);
            pos = s.offset + s.sql.len();
        }
        assert_eq!(stmts.len(), 3);
    }

    /// Found by the `sql_split` fuzz target: a script ending inside a `--`
    /// comment right after a complete statement.
    #[test]
    fn trailing_line_comment_without_newline() {
        for s in ["SELECT \"d;\" -- e;\nSELE;--", "SELE;--", "SELECT 1; -- c", "SELECT 1 --"] {
            assert_eq!(is_complete(s), sqlite_complete(s), "{s:?}");
        }
    }

    #[test]
    fn reports_unterminated_input_with_its_line() {
        assert_eq!(split("SELECT 1;\nSELECT 'oops;\n").unwrap_err().line, 2);
        assert_eq!(split("SELECT 1;\n\n/* never closed").unwrap_err().line, 3);
        let e = split("CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1;").unwrap_err();
        assert!(e.reason.contains("END"), "{e}");
        assert!(split("  -- only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn refuses_what_the_host_cannot_honour() {
        let check = |sql: &str| check_allowed(&Statement { sql: sql.into(), line: 1, offset: 0 });
        assert!(check("BEGIN TRANSACTION;").unwrap_err().contains("transaction"));
        assert!(check("commit").is_err());
        assert!(check("END;").is_err());
        assert!(check("/* c */ SAVEPOINT a;").is_err());
        assert!(check("PRAGMA foreign_keys = OFF;").unwrap_err().contains("assignments"));
        assert!(check("PRAGMA main.journal_mode = WAL;").is_err());
        assert!(check("PRAGMA cache_size;").is_err());
        assert!(check("ATTACH 'x' AS y;").is_err());
        assert!(check("VACUUM;").is_err());
        assert!(check("PRAGMA table_info(t);").is_ok());
        assert!(check("PRAGMA foreign_key_check;").is_ok());
        assert!(check("CREATE TRIGGER a AFTER INSERT ON t BEGIN SELECT 1; END;").is_ok());
        assert!(check("UPDATE t SET x = 'BEGIN';").is_ok());
        // Packing refuses what the host would refuse at run time.
        assert!(
            check("SELECT json_extract(d, '$.a', '$.b', '$.c', '$.d', '$.e');")
                .unwrap_err()
                .contains("at most 4")
        );
    }

    #[test]
    fn second_statement_agrees_with_rusqlites_check() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT, b INTEGER)").unwrap();
        for sql in [
            "SELECT 1",
            "SELECT 1;",
            "SELECT 1; ;; -- trailing\n /* and */ ;",
            "SELECT 'a;b' AS \"c;d\"",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 'x;'; SELECT 1; END;",
            "CREATE TRIGGER tr2 AFTER INSERT ON t BEGIN SELECT 1; END; SELECT 2",
            "SELECT 1; SELECT 2",
            "INSERT INTO t VALUES ('x', 1); DELETE FROM t",
            "EXPLAIN SELECT 1; SELECT 2",
        ] {
            let ours = second_statement(sql).is_some();
            let theirs = matches!(conn.prepare(sql), Err(rusqlite::Error::MultipleStatement));
            assert_eq!(ours, theirs, "{sql}");
        }
    }

    #[test]
    fn a_flood_of_statements_is_scanned_in_constant_stack() {
        // 200 000 statements on a 64 KiB stack: a recursive check would need
        // one frame per statement.
        let flood = "SELECT 1;".repeat(200_000);
        let found = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || second_statement(&flood))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(found, Some(9));
        let only_semicolons = format!("SELECT 1{}", ";".repeat(200_000));
        assert_eq!(second_statement(&only_semicolons), None);
    }
}
