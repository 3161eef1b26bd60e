//! One module per subcommand; [`run`] dispatches to them. Each opens what it
//! needs, calls the library and prints a table or, with `--json`, a report
//! type that derives `Serialize`.

mod accept_drift;
mod adopt;
mod apply;
mod check;
mod config;
mod down;
mod import;
mod inspect;
mod keygen;
mod new;
mod pack;
mod prepare;
mod release;
mod round_trip;
mod sign;
mod status;
mod test;
mod verify;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use rusqlite::{Connection, OpenFlags};
use wasmig::Options;

use crate::args::Command;
use crate::config::Config;

/// Runs one parsed subcommand. DIR, `--db`, trust and limits the command
/// line leaves out come from the configuration ([`Config`]).
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
            no_cache,
            single_transaction,
            json,
            dry_run,
            replica_wait,
            min_signers_destructive,
            strict_schema,
            require_release,
            stamp_user_version,
        } => {
            let cfg = Config::discover()?;
            let dir = cfg.dir(dir)?;
            let db = if db.is_empty() { vec![path_arg(&cfg.db(None)?)?] } else { db };
            let policy = cfg.trust(trust).policy()?;
            let min_signers_destructive = cfg.min_signers_destructive(min_signers_destructive);
            let strict_schema = cfg.strict_schema(strict_schema);
            if min_signers_destructive > policy.keys.len() && !policy.keys.is_empty() {
                anyhow::bail!(crate::exit::Refused(format!(
                    "--min-signers-destructive {min_signers_destructive} but only {} trusted key(s) given",
                    policy.keys.len()
                )));
            }
            let options = Options {
                allow_out_of_order,
                allow_missing,
                trust: policy,
                limits: cfg.limits(limits).limits()?,
                cache_dir: prepare::cache_for_apply(cfg.cache_dir(cache_dir), no_cache),
                single_transaction,
                replica_wait,
                min_signers_destructive,
                strict_schema,
                require_release: cfg.require_release(require_release),
                stamp_user_version: cfg.stamp_user_version(stamp_user_version),
                ..Options::default()
            };
            apply::run(&db, jobs, &dir, options, busy_timeout, json, dry_run)
        }
        Command::Test { db, dir, trust, limits, json, round_trip } => {
            let cfg = Config::discover()?;
            let options = cfg.options(trust, limits)?;
            let (db, dir) = (cfg.db(db)?, cfg.dir(dir)?);
            if round_trip {
                return round_trip::run(&db, &dir, options, json);
            }
            test::run(&db, &dir, options, json)
        }
        Command::Status { db, dir, trust, rehearse, json, exit_code, require_release } => {
            let cfg = Config::discover()?;
            let options = Options {
                trust: cfg.trust(trust).policy()?,
                require_release: cfg.require_release(require_release),
                ..Options::default()
            };
            status::run(&cfg.db(db)?, &cfg.dir(dir)?, options, rehearse, json, exit_code)
        }
        Command::Keygen { out } => keygen::run(&out),
        Command::New { name, id, dir, out, sdk: _, sql: true } => new::sql(&name, id, &dir, &out),
        Command::New { name, id, dir, out, sdk, sql: false } => new::run(&name, id, &dir, &out, sdk),
        Command::Pack { component, plugin } => {
            pack::pack(&component, plugin.manifest(), plugin.key.secret_key()?, &plugin.out)
        }
        Command::PackSql { script, plugin, down } => {
            pack::pack_sql(&script, down.as_deref(), plugin.manifest(), plugin.key.secret_key()?, &plugin.out)
        }
        Command::Import { dir, from, foreign_keys_off, key, out, destructive } => {
            import::run(&dir, &from, foreign_keys_off, key.secret_key()?, &out, destructive)
        }
        Command::Verify { dir, trust, json } => {
            let cfg = Config::discover()?;
            verify::run(&cfg.dir(dir)?, &cfg.trust(trust).policy()?, json)
        }
        Command::AcceptDrift { db, id, reason, dir, trust } => {
            let cfg = Config::discover()?;
            accept_drift::run(&cfg.db(db)?, id, &reason, &cfg.dir(dir)?, cfg.trust(trust).policy()?)
        }
        Command::Inspect { file, trust, json, sql: true } => inspect::sql(&file, &trust, json),
        Command::Inspect { file, trust, json, sql: false } => inspect::run(&file, &trust, json),
        Command::Sign { dir, key, trust } => {
            // Only the directory comes from the configuration: `--trust` here
            // narrows what gets co-signed, which the configured keys must not
            // do behind the signer's back.
            let dir = Config::discover()?.dir(dir)?;
            let require = if trust.is_empty() {
                None
            } else {
                Some(wasmig::TrustPolicy::from_key_files(&trust).map_err(crate::exit::Refused::of)?)
            };
            sign::run(&dir, &key.required_secret_key()?, require.as_ref())
        }
        Command::Check {
            db,
            dir,
            trust,
            limits,
            json,
            allow_out_of_order,
            allow_missing,
            strict_schema,
            min_signers_destructive,
            require_release,
        } => {
            let cfg = Config::discover()?;
            let options = Options {
                require_release: cfg.require_release(require_release),
                allow_out_of_order,
                allow_missing,
                strict_schema: cfg.strict_schema(strict_schema),
                min_signers_destructive: cfg.min_signers_destructive(min_signers_destructive),
                trust: cfg.trust(trust).policy()?,
                limits: cfg.limits(limits).limits()?,
                ..Options::default()
            };
            check::run(cfg.db_if_any(db).as_deref(), &cfg.dir(dir)?, options, json)
        }
        Command::Config { db, dir, trust, json } => config::run(Config::discover()?, db, dir, trust, json),
        Command::Adopt { db, from, trust, dry_run, json, dir } => {
            adopt::adopt(&db, &from, &dir, trust.policy()?, dry_run, json)
        }
        Command::Baseline { db, up_to, trust, json, dir } => {
            adopt::baseline(&db, up_to, &dir, trust.policy()?, json)
        }
        Command::Down { db, to, dir, trust, limits, dry_run, busy_timeout, json } => {
            let cfg = Config::discover()?;
            let options = cfg.options(trust, limits)?;
            let (db, dir) = (cfg.db(db)?, cfg.dir(dir)?);
            down::run(down::DownArgs { db: &db, to, dir: &dir, dry_run, busy_timeout, json }, options)
        }
        Command::Prepare { db, dir, trust, limits, cache_dir, json } => {
            let cfg = Config::discover()?;
            prepare::run(
                cfg.db_if_any(db).as_deref(),
                &cfg.dir(dir)?,
                cfg.trust(trust).policy()?,
                cfg.limits(limits).limits()?,
                cfg.cache_dir(cache_dir),
                json,
            )
        }
        Command::Release { dir, key, number, json } => {
            release::run(&Config::discover()?.dir(dir)?, &key.required_secret_key()?, number, json)
        }
    }
}

/// A path as the text `apply --db` takes.
fn path_arg(p: &Path) -> Result<String> {
    p.to_str().map(str::to_owned).ok_or_else(|| {
        crate::exit::Usage(format!("{}: the database path is not valid UTF-8", p.display())).into()
    })
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
