//! A bound on the paths one JSON function call may take.
//!
//! SQLite's `json_extract`, `json_set` and their relatives look each path
//! up in the document in turn, within one call: a call with k paths does k
//! walks of the document and SQLite cannot interrupt it between them (the
//! progress handler runs between VDBE instructions, and the whole call is
//! one). With 126 paths such as `$[#-1]` over a 64 MiB array that is about
//! 100 s of uninterruptible work, far past any deadline (the survey in
//! `sandbox/sqlfuncs.rs`). The built-ins cannot be wrapped to check the
//! clock between paths: a shadowed built-in cannot be called again, and
//! shadowing them for good would slow the application's own JSON queries.
//!
//! The number of paths is written in the SQL text, though, so the host
//! counts them before SQLite sees the statement: a guest's call may take
//! at most [`MAX_JSON_PATHS`] paths (or path/value pairs). Nesting calls
//! does the same work in steps SQLite can interrupt:
//! `json_set(json_set(doc, '$.a', 1, …), '$.e', 5, …)`. The worst single
//! call is then a few walks of the largest value a guest may build, a few
//! seconds at most on 64 MiB, like any other function over such a value.
//!
//! Every SQL text a guest sends passes through here, `CREATE TRIGGER`,
//! `CREATE VIEW` and column definitions included, so a guest cannot leave a
//! schema object with a longer call behind for a later statement to fire.

use memchr::memchr2_iter;

use super::split::{Token, next_token};

/// Most paths (for `json_set` and friends, path/value pairs) one JSON
/// function call in a guest's SQL may take.
pub const MAX_JSON_PATHS: usize = 4;

/// How a function's arguments after the document count as paths.
#[derive(Clone, Copy)]
enum Shape {
    /// `f(doc, path, path, …)`.
    Paths,
    /// `f(doc, path, value, path, value, …)`.
    Pairs,
}

/// The functions that walk the document once per path within one call.
/// `->`, `->>`, `json_type`, `json_each` and the like take one path.
const MULTI_PATH: &[(&str, Shape)] = &[
    ("json_extract", Shape::Paths),
    ("jsonb_extract", Shape::Paths),
    ("json_remove", Shape::Paths),
    ("jsonb_remove", Shape::Paths),
    ("json_set", Shape::Pairs),
    ("jsonb_set", Shape::Pairs),
    ("json_insert", Shape::Pairs),
    ("jsonb_insert", Shape::Pairs),
    ("json_replace", Shape::Pairs),
    ("jsonb_replace", Shape::Pairs),
    ("json_array_insert", Shape::Pairs),
    ("jsonb_array_insert", Shape::Pairs),
];

/// Words after which a name followed by `(` is a table, view or CTE with a
/// column list, not a function call: `CREATE TABLE json_set (a, b, …)`.
const NOT_A_CALL_AFTER: &[&[u8]] =
    &[b"table", b"into", b"on", b"exists", b"view", b"references", b"with", b"recursive", b"."];

/// An open parenthesis: the multi-path function it calls, if any, and the
/// commas seen at its level.
struct Frame {
    call: Option<(&'static str, Shape)>,
    commas: usize,
}

/// Refuses `sql` when one of its JSON function calls takes more than
/// [`MAX_JSON_PATHS`] paths; the reason names the function and the way
/// around. Text that cannot be tokenized is left for SQLite to report.
///
/// One pass over the tokens with a heap stack of open parentheses, so
/// deeply nested text costs no native stack. Text that never mentions
/// `json` (almost every statement) is not tokenized at all.
pub(crate) fn check(sql: &str) -> Result<(), String> {
    let s = sql.as_bytes();
    // A function name is matched without escapes, so `json` must appear
    // literally (in any ASCII case) for any of these to be called.
    let mentions_json = memchr2_iter(b'j', b'J', s)
        .any(|at| s.get(at + 1..at + 4).is_some_and(|w| w.eq_ignore_ascii_case(b"son")));
    if !mentions_json {
        return Ok(());
    }
    let mut frames: Vec<Frame> = Vec::new();
    // The last two significant tokens, as identifier text where they are one.
    let (mut last, mut before_last): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    let mut pos = 0;
    while pos < s.len() {
        let Ok((tok, next)) = next_token(s, pos) else { return Ok(()) };
        let text = &s[pos..next];
        pos = next;
        if tok == Token::Ws {
            continue;
        }
        match text {
            b"(" => {
                let call = last.and_then(|name| {
                    let blocked = before_last
                        .is_some_and(|w| NOT_A_CALL_AFTER.iter().any(|b| w.eq_ignore_ascii_case(b)));
                    if blocked { None } else { multi_path(name) }
                });
                frames.push(Frame { call, commas: 0 });
            }
            b"," => {
                if let Some(top) = frames.last_mut() {
                    top.commas += 1;
                }
            }
            b")" => {
                if let Some(Frame { call: Some((name, shape)), commas }) = frames.pop() {
                    let paths = match shape {
                        Shape::Paths => commas,
                        Shape::Pairs => commas.div_ceil(2),
                    };
                    if paths > MAX_JSON_PATHS {
                        let unit = match shape {
                            Shape::Paths => "paths",
                            Shape::Pairs => "path/value pairs",
                        };
                        return Err(format!(
                            "{name}() with {paths} {unit}: a call in a migration may take at most \
                             {MAX_JSON_PATHS} (SQLite walks the whole document once per path and cannot \
                             stop in between); nest calls with at most {MAX_JSON_PATHS} each instead"
                        ));
                    }
                }
            }
            _ => {}
        }
        before_last = last;
        last = Some(identifier(text));
    }
    Ok(())
}

/// The identifier a token spells: a bare word, or the inside of `"…"`,
/// `` `…` `` or `[…]` (SQLite accepts each as a function name). Anything
/// else is returned as it is and matches no function.
fn identifier(text: &[u8]) -> &[u8] {
    match (text.first(), text.last()) {
        (Some(b'"'), Some(b'"')) | (Some(b'`'), Some(b'`')) | (Some(b'['), Some(b']')) if text.len() >= 2 => {
            &text[1..text.len() - 1]
        }
        _ => text,
    }
}

fn multi_path(name: &[u8]) -> Option<(&'static str, Shape)> {
    MULTI_PATH.iter().find(|(f, _)| name.eq_ignore_ascii_case(f.as_bytes())).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> String {
        check(sql).expect_err(sql)
    }

    #[test]
    fn calls_within_the_bound_pass() {
        for sql in [
            "SELECT json_extract(doc, '$.a') FROM t",
            "SELECT json_extract(doc, '$.a', '$.b', '$.c', '$.d') FROM t",
            "UPDATE t SET doc = json_set(doc, '$.a', 1, '$.b', 2, '$.c', 3, '$.d', json('[1,2]'))",
            "SELECT json_remove(d, '$[0]', '$[1]', '$[2]', '$[3]')",
            // Commas inside nested calls and lists count for the inner call.
            "SELECT json_set(d, '$.a', coalesce(a, b, c, d, e, f), '$.b', max(1, 2, 3, 4, 5))",
            "SELECT json_extract(d, (SELECT p FROM paths WHERE k IN (1, 2, 3, 4, 5, 6) LIMIT 1))",
            // Not calls: a table, CTE or view named like a function, with a column list.
            "CREATE TABLE json_set (a, b, c, d, e, f, g, h, i, j, k)",
            "CREATE TABLE IF NOT EXISTS \"json_extract\" (a, b, c, d, e, f)",
            "INSERT INTO json_remove (a, b, c, d, e, f) VALUES (1, 2, 3, 4, 5, 6)",
            "WITH json_extract(a, b, c, d, e, f) AS (SELECT 1, 2, 3, 4, 5, 6) SELECT * FROM json_extract",
            "CREATE INDEX i ON main.json_set (a, b, c, d, e, f)",
            // In a literal or comment it is only text.
            "SELECT 'json_extract(d, 1, 2, 3, 4, 5, 6)' -- json_set(a,1,2,3,4,5,6,7,8,9,10,11)",
            "SELECT 1",
        ] {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn calls_past_the_bound_are_refused_naming_the_function() {
        let why =
            refused("SELECT json_extract(doc, '$[#-1]', '$[#-1]', '$[#-1]', '$[#-1]', '$[#-1]') FROM t");
        assert!(why.starts_with("json_extract() with 5 paths") && why.contains("nest calls"), "{why}");
        let why = refused("UPDATE t SET d = json_set(d, '$.a', 1, '$.b', 2, '$.c', 3, '$.d', 4, '$.e', 5)");
        assert!(why.starts_with("json_set() with 5 path/value pairs"), "{why}");
        // A dangling path without its value still counts as a pair.
        assert!(refused("SELECT jsonb_insert(d, 1, 2, 3, 4, 5, 6, 7, 8, 9)").contains("5 path/value pairs"));
    }

    #[test]
    fn spellings_sqlite_accepts_as_the_same_function_are_caught() {
        for sql in [
            "SELECT JSON_EXTRACT(d, 1, 2, 3, 4, 5)",
            "SELECT \"json_remove\"(d, 1, 2, 3, 4, 5)",
            "SELECT `jsonb_extract` /* c */ (d, 1, 2, 3, 4, 5)",
            "SELECT [json_array_insert]\n(d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)",
            // Inside another call, a trigger body, a view, a generated column.
            "SELECT upper(json_extract(d, 1, 2, 3, 4, 5))",
            "CREATE TRIGGER g AFTER INSERT ON t BEGIN UPDATE t SET d = json_replace(d, 1,2,3,4,5,6,7,8,9,10); END",
            "CREATE VIEW v AS SELECT json_extract(d, 1, 2, 3, 4, 5) FROM t",
            "ALTER TABLE t ADD COLUMN g AS (json_extract(d, 1, 2, 3, 4, 5))",
            "SELECT json_extract(json_extract(d, 1), 1, 2, 3, 4, 5)",
        ] {
            assert!(refused(sql).contains("at most 4"), "{sql}");
        }
    }

    #[test]
    fn deep_nesting_and_unbalanced_text_cost_no_native_stack() {
        let deep = format!("SELECT json_extract(d, {}1{})", "(".repeat(200_000), ")".repeat(200_000));
        assert_eq!(check(&deep), Ok(()));
        let flood = format!("SELECT json_set(d{})", ", 1".repeat(200_000));
        assert!(refused(&flood).contains("100000 path/value pairs"));
        for odd in ["SELECT json_set(d, 1, 2", "SELECT json_set)) (d, 'unterminated", "json"] {
            assert_eq!(check(odd), Ok(()), "{odd}");
        }
    }

    /// The bound holds whatever SQLite does with the statement: compare
    /// with SQLite's own parse of the calls this module lets through.
    #[test]
    fn every_refused_spelling_is_a_call_sqlite_would_run() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (d)").unwrap();
        for sql in [
            "SELECT JSON_EXTRACT(d, '$', '$', '$', '$', '$') FROM t",
            "SELECT \"json_remove\"(d, '$', '$', '$', '$', '$') FROM t",
            "SELECT [json_set](d, '$.a', 1, '$.b', 2, '$.c', 3, '$.d', 4, '$.e', 5) FROM t",
        ] {
            assert!(check(sql).is_err(), "{sql}");
            conn.prepare(sql).unwrap_or_else(|e| panic!("SQLite runs {sql}: {e}"));
        }
        // A single-quoted name is a string, not a call, to SQLite too.
        let sql = "SELECT 'json_extract'(d, '$', '$', '$', '$', '$') FROM t";
        assert_eq!(check(sql), Ok(()));
        assert!(conn.prepare(sql).is_err(), "SQLite refuses {sql}");
    }
}
