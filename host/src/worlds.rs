//! The worlds this release runs: the one place that names them.
//!
//! A world is a version of the contract in `wit/` (`wit/migration.wit` is
//! 0.1.0, `wit/v0.2.0/` is 0.2.0, `wit/v0.3.0/` is 0.3.0). Each names the one
//! `sql` interface a component targeting it may import. World 0.3.0 adds no
//! host call (it imports `sql@0.2.0`) but a `down` export: it is the one
//! reversible world, and a component exporting `down` targets it. The generated bindings (see
//! `sandbox::bindings`) serve every world listed here, and a unit test there
//! checks that each world only adds to the one before.

/// Every world this release runs, oldest first, each with the one interface
/// a component targeting it may import. Released worlds are never dropped:
/// a file packed for 0.1.0 keeps running on every later host.
pub const WORLDS: &[(&str, &str)] = &[
    ("wasmig:migration/migration@0.1.0", "wasmig:migration/sql@0.1.0"),
    ("wasmig:migration/migration@0.2.0", "wasmig:migration/sql@0.2.0"),
    ("wasmig:migration/migration@0.3.0", "wasmig:migration/sql@0.2.0"),
];

/// The world whose components export `down` as well as `up`, so their
/// migration can be reverted. Every other world is forward-only.
pub const REVERSIBLE_WORLD: &str = "wasmig:migration/migration@0.3.0";

/// The name of the export that reverts a migration of [`REVERSIBLE_WORLD`].
pub const DOWN_EXPORT: &str = "down";

/// True when a component targeting `world` exports `down`.
pub fn is_reversible(world: &str) -> bool {
    world == REVERSIBLE_WORLD
}

/// The first world, which every release runs: what [`Manifest::new`]
/// records until [`pack`] reads the `sql` version the component imports. A
/// component that imports no `sql` at all keeps it, so the oldest hosts can
/// run it too.
pub const WORLD: &str = "wasmig:migration/migration@0.1.0";

/// The `sql` interface a component targeting `world` may import, if this
/// release runs that world.
pub fn sql_import_of(world: &str) -> Option<&'static str> {
    WORLDS.iter().find(|(w, _)| *w == world).map(|(_, sql)| *sql)
}
