//! `wasmig test --round-trip`: rehearse each pending migration's up, down
//! and up again on a copy of the database, and report every one whose down
//! does not restore the schema and row counts it started from.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use wasmig::{Migrator, Options, RoundTrip, RoundTripOutcome};

use crate::exit::RehearsalFailed;
use crate::output::{print_json, warn_unsigned};

/// `test --round-trip --json`.
#[derive(Serialize)]
struct RoundTripJson<'a> {
    database: &'a Path,
    round_trip: &'a RoundTrip,
    ok: bool,
}

pub fn run(db: &Path, dir: &Path, options: Options, json: bool) -> Result<()> {
    let migrator = Migrator::from_dir_with(dir, options)?;
    warn_unsigned(&migrator);
    let r = migrator.rehearse_round_trip(db)?;
    if json {
        print_json(&RoundTripJson { database: db, round_trip: &r, ok: r.all_ok() });
    } else {
        println!(
            "rehearsing up, down and up again on a copy of {} (the real file is only read)",
            db.display()
        );
        for s in &r.steps {
            let verdict = match &s.outcome {
                RoundTripOutcome::Ok => "ok: down restores the schema and row counts".to_owned(),
                RoundTripOutcome::NotRestored => {
                    "NOT RESTORED: down leaves the database different".to_owned()
                }
                RoundTripOutcome::NoDown => "NO DOWN: forward-only, cannot be reverted".to_owned(),
                RoundTripOutcome::UpFailed(why) => format!("UP FAILED: {why}"),
                RoundTripOutcome::DownFailed(why) => format!("DOWN FAILED: {why}"),
                RoundTripOutcome::UpAgainFailed(why) => format!("UP AGAIN FAILED: {why}"),
                RoundTripOutcome::NotReached => "not reached (an earlier migration failed)".to_owned(),
            };
            println!("{:04} {} — {verdict}", s.id, s.name);
            for line in &s.differences {
                println!("    {line}");
            }
        }
        let ok = r.steps.iter().filter(|s| s.outcome == RoundTripOutcome::Ok).count();
        println!("{ok} of {} pending round-trip, {} already applied", r.steps.len(), r.already_applied.len());
    }
    if !r.all_ok() {
        return Err(RehearsalFailed.into());
    }
    Ok(())
}
