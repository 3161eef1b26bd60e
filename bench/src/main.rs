//! `wasmig-bench`: each case run side by side with what a user would pick
//! instead, in one run, reported as ratios of medians.
//!
//! - B1 backfill: 100k parameterised inserts from a guest, one `exec` call
//!   each and batched through `exec-many`, vs the same statements through
//!   native rusqlite `prepare_cached`.
//! - B2 no-op start-up: 200 applied, signed migrations, nothing pending (load
//!   the directory, verify signatures, check drift, read the ledger) vs the
//!   floor of reading and SHA-256-hashing the same files; rusqlite_migration's
//!   `to_latest` on the same 200-step SQL history is shown too.
//! - B2 embedded: the same no-op start-up with the 200 migrations embedded
//!   (`Migrator::from_embedded_set`, digests worked out ahead by
//!   `wasmig-embed`) and the header stamp kept (`stamp_user_version`) vs
//!   rusqlite_migration's `to_latest` on the same history; and, for
//!   reference, the same without the stamp (the ledger read).
//! - B2 CLI: the same no-op start-up as `wasmig apply`, a whole process,
//!   against the rusqlite_migration peer as a whole process (`process.rs`).
//! - B3 cold apply: 50 small signed `pack-sql` migrations on a fresh database
//!   (verify, run as direct SQL) in one transaction vs rusqlite_migration
//!   applying the same SQL (also one transaction); for reference, one
//!   transaction per migration (with native rusqlite doing the same as its
//!   floor), and compiled components cold and from the cache.
//! - B4 fleet: 20 migrations applied to 500 tenant databases vs native
//!   rusqlite running the same DDL on the same number of files, same threads.
//! - B6/B7 SDK-built migrations: 20 and 50 distinct one-statement components
//!   built with the Rust SDK (`testing/bench-one`, a different table name
//!   written into each copy, so each has its own digest and the SDK's real
//!   code), applied cold (empty compiled-component cache: every one is
//!   compiled and stored) and warm (every one loaded from the cache), vs
//!   native rusqlite running the same statements and ledger rows in the same
//!   number of transactions. Each is measured with Cranelift (the default)
//!   and again with Winch (`Compiler::Winch`), and B1 under Winch too: what
//!   its slower code costs a guest that loops. The Cranelift rows are run
//!   once more with both sides' databases on disk (under `target/`), as
//!   an application's start-up would be, fsync included.
//! - Peak RSS of a process applying 50 migrations.
//!
//! Databases live on a RAM disk (/dev/shm) when there is one, so that the
//! ratios measure wasmig's own cost rather than the disk's fsync latency.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use wasmig::FleetOptions;
use wasmig::{Compiler, Limits, Manifest, Migrator, Options, TrustPolicy};

mod process;

struct Ctx {
    root: PathBuf,
    key: wasmsign2::SecretKey,
    trust: TrustPolicy,
    runs: usize,
}

/// Runs `f` on a new thread, as a process starting up would: wasmig keeps
/// per-thread memories of schema facts it derived (by the SQL they derive
/// from), and a run on the thread of the previous run would find them warm.
fn cold<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("benchmark thread"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn options(ctx: &Ctx) -> Options {
    Options { trust: ctx.trust.clone(), ..Options::default() }
}

/// A small but real migration: a table, an index and a few rows.
fn script(i: usize) -> String {
    format!(
        "CREATE TABLE t{i:03} (id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER);\n\
         CREATE INDEX t{i:03}_v ON t{i:03} (v);\n\
         INSERT INTO t{i:03} (v, n) VALUES ('a;{i}', {i}), ('b', 2), ('c', 3);\n"
    )
}

/// Writes `n` scripts as `.sql` (for the peer) and as signed plugins.
fn history(ctx: &Ctx, n: usize) -> (PathBuf, PathBuf) {
    let sql = ctx.root.join(format!("sql{n}"));
    let plugins = ctx.root.join(format!("plugins{n}"));
    std::fs::create_dir_all(&sql).unwrap();
    std::fs::create_dir_all(&plugins).unwrap();
    for i in 1..=n {
        let text = script(i);
        std::fs::write(sql.join(format!("{i:04}.sql")), &text).unwrap();
        let m = Manifest::new(i as i64, format!("m{i}"));
        let component = wasmig::component_for_sql(&text).unwrap();
        let bytes = wasmig::pack(&component, &m, Some(&ctx.key)).unwrap();
        std::fs::write(plugins.join(m.file_name()), bytes).unwrap();
    }
    (sql, plugins)
}

fn fresh_db(ctx: &Ctx, name: &str) -> PathBuf {
    fresh_db_in(&ctx.root, name)
}

/// A path for a fresh database `name` in `root` (any old copy removed).
fn fresh_db_in(root: &Path, name: &str) -> PathBuf {
    let p = root.join(name);
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
    }
    p
}

fn peer(peer: &Path, db: &Path, dir: &Path) -> Duration {
    let out = Command::new(peer).arg(db).arg(dir).output().expect("running the rusqlite_migration peer");
    assert!(out.status.success(), "peer failed: {}", String::from_utf8_lossy(&out.stderr));
    let micros: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("peer prints micros");
    Duration::from_micros(micros)
}

struct Row {
    case: &'static str,
    ours: Duration,
    base: Duration,
    base_name: &'static str,
    ratio: f64,
    target: &'static str,
    ok: bool,
    extra: String,
}

/// A migrator over one signed plugin `bytes` with manifest `m`.
fn signed_migrator(ctx: &Ctx, m: &Manifest, bytes: Vec<u8>) -> Migrator {
    let p = wasmig::Plugin::from_bytes(&ctx.root.join(m.file_name()), bytes, &ctx.trust, u64::MAX).unwrap();
    Migrator::from_plugins(vec![p], options(ctx)).unwrap()
}

/// Plans `migrator`'s only migration on a fresh database `db_name` (checks
/// and compilation untimed) and times applying it.
fn time_apply(ctx: &Ctx, migrator: &Migrator, db_name: &str) -> Duration {
    let db = fresh_db(ctx, db_name);
    let mut conn = Connection::open(&db).unwrap();
    let plan = migrator.plan(&mut conn).unwrap();
    let t = Instant::now();
    migrator.apply_step(&mut conn, &plan.steps[0]).unwrap().expect("applied");
    t.elapsed()
}

/// B1's baseline: the backfill's 100k inserts through native rusqlite
/// `prepare_cached`, in one transaction, on a fresh database `name`.
fn native_backfill(ctx: &Ctx, name: &str) -> Duration {
    let db = fresh_db(ctx, name);
    let conn = Connection::open(&db).unwrap();
    let t = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE; CREATE TABLE bulk (id INTEGER PRIMARY KEY, label TEXT NOT NULL);")
        .unwrap();
    for i in 0..100_000i64 {
        let mut stmt = conn.prepare_cached("INSERT INTO bulk (id, label) VALUES (?1, ?2)").unwrap();
        stmt.execute(rusqlite::params![i, format!("row {i}")]).unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    t.elapsed()
}

fn b1(ctx: &Ctx, guests: &Path) -> Vec<Row> {
    let migrator = |file: &str| {
        let component = std::fs::read(guests.join(file)).expect("build the guests first");
        let m = Manifest::new(1, "bulk");
        signed_migrator(ctx, &m, wasmig::pack(&component, &m, Some(&ctx.key)).unwrap())
    };
    let (per_call, batched) = (migrator("testing_bulk_insert.wasm"), migrator("testing_bulk_batch.wasm"));
    let (mut ours, mut ours_batched, mut native) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        ours.push(time_apply(ctx, &per_call, "b1.db"));
        ours_batched.push(time_apply(ctx, &batched, "b1b.db"));

        native.push(native_backfill(ctx, "b1n.db"));
    }
    let b = median(native);
    // One host call per row has its own target: a call crosses into
    // wasmtime and back, which a batch pays once.
    let row = |case: &'static str, o: Duration, unit: &str, (target, limit): (&'static str, f64)| {
        let ratio = o.as_secs_f64() / b.as_secs_f64();
        let extra_us = (o.as_secs_f64() - b.as_secs_f64()) / 100_000.0 * 1e6;
        Row {
            case,
            ours: o,
            base: b,
            base_name: "native prepare_cached",
            ratio,
            target,
            ok: ratio <= limit,
            extra: format!("{extra_us:.2} us extra per {unit}"),
        }
    };
    vec![
        row("B1 backfill, 100k exec calls", median(ours), "host call", ("<= 1.3x", 1.3)),
        row("B1 backfill, 100k runs via Batch (exec-many)", median(ours_batched), "row", ("<= 1.15x", 1.15)),
    ]
}

/// B1's guests compiled by Winch, against the same native loop, and against
/// the same guests compiled by Cranelift in the same loop: what the baseline
/// compiler's slower code costs a migration that loops in WebAssembly (100k
/// rows, each built and sent by guest code).
fn b1_winch(ctx: &Ctx, guests: &Path) -> Vec<Row> {
    let migrator = |file: &str, compiler: Compiler| {
        let component = std::fs::read(guests.join(file)).expect("build the guests first");
        let m = Manifest::new(1, "bulk");
        let bytes = wasmig::pack(&component, &m, Some(&ctx.key)).unwrap();
        let p =
            wasmig::Plugin::from_bytes(&ctx.root.join(m.file_name()), bytes, &ctx.trust, u64::MAX).unwrap();
        let limits = Limits { compiler, ..Limits::default() };
        Migrator::from_plugins(vec![p], Options { limits, ..options(ctx) }).unwrap()
    };
    let files = ["testing_bulk_insert.wasm", "testing_bulk_batch.wasm"];
    let winch = files.map(|f| migrator(f, Compiler::Winch));
    let cranelift = files.map(|f| migrator(f, Compiler::Cranelift));
    let (mut ours, mut theirs, mut native) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()], Vec::new());
    for _ in 0..ctx.runs {
        for k in 0..2 {
            ours[k].push(time_apply(ctx, &winch[k], "b1w.db"));
            theirs[k].push(time_apply(ctx, &cranelift[k], "b1c.db"));
        }
        native.push(native_backfill(ctx, "b1wn.db"));
    }
    let b = median(native);
    let [ours, theirs] = [ours, theirs].map(|runs| runs.map(median));
    let row = |k: usize, case: &'static str, limit: f64, target: &'static str, unit: &str| {
        let o = ours[k];
        let ratio = o.as_secs_f64() / b.as_secs_f64();
        let extra_us = (o.as_secs_f64() - b.as_secs_f64()) / 100_000.0 * 1e6;
        Row {
            case,
            ours: o,
            base: b,
            base_name: "native prepare_cached",
            ratio,
            target,
            ok: ratio <= limit,
            extra: format!(
                "{extra_us:.2} us extra per {unit}; guest compiled by Winch: {:.2}x the same guest compiled \
                 by Cranelift in the same runs ({:.1} ms)",
                o.as_secs_f64() / theirs[k].as_secs_f64(),
                ms(theirs[k])
            ),
        }
    };
    vec![
        row(0, "B1 (Winch) backfill, 100k exec calls", 1.3, "<= 1.3x", "host call"),
        row(1, "B1 (Winch) 100k runs via Batch (exec-many)", 1.15, "<= 1.15x", "row"),
    ]
}

fn b2(ctx: &Ctx, peer_bin: &Path, sql200: &Path, plugins200: &Path) -> Vec<Row> {
    let db = fresh_db(ctx, "b2.db");
    Migrator::from_dir_with(plugins200, options(ctx))
        .unwrap()
        .apply(&mut Connection::open(&db).unwrap())
        .unwrap();
    let peer_db = fresh_db(ctx, "b2peer.db");
    peer(peer_bin, &peer_db, sql200);
    let (mut ours, mut floor, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        ours.push(cold(|| {
            let t = Instant::now();
            let m = Migrator::from_dir_with(plugins200, options(ctx)).unwrap();
            let mut conn = Connection::open(&db).unwrap();
            let r = m.apply(&mut conn).unwrap();
            assert!(r.applied.is_empty());
            t.elapsed()
        }));

        let t = Instant::now();
        let mut files = wasmig::list_dir(plugins200).unwrap();
        files.sort();
        for f in files {
            let bytes = std::fs::read(f).unwrap();
            std::hint::black_box(Sha256::digest(&bytes));
        }
        floor.push(t.elapsed());
        theirs.push(peer(peer_bin, &peer_db, sql200));
    }
    let (o, f, t) = (median(ours), median(floor), median(theirs));
    let ratio = o.as_secs_f64() / f.as_secs_f64();
    vec![
        Row {
            case: "B2 no-op start-up, 200 applied",
            ours: o,
            base: f,
            base_name: "read + SHA-256 floor",
            ratio,
            target: "<= 2x",
            ok: ratio <= 2.0,
            extra: "checks 200 digests against the ledger (signatures are checked for files about to run); compiles nothing".into(),
        },
        Row {
            case: "B2 (reference)",
            ours: o,
            base: t,
            base_name: "rusqlite_migration to_latest",
            ratio: o.as_secs_f64() / t.as_secs_f64(),
            target: "-",
            ok: true,
            extra: "rusqlite_migration checks no signature or digest".into(),
        },
    ]
}

/// The plugins of `dir` as an embedded set, described by wasmig-embed's own
/// function, as `build.rs` would (leaked: generated sets are statics). The
/// timed path is the one an application with `include_bytes!` runs.
fn embedded_set(dir: &Path) -> wasmig::Embedded {
    let migrations: Vec<wasmig::EmbeddedMigration> = wasmig::list_dir(dir)
        .unwrap()
        .into_iter()
        .map(|f| {
            let bytes: &'static [u8] = std::fs::read(&f).unwrap().leak();
            let d = wasmig_embed::describe(bytes).unwrap();
            let caps: Vec<&'static str> = d.capabilities.into_iter().map(|c| &*c.leak()).collect();
            wasmig::EmbeddedMigration {
                file_name: f.file_name().unwrap().to_str().unwrap().to_owned().leak(),
                bytes,
                digest: d.digest.leak(),
                id: d.id,
                name: d.name.leak(),
                world: d.world.leak(),
                capabilities: caps.leak(),
            }
        })
        .collect();
    wasmig::Embedded { dir: "embedded", migrations: migrations.leak(), release: None }
}

fn b2_embedded(ctx: &Ctx, peer_bin: &Path, sql200: &Path, plugins200: &Path) -> Vec<Row> {
    let set = embedded_set(plugins200);
    let stamping = || Options { stamp_user_version: true, ..options(ctx) };
    let (db, db_plain) = (fresh_db(ctx, "b2e.db"), fresh_db(ctx, "b2e-plain.db"));
    for (db, opts) in [(&db, stamping()), (&db_plain, options(ctx))] {
        Migrator::from_embedded_set(&set, opts).unwrap().apply(&mut Connection::open(db).unwrap()).unwrap();
    }
    let peer_db = fresh_db(ctx, "b2epeer.db");
    peer(peer_bin, &peer_db, sql200);
    let (mut ours, mut plain, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        let t = Instant::now();
        let m = Migrator::from_embedded_set(&set, stamping()).unwrap();
        let mut conn = Connection::open(&db).unwrap();
        let r = m.apply(&mut conn).unwrap();
        assert!(r.applied.is_empty() && r.already_applied.len() == 200 && r.header_stamp_matched);
        ours.push(t.elapsed());

        let t = Instant::now();
        let m = Migrator::from_embedded_set(&set, options(ctx)).unwrap();
        let mut conn = Connection::open(&db_plain).unwrap();
        let r = m.apply(&mut conn).unwrap();
        assert!(r.applied.is_empty() && r.already_applied.len() == 200 && !r.header_stamp_matched);
        plain.push(t.elapsed());
        theirs.push(peer(peer_bin, &peer_db, sql200));
    }
    let (o, p, t) = (median(ours), median(plain), median(theirs));
    let ratio = o.as_secs_f64() / t.as_secs_f64();
    vec![
        Row {
            case: "B2 embedded no-op start-up, 200 applied",
            ours: o,
            base: t,
            base_name: "rusqlite_migration to_latest",
            ratio,
            target: "<= 1.5x",
            ok: ratio <= 1.5,
            extra:
                "Migrator::from_embedded_set with stamp_user_version: build-time digests, header stamp read; \
                    nothing hashed but the 200 digests, ledger not read"
                    .into(),
        },
        Row {
            case: "B2 (reference) embedded, no stamp",
            ours: p,
            base: t,
            base_name: "rusqlite_migration to_latest",
            ratio: p.as_secs_f64() / t.as_secs_f64(),
            target: "-",
            ok: true,
            extra:
                "the same without stamp_user_version: reads the ledger, so SQLite loads the 400-object schema"
                    .into(),
        },
    ]
}

fn b3(ctx: &Ctx, peer_bin: &Path, sql50: &Path, plugins50: &Path) -> Vec<Row> {
    // rusqlite_migration runs every pending migration in one transaction;
    // wasmig does that with `single_transaction`, and by default gives each
    // migration its own (a native loop doing the same is measured too, as
    // that mode's floor). `pack-sql` components run as direct SQL; the last
    // two rows switch that off to show what compiling them costs, cold and
    // with the compiled-component cache warm (the database is fresh each run).
    let cache = ctx.root.join("component-cache");
    let run = |cache_dir: Option<PathBuf>, direct_sql: bool, single_transaction: bool| {
        cold(|| {
            let db = fresh_db(ctx, "b3.db");
            let limits = Limits { direct_sql, ..Limits::default() };
            let options = Options { cache_dir, limits, single_transaction, ..options(ctx) };
            let t = Instant::now();
            let m = Migrator::from_dir_with(plugins50, options).unwrap();
            let mut conn = Connection::open(&db).unwrap();
            let report = m.apply(&mut conn).unwrap();
            let elapsed = t.elapsed();
            assert_eq!(report.applied.len(), 50);
            assert!(report.applied.iter().all(|a| a.stats.direct_sql == direct_sql));
            elapsed
        })
    };
    let scripts: Vec<String> =
        (1..=50).map(|i| std::fs::read_to_string(sql50.join(format!("{i:04}.sql"))).unwrap()).collect();
    let native_each = || {
        let db = fresh_db(ctx, "b3n.db");
        let t = Instant::now();
        let conn = Connection::open(&db).unwrap();
        for sql in &scripts {
            conn.execute_batch(&format!("BEGIN IMMEDIATE;\n{sql}\nCOMMIT;")).unwrap();
        }
        t.elapsed()
    };
    let native_one = || {
        let db = fresh_db(ctx, "b3n1.db");
        let t = Instant::now();
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(&format!("BEGIN IMMEDIATE;\n{}\nCOMMIT;", scripts.concat())).unwrap();
        t.elapsed()
    };
    run(Some(cache.clone()), false, false);
    let mut times: [Vec<Duration>; 7] = Default::default();
    for _ in 0..ctx.runs {
        times[6].push(native_one());
        times[0].push(run(None, true, true));
        times[1].push(run(None, true, false));
        times[2].push(native_each());
        times[3].push(run(None, false, false));
        times[4].push(run(Some(cache.clone()), false, false));
        times[5].push(peer(peer_bin, &fresh_db(ctx, "b3peer.db"), sql50));
    }
    let [together, each, native, cold, warm, theirs, native_together] = times.map(median);
    let row = |case, o: Duration, target: &'static str, extra: String| {
        let ratio = o.as_secs_f64() / theirs.as_secs_f64();
        Row {
            case,
            ours: o,
            base: theirs,
            base_name: "rusqlite_migration to_latest",
            ratio,
            target,
            ok: target == "-" || ratio <= 2.0,
            extra,
        }
    };
    vec![
        row(
            "B3 cold apply, 50 migrations, single transaction",
            together,
            "<= 2x",
            format!(
                "--single-transaction (all or nothing, as rusqlite_migration); verifies 50 signatures; \
                 pack-sql components run as direct SQL; {:.2}x native rusqlite running the same SQL in \
                 one transaction ({:.1} ms)",
                together.as_secs_f64() / native_together.as_secs_f64(),
                ms(native_together)
            ),
        ),
        row(
            "B3 (reference) same, one transaction per migration",
            each,
            "-",
            format!(
                "the default; {:.2}x native rusqlite doing the same 50 transactions ({:.1} ms)",
                each.as_secs_f64() / native.as_secs_f64(),
                ms(native)
            ),
        ),
        row(
            "B3 (reference) components compiled",
            cold,
            "-",
            "one transaction each, --no-direct-sql: compiles 50 components (no cache)".into(),
        ),
        row(
            "B3 (reference) compiled, cache warm",
            warm,
            "-",
            "one transaction each, --no-direct-sql with the compiled-component cache warm".into(),
        ),
    ]
}

fn b4(ctx: &Ctx, sql50: &Path, plugins50: &Path, tenants: usize) -> Row {
    let plugins20 = ctx.root.join("plugins20");
    std::fs::create_dir_all(&plugins20).unwrap();
    let mut scripts = Vec::new();
    for i in 1..=20 {
        let name = Manifest::new(i, format!("m{i}")).file_name();
        std::fs::copy(plugins50.join(&name), plugins20.join(&name)).unwrap();
        scripts.push(std::fs::read_to_string(sql50.join(format!("{i:04}.sql"))).unwrap());
    }
    let threads = FleetOptions::default().parallelism;
    let dir = ctx.root.join("fleet");
    let reset = || {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (0..tenants).map(|i| dir.join(format!("tenant-{i:03}.db"))).collect::<Vec<_>>()
    };
    // The same loop, also keeping a ledger the way any migration tool must
    // (check inside the transaction, record the row): the floor for a tool
    // that records what it applied, shown next to the plain DDL.
    let native_fleet = |with_ledger: bool| {
        let dbs = reset();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(db) = dbs.get(i) else { break };
                        let conn = Connection::open(db).unwrap();
                        if with_ledger {
                            conn.execute_batch(
                                "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
                                 applied_at TEXT NOT NULL, checksum TEXT)",
                            )
                            .unwrap();
                        }
                        for (id, sql) in scripts.iter().enumerate() {
                            if !with_ledger {
                                conn.execute_batch(&format!("BEGIN IMMEDIATE;\n{sql}\nCOMMIT;")).unwrap();
                                continue;
                            }
                            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                            let done: Option<i64> = conn
                                .query_row("SELECT 1 FROM ledger WHERE id = ?1", [id as i64], |r| r.get(0))
                                .ok();
                            assert!(done.is_none());
                            conn.execute_batch(sql).unwrap();
                            conn.execute(
                                "INSERT INTO ledger VALUES (?1, 'm', '2026-01-01T00:00:00Z', ?2)",
                                rusqlite::params![id as i64, "0".repeat(64)],
                            )
                            .unwrap();
                            conn.execute_batch("COMMIT").unwrap();
                        }
                    }
                });
            }
        });
        t.elapsed()
    };
    let runs = ctx.runs.min(3);
    let (mut ours, mut native, mut native_ledger) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let dbs = reset();
        let t = Instant::now();
        let m = Migrator::from_dir_with(&plugins20, options(ctx)).unwrap();
        let report = m.apply_fleet(&dbs, FleetOptions::default(), |_, _| {});
        assert!(report.all_ok());
        ours.push(t.elapsed());

        native.push(native_fleet(false));
        native_ledger.push(native_fleet(true));
    }
    let (o, b, l) = (median(ours), median(native), median(native_ledger));
    // Throughput ratio: databases per second, ours over native.
    let ratio = b.as_secs_f64() / o.as_secs_f64();
    Row {
        case: "B4 fleet, 20 migrations x tenants",
        ours: o,
        base: b,
        base_name: "native rusqlite, same threads",
        ratio,
        target: ">= 0.7x throughput",
        ok: ratio >= 0.7,
        extra: format!(
            "{tenants} databases, {threads} threads; {:.0} db/s; {:.2}x native rusqlite that also keeps a \
             ledger ({:.1} ms)",
            tenants as f64 / o.as_secs_f64(),
            l.as_secs_f64() / o.as_secs_f64(),
            ms(l)
        ),
    }
}

/// B5: `pack-sql` on a 1 MB script, and applying it vs SQLite running the
/// same script natively in one transaction.
fn b5(ctx: &Ctx) -> Vec<Row> {
    let mut script = String::from("CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT);\n");
    for i in 0..20_000 {
        script.push_str(&format!(
            "INSERT INTO big (id, payload) VALUES ({i}, 'xxxxxxxxxxxxxxxxxxxx; row {i}');\n"
        ));
    }
    let (mut pack, mut ours, mut native) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        let t = Instant::now();
        let component = wasmig::component_for_sql(&script).unwrap();
        let m = Manifest::new(1, "big");
        let bytes = wasmig::pack(&component, &m, Some(&ctx.key)).unwrap();
        pack.push(t.elapsed());
        let migrator = signed_migrator(ctx, &m, bytes);
        ours.push(time_apply(ctx, &migrator, "b5.db"));
        let db = fresh_db(ctx, "b5n.db");
        let conn = Connection::open(&db).unwrap();
        let t = Instant::now();
        conn.execute_batch(&format!("BEGIN;\n{script}\nCOMMIT;")).unwrap();
        native.push(t.elapsed());
    }
    let (p, o, n) = (median(pack), median(ours), median(native));
    vec![
        Row {
            case: "B5 pack-sql, 1 MB script",
            ours: p,
            base: Duration::from_secs(1),
            base_name: "one second",
            ratio: p.as_secs_f64(),
            target: "well under 1 s",
            ok: p < Duration::from_millis(500),
            extra: format!("{} statements, {} bytes", 20_001, script.len()),
        },
        Row {
            case: "B5 apply that script",
            ours: o,
            base: n,
            base_name: "native execute_batch",
            ratio: o.as_secs_f64() / n.as_secs_f64(),
            target: "negligible overhead",
            ok: o.as_secs_f64() / n.as_secs_f64() < 1.5,
            extra: "recognised pack-sql component: statements run as direct SQL through the gate".into(),
        },
    ]
}

/// `n` signed copies of the SDK-built one-statement guest, each creating its
/// own table (the number over `0000` in the statement), in a directory.
fn sdk_history(ctx: &Ctx, guests: &Path, n: usize) -> (PathBuf, Vec<String>) {
    const PLACEHOLDER: &[u8] = b"bench_one_0000";
    let component = std::fs::read(guests.join("testing_bench_one.wasm")).expect("build the guests first");
    let at: Vec<usize> = (0..component.len().saturating_sub(PLACEHOLDER.len()))
        .filter(|&i| component[i..].starts_with(PLACEHOLDER))
        .collect();
    assert_eq!(at.len(), 1, "the statement's table name appears once in the component");
    let dir = ctx.root.join(format!("sdk{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut statements = Vec::new();
    for i in 1..=n {
        let table = format!("bench_one_{i:04}");
        let mut copy = component.clone();
        copy[at[0]..at[0] + PLACEHOLDER.len()].copy_from_slice(table.as_bytes());
        let m = Manifest::new(i as i64, format!("sdk{i}"));
        std::fs::write(dir.join(m.file_name()), wasmig::pack(&copy, &m, Some(&ctx.key)).unwrap()).unwrap();
        statements.push(format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"));
    }
    (dir, statements)
}

/// CPU time this process has used so far, all threads together (the
/// compiler runs on several), from `/proc/self/stat`; zero where there is none.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest.split_whitespace().skip(11).take(2).filter_map(|t| t.parse::<u64>().ok()).sum();
    // Linux reports these in USER_HZ, which is 100 on every architecture.
    Duration::from_millis(ticks * 10)
}

/// B6 (cold) and B7 (warm cache) for `n` SDK-built migrations, compiled by
/// `compiler`.
/// B6/B7 for `n` migrations compiled by `compiler`; with `disk`, the
/// databases (ours and native) live in that directory on a real disk
/// instead of the RAM disk, as in the issue's own measurement, where each
/// commit's fsync is part of what an application start-up waits for.
fn b6_b7(ctx: &Ctx, guests: &Path, n: usize, compiler: Compiler, disk: Option<&Path>) -> Vec<Row> {
    let db_root = disk.unwrap_or(&ctx.root);
    let (dir, statements) = sdk_history(ctx, guests, n);
    let cache = ctx.root.join(format!("sdk-cache{n}-{compiler}"));
    let limits = Limits { compiler, ..Limits::default() };
    // Times the whole apply, and its parts: reading the directory, planning
    // (verify every signature, compile or load every component, type-check,
    // pre-instantiate) and running the steps (instantiate, run, commit).
    let run = |empty_cache: bool| {
        cold(|| {
            if empty_cache {
                let _ = std::fs::remove_dir_all(&cache);
            }
            let db = fresh_db_in(db_root, "b6.db");
            let options = Options { cache_dir: Some(cache.clone()), limits, ..options(ctx) };
            let (t, cpu) = (Instant::now(), cpu_time());
            let m = Migrator::from_dir_with(&dir, options).unwrap();
            let read = t.elapsed();
            let mut conn = Connection::open(&db).unwrap();
            let plan = m.plan(&mut conn).unwrap();
            let planned = t.elapsed();
            for step in &plan.steps {
                let applied = m.apply_step(&mut conn, step).unwrap().expect("applied");
                assert!(!applied.stats.direct_sql);
            }
            let elapsed = t.elapsed();
            assert_eq!(plan.steps.len(), n);
            [elapsed, read, planned - read, elapsed - planned, cpu_time().saturating_sub(cpu)]
        })
    };
    // The same statements, each in its own transaction with the ledger check
    // and row any migration tool keeps.
    let native = || {
        let db = fresh_db_in(db_root, "b6n.db");
        let t = Instant::now();
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             applied_at TEXT NOT NULL, checksum TEXT)",
        )
        .unwrap();
        for (id, sql) in statements.iter().enumerate() {
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            let done: Option<i64> =
                conn.query_row("SELECT 1 FROM ledger WHERE id = ?1", [id as i64], |r| r.get(0)).ok();
            assert!(done.is_none());
            conn.execute(sql, []).unwrap();
            conn.execute(
                "INSERT INTO ledger VALUES (?1, 'm', '2026-01-01T00:00:00Z', ?2)",
                rusqlite::params![id as i64, "0".repeat(64)],
            )
            .unwrap();
            conn.execute_batch("COMMIT").unwrap();
        }
        t.elapsed()
    };
    let (mut cold, mut warm, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        base.push(native());
        cold.push(run(true));
        warm.push(run(false));
    }
    let parts = |runs: &[[Duration; 5]]| -> [Duration; 5] {
        std::array::from_fn(|i| median(runs.iter().map(|r| r[i]).collect()))
    };
    let (cp, wp, b) = (parts(&cold), parts(&warm), median(base));
    let (c, w) = (cp[0], wp[0]);
    let split = |p: [Duration; 5]| {
        format!(
            "read dir {:.1} ms, verify + compile/load + pre-instantiate {:.1} ms, run {n} steps {:.1} ms \
             ({:.2}x native)",
            ms(p[1]),
            ms(p[2]),
            ms(p[3]),
            p[3].as_secs_f64() / b.as_secs_f64()
        )
    };
    let kb = std::fs::metadata(guests.join("testing_bench_one.wasm")).map_or(0, |m| m.len()) as f64 / 1024.0;
    let row = |case, o: Duration, limit: f64, target, extra: String| {
        let ratio = o.as_secs_f64() / b.as_secs_f64();
        Row {
            case,
            ours: o,
            base: b,
            base_name: "native rusqlite, same transactions",
            ratio,
            target,
            ok: ratio <= limit,
            extra,
        }
    };
    let per = |d: Duration| ms(d) / n as f64;
    let (cold_case, warm_case) = match (n, compiler) {
        _ if disk.is_some() => (
            if n == 20 { "B6 on disk, 20 SDK-built migrations" } else { "B6 on disk (50)" },
            if n == 20 { "B7 on disk, 20, cache warm" } else { "B7 on disk (50), cache warm" },
        ),
        (20, Compiler::Cranelift) => {
            ("B6 cold apply, 20 SDK-built migrations", "B7 same, compiled-component cache warm")
        }
        (_, Compiler::Cranelift) => ("B6 cold apply, 50 SDK-built migrations", "B7 same (50), cache warm"),
        (20, _) => ("B6 (Winch) cold apply, 20 SDK-built migrations", "B7 (Winch) same, cache warm"),
        _ => ("B6 (Winch) cold apply, 50 SDK-built migrations", "B7 (Winch) same (50), cache warm"),
    };
    vec![
        row(
            cold_case,
            c,
            3.0,
            "<= 3x",
            format!(
                "{n} distinct {kb:.1} KiB components compiled by {compiler}, one transaction each: verify, \
                 compile, store in an empty cache, run; {:.2} ms each ({:.2} ms per KiB; CPU {:.2} ms per \
                 KiB); {}",
                per(c),
                per(c) / kb,
                per(cp[4]) / kb,
                split(cp)
            ),
        ),
        row(
            warm_case,
            w,
            1.2,
            "<= 1.2x",
            format!("verify, load the compiled code, run; {:.2} ms each; {}", per(w), split(wp)),
        ),
    ]
}

fn peak_rss(ctx: &Ctx, plugins50: &Path) -> (u64, bool) {
    let db = fresh_db(ctx, "rss.db");
    let me = std::env::current_exe().unwrap();
    let out = Command::new(me)
        .arg("--child-apply")
        .arg(plugins50)
        .arg(&db)
        .arg(ctx.root.join("bench.key.pub"))
        .output()
        .unwrap();
    let kib: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("child prints peak RSS");
    (kib, kib <= 64 * 1024)
}

fn child_apply(dir: &str, db: &str, key: &str) {
    let trust = TrustPolicy::from_key_files(&[PathBuf::from(key)]).unwrap();
    let m = Migrator::from_dir_with(dir, Options { trust, ..Options::default() }).unwrap();
    m.apply(&mut Connection::open(db).unwrap()).unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    println!("{hwm}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child-apply") {
        return child_apply(&args[1], &args[2], &args[3]);
    }
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let guests = PathBuf::from(
        flag("--guests").unwrap_or("guest-migrations/target/wasm32-unknown-unknown/release".into()),
    );
    let peer_bin =
        PathBuf::from(flag("--peer").unwrap_or("bench/peer/target/release/wasmig-bench-peer".into()));
    // The `wasmig` binary for the whole-process row (`--cli PATH`; by
    // default the release build beside this one, when there is one).
    let cli = flag("--cli").map(PathBuf::from).or_else(|| {
        let beside = std::env::current_exe().ok()?.with_file_name("wasmig");
        beside.is_file().then_some(beside)
    });
    let runs: usize = flag("--runs").and_then(|r| r.parse().ok()).unwrap_or(7);
    let tenants: usize = flag("--tenants").and_then(|r| r.parse().ok()).unwrap_or(500);
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let tmp = tempfile::Builder::new().prefix("wasmig-bench").tempdir_in(&base).unwrap();
    let root = tmp.path().to_owned();
    wasmig::keygen(&root.join("bench.key")).unwrap();
    let key = wasmig::read_secret_key(&root.join("bench.key")).unwrap();
    let trust = TrustPolicy::from_key_files(&[root.join("bench.key.pub")]).unwrap();
    let ctx = Ctx { root, key, trust, runs };
    eprintln!("preparing histories in {} ...", ctx.root.display());
    let (sql50, plugins50) = history(&ctx, 50);
    let (sql200, plugins200) = history(&ctx, 200);

    // `--only B1,B3` runs a subset (for profiling one case).
    let only = flag("--only").map(|o| o.to_ascii_uppercase());
    let wanted = |case: &str| only.as_deref().is_none_or(|o| o.split(',').any(|c| c.trim() == case));
    let mut rows = Vec::new();
    if wanted("B1") {
        eprintln!("B1 ...");
        rows.extend(b1(&ctx, &guests));
        rows.extend(b1_winch(&ctx, &guests));
    }
    if wanted("B2") {
        eprintln!("B2 ...");
        rows.extend(b2(&ctx, &peer_bin, &sql200, &plugins200));
        rows.extend(b2_embedded(&ctx, &peer_bin, &sql200, &plugins200));
        if let Some(cli) = &cli {
            rows.push(process::b2_cli(&ctx, cli, &peer_bin, &sql200, &plugins200));
        }
    }
    if wanted("B3") {
        eprintln!("B3 ...");
        rows.extend(b3(&ctx, &peer_bin, &sql50, &plugins50));
    }
    if wanted("B4") {
        eprintln!("B4 ...");
        rows.push(b4(&ctx, &sql50, &plugins50, tenants));
    }
    if wanted("B5") {
        eprintln!("B5 ...");
        rows.extend(b5(&ctx));
    }
    if wanted("B6") || wanted("B7") {
        eprintln!("B6/B7 ...");
        for compiler in Compiler::ALL {
            rows.extend(b6_b7(&ctx, &guests, 20, compiler, None));
            rows.extend(b6_b7(&ctx, &guests, 50, compiler, None));
        }
        // The same with the databases on disk (Cranelift): fsync included,
        // as an application's start-up pays it.
        let disk = tempfile::Builder::new().prefix("wasmig-bench-disk").tempdir_in("target").unwrap();
        rows.extend(b6_b7(&ctx, &guests, 20, Compiler::Cranelift, Some(disk.path())));
        rows.extend(b6_b7(&ctx, &guests, 50, Compiler::Cranelift, Some(disk.path())));
    }
    let (rss, rss_ok) = if wanted("RSS") { peak_rss(&ctx, &plugins50) } else { (0, true) };

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "wasmig bench: {cpu}, {cores} cores; median of {runs} runs (B4: {}); databases in {}",
        runs.min(3),
        base.display()
    );
    println!();
    println!("| case | wasmig | baseline | baseline is | ratio | target | met | note |");
    println!("| --- | ---: | ---: | --- | ---: | --- | --- | --- |");
    for r in &rows {
        println!(
            "| {} | {:.1} ms | {:.1} ms | {} | {:.2}x | {} | {} | {} |",
            r.case,
            ms(r.ours),
            ms(r.base),
            r.base_name,
            r.ratio,
            r.target,
            if r.ok { "yes" } else { "NO" },
            r.extra
        );
    }
    if wanted("RSS") {
        println!(
            "| peak RSS, 50 migrations | {:.1} MiB | - | - | - | <= 64 MiB | {} | separate process |",
            rss as f64 / 1024.0,
            if rss_ok { "yes" } else { "NO" }
        );
    }
}
