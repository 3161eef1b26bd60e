//! One function per subcommand: open files, call the library, print.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags};
use wasmig::{Manifest, Migrator, Options, Plugin, plugin};

use crate::Command;

/// Exit codes, as documented in `--help` and the README.
pub mod code {
    /// A migration ran and was rolled back.
    pub const MIGRATION_FAILED: u8 = 1;
    /// Input refused before anything ran.
    pub const REFUSED: u8 = 3;
    /// Database or environment failure.
    pub const ENVIRONMENT: u8 = 4;
}

/// Maps an error to the documented exit code.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<wasmig::Error>() {
        Some(w) if w.is_migration_failure() => code::MIGRATION_FAILED,
        Some(w) if w.is_refused_input() => code::REFUSED,
        Some(_) => code::ENVIRONMENT,
        None if e.downcast_ref::<Refused>().is_some() => code::REFUSED,
        None => code::ENVIRONMENT,
    }
}

/// An input the CLI itself refused (as opposed to the library).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Apply {
            db,
            dir,
            allow_out_of_order,
            busy_timeout,
            json,
        } => apply(&db, &dir, allow_out_of_order, busy_timeout, json),
        Command::Status { db, dir, json } => status(&db, &dir, json),
        Command::Pack {
            component,
            id,
            name,
            out,
        } => pack(&component, id, &name, &out),
        Command::Inspect { file, json } => inspect(&file, json),
    }
}

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
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .map_err(|source| wasmig::Error::Sqlite {
        context: format!("opening {}", db.display()),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(busy_timeout))
        .map_err(|source| wasmig::Error::Sqlite {
            context: "setting busy timeout".into(),
            source,
        })?;
    Ok(conn)
}

fn apply(
    db: &Path,
    dir: &Path,
    allow_out_of_order: bool,
    busy_timeout: u64,
    json: bool,
) -> Result<()> {
    let options = Options {
        allow_out_of_order,
        ..Options::default()
    };
    let migrator = Migrator::from_dir_with(dir, options)?;
    let mut conn = open_for_write(db, busy_timeout)?;
    let report = migrator.apply_with(&mut conn, |m| {
        if !json {
            println!(
                "applied {:04} {} ({} ms, {} calls, {} rows changed)",
                m.id,
                m.name,
                m.duration.as_millis(),
                m.stats.calls,
                m.stats.rows_changed
            );
        }
    })?;
    if json {
        let applied: Vec<_> = report
            .applied
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id, "name": m.name, "duration_ms": m.duration.as_millis() as u64,
                    "calls": m.stats.calls, "rows_changed": m.stats.rows_changed,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "database": db, "applied": applied,
                "already_applied": report.already_applied,
                "applied_concurrently": report.applied_concurrently,
                "elapsed_ms": report.elapsed.as_millis() as u64,
            })
        );
    } else {
        for id in &report.applied_concurrently {
            println!("skipped {id:04} (applied by another process meanwhile)");
        }
        println!(
            "{}: {} applied, {} already applied",
            db.display(),
            report.applied.len(),
            report.already_applied.len() + report.applied_concurrently.len()
        );
    }
    Ok(())
}

fn status(db: &Path, dir: &Path, json: bool) -> Result<()> {
    let migrator = Migrator::from_dir(dir)?;
    let exists = db.exists();
    // Never create or write the database for a status check.
    let conn = if exists {
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            wasmig::Error::Sqlite {
                context: format!("opening {}", db.display()),
                source,
            }
        })?
    } else {
        Connection::open_in_memory()?
    };
    let rows = migrator.status(&conn)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "database": db, "exists": exists, "migrations": rows })
        );
        return Ok(());
    }
    if !exists {
        println!(
            "{} does not exist yet: every migration is pending",
            db.display()
        );
    }
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!("{:<6} {:<name_w$} {:<25} APPLIED AT", "ID", "NAME", "STATE");
    for r in &rows {
        println!(
            "{:<6} {:<name_w$} {:<25} {}",
            format!("{:04}", r.id),
            r.name,
            r.state.label(),
            r.applied_at.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

fn pack(component: &Path, id: i64, name: &str, out: &Path) -> Result<()> {
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let manifest = Manifest::new(id, name);
    let packed = plugin::with_manifest(&bytes, &manifest)
        .map_err(|r| Refused(format!("{}: {r}", component.display())))?;
    let target: PathBuf = if out.is_dir() {
        out.join(manifest.file_name())
    } else {
        out.to_owned()
    };
    // Check the result exactly as a host will before writing it.
    Plugin::from_bytes(&target, packed.clone(), plugin::DEFAULT_MAX_FILE_SIZE)?;
    std::fs::write(&target, &packed).with_context(|| format!("writing {}", target.display()))?;
    println!(
        "packed {} -> {} (id {id}, name {name})",
        component.display(),
        target.display()
    );
    Ok(())
}

fn inspect(file: &Path, json: bool) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let sections =
        plugin::sections(&bytes).map_err(|r| Refused(format!("{}: {r}", file.display())))?;
    let manifest = plugin::read_manifest(&bytes);
    let digest = plugin::content_digest(&bytes).map_err(|r| Refused(r.to_string()))?;
    let custom: Vec<&str> = sections.iter().filter_map(|s| s.name).collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": file,
                "manifest": manifest.as_ref().ok(),
                "manifest_error": manifest.as_ref().err(),
                "digest": digest,
                "size": bytes.len(),
                "custom_sections": custom,
            })
        );
    } else {
        println!("file:      {}", file.display());
        println!("size:      {} bytes", bytes.len());
        println!("digest:    sha256:{digest}");
        match &manifest {
            Ok(m) => {
                println!("id:        {}", m.id);
                println!("name:      {}", m.name);
                println!("world:     {}", m.world);
            }
            Err(e) => println!("manifest:  none ({e})"),
        }
        println!(
            "sections:  {} top-level, custom: {}",
            sections.len(),
            custom.join(", ")
        );
    }
    if manifest.is_err() {
        bail!(Refused(format!("{}: not a wasmig plugin", file.display())));
    }
    Ok(())
}
