//! The host side of exec/exec-many/query/add-column-if-missing: arbitrary SQL text,
//! parameters and identifiers against a scratch database under the SQL
//! gate. Never panics, never leaves the host's transaction, never touches
//! another file, and every change is rolled back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use rusqlite::types::Value;
use wasmig::fuzzing::{HostCall, run_host_calls};

/// Every SQL function the bundled SQLite knows, read from SQLite itself, so
/// the fuzzer calls each one (allowed or not) with hostile arguments.
fn function_names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("SELECT DISTINCT name FROM pragma_function_list ORDER BY name").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    })
}

fn calls(data: &[u8]) -> Vec<HostCall> {
    // Records separated by 0xff; the first byte of a record picks the call.
    data.split(|&b| b == 0xff)
        .take(16)
        .filter_map(|rec| {
            let (&kind, rest) = rec.split_first()?;
            let text = String::from_utf8_lossy(rest).into_owned();
            let params = |n: u8| {
                (0..n % 4)
                    .map(|i| match i % 3 {
                        0 => Value::Integer(i as i64),
                        1 => Value::Text(text.clone()),
                        _ => Value::Null,
                    })
                    .collect()
            };
            Some(match kind % 6 {
                // A built-in function by number, with the record's bytes as a
                // blob (pointers, huge lengths) and as text.
                4 => {
                    let names = function_names();
                    let name = &names[usize::from(rest.first().copied().unwrap_or(0)) % names.len()];
                    let args = ["?1", "?1, ?2", "?2, ?1", "?1, ?2, ?3", ""][usize::from(kind >> 3) % 5];
                    let blob = Value::Blob(rest.to_vec());
                    let params: Vec<Value> = match args.matches('?').count() {
                        0 => vec![],
                        1 => vec![blob],
                        2 => vec![blob, Value::Text(text.clone())],
                        _ => vec![blob, Value::Text(text.clone()), Value::Integer(i64::from(kind))],
                    };
                    HostCall::Query(format!("SELECT {name}({args})"), params)
                }
                // A statement repeated into a flood of `;`-separated ones.
                5 => {
                    let n = 1 + usize::from(rest.first().copied().unwrap_or(0)) * 256;
                    HostCall::Exec(format!("{text};").repeat(n), vec![])
                }
                0 => HostCall::Exec(text.clone(), params(kind >> 2)),
                1 => HostCall::Query(text.clone(), params(kind >> 2)),
                3 => HostCall::ExecMany(text.clone(), u32::from(kind >> 2) % 4, params(kind >> 4)),
                _ => {
                    let mut parts = text.splitn(3, '|');
                    HostCall::AddColumn(
                        parts.next().unwrap_or("t").to_owned(),
                        parts.next().unwrap_or("c").to_owned(),
                        parts.next().unwrap_or("TEXT").to_owned(),
                    )
                }
            })
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("wasmig-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("scratch.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x;y');").unwrap();
    let before: String =
        conn.query_row("SELECT group_concat(sql, ';') FROM sqlite_schema", [], |r| r.get(0)).unwrap();
    let cwd_before: Vec<_> = std::fs::read_dir(".").unwrap().map(|e| e.unwrap().file_name()).collect();
    let (conn, report) = run_host_calls(conn, calls(data));
    // The transaction survives every call unless a fault stopped the guest.
    assert!(report.transaction_held || report.fault.is_some(), "{report:?}");
    assert!(conn.is_autocommit(), "rolled back");
    let after: String =
        conn.query_row("SELECT group_concat(sql, ';') FROM sqlite_schema", [], |r| r.get(0)).unwrap();
    assert_eq!(before, after, "nothing survives the rollback");
    let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, vec![std::ffi::OsString::from("scratch.db")], "no other file in the scratch directory");
    let cwd_after: Vec<_> = std::fs::read_dir(".").unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(cwd_before, cwd_after, "no file created in the working directory");
});
