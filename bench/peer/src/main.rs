//! `wasmig-bench-peer DB SQLDIR`: applies every `*.sql` in SQLDIR (sorted)
//! to DB with rusqlite_migration's `to_latest`, and prints the time it took
//! in microseconds (measured in-process, like the wasmig side).

use std::time::Instant;

use rusqlite_migration::{M, Migrations};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (db, dir) = (&args[1], &args[2]);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("sql dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let scripts: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).expect("script")).collect();
    let started = Instant::now();
    let migrations = Migrations::new(scripts.iter().map(|s| M::up(s)).collect());
    let mut conn = rusqlite::Connection::open(db).expect("open");
    migrations.to_latest(&mut conn).expect("to_latest");
    println!("{}", started.elapsed().as_micros());
}
