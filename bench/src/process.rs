//! B2 as the command line runs it: `wasmig apply` with nothing pending, a
//! whole process (start, read and check 200 files, read the ledger, check
//! the schema, exit), against the rusqlite_migration peer as a whole
//! process on the same history. The in-process rows leave out what every
//! start-up by the CLI pays on top: loading the binary, parsing arguments,
//! and tearing the migrator down.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Ctx, Row, fresh_db, median};

/// Wall time of `cmd` from spawn to exit; it must succeed.
fn time_process(mut cmd: Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("starting a benchmark process");
    let elapsed = t.elapsed();
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    elapsed
}

pub(super) fn b2_cli(ctx: &Ctx, cli: &Path, peer_bin: &Path, sql200: &Path, plugins200: &Path) -> Row {
    let db = fresh_db(ctx, "b2cli.db");
    let peer_db = fresh_db(ctx, "b2clipeer.db");
    // The CLI's default compiled-component cache, kept inside the
    // benchmark's directory (nothing is compiled on a no-op start-up).
    let cache_home = ctx.root.join("xdg-cache");
    let apply = || {
        let mut cmd = Command::new(cli);
        cmd.env("XDG_CACHE_HOME", &cache_home)
            .arg("apply")
            .arg("--db")
            .arg(&db)
            .arg("--trust")
            .arg(ctx.root.join("bench.key.pub"))
            .arg(plugins200);
        cmd
    };
    let peer = || {
        let mut cmd = Command::new(peer_bin);
        cmd.arg(&peer_db).arg(sql200);
        cmd
    };
    time_process(apply());
    time_process(peer());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        ours.push(time_process(apply()));
        theirs.push(time_process(peer()));
    }
    let (o, t) = (median(ours), median(theirs));
    Row {
        case: "B2 (reference) CLI no-op start-up, whole process",
        ours: o,
        base: t,
        base_name: "rusqlite_migration peer, whole process",
        ratio: o.as_secs_f64() / t.as_secs_f64(),
        target: "-",
        ok: true,
        extra: "`wasmig apply` with 200 applied, spawn to exit (binary load, arguments, 200 files read and \
                hashed, ledger and schema checked, teardown) vs the peer process applying nothing on the same \
                history"
            .into(),
    }
}
