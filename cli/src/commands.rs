//! One function per subcommand: open files, call the library, print.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags};
use std::io::IsTerminal;

use wasmig::{
    FleetOptions, Limits, Manifest, MigrationState, Migrator, Options, Plugin, StepOutcome, TrustPolicy,
    TrustedKey, Verdict,
};

use crate::{Command, LimitArgs, TrustArgs};

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
        None if let Some(f) = e.downcast_ref::<FleetFailed>() => f.1,
        None if e.downcast_ref::<RehearsalFailed>().is_some() => code::MIGRATION_FAILED,
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
        } => {
            let options = Options {
                allow_out_of_order,
                allow_missing,
                trust: policy(&trust)?,
                limits: limits_from(&limits)?,
                cache_dir,
                single_transaction,
                ..Options::default()
            };
            let dbs = wasmig::expand_databases(&db).map_err(Refused)?;
            let single = db.len() == 1 && !db[0].starts_with('@') && !db[0].contains(['*', '?']);
            if single {
                apply(&dbs[0], &dir, options, busy_timeout, json, dry_run)
            } else {
                if dry_run {
                    bail!(Refused("--dry-run takes a single --db".into()));
                }
                let fleet = FleetOptions {
                    parallelism: jobs.unwrap_or(FleetOptions::default().parallelism),
                    busy_timeout: Duration::from_secs(busy_timeout),
                };
                apply_fleet(&dbs, &dir, options, fleet, json)
            }
        }
        Command::Test { db, dir, trust, limits, json } => {
            let options =
                Options { trust: policy(&trust)?, limits: limits_from(&limits)?, ..Options::default() };
            rehearse(&db, &dir, options, json)
        }
        Command::Status { db, dir, trust, rehearse, json } => {
            status(&db, &dir, policy(&trust)?, rehearse, json)
        }
        Command::Keygen { out } => keygen(&out),
        Command::New { name, id, dir, out, sdk } => new_crate(&name, id, &dir, &out, sdk),
        Command::Pack { component, plugin } => {
            pack(&component, plugin.manifest(), plugin.key.as_deref(), &plugin.out)
        }
        Command::PackSql { script, plugin } => {
            pack_sql(&script, plugin.manifest(), plugin.key.as_deref(), &plugin.out)
        }
        Command::Import { dir, from, key, out } => import(&dir, &from, key.as_deref(), &out),
        Command::Verify { dir, trust, json } => verify(&dir, &policy(&trust)?, json),
        Command::AcceptDrift { db, id, reason, dir, trust } => {
            accept_drift(&db, id, &reason, &dir, policy(&trust)?)
        }
        Command::Inspect { file, trust, json } => inspect(&file, &trust, json),
    }
}

fn limits_from(args: &LimitArgs) -> Result<Limits> {
    let mut l = Limits::default();
    if let Some(f) = args.fuel {
        l.fuel = f;
    }
    if let Some(d) = args.deadline {
        if !(d.is_finite() && d > 0.0) {
            bail!(Refused(format!("--deadline must be a positive number of seconds, got {d}")));
        }
        l.deadline = Duration::from_secs_f64(d);
    }
    if let Some(m) = args.max_memory_mib {
        l.max_memory_bytes = m.saturating_mul(1024 * 1024);
    }
    if let Some(o) = args.sqlite_ops {
        l.sqlite_ops = o;
    }
    l.direct_sql = !args.no_direct_sql;
    Ok(l)
}

fn rehearse(db: &Path, dir: &Path, options: Options, json: bool) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, options)?;
    warn_unsigned(&migrator);
    let r = migrator.rehearse(db)?;
    if json {
        println!("{}", serde_json::json!({ "database": db, "rehearsal": r, "ok": r.all_ok() }));
    } else {
        println!("rehearsing on a copy of {} (the real file is only read)", db.display());
        for s in &r.steps {
            let verdict = match &s.outcome {
                StepOutcome::Ok => "ok".to_owned(),
                StepOutcome::Failed(why) => format!("FAILED: {why}"),
                StepOutcome::NotReached => "not reached (an earlier migration failed)".to_owned(),
            };
            println!(
                "{:04} {} — {verdict} ({} ms, {} rows changed)",
                s.id, s.name, s.duration_ms, s.rows_changed
            );
            for line in &s.schema_diff {
                println!("    {line}");
            }
        }
        println!("{} pending, {} already applied", r.steps.len(), r.already_applied.len());
    }
    if !r.all_ok() {
        return Err(RehearsalFailed.into());
    }
    Ok(())
}

/// A rehearsed migration failed (exit code 1, as a failed apply).
#[derive(Debug, thiserror::Error)]
#[error("a rehearsed migration failed; the real database was not touched")]
pub struct RehearsalFailed;

fn policy(args: &TrustArgs) -> Result<TrustPolicy> {
    let mut p = TrustPolicy::from_key_files(&args.keys).map_err(Refused)?;
    p.min_signers = args.min_signers;
    p.allow_unsigned = args.allow_unsigned;
    if args.min_signers > p.keys.len() && !p.keys.is_empty() {
        bail!(Refused(format!(
            "--min-signers {} but only {} trusted key(s) given",
            args.min_signers,
            p.keys.len()
        )));
    }
    Ok(p)
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

/// Colours only on a terminal, and never when NO_COLOR is set.
pub fn color_enabled(stream: impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn paint(text: &str, code: &str, on: bool) -> String {
    if on { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
}

/// Every plugin's verdict by id (checked now where loading deferred it).
fn verdicts(migrator: &Migrator) -> std::collections::HashMap<i64, std::result::Result<Verdict, String>> {
    migrator.plugins().iter().map(|p| (p.id(), migrator.verdict_of(p).map_err(|e| e.to_string()))).collect()
}

fn warn_unsigned(migrator: &Migrator) {
    let v = verdicts(migrator);
    let mut unsigned: Vec<String> = v
        .iter()
        .filter(|(_, v)| matches!(v, Ok(Verdict::Unsigned)))
        .map(|(id, _)| format!("{id:04}"))
        .collect();
    unsigned.sort();
    if !unsigned.is_empty() {
        eprintln!(
            "WARNING: {} UNSIGNED migration(s) accepted because of --allow-unsigned: {}",
            unsigned.len(),
            unsigned.join(", ")
        );
    }
}

fn applied_json(m: &wasmig::Applied) -> serde_json::Value {
    serde_json::json!({
        "id": m.id, "name": m.name, "duration_ms": m.duration.as_millis() as u64,
        "calls": m.stats.calls, "rows_changed": m.stats.rows_changed,
        "direct_sql": m.stats.direct_sql,
    })
}

fn error_json(e: &anyhow::Error) -> serde_json::Value {
    serde_json::json!({ "exit_code": exit_code(e), "message": format!("{e:#}") })
}

fn apply(
    db: &Path,
    dir: &Path,
    options: Options,
    busy_timeout: u64,
    json: bool,
    dry_run: bool,
) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, options)?;
    warn_unsigned(&migrator);
    if dry_run {
        return plan(db, &migrator, json);
    }
    let mut conn = open_for_write(db, busy_timeout)?;
    let mut applied = Vec::new();
    let result = migrator.apply_with(&mut conn, |m| {
        if json {
            applied.push(applied_json(m));
        } else {
            println!(
                "applied {:04} {} ({} ms, {} calls, {} rows changed)",
                m.id,
                m.name,
                m.duration.as_millis(),
                m.stats.calls,
                m.stats.rows_changed
            );
        }
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let e = anyhow::Error::from(e);
            if json {
                // What committed before the failure stays committed; say so.
                println!(
                    "{}",
                    serde_json::json!({ "database": db, "applied": applied, "error": error_json(&e) })
                );
            }
            return Err(e);
        }
    };
    if json {
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

fn apply_fleet(dbs: &[PathBuf], dir: &Path, options: Options, fleet: FleetOptions, json: bool) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, options)?;
    warn_unsigned(&migrator);
    let bar = std::io::stderr().is_terminal();
    let report = migrator.apply_fleet(dbs, fleet, |done, total| {
        if bar {
            let width = 30;
            let filled = done * width / total.max(1);
            eprint!("\r[{}{}] {done}/{total}", "#".repeat(filled), " ".repeat(width - filled));
            if done == total {
                eprintln!();
            }
        }
    });
    if json {
        let rows: Vec<_> = report
            .results
            .iter()
            .map(|r| match &r.outcome {
                Ok(rep) => serde_json::json!({
                    "database": r.db, "status": r.label(),
                    "applied": rep.applied.iter().map(|a| a.id).collect::<Vec<_>>(),
                    "elapsed_ms": r.elapsed.as_millis() as u64,
                }),
                Err(e) => serde_json::json!({
                    "database": r.db, "status": "failed", "error": e.to_string(),
                    "elapsed_ms": r.elapsed.as_millis() as u64,
                }),
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "databases": rows,
                "summary": {
                    "total": report.results.len(), "applied": report.count("applied"),
                    "up_to_date": report.count("up-to-date"), "failed": report.count("failed"),
                    "elapsed_ms": report.elapsed.as_millis() as u64,
                },
            })
        );
    } else {
        let w = report.results.iter().map(|r| r.db.display().to_string().len()).max().unwrap_or(8);
        println!("{:<w$}  {:<10}  DETAIL", "DATABASE", "RESULT");
        for r in &report.results {
            let detail = match &r.outcome {
                Ok(rep) if rep.applied.is_empty() => "-".to_owned(),
                Ok(rep) => {
                    format!(
                        "applied {}",
                        rep.applied.iter().map(|a| format!("{:04}", a.id)).collect::<Vec<_>>().join(", ")
                    )
                }
                Err(e) => e.to_string().lines().next().unwrap_or_default().to_owned(),
            };
            println!("{:<w$}  {:<10}  {detail}", r.db.display(), r.label());
        }
        println!(
            "{} databases: {} applied, {} up to date, {} failed ({} ms)",
            report.results.len(),
            report.count("applied"),
            report.count("up-to-date"),
            report.count("failed"),
            report.elapsed.as_millis()
        );
    }
    // The worst outcome decides the exit code: a failed migration, then
    // refused input, then an environment error.
    let errors: Vec<&wasmig::Error> =
        report.results.iter().filter_map(|r| r.outcome.as_ref().err()).collect();
    let worst = errors
        .iter()
        .find(|e| e.is_migration_failure())
        .or_else(|| errors.iter().find(|e| e.is_refused_input()))
        .or_else(|| errors.first());
    if let Some(e) = worst {
        let msg = format!("{} of {} databases failed; first: {e}", errors.len(), report.results.len());
        return Err(match e {
            e if e.is_migration_failure() => anyhow::Error::new(FleetFailed(msg, code::MIGRATION_FAILED)),
            e if e.is_refused_input() => anyhow::Error::new(FleetFailed(msg, code::REFUSED)),
            _ => anyhow::Error::new(FleetFailed(msg, code::ENVIRONMENT)),
        });
    }
    Ok(())
}

/// Some databases of a fleet failed; carries the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FleetFailed(String, u8);

/// `apply --dry-run`: every check apply makes (trust, drift, order, missing
/// files, compilation), then the plan; the database is only read.
fn plan(db: &Path, migrator: &Migrator, json: bool) -> Result<()> {
    let conn = open_read_only(db)?;
    let pending = migrator.dry_run(&conn)?;
    if json {
        let steps: Vec<_> = pending
            .iter()
            .map(
                |p| serde_json::json!({ "id": p.id(), "name": p.name(), "file": p.path, "digest": p.digest }),
            )
            .collect();
        println!("{}", serde_json::json!({ "database": db, "dry_run": true, "would_apply": steps }));
    } else {
        for p in &pending {
            println!("would apply {:04} {} ({})", p.id(), p.name(), p.path.display());
        }
        println!("{}: {} pending; nothing was changed (dry run)", db.display(), pending.len());
    }
    Ok(())
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

fn status(db: &Path, dir: &Path, trust: TrustPolicy, rehearse: bool, json: bool) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, Options { trust, ..Options::default() })?;
    let exists = db.exists();
    let conn = open_read_only(db)?;
    let rows = migrator.status(&conn)?;
    // id -> why it would fail, from a rehearsal on a copy.
    let failures: std::collections::HashMap<i64, String> = if rehearse {
        match migrator.rehearse(db) {
            Ok(r) => r
                .steps
                .into_iter()
                .filter_map(|st| match st.outcome {
                    StepOutcome::Failed(why) => Some((st.id, why)),
                    _ => None,
                })
                .collect(),
            Err(e) => rows
                .iter()
                .filter(|r| r.state == MigrationState::Pending)
                .map(|r| (r.id, e.to_string()))
                .collect(),
        }
    } else {
        Default::default()
    };
    let label = |r: &wasmig::StatusRow| if failures.contains_key(&r.id) { "failed" } else { r.state.label() };
    let verdicts = verdicts(&migrator);
    let signed_by = |id: i64| verdicts.get(&id);
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("status row serialises");
                if let Some(why) = failures.get(&r.id) {
                    v["state"] = serde_json::json!("failed");
                    v["failure"] = serde_json::json!(why);
                }
                let (signed, signers, refused) = match signed_by(r.id) {
                    Some(Ok(Verdict::Trusted(ids))) => {
                        (serde_json::json!(true), serde_json::json!(ids), None)
                    }
                    Some(Ok(_)) => (serde_json::json!(false), serde_json::json!([]), None),
                    Some(Err(e)) => (serde_json::Value::Null, serde_json::json!([]), Some(e.clone())),
                    None => (serde_json::Value::Null, serde_json::Value::Null, None),
                };
                v["signed"] = signed;
                v["signers"] = signers;
                v["untrusted"] = serde_json::json!(refused);
                v
            })
            .collect();
        println!("{}", serde_json::json!({ "database": db, "exists": exists, "migrations": out }));
        return Ok(());
    }
    warn_unsigned(&migrator);
    if !exists {
        println!("{} does not exist yet: every migration is pending", db.display());
    }
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let color = color_enabled(std::io::stdout());
    println!("{:<6} {:<name_w$} {:<25} {:<21} SIGNED BY", "ID", "NAME", "STATE", "APPLIED AT");
    for r in &rows {
        let signed = match signed_by(r.id) {
            Some(Ok(Verdict::Trusted(ids))) => ids.join(","),
            Some(Ok(_)) => paint("UNSIGNED", "1;31", color),
            Some(Err(_)) => paint("NOT TRUSTED", "1;31", color),
            None => "-".to_owned(),
        };
        // Pad before painting so escape codes do not upset the columns.
        let state = format!("{:<25}", label(r));
        let state = match r.state {
            _ if failures.contains_key(&r.id) => paint(&state, "1;31", color),
            MigrationState::Applied => paint(&state, "32", color),
            MigrationState::Pending => paint(&state, "33", color),
            MigrationState::AppliedButMissingFile | MigrationState::Drifted => paint(&state, "1;31", color),
        };
        println!(
            "{:<6} {:<name_w$} {state} {:<21} {signed}",
            format!("{:04}", r.id),
            r.name,
            r.applied_at.as_deref().unwrap_or("-")
        );
    }
    let mut failed: Vec<(&i64, &String)> = failures.iter().collect();
    failed.sort();
    for (id, why) in failed {
        println!("{id:04} would fail: {}", why.lines().next().unwrap_or_default());
    }
    Ok(())
}

fn new_crate(name: &str, id: Option<i64>, dir: &Path, out: &Path, sdk: Option<PathBuf>) -> Result<()> {
    let mut sources = crate::scaffold::Sources::from_build();
    if let Some(sdk) = sdk {
        let host = sources.as_ref().map(|s| s.host.clone()).unwrap_or_default();
        sources = Some(crate::scaffold::Sources { sdk, host });
    }
    let sources = sources.ok_or_else(|| {
        Refused("the wasmig checkout this binary was built from is gone; pass --sdk PATH".into())
    })?;
    let id = id.unwrap_or_else(|| crate::scaffold::next_free_id(dir));
    let files = crate::scaffold::scaffold(out, name, id, &sources).map_err(Refused)?;
    for f in &files {
        println!("created {}", f.display());
    }
    let crate_dir = out.join(name);
    println!("\nnext:");
    println!("  cd {} && cargo build --release --target wasm32-unknown-unknown", crate_dir.display());
    println!(
        "  wasmig pack target/wasm32-unknown-unknown/release/{}.wasm --id {id} --name {name} --key KEY --out DIR",
        name.replace('-', "_")
    );
    Ok(())
}

fn keygen(out: &Path) -> Result<()> {
    let id = wasmig::keygen(out).map_err(Refused)?;
    println!("secret key: {}", out.display());
    println!("public key: {}", wasmig::pub_path(out).display());
    println!("key id:     {id}");
    Ok(())
}

fn pack(component: &Path, manifest: Manifest, key: Option<&Path>, out: &Path) -> Result<()> {
    let bytes = std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let sk = key.map(wasmig::read_secret_key).transpose().map_err(Refused)?;
    write_plugin(component, &bytes, &manifest, sk.as_ref(), out).map(drop)
}

/// Packs `bytes` (from `source`) with `manifest`, signs with `sk`, checks the
/// result exactly as a host will, and writes it to `out` (a file, or a
/// directory to put `<id>_<name>.wasm` in).
fn write_plugin(
    source: &Path,
    bytes: &[u8],
    manifest: &Manifest,
    sk: Option<&wasmsign2::SecretKey>,
    out: &Path,
) -> Result<PathBuf> {
    let packed =
        wasmig::pack(bytes, manifest, sk).map_err(|r| Refused(format!("{}: {r}", source.display())))?;
    let target: PathBuf = if out.is_dir() { out.join(manifest.file_name()) } else { out.to_owned() };
    let mut check = TrustPolicy { allow_unsigned: sk.is_none(), ..TrustPolicy::default() };
    if let Some(sk) = sk {
        let pk = wasmig::public_of(sk);
        check.keys.push(TrustedKey { id: wasmig::key_id(&pk), key: pk, source: PathBuf::new() });
    }
    let plugin = Plugin::from_bytes(&target, packed.clone(), &check, wasmig::DEFAULT_MAX_FILE_SIZE)?;
    std::fs::write(&target, &packed).with_context(|| format!("writing {}", target.display()))?;
    let signed = match wasmig::signature_info(&packed).map_err(Refused)? {
        Some(info) => format!("signed by {}", info.key_ids.join(", ")),
        None => "UNSIGNED".to_owned(),
    };
    println!(
        "packed {} -> {} (id {}, name {}, {signed}, digest {})",
        source.display(),
        target.display(),
        manifest.id,
        manifest.name,
        plugin.digest
    );
    Ok(target)
}

fn pack_sql(script: &Path, manifest: Manifest, key: Option<&Path>, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(script).with_context(|| format!("reading {}", script.display()))?;
    let component = wasmig::component_for_sql(&text)
        .map_err(|e| Refused(format!("{}:{}: {}", script.display(), e.line, e.reason)))?;
    let sk = key.map(wasmig::read_secret_key).transpose().map_err(Refused)?;
    write_plugin(script, &component, &manifest, sk.as_ref(), out)?;
    Ok(())
}

fn import(dir: &Path, tool: &str, key: Option<&Path>, out: &Path) -> Result<()> {
    let tool: wasmig::ImportTool = tool.parse().map_err(Refused)?;
    let found = wasmig::import_dir(dir, tool).map_err(Refused)?;
    let sk = key.map(wasmig::read_secret_key).transpose().map_err(Refused)?;
    // Check every script before writing anything, so a bad file leaves no
    // half-imported directory behind.
    let mut components = Vec::with_capacity(found.len());
    for f in &found {
        let c = wasmig::component_for_sql(&f.sql)
            .map_err(|e| Refused(format!("{}:{}: {}", f.source.display(), e.line, e.reason)))?;
        components.push(c);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (f, c) in found.iter().zip(&components) {
        write_plugin(&f.source, c, &Manifest::new(f.id, f.name.clone()), sk.as_ref(), out)?;
    }
    println!("imported {} migration(s) from {} into {}", found.len(), dir.display(), out.display());
    Ok(())
}

fn verify(dir: &Path, trust: &TrustPolicy, json: bool) -> Result<()> {
    let mut results = Vec::new();
    let mut refused = 0;
    for path in wasmig::list_dir(dir)? {
        let signers = std::fs::read(&path)
            .ok()
            .and_then(|b| wasmig::signature_info(&b).ok().flatten())
            .map(|i| i.key_ids)
            .unwrap_or_default();
        let (id, name, verdict, trusted) = match Plugin::load(&path, trust, wasmig::DEFAULT_MAX_FILE_SIZE) {
            Ok(p) => {
                let v = match &p.verdict {
                    Verdict::Trusted(_) => "trusted".to_owned(),
                    Verdict::Unsigned | Verdict::Deferred => "UNSIGNED (allowed)".to_owned(),
                };
                (Some(p.id()), Some(p.name().to_owned()), v, p.verdict.signers().to_vec())
            }
            Err(e) => {
                refused += 1;
                let manifest = std::fs::read(&path).ok().and_then(|b| wasmig::read_manifest(&b).ok());
                (manifest.as_ref().map(|m| m.id), manifest.map(|m| m.name), format!("REFUSED: {e}"), vec![])
            }
        };
        results.push(serde_json::json!({
            "file": path, "id": id, "name": name, "signers": signers, "trusted_signers": trusted, "verdict": verdict,
        }));
        if !json {
            println!(
                "{:<6} {:<20} signers [{}] {verdict}",
                id.map(|i| format!("{i:04}")).unwrap_or_else(|| "?".into()),
                results.last().unwrap()["name"].as_str().unwrap_or("?"),
                signers.join(", ")
            );
        }
    }
    if json {
        println!("{}", serde_json::json!({ "directory": dir, "files": results, "refused": refused }));
    }
    if refused > 0 {
        bail!(Refused(format!("{refused} file(s) refused")));
    }
    Ok(())
}

fn accept_drift(db: &Path, id: i64, reason: &str, dir: &Path, trust: TrustPolicy) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, Options { trust, ..Options::default() })?;
    let conn = open_for_write(db, 30)?;
    let (old, new) = migrator.accept_drift(&conn, id, reason)?;
    println!(
        "accepted change to migration {id}: digest {} -> {new} (recorded in schema_migrations_audit)",
        old.as_deref().unwrap_or("none")
    );
    Ok(())
}

fn inspect(file: &Path, trust_keys: &[PathBuf], json: bool) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let sections = wasmig::sections(&bytes).map_err(|r| Refused(format!("{}: {r}", file.display())))?;
    let manifest = wasmig::read_manifest(&bytes);
    let digest = wasmig::content_digest(&bytes).map_err(Refused)?;
    let custom: Vec<&str> = sections.iter().filter_map(|s| s.name).collect();
    let (imports, exports) = wasmig::component_interface(&bytes).map_err(Refused)?;
    let sig = wasmig::signature_info(&bytes).map_err(Refused)?;
    let verdict = if trust_keys.is_empty() {
        None
    } else {
        let policy = TrustPolicy::from_key_files(trust_keys).map_err(Refused)?;
        Some(match policy.check(&bytes) {
            Ok(v) => format!("trusted ({})", v.signers().join(", ")),
            Err(e) => format!("NOT TRUSTED: {e}"),
        })
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": file,
                "manifest": manifest.as_ref().ok(),
                "manifest_error": manifest.as_ref().err(),
                "digest": digest,
                "size": bytes.len(),
                "imports": imports,
                "exports": exports,
                "custom_sections": custom,
                "signature_key_ids": sig.as_ref().map(|s| &s.key_ids),
                "signature_count": sig.as_ref().map(|s| s.count).unwrap_or(0),
                "verdict": verdict,
            })
        );
    } else {
        println!("file:       {}", file.display());
        println!("size:       {} bytes", bytes.len());
        println!("digest:     sha256:{digest} (signature sections excluded)");
        match &manifest {
            Ok(m) => {
                println!("id:         {}", m.id);
                println!("name:       {}", m.name);
                println!("world:      {}", m.world);
                if !m.capabilities.is_empty() {
                    println!("needs:      {}", m.capabilities.join(", "));
                }
            }
            Err(e) => println!("manifest:   none ({e})"),
        }
        println!("imports:    {}", imports.join(", "));
        println!("exports:    {}", exports.join(", "));
        match &sig {
            Some(s) => println!("signatures: {} by key id(s) {}", s.count, s.key_ids.join(", ")),
            None => println!("signatures: none (UNSIGNED)"),
        }
        if let Some(v) = &verdict {
            println!("trust:      {v}");
        }
        println!("sections:   {} top-level; custom: {}", sections.len(), custom.join(", "));
    }
    if manifest.is_err() {
        bail!(Refused(format!("{}: not a wasmig plugin", file.display())));
    }
    Ok(())
}
