//! Schema attestation: after each migration the ledger records a SHA-256 of
//! the database's schema in a normal form, so that `apply` and `status` can
//! tell when the schema was changed outside wasmig since, and name what.
//!
//! The normal form (documented in `docs/authoring.md`, "Schema attestation"):
//!
//! - one line per row of `main.sqlite_schema` whose `sql` is not NULL,
//!   `type TAB name TAB tbl_name TAB sql`, with the SQL's whitespace
//!   normalized: every run of SQL whitespace outside quoted text
//!   (`'…'`, `"…"`, `` `…` ``, `[…]`) and comments becomes one space, and
//!   leading and trailing whitespace is dropped. Quoted text and comments are
//!   kept byte for byte (they can mean something);
//! - lines sorted bytewise, each ending in `\n`; an empty schema is empty;
//! - left out: objects named `sqlite_*` (SQLite's own: `sqlite_sequence`,
//!   `sqlite_stat1`, automatic indexes, which have no SQL anyway; `ANALYZE`
//!   or an AUTOINCREMENT insert must not look like a schema change), and
//!   every object named, or on a table named, `schema_migrations*` (the
//!   ledger and its audit table: the host itself alters those, adopting an
//!   older ledger or recording an accepted drift, and the ledger guard
//!   refuses any other object that touches them).
//!
//! To name the objects that changed, the ledger also keeps, next to the
//! digest, one line per object: `type TAB name TAB` and the first 16 hex
//! digits of the SHA-256 of that object's normal-form line, enough to say
//! "created", "dropped" or "changed" for each (not how: the old SQL is not
//! stored; `wasmig test` shows diffs). A row stores them whole or as the
//! change from an earlier row (see `object_lines`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::catalog::{BySql, Catalog, Object, is_sqlites_own_name};
use super::ledger_guard::is_ledger_name;
use super::object_lines;
use crate::error::{Error, Result};
use crate::ledger;

/// A schema's attestation, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// Lower-case hex SHA-256 of [`normal_form`].
    pub sha256: String,
    /// One line per object: `type TAB name TAB digest16`.
    pub objects: String,
}

/// The schema of `conn`'s main database in the normal form described in
/// this module's documentation (and `docs/authoring.md`).
pub fn normal_form(conn: &Connection) -> Result<String> {
    let mut out = String::new();
    for line in lines(&Catalog::read(conn)?) {
        out.push_str(&line.text);
        out.push('\n');
    }
    Ok(out)
}

/// One object's normal-form line and the first 16 hex digits of its
/// SHA-256 (the per-object entry of [`Attestation::objects`]).
struct Line {
    kind: String,
    name: String,
    text: Rc<str>,
    digest16: Rc<str>,
}

/// A line made from one object, with what it was made from.
struct Made {
    kind: String,
    name: String,
    table: String,
    text: Rc<str>,
    digest16: Rc<str>,
}

thread_local! {
    /// Lines already made, by the object's SQL. After every migration the
    /// whole schema is attested, but only the objects it created or changed
    /// are new: a long history in one apply (or the next database of a
    /// fleet) would otherwise normalize and hash the same SQL over and over.
    static REMEMBERED: RefCell<BySql<Made>> = RefCell::new(BySql::default());
}

/// One object's normal-form line: `type TAB name TAB tbl_name TAB sql`.
fn text_of(o: &Object, sql: &str) -> Rc<str> {
    format!("{}\t{}\t{}\t{}", o.kind, o.name, o.table, normalize_sql(sql)).into()
}

/// The line and digest made earlier from this very object, if any.
fn remembered(o: &Object, sql: &str) -> Option<(Rc<str>, Rc<str>)> {
    REMEMBERED.with(|r| {
        let r = r.borrow();
        let m = r.get(sql)?;
        (m.kind == o.kind && m.name == o.name && m.table == o.table)
            .then(|| (m.text.clone(), m.digest16.clone()))
    })
}

fn line_of(o: &Object, sql: &str) -> Line {
    let (kind, name) = (o.kind.clone(), o.name.clone());
    if let Some((text, digest16)) = remembered(o, sql) {
        return Line { kind, name, text, digest16 };
    }
    let text = text_of(o, sql);
    let digest16: Rc<str> = hex::encode(&Sha256::digest(text.as_bytes())[..8]).into();
    let made = Made {
        kind: o.kind.clone(),
        name: o.name.clone(),
        table: o.table.clone(),
        text: text.clone(),
        digest16: digest16.clone(),
    };
    let bytes = o.kind.len() + o.name.len() + o.table.len() + text.len() + 16;
    REMEMBERED.with(|r| r.borrow_mut().insert(sql, made, bytes));
    Line { kind, name, text, digest16 }
}

/// [`Attestation::sha256`] of `conn`'s schema now, made straight from the
/// rows of `sqlite_schema` into one buffer, with no per-object digests.
///
/// This is what a start-up with nothing pending pays to notice a schema
/// changed outside wasmig, in a process that has remembered nothing: one
/// allocation per line (and none per field) instead of an object, a line
/// and a digest each.
fn digest_now(conn: &Connection) -> Result<String> {
    let context = || Error::sqlite("reading sqlite_schema");
    let mut stmt = conn
        .prepare_cached("SELECT type, name, tbl_name, sql FROM main.sqlite_schema WHERE sql IS NOT NULL")
        .map_err(context())?;
    let mut rows = stmt.query([]).map_err(context())?;
    let mut text: Vec<u8> = Vec::new();
    let mut lines: Vec<std::ops::Range<usize>> = Vec::new();
    while let Some(r) = rows.next().map_err(context())? {
        let field = |i: usize| r.get_ref(i).and_then(|v| Ok(v.as_str()?)).map_err(context());
        let (kind, name, table, sql) = (field(0)?, field(1)?, field(2)?, field(3)?);
        if !attests(name, table) {
            continue;
        }
        let start = text.len();
        for part in [kind, "\t", name, "\t", table, "\t"] {
            text.extend_from_slice(part.as_bytes());
        }
        normalize_into(sql, &mut text);
        lines.push(start..text.len());
    }
    lines.sort_by(|a, b| text[a.clone()].cmp(&text[b.clone()]));
    let mut whole = Sha256::new();
    for l in lines {
        whole.update(&text[l]);
        whole.update(b"\n");
    }
    Ok(hex::encode(whole.finalize()))
}

/// True for an object the attestation covers: not one of SQLite's own, not
/// named for the ledger nor on a ledger table.
fn attests(name: &str, table: &str) -> bool {
    !is_sqlites_own_name(name) && !is_ledger_name(name) && !is_ledger_name(table)
}

/// The objects the attestation covers, each with its SQL.
fn attested(catalog: &Catalog) -> impl Iterator<Item = (&Object, &str)> {
    catalog.objects.iter().filter(|o| attests(&o.name, &o.table)).filter_map(|o| Some((o, o.sql.as_deref()?)))
}

fn lines(catalog: &Catalog) -> Vec<Line> {
    let mut out: Vec<Line> = attested(catalog).map(|(o, sql)| line_of(o, sql)).collect();
    out.sort_by(|a, b| a.text.cmp(&b.text));
    out
}

/// The attestation of `conn`'s schema now.
pub fn attest(conn: &Connection) -> Result<Attestation> {
    Ok(of(&Catalog::read(conn)?))
}

/// The attestation of the schema `catalog` lists.
pub(crate) fn of(catalog: &Catalog) -> Attestation {
    let lines = lines(catalog);
    let mut whole = Sha256::new();
    let mut objects = String::with_capacity(lines.len() * 48);
    for l in &lines {
        whole.update(l.text.as_bytes());
        whole.update(b"\n");
        for part in [l.kind.as_str(), "\t", l.name.as_str(), "\t", &l.digest16, "\n"] {
            objects.push_str(part);
        }
    }
    Attestation { sha256: hex::encode(whole.finalize()), objects }
}

/// SQL's whitespace outside quoted text and comments collapsed to single
/// spaces, trimmed.
///
/// Worked on bytes, copying runs at a time: every delimiter is ASCII, so no
/// cut falls inside a character. A start-up with nothing pending normalizes
/// every object of the schema (hundreds) on a thread that has none
/// remembered, so this is on the no-op path.
fn normalize_sql(sql: &str) -> String {
    let mut out = Vec::with_capacity(sql.len());
    normalize_into(sql, &mut out);
    // Cut only before or after ASCII bytes, so still UTF-8.
    String::from_utf8(out).expect("cut at ASCII bytes only")
}

/// [`normalize_sql`], appended to `out` (which may hold text before it).
fn normalize_into(sql: &str, out: &mut Vec<u8>) {
    let b = sql.as_bytes();
    let first = out.len();
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let mut space = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_space(c) {
            space = true;
            i += 1;
            continue;
        }
        if space && out.len() > first {
            out.push(b' ');
        }
        space = false;
        // Where the verbatim part ends: just past its closer (or the end of
        // the text when it is never closed); `None` for ordinary text.
        let verbatim_end = |from: usize, closer: &[u8]| {
            let rest = &b[from.min(b.len())..];
            let found = if closer.len() == 1 {
                memchr::memchr(closer[0], rest)
            } else {
                memchr::memmem::find(rest, closer)
            };
            found.map_or(b.len(), |at| from + at + closer.len())
        };
        let end = match (c, b.get(i + 1)) {
            (b'\'', _) => Some(verbatim_end(i + 1, b"'")),
            (b'"', _) => Some(verbatim_end(i + 1, b"\"")),
            (b'`', _) => Some(verbatim_end(i + 1, b"`")),
            (b'[', _) => Some(verbatim_end(i + 1, b"]")),
            (b'-', Some(b'-')) => Some(verbatim_end(i + 2, b"\n")),
            (b'/', Some(b'*')) => Some(verbatim_end(i + 2, b"*/")),
            _ => None,
        };
        let end = end.unwrap_or_else(|| {
            // Ordinary text up to the next space or possible opener.
            let more = b[i + 1..]
                .iter()
                .position(|&d| is_space(d) || matches!(d, b'\'' | b'"' | b'`' | b'[' | b'-' | b'/'));
            more.map_or(b.len(), |n| i + 1 + n)
        });
        out.extend_from_slice(&b[i..end]);
        i = end;
    }
}

/// How the schema compares with the one the ledger recorded last.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchemaState {
    /// The schema is the one recorded after the last migration.
    Unchanged,
    /// It differs: something changed it outside wasmig.
    Changed,
    /// Nothing to compare with: no ledger, an empty one, or its last row
    /// was written by a wasmig that did not record schemas.
    Unattested,
}

/// The result of [`check_schema`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SchemaCheck {
    /// The verdict.
    pub state: SchemaState,
    /// The migration whose ledger row holds the recorded schema (the last
    /// applied: latest `applied_at`, then highest id).
    pub after_id: Option<i64>,
    /// The recorded digest.
    pub recorded_sha256: Option<String>,
    /// The digest of the schema now.
    pub current_sha256: String,
    /// One line per object created, dropped or changed since
    /// (`index images_name created`), sorted; empty unless `Changed`.
    pub changes: Vec<String>,
}

/// Compares `conn`'s schema with the one the ledger recorded after the last
/// migration. Reads only (a database without a ledger is `Unattested`).
pub fn check_schema(conn: &Connection) -> Result<SchemaCheck> {
    check_schema_against(conn, ledger::last_attestation(conn)?)
}

/// [`check_schema`] given the last applied row's attestation (`None`: no
/// ledger, or no rows), for a caller that has just read the ledger.
pub(crate) fn check_schema_against(
    conn: &Connection,
    last: Option<ledger::LastAttestation>,
) -> Result<SchemaCheck> {
    // The schema cookie where the last migration left it: nobody changed
    // the schema since, and it is the one recorded (see `object_lines`).
    if let Some(last) = &last
        && let Some(recorded) = &last.sha256
        && let Some(text) = ledger::attestation_objects(conn, last.id)?
        && object_lines::recorded_cookie(&text) == Some(ledger::schema_version(conn)?)
    {
        return Ok(SchemaCheck {
            state: SchemaState::Unchanged,
            after_id: Some(last.id),
            recorded_sha256: Some(recorded.clone()),
            current_sha256: recorded.clone(),
            changes: Vec::new(),
        });
    }
    // Otherwise the whole digest decides; the objects and their digests are
    // needed only to name what changed.
    let current = digest_now(conn)?;
    let mut check = SchemaCheck {
        state: SchemaState::Unattested,
        after_id: last.as_ref().map(|l| l.id),
        recorded_sha256: None,
        current_sha256: current.clone(),
        changes: Vec::new(),
    };
    let Some(last) = last else { return Ok(check) };
    let Some(recorded) = last.sha256 else { return Ok(check) };
    check.state = if recorded == current { SchemaState::Unchanged } else { SchemaState::Changed };
    if check.state == SchemaState::Changed {
        check.changes = match object_lines::of_row(conn, last.id)? {
            Some(before) => changed_objects(&before, &attest(conn)?.objects),
            None => vec!["(the ledger holds no object list to name the changes)".into()],
        };
    }
    check.recorded_sha256 = Some(recorded);
    Ok(check)
}

/// Objects created, dropped or changed between two object lists.
fn changed_objects(before: &str, after: &str) -> Vec<String> {
    let parse = |s: &str| -> BTreeMap<(String, String), String> {
        s.lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, '\t');
                Some(((f.next()?.to_owned(), f.next()?.to_owned()), f.next()?.to_owned()))
            })
            .collect()
    };
    let (b, a) = (parse(before), parse(after));
    let mut out = Vec::new();
    for ((kind, name), digest) in &a {
        match b.get(&(kind.clone(), name.clone())) {
            None => out.push(format!("{kind} {name} created")),
            Some(old) if old != digest => out.push(format!("{kind} {name} changed")),
            Some(_) => {}
        }
    }
    for (kind, name) in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("{kind} {name} dropped"));
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_normalized_outside_quotes_and_comments_only() {
        assert_eq!(normalize_sql("  CREATE\n TABLE\t t (a  TEXT)  "), "CREATE TABLE t (a TEXT)");
        assert_eq!(normalize_sql("DEFAULT 'a  b''  c'  , \"x  y\""), "DEFAULT 'a  b''  c' , \"x  y\"");
        assert_eq!(normalize_sql("[a  b]   `c  d`"), "[a  b] `c  d`");
        assert_eq!(normalize_sql("x -- one  two\n  y /* a   b */  z"), "x -- one  two\n y /* a   b */ z");
        assert_eq!(normalize_sql("'unterminated  "), "'unterminated  ");
    }

    /// The normal form as first written, character by character: the
    /// byte-wise version must agree with it on any text.
    fn normalize_by_chars(sql: &str) -> String {
        let mut out = String::with_capacity(sql.len());
        let mut chars = sql.chars().peekable();
        let mut space = false;
        while let Some(c) = chars.next() {
            if matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c') {
                space = true;
                continue;
            }
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
            let close: Option<&str> = match c {
                '\'' => Some("'"),
                '"' => Some("\""),
                '`' => Some("`"),
                '[' => Some("]"),
                '-' if chars.peek() == Some(&'-') => Some("\n"),
                '/' if chars.peek() == Some(&'*') => {
                    out.push(chars.next().expect("peeked"));
                    Some("*/")
                }
                _ => None,
            };
            if let Some(close) = close {
                while let Some(d) = chars.next() {
                    out.push(d);
                    if close.starts_with(d)
                        && (close.len() == 1 || chars.peek() == close[1..].chars().next().as_ref())
                    {
                        if close.len() == 2 {
                            out.push(chars.next().expect("peeked"));
                        }
                        break;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn byte_wise_normalizing_agrees_with_the_character_reading() {
        // Every string up to length 5 over an alphabet of the delimiters,
        // whitespace, ordinary text and a multi-byte character, then longer
        // pseudo-random ones.
        let alphabet = ["'", "\"", "`", "[", "]", "-", "/", "*", "\n", " ", "\t", "a", "é"];
        let mut cases = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            frontier =
                frontier.iter().flat_map(|s| alphabet.iter().map(move |a| format!("{s}{a}"))).collect();
            cases.extend(frontier.iter().cloned());
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let mut s = String::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            cases.push(s);
        }
        for case in &cases {
            assert_eq!(normalize_sql(case), normalize_by_chars(case), "normalizing {case:?}");
        }
    }

    #[test]
    fn the_digest_made_straight_from_the_rows_is_the_attestations() {
        let c = Connection::open_in_memory().unwrap();
        // Layout to normalize, quoted text, a name sorting by its tab, SQLite's
        // own objects and the ledger's (all left out), an index without SQL.
        c.execute_batch(
            "CREATE TABLE digest_w (x  INTEGER UNIQUE, s TEXT DEFAULT 'a  b');
             CREATE VIEW digest_v AS SELECT x FROM digest_w;
             CREATE TABLE \"digest_w\x01\" (y);
             CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY);
             CREATE INDEX schema_migrations_i ON schema_migrations (id);
             CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO auto DEFAULT VALUES; ANALYZE;",
        )
        .unwrap();
        let full = attest(&c).unwrap();
        assert_eq!(digest_now(&c).unwrap(), full.sha256);
        assert_eq!(digest_now(&c).unwrap(), attest(&c).unwrap().sha256, "with the lines remembered");
        assert_eq!(full.sha256, hex::encode(Sha256::digest(normal_form(&c).unwrap())));
        c.execute_batch("ALTER TABLE digest_w ADD COLUMN y").unwrap();
        assert_ne!(digest_now(&c).unwrap(), full.sha256);
        assert_eq!(digest_now(&c).unwrap(), attest(&c).unwrap().sha256);
    }

    #[test]
    fn the_digest_ignores_layout_and_the_ledger_and_names_changes() {
        let a = Connection::open_in_memory().unwrap();
        let b = Connection::open_in_memory().unwrap();
        a.execute_batch("CREATE TABLE t (x  INTEGER,\n y TEXT); CREATE INDEX ti ON t (x);").unwrap();
        b.execute_batch("CREATE TABLE t (x INTEGER, y TEXT);\nCREATE   INDEX ti ON t (x);").unwrap();
        b.execute_batch("CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY); CREATE TABLE s (id INTEGER PRIMARY KEY AUTOINCREMENT); DROP TABLE s; ANALYZE;").unwrap();
        let (x, y) = (attest(&a).unwrap(), attest(&b).unwrap());
        assert_eq!(x, y);
        assert_eq!(
            normal_form(&a).unwrap(),
            "index\tti\tt\tCREATE INDEX ti ON t (x)\ntable\tt\tt\tCREATE TABLE t (x INTEGER, y TEXT)\n"
        );
        b.execute_batch("CREATE INDEX ty ON t (y); DROP INDEX ti; ALTER TABLE t ADD COLUMN z").unwrap();
        assert_eq!(
            changed_objects(&x.objects, &attest(&b).unwrap().objects),
            ["index ti dropped", "index ty created", "table t changed"]
        );
    }
}
