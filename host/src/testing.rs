//! Helpers for migration authors' own Rust tests.
//!
//! Run one component against an in-memory or fixture database and assert
//! that it applied, or that it failed and left the database exactly as it
//! was (schema and every row compared). Components need not be packed or
//! signed: the harness wraps the bytes itself.
//!
//! ```no_run
//! use wasmig::testing;
//!
//! let component = std::fs::read("target/wasm32-unknown-unknown/release/my_migration.wasm").unwrap();
//! let mut conn = rusqlite::Connection::open_in_memory().unwrap();
//! conn.execute_batch("CREATE TABLE images (id TEXT PRIMARY KEY)").unwrap();
//! let applied = testing::assert_applies(&component, &mut conn);
//! println!("ran in {:?}", applied.duration);
//! ```

use std::path::PathBuf;

use rusqlite::Connection;

use crate::apply::snapshot::Snapshot;
use crate::apply::{Applied, Migrator, Options};
use crate::error::{Error, FormatError, Result};
use crate::ledger;
use crate::plugin::{self, Manifest, Plugin};
use crate::plugin::{TrustPolicy, Verdict};
use crate::sandbox::Limits;

/// Runs `component` (a bare component or a packed plugin) as the next
/// migration of `conn`, under `limits`, through the same path as `apply`.
pub fn run_component_with(component: &[u8], conn: &mut Connection, limits: Limits) -> Result<Applied> {
    let migrator = migrator_for(component, conn, limits)?;
    let report = migrator.apply(conn)?;
    report.applied.into_iter().next().ok_or_else(|| Error::Internal("the component was not run".into()))
}

/// A migrator holding just `component`, as the next migration of `conn`
/// (whose ledger it creates), trusting it unsigned.
fn migrator_for(component: &[u8], conn: &mut Connection, limits: Limits) -> Result<Migrator> {
    ledger::ensure(conn)?;
    let next_id = ledger::read_all(conn)?.keys().next_back().map_or(1, |id| id + 1);
    let bad = |reason: FormatError| Error::BadPlugin {
        path: PathBuf::from("<component under test>"),
        reason: reason.to_string(),
    };
    let manifest = match plugin::read_manifest(component) {
        Ok(m) => Manifest { id: next_id, ..m },
        // A bare component has declared nothing yet: the harness tests what
        // its SQL does, so it may drop and rename (a packed file keeps its
        // own manifest, and `apply`'s refusal of undeclared drops with it).
        Err(_) => Manifest {
            capabilities: vec![plugin::CAP_DESTRUCTIVE.to_owned()],
            ..Manifest::new(next_id, "component_under_test")
        },
    };
    // The world the component really imports, as packing would record it.
    let manifest = manifest.targeting(component).map_err(bad)?;
    let bytes = plugin::with_manifest(&strip_signature(component)?, &manifest).map_err(bad)?;
    let digest = plugin::content_digest(&bytes).map_err(bad)?;
    let p = Plugin {
        path: PathBuf::from(manifest.file_name()),
        manifest,
        bytes: bytes.into(),
        digest,
        verdict: Verdict::Unsigned,
    };
    // One component against whatever the database already has: earlier
    // ledger rows have no file here, and that is expected.
    let options = Options {
        limits,
        allow_missing: true,
        trust: TrustPolicy { allow_unsigned: true, ..TrustPolicy::default() },
        ..Options::default()
    };
    Migrator::from_plugins(vec![p], options)
}

/// Runs a reversible `component`'s `up`, then its `down`, then `up` again,
/// as the next migration of `conn`, and panics unless all three succeed and
/// `down` left every schema object and every row (wasmig's own ledger
/// tables aside) exactly as they were before `up`, and `up` ended the same
/// way both times. Returns the second `up`.
pub fn assert_round_trips(component: &[u8], conn: &mut Connection) -> Applied {
    let user = |conn: &Connection| {
        let mut snap = Snapshot::take(conn).expect("snapshot");
        snap.schema.retain(|o| !crate::apply::is_ledger_name(&o.table));
        snap.rows.retain(|t, _| !crate::apply::is_ledger_name(t));
        snap
    };
    ledger::ensure(conn).expect("creating the ledger");
    let before = user(conn);
    let migrator = migrator_for(component, conn, Limits::default()).expect("loading the component");
    let id = migrator.plugins()[0].id();
    let up = |conn: &mut Connection| match migrator.apply(conn) {
        Ok(r) if r.applied.len() == 1 => r.applied.into_iter().next().expect("one applied"),
        Ok(_) => panic!("the migration did not run"),
        Err(e) => panic!("up was expected to apply but failed:\n{e}"),
    };
    up(conn);
    let after_up = user(conn);
    if let Err(e) = migrator.revert_to(conn, id - 1) {
        panic!("down was expected to revert but failed:\n{e}");
    }
    let after_down = user(conn);
    if before != after_down {
        panic!(
            "down did not restore the database:\nschema: {:?}\nrows: {:?}",
            before.schema_diff(&after_down),
            before.row_changes(&after_down)
        );
    }
    let again = up(conn);
    let after_again = user(conn);
    if after_up != after_again {
        panic!(
            "up ended differently after down:\nschema: {:?}\nrows: {:?}",
            after_up.schema_diff(&after_again),
            after_up.row_changes(&after_again)
        );
    }
    again
}

fn strip_signature(bytes: &[u8]) -> Result<Vec<u8>> {
    let secs = plugin::sections(bytes).map_err(|reason| Error::BadPlugin {
        path: PathBuf::from("<component under test>"),
        reason: reason.to_string(),
    })?;
    let mut out = bytes[..8].to_vec();
    for s in secs.iter().filter(|s| s.name != Some(plugin::SIGNATURE_SECTION)) {
        out.extend_from_slice(&bytes[s.range.clone()]);
    }
    Ok(out)
}

/// [`run_component_with`] under default limits.
pub fn run_component(component: &[u8], conn: &mut Connection) -> Result<Applied> {
    run_component_with(component, conn, Limits::default())
}

/// Runs `component` and panics (with the error) unless it applied.
pub fn assert_applies(component: &[u8], conn: &mut Connection) -> Applied {
    match run_component(component, conn) {
        Ok(a) => a,
        Err(e) => panic!("migration was expected to apply but failed:\n{e}"),
    }
}

/// Runs `component` expecting it to fail; panics if it applied or if the
/// database differs in any schema object or row afterwards. Returns the error.
pub fn assert_fails_unchanged(component: &[u8], conn: &mut Connection) -> Error {
    assert_fails_unchanged_with(component, conn, Limits::default())
}

/// [`assert_fails_unchanged`] under `limits`.
pub fn assert_fails_unchanged_with(component: &[u8], conn: &mut Connection, limits: Limits) -> Error {
    // The ledger is created first so its creation is not counted as a change.
    ledger::ensure(conn).expect("creating the ledger");
    let before = Snapshot::take(conn).expect("snapshot before");
    let result = run_component_with(component, conn, limits);
    let after = Snapshot::take(conn).expect("snapshot after");
    let err = match result {
        Ok(a) => panic!("migration was expected to fail but applied ({} rows changed)", a.stats.rows_changed),
        Err(e) => e,
    };
    if before != after {
        panic!(
            "migration failed ({err}) but changed the database:\nschema: {:?}\nrows: {:?}",
            before.schema_diff(&after),
            before.row_changes(&after)
        );
    }
    err
}
