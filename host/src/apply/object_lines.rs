//! How a ledger row keeps its per-object digest lines: whole, or as what
//! changed since an earlier row.
//!
//! The attestation names what changed outside wasmig by comparing the
//! schema's per-object lines (`type TAB name TAB digest16`, see `attest`)
//! with those recorded after the last migration. Recording the whole list
//! in every row made the ledger grow with migrations times objects: 200
//! migrations over a 400-object schema held over a megabyte of lines, and
//! every start-up that reads the ledger read the pages they sit on. So a
//! row whose schema before the migration is exactly the one an earlier row
//! recorded (same digest) keeps only the change:
//!
//! ```text
//! delta TAB <id of the row it changes>
//! <type> TAB <name> TAB <digest16>     an object created or changed
//! <type> TAB <name> TAB -              an object dropped
//! ```
//!
//! Anything else is a whole list, as every wasmig wrote before this form
//! (and still writes when it cannot vouch for the schema before: the first
//! migration, or one after a change made outside wasmig). The row a delta
//! names is found by id, not by position, so rows recorded meanwhile by
//! other processes (which cannot have changed the schema, or the delta
//! would not have been written) do not matter. A chain that cannot be
//! followed (a row removed, a `NULL`, a loop) gives no list: only the
//! naming of changes is lost, never the digest comparison, which uses the
//! whole-schema digest every row keeps.

use std::collections::{BTreeMap, HashSet};

use rusqlite::Connection;

use crate::error::Result;
use crate::ledger;

/// The first line of a delta, before the id of the row it changes.
const DELTA: &str = "delta\t";

/// The marker a dropped object's line carries instead of a digest.
const DROPPED: &str = "-";

/// The last line of a row's text, before the schema cookie its migration
/// left (see [`recorded_cookie`]).
const COOKIE: &str = "cookie\t";

/// Object lines by their sort key (`type TAB name TAB`, whose byte order
/// is the order of the whole lines), each with its digest.
type Lines<'a> = BTreeMap<&'a str, &'a str>;

fn parse(text: &str) -> Lines<'_> {
    text_lines(text).filter_map(split).collect()
}

fn render(lines: &Lines<'_>) -> String {
    let mut out = String::new();
    for (key, digest) in lines {
        push_line(&mut out, key, digest);
    }
    out
}

/// What to store for a row whose lines are `after`: the change from row
/// `base` (its id and its lines) when one is given, else the whole list.
pub(crate) fn encode(base: Option<(i64, &str)>, after: &str) -> String {
    let Some((base_id, before)) = base else { return after.to_owned() };
    let mut out = format!("{DELTA}{base_id}\n");
    // Every migration of a long history pays for this, so both lists are
    // walked side by side (they come sorted by key) without building maps;
    // lines out of key order (names holding a tab can be) take the maps.
    let header = out.len();
    if !merge_changes(before, after, &mut out) {
        out.truncate(header);
        map_changes(before, after, &mut out);
    }
    out
}

/// Appends to `out` the lines of `after` that are new or changed since
/// `before`, then the dropped ones, each group in key order.
fn map_changes(before: &str, after: &str, out: &mut String) {
    let (old, new) = (parse(before), parse(after));
    for (key, digest) in &new {
        if old.get(key) != Some(digest) {
            push_line(out, key, digest);
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        push_line(out, key, DROPPED);
    }
}

/// One well-formed line split into its key (`type TAB name TAB`) and digest.
fn split(line: &str) -> Option<(&str, &str)> {
    let cut = line.rfind('\t')?;
    line[..cut].contains('\t').then(|| (&line[..=cut], &line[cut + 1..]))
}

/// What [`map_changes`] appends, found by walking both lists at once; false
/// (leaving `out` to be cut back) when a list is not in strict key order
/// or holds a line that is not `key TAB digest`.
fn merge_changes(before: &str, after: &str, out: &mut String) -> bool {
    let lines = |text| -> Option<Vec<(&str, &str)>> {
        let v: Vec<(&str, &str)> = text_lines(text).map(split).collect::<Option<_>>()?;
        v.windows(2).all(|w| w[0].0 < w[1].0).then_some(v)
    };
    let (Some(old), Some(new)) = (lines(before), lines(after)) else { return false };
    let mut dropped = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) if o.0 == n.0 => {
                if o.1 != n.1 {
                    push_line(out, n.0, n.1);
                }
                i += 1;
                j += 1;
            }
            (Some(o), Some(n)) if o.0 < n.0 => {
                dropped.push(o.0);
                i += 1;
            }
            (Some(o), None) => {
                dropped.push(o.0);
                i += 1;
            }
            (_, Some(n)) => {
                push_line(out, n.0, n.1);
                j += 1;
            }
            (None, None) => unreachable!("the loop runs while either list has lines"),
        }
    }
    for key in dropped {
        push_line(out, key, DROPPED);
    }
    true
}

/// The lines of a stored text, split alike for the walk and the maps.
fn text_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
}

fn push_line(out: &mut String, key: &str, digest: &str) {
    out.push_str(key);
    out.push_str(digest);
    out.push('\n');
}

/// `text` with the schema cookie (`PRAGMA schema_version`) the row's
/// migration left appended as its last line. A line of two fields is not
/// an object line, so readers of the lines (and wasmig releases before
/// this line) pass over it.
pub(crate) fn with_cookie(mut text: String, cookie: i64) -> String {
    text.push_str(COOKIE);
    text.push_str(&cookie.to_string());
    text.push('\n');
    text
}

/// The schema cookie a row's text records, if it records one. SQLite moves
/// the cookie in the file on every committed schema change, by anyone
/// (DDL, `VACUUM`), and never back: finding it where the last migration
/// left it means nobody changed the schema since, which a start-up with
/// nothing to do can tell without hashing the schema. (Only writing
/// `sqlite_schema` under `writable_schema` and then setting the cookie back
/// by hand escapes this; the header stamp rests on the same fact.)
pub(crate) fn recorded_cookie(text: &str) -> Option<i64> {
    text.lines().next_back()?.strip_prefix(COOKIE)?.parse().ok()
}

/// The id a delta changes, or `None` for a whole list.
fn delta_base(text: &str) -> Option<i64> {
    text.lines().next()?.strip_prefix(DELTA)?.parse().ok()
}

/// The whole list of lines of row `id`, following deltas back to a whole
/// list through `stored` (a row's stored text by id; `None` when the row
/// is gone or holds none). `None` when the chain breaks.
pub(crate) fn resolve(
    id: i64,
    mut stored: impl FnMut(i64) -> Result<Option<String>>,
) -> Result<Option<String>> {
    let mut deltas = Vec::new();
    let mut seen = HashSet::new();
    let mut at = id;
    let whole = loop {
        if !seen.insert(at) {
            return Ok(None);
        }
        let Some(text) = stored(at)? else { return Ok(None) };
        match delta_base(&text) {
            Some(base) => {
                deltas.push(text);
                at = base;
            }
            None => break text,
        }
    };
    let mut lines = parse(&whole);
    for delta in deltas.iter().rev() {
        for (key, digest) in parse(delta) {
            if digest == DROPPED {
                lines.remove(&key);
            } else {
                lines.insert(key, digest);
            }
        }
    }
    Ok(Some(render(&lines)))
}

/// The whole list of lines recorded for ledger row `id` (see [`resolve`]).
pub(crate) fn of_row(conn: &Connection, id: i64) -> Result<Option<String>> {
    resolve(id, |at| ledger::attestation_objects(conn, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve_in(rows: &HashMap<i64, Option<String>>, id: i64) -> Option<String> {
        resolve(id, |at| Ok(rows.get(&at).cloned().flatten())).unwrap()
    }

    #[test]
    fn a_chain_of_deltas_gives_back_every_whole_list() {
        // Object lines as `attest` writes them, sorted by type then name.
        let schemas = [
            "table\tt\taaaa\n",
            "index\tti\tbbbb\ntable\tt\taaaa\n",
            "index\tti\tbbbb\ntable\tt\tcccc\ntable\tu\tdddd\n",
            "table\tt\tcccc\ntable\tu\tdddd\n",
            "table\tt\tcccc\ntable\tu\tdddd\n",
            "",
            "view\tv\teeee\n",
        ];
        let mut rows = HashMap::new();
        rows.insert(1, Some(schemas[0].to_owned()));
        for (i, pair) in schemas.windows(2).enumerate() {
            let id = i as i64 + 2;
            let text = encode(Some((id - 1, pair[0])), pair[1]);
            assert!(text.starts_with(&format!("delta\t{}\n", id - 1)), "{text:?}");
            rows.insert(id, Some(text));
        }
        for (i, whole) in schemas.iter().enumerate() {
            assert_eq!(resolve_in(&rows, i as i64 + 1).as_deref(), Some(*whole), "row {}", i + 1);
        }
        // Only the change is stored.
        assert_eq!(rows[&4], Some("delta\t3\nindex\tti\t-\n".to_owned()));
        assert_eq!(rows[&5], Some("delta\t4\n".to_owned()));
        assert_eq!(encode(None, schemas[2]), schemas[2], "without a base, the whole list");
    }

    #[test]
    fn names_below_tab_sort_and_round_trip_like_whole_lines() {
        // A name below TAB sorts before its prefix, as in the whole lines.
        let before = "table\ta\u{1}\tbbbb\ntable\ta\taaaa\n";
        let after = "table\ta\u{1}\tcccc\ntable\ta\taaaa\ntable\tb\tdddd\n";
        let rows = HashMap::from([(1, Some(before.to_owned())), (2, Some(encode(Some((1, before)), after)))]);
        assert_eq!(resolve_in(&rows, 2).as_deref(), Some(after));
    }

    #[test]
    fn walking_both_lists_finds_what_the_maps_find() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..2000 {
            // Two lists over the same few names, some shared, some with
            // another digest, in key order as `attest` writes them.
            let list = |n: &mut dyn FnMut(u64) -> u64| -> String {
                let mut lines = BTreeMap::new();
                for _ in 0..n(8) {
                    let kind = ["index", "table", "view"][n(3) as usize];
                    lines.insert(format!("{kind}\t{}\t", ["a", "b", "c", "d", "e"][n(5) as usize]), n(2));
                }
                lines.iter().map(|(k, d)| format!("{k}{d:016}\n")).collect()
            };
            let (before, after) = (list(&mut next), list(&mut next));
            let (mut walked, mut mapped) = (String::new(), String::new());
            assert!(merge_changes(&before, &after, &mut walked));
            map_changes(&before, &after, &mut mapped);
            assert_eq!(walked, mapped, "{before:?} -> {after:?}");
        }
        // Out of key order: the walk declines and the maps answer.
        assert!(!merge_changes("table\tb\t1\ntable\ta\t1\n", "", &mut String::new()));
        assert_eq!(
            encode(Some((1, "table\tb\t1\ntable\ta\t1\n")), ""),
            "delta\t1\ntable\ta\t-\ntable\tb\t-\n"
        );
    }

    #[test]
    fn the_cookie_line_is_read_back_and_passed_over_by_every_reader() {
        let whole = with_cookie("table\tt\taaaa\n".to_owned(), 7);
        assert_eq!(recorded_cookie(&whole), Some(7));
        let delta = with_cookie(encode(Some((1, "table\tt\taaaa\n")), "table\tt\tbbbb\n"), 9);
        assert_eq!(recorded_cookie(&delta), Some(9));
        let rows = HashMap::from([(1, Some(whole)), (2, Some(delta))]);
        assert_eq!(resolve_in(&rows, 1).as_deref(), Some("table\tt\taaaa\n"));
        assert_eq!(resolve_in(&rows, 2).as_deref(), Some("table\tt\tbbbb\n"));
        assert_eq!(recorded_cookie("table\tt\taaaa\n"), None, "rows written before the cookie line");
        assert_eq!(recorded_cookie(&with_cookie(String::new(), 3)), Some(3), "an empty schema");
    }

    #[test]
    fn a_broken_chain_gives_no_list() {
        let rows = HashMap::from([
            (1, None),
            (2, Some("delta\t1\ntable\tt\taaaa\n".to_owned())),
            (3, Some("delta\t9\n".to_owned())),
            (4, Some("delta\t5\n".to_owned())),
            (5, Some("delta\t4\n".to_owned())),
            (6, Some("delta\t6\n".to_owned())),
        ]);
        for id in [1, 2, 3, 4, 6, 7] {
            assert_eq!(resolve_in(&rows, id), None, "row {id}");
        }
    }
}
