//! A small inventory service that owns its SQLite database.
//!
//! At start-up, before it accepts a single request, it applies the signed
//! migrations shipped next to it: only files signed by a trusted key run, each
//! in its own transaction. If any migration fails, the service does not start
//! and the database is left exactly as it was.
//!
//! ```text
//! inventory-app --db app.db --migrations migrations --trust release.pub --listen 127.0.0.1:8080
//! ```
//!
//! Trusted keys come from `--trust` (repeatable) or, if none is given, from
//! the `INVENTORY_TRUSTED_KEYS` environment variable (paths separated by `:`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;

use rusqlite::Connection;
use wasmig::{Migrator, Options, TrustPolicy};

struct Config {
    db: PathBuf,
    migrations: PathBuf,
    trust: Vec<PathBuf>,
    listen: String,
}

fn parse_args() -> Result<Config, String> {
    let mut args = std::env::args().skip(1);
    let (mut db, mut migrations, mut trust, mut listen) =
        (None, None, Vec::new(), "127.0.0.1:8080".to_owned());
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--db" => db = Some(PathBuf::from(value()?)),
            "--migrations" => migrations = Some(PathBuf::from(value()?)),
            "--trust" => trust.push(PathBuf::from(value()?)),
            "--listen" => listen = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if trust.is_empty()
        && let Some(keys) = std::env::var_os("INVENTORY_TRUSTED_KEYS")
    {
        trust = std::env::split_paths(&keys).collect();
    }
    Ok(Config {
        db: db.ok_or("--db is required")?,
        migrations: migrations.ok_or("--migrations is required")?,
        trust,
        listen,
    })
}

/// Brings the database up to date; the service starts only if this succeeds.
fn migrate(cfg: &Config) -> Result<Connection, String> {
    let trust = TrustPolicy::from_key_files(&cfg.trust).map_err(|e| e.to_string())?;
    let migrator = Migrator::from_dir_with(&cfg.migrations, Options { trust, ..Options::default() })
        .map_err(|e| e.to_string())?;
    let mut conn = Connection::open(&cfg.db).map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let report = migrator.apply(&mut conn).map_err(|e| e.to_string())?;
    println!(
        "migrated {}: {} applied, {} already applied",
        cfg.db.display(),
        report.applied.len(),
        report.already_applied.len()
    );
    Ok(conn)
}

fn json_rows(conn: &Connection, sql: &str) -> rusqlite::Result<serde_json::Value> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let rows = stmt.query_map([], |r| {
        let mut obj = serde_json::Map::new();
        for (i, n) in names.iter().enumerate() {
            let v = match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => serde_json::Value::Null,
                rusqlite::types::ValueRef::Integer(x) => x.into(),
                rusqlite::types::ValueRef::Real(x) => x.into(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                rusqlite::types::ValueRef::Blob(b) => b.len().into(),
            };
            obj.insert(n.clone(), v);
        }
        Ok(serde_json::Value::Object(obj))
    })?;
    Ok(serde_json::Value::Array(rows.collect::<rusqlite::Result<_>>()?))
}

fn respond(conn: &Connection, mut stream: TcpStream) -> std::io::Result<()> {
    let mut request_line = String::new();
    BufReader::new(&stream).read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/health" => ("200 OK", "\"ok\"".to_owned()),
        "/migrations" => {
            match json_rows(conn, "SELECT id, name, applied_at, signers FROM schema_migrations ORDER BY id") {
                Ok(v) => ("200 OK", v.to_string()),
                Err(e) => {
                    ("500 Internal Server Error", serde_json::json!({ "error": e.to_string() }).to_string())
                }
            }
        }
        "/images" => match json_rows(conn, "SELECT id, name, vm_count FROM images ORDER BY id") {
            Ok(v) => ("200 OK", v.to_string()),
            Err(e) => {
                ("500 Internal Server Error", serde_json::json!({ "error": e.to_string() }).to_string())
            }
        },
        _ => ("404 Not Found", "\"not found\"".to_owned()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("usage error: {e}");
            return ExitCode::from(2);
        }
    };
    let conn = match migrate(&cfg) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("not starting: migrations failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind(&cfg.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", cfg.listen);
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", listener.local_addr().map(|a| a.to_string()).unwrap_or_default());
    let _ = std::io::stdout().flush();
    for stream in listener.incoming().flatten() {
        if let Err(e) = respond(&conn, stream) {
            eprintln!("request failed: {e}");
        }
    }
    ExitCode::SUCCESS
}
