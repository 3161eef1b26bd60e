//! `embedded-app --db PATH`: migrates the database with the migrations
//! compiled into this binary, then prints the inventory.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let db = match args.as_slice() {
        [_, flag, db] if flag == "--db" => db,
        _ => {
            eprintln!("usage: embedded-app --db PATH");
            return ExitCode::from(2);
        }
    };
    let mut conn = match rusqlite::Connection::open(db) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot open {db}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match wasmig_example_embedded::migrate(&mut conn) {
        Ok(r) => println!(
            "migrated {db}: {} applied, {} already applied{}",
            r.applied.len(),
            r.already_applied.len(),
            if r.header_stamp_matched { " (header stamp: nothing changed)" } else { "" }
        ),
        Err(e) => {
            eprintln!("not starting: migrations failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    let items =
        conn.prepare("SELECT name, quantity, reorder_at FROM items ORDER BY name").and_then(|mut s| {
            s.query_map([], |r| {
                Ok(format!(
                    "{} {} (reorder at {})",
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
    match items {
        Ok(items) => items.iter().for_each(|i| println!("{i}")),
        Err(e) => {
            eprintln!("reading items: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
