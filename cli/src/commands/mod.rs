//! One module per subcommand; [`run`] dispatches to them. Each opens what it
//! needs, calls the library and prints a table or, with `--json`, a report
//! type that derives `Serialize`.

mod accept_drift;
mod apply;
mod import;
mod inspect;
mod keygen;
mod new;
mod pack;
mod release;
mod status;
mod test;
mod verify;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use rusqlite::{Connection, OpenFlags};
use wasmig::Options;

use crate::args::Command;

/// Runs one parsed subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Apply {
            db,
            jobs,
            dir,
            allow_out_of_order,
            allow_missing,
            trust,
            limits,
            busy_timeout,
            cache_dir,
            single_transaction,
            json,
            dry_run,
            require_release,
        } => {
            let options = Options {
                allow_out_of_order,
                allow_missing,
                trust: trust.policy()?,
                limits: limits.limits()?,
                cache_dir,
                single_transaction,
                require_release,
                ..Options::default()
            };
            apply::run(&db, jobs, &dir, options, busy_timeout, json, dry_run)
        }
        Command::Test { db, dir, trust, limits, json } => {
            let options = Options { trust: trust.policy()?, limits: limits.limits()?, ..Options::default() };
            test::run(&db, &dir, options, json)
        }
        Command::Status { db, dir, trust, rehearse, json, require_release } => {
            let options = Options { trust: trust.policy()?, require_release, ..Options::default() };
            status::run(&db, &dir, options, rehearse, json)
        }
        Command::Keygen { out } => keygen::run(&out),
        Command::New { name, id, dir, out, sdk } => new::run(&name, id, &dir, &out, sdk),
        Command::Pack { component, plugin } => {
            pack::pack(&component, plugin.manifest(), plugin.key.as_deref(), &plugin.out)
        }
        Command::PackSql { script, plugin } => {
            pack::pack_sql(&script, plugin.manifest(), plugin.key.as_deref(), &plugin.out)
        }
        Command::Import { dir, from, key, out } => import::run(&dir, &from, key.as_deref(), &out),
        Command::Verify { dir, trust, json } => verify::run(&dir, &trust.policy()?, json),
        Command::AcceptDrift { db, id, reason, dir, trust } => {
            accept_drift::run(&db, id, &reason, &dir, trust.policy()?)
        }
        Command::Inspect { file, trust, json } => inspect::run(&file, &trust, json),
        Command::Release { dir, key, number, json } => release::run(&dir, &key, number, json),
    }
}

/// Opens `db` for writing (creating it), waiting `busy_timeout` seconds for
/// other writers.
fn open_for_write(db: &Path, busy_timeout: u64) -> Result<Connection> {
    // SQLite's own message for this is "unable to open database file";
    // name the missing directory instead.
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(wasmig::Error::Io {
            path: parent.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "directory does not exist"),
        }
        .into());
    }
    let conn =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)
            .map_err(|source| wasmig::Error::Sqlite {
                context: format!("opening {}", db.display()),
                source,
            })?;
    conn.busy_timeout(Duration::from_secs(busy_timeout))
        .map_err(|source| wasmig::Error::Sqlite { context: "setting busy timeout".into(), source })?;
    Ok(conn)
}

/// Opens `db` read-only, or an empty in-memory database when it does not
/// exist yet: read-only commands never create files.
fn open_read_only(db: &Path) -> Result<Connection> {
    Ok(if db.exists() {
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            wasmig::Error::Sqlite { context: format!("opening {}", db.display()), source }
        })?
    } else {
        Connection::open_in_memory()?
    })
}
