//! The only module that names types generated from `wit/`.
//!
//! It wires the generated `sql` host trait to [`HostState`]'s calls and
//! converts generated values to wasmig's own (moving, never cloning, the
//! payloads), so the rest of the crate is independent of the code generator.
//!
//! Code is generated for the newest `sql` interface only (0.2.0). Older
//! `sql` interfaces are served from it by hand ([`add_v0_1`]): each released
//! version is a subset of the next with identical types, and wasmtime checks
//! imports by structure, so the newest generated types lift and lower them
//! too. World 0.3.0 imports that same `sql@0.2.0` and adds the `down` export,
//! so its exports are generated on their own (`reversible`), reusing the
//! `sql` types above.

use wasmtime::StoreContextMut;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store};

use super::host_sql::{BatchError, ErrorKind, Fault, HostState, QueryRows, SqlError, Value};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        world: "wasmig:migration/migration@0.2.0",
        // Host calls may trap: a poisoned transaction must stop the guest.
        imports: { default: trappable },
    });
}

mod reversible {
    wasmtime::component::bindgen!({
        path: "../wit/v0.3.0",
        world: "wasmig:migration/migration@0.3.0",
        imports: { default: trappable },
        // The same interface as 0.2.0's world: one set of host types.
        with: { "wasmig:migration/sql@0.2.0": super::generated::wasmig::migration::sql },
    });
}

use generated::wasmig::migration::sql as wit;

/// The `sql` interface of world 0.1.0.
const SQL_V0_1: &str = crate::worlds::WORLDS[0].1;

fn from_wit(v: wit::Value) -> Value {
    match v {
        wit::Value::Null => Value::Null,
        wit::Value::Integer(i) => Value::Integer(i),
        wit::Value::Real(r) => Value::Real(r),
        wit::Value::Text(s) => Value::Text(s),
        wit::Value::Blob(b) => Value::Blob(b),
    }
}

fn to_wit(v: Value) -> wit::Value {
    match v {
        Value::Null => wit::Value::Null,
        Value::Integer(i) => wit::Value::Integer(i),
        Value::Real(r) => wit::Value::Real(r),
        Value::Text(s) => wit::Value::Text(s),
        Value::Blob(b) => wit::Value::Blob(b),
    }
}

fn err_to_wit(e: SqlError) -> wit::SqlError {
    wit::SqlError {
        kind: match e.kind {
            ErrorKind::Sqlite => wit::ErrorKind::Sqlite,
            ErrorKind::Denied => wit::ErrorKind::Denied,
            ErrorKind::Limit => wit::ErrorKind::Limit,
            ErrorKind::Invalid => wit::ErrorKind::Invalid,
        },
        code: e.code,
        message: e.message,
    }
}

fn batch_err_to_wit(e: BatchError) -> wit::BatchError {
    wit::BatchError { run: e.run, error: err_to_wit(e.error) }
}

/// A host call's result as wasmtime wants it: a fault traps, the guest's
/// error and value are converted.
fn finish<T, U, E, W>(
    r: Result<Result<T, E>, Fault>,
    ok: impl FnOnce(T) -> U,
    err: impl FnOnce(E) -> W,
) -> wasmtime::Result<Result<U, W>> {
    match r {
        Ok(r) => Ok(r.map(ok).map_err(err)),
        Err(fault) => Err(wasmtime::Error::msg(fault.0)),
    }
}

impl wit::Host for HostState {
    fn exec(&mut self, sql: String, params: Vec<wit::Value>) -> wasmtime::Result<Result<u64, wit::SqlError>> {
        let params = params.into_iter().map(from_wit).collect();
        finish(self.exec_sql(&sql, params), |n| n, err_to_wit)
    }

    fn exec_many(
        &mut self,
        sql: String,
        runs: u32,
        params: Vec<wit::Value>,
    ) -> wasmtime::Result<Result<u64, wit::BatchError>> {
        let params = params.into_iter().map(from_wit).collect();
        finish(self.exec_many_sql(&sql, runs, params), |n| n, batch_err_to_wit)
    }

    fn query(
        &mut self,
        sql: String,
        params: Vec<wit::Value>,
    ) -> wasmtime::Result<Result<wit::Rows, wit::SqlError>> {
        let params = params.into_iter().map(from_wit).collect();
        finish(
            self.query_sql(&sql, params),
            |QueryRows { columns, values }| wit::Rows {
                columns,
                values: values.into_iter().map(|r| r.into_iter().map(to_wit).collect()).collect(),
            },
            err_to_wit,
        )
    }

    fn add_column_if_missing(
        &mut self,
        table: String,
        column: String,
        decl: String,
    ) -> wasmtime::Result<Result<bool, wit::SqlError>> {
        finish(self.add_column(&table, &column, &decl), |b| b, err_to_wit)
    }
}

/// A linker that provides exactly the `sql` interfaces of every released
/// world (0.1.0 and 0.2.0) and nothing else.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    generated::Migration::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    add_v0_1(&mut linker)?;
    Ok(linker)
}

/// Serves `sql@0.1.0`: 0.2.0 less `exec-many`, through the same host calls.
fn add_v0_1(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wit::Host as _;
    type Cx<'a> = StoreContextMut<'a, HostState>;
    let mut sql = linker.instance(SQL_V0_1)?;
    sql.func_wrap("exec", |mut cx: Cx<'_>, (sql, params): (String, Vec<wit::Value>)| {
        Ok((cx.data_mut().exec(sql, params)?,))
    })?;
    sql.func_wrap("query", |mut cx: Cx<'_>, (sql, params): (String, Vec<wit::Value>)| {
        Ok((cx.data_mut().query(sql, params)?,))
    })?;
    sql.func_wrap(
        "add-column-if-missing",
        |mut cx: Cx<'_>, (table, column, decl): (String, String, String)| {
            Ok((cx.data_mut().add_column_if_missing(table, column, decl)?,))
        },
    )?;
    Ok(())
}

/// Which of a migration's exports to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `up`: apply the migration.
    Up,
    /// `down`: revert it (world 0.3.0 only).
    Down,
}

/// A component compiled, linked and type-checked against its world.
#[derive(Clone)]
pub(crate) enum Prepared {
    /// Worlds 0.1.0 and 0.2.0: `up` only.
    Forward(generated::MigrationPre<HostState>),
    /// World 0.3.0: `up` and `down`.
    Reversible(reversible::MigrationPre<HostState>),
}

impl Prepared {
    /// Type-checks `pre`'s exports against the world: with `down` when
    /// `reversible` (the manifest names world 0.3.0), else `up` alone.
    pub(crate) fn new(pre: InstancePre<HostState>, reversible: bool) -> wasmtime::Result<Self> {
        Ok(if reversible {
            Prepared::Reversible(reversible::MigrationPre::new(pre)?)
        } else {
            Prepared::Forward(generated::MigrationPre::new(pre)?)
        })
    }

    /// True when the component exports `down`.
    pub(crate) fn has_down(&self) -> bool {
        matches!(self, Prepared::Reversible(_))
    }

    /// Instantiates and calls `entry`. The outer error is a trap or host
    /// fault; the inner one is the guest's own `Err`.
    pub(crate) fn call(
        &self,
        store: &mut Store<HostState>,
        entry: Entry,
    ) -> wasmtime::Result<Result<(), String>> {
        match (self, entry) {
            (Prepared::Forward(pre), Entry::Up) => pre.instantiate(&mut *store)?.call_up(store),
            (Prepared::Reversible(pre), Entry::Up) => pre.instantiate(&mut *store)?.call_up(store),
            (Prepared::Reversible(pre), Entry::Down) => pre.instantiate(&mut *store)?.call_down(store),
            (Prepared::Forward(_), Entry::Down) => {
                Err(wasmtime::Error::msg("the component exports no `down`: it is forward-only"))
            }
        }
    }
}

/// The import names of `component`, for refusing anything but the `sql`
/// interface of its world with a message that lists them.
pub(crate) fn import_names(engine: &Engine, component: &Component) -> Vec<String> {
    component.component_type().imports(engine).map(|(name, _)| name.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worlds::WORLDS;

    /// Loads the WIT package of `world` from `wit/` into `resolve` (unless
    /// it is there already, as a dependency of a later version).
    fn load(resolve: &mut wit_parser::Resolve, world: &str) -> wit_parser::WorldId {
        let version = world.rsplit_once('@').unwrap().1;
        let known = resolve
            .packages
            .iter()
            .find(|(_, p)| p.name.version.as_ref().is_some_and(|v| v.to_string() == version));
        if let Some((pkg, _)) = known {
            return resolve.select_world(&[pkg], Some("migration")).unwrap();
        }
        let dir = if version == "0.1.0" { "../wit".to_owned() } else { format!("../wit/v{version}") };
        let (pkg, _) = resolve.push_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)).unwrap();
        resolve.select_world(&[pkg], Some("migration")).unwrap()
    }

    /// A component that imports every function of `world` and exports `up`.
    fn component_of(world: &str) -> Vec<u8> {
        let mut resolve = wit_parser::Resolve::default();
        let id = load(&mut resolve, world);
        let mut module = wit_component::dummy_module(&resolve, id, wit_parser::ManglingAndAbi::Standard32);
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            id,
            wit_component::StringEncoding::UTF8,
        )
        .unwrap();
        wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
    }

    #[test]
    fn links_components_of_every_released_world() {
        let engine = Engine::default();
        let linker = linker(&engine).unwrap();
        for (world, sql) in WORLDS {
            let component = Component::new(&engine, component_of(world)).unwrap();
            assert_eq!(import_names(&engine, &component), vec![sql.to_string()], "{world}");
            let pre = linker.instantiate_pre(&component).unwrap_or_else(|e| panic!("{world}: {e:#}"));
            let reversible = crate::worlds::is_reversible(world);
            assert_eq!(Prepared::new(pre.clone(), reversible).unwrap().has_down(), reversible, "{world}");
            // Every world's component also passes as forward-only (`up`).
            Prepared::new(pre, false).unwrap();
        }
    }

    #[test]
    fn packing_records_the_world_a_component_imports() {
        for (world, _) in WORLDS {
            let packed =
                crate::plugin::with_manifest(&component_of(world), &crate::Manifest::new(1, "x")).unwrap();
            assert_eq!(crate::plugin::read_manifest(&packed).unwrap().world, *world);
        }
    }

    #[test]
    fn each_world_only_adds_to_the_one_before() {
        // Serving 0.1.0 with 0.2.0's generated types relies on this.
        for pair in WORLDS.windows(2) {
            let mut resolve = wit_parser::Resolve::default();
            // The newer first: 0.3.0 brings 0.2.0 along as its dependency.
            let next = load(&mut resolve, pair[1].0);
            let prev = load(&mut resolve, pair[0].0);
            if pair[0].1 == pair[1].1 {
                // Same `sql`: the new world adds exports only (`down`), which
                // semver_check (more imports, fewer exports) cannot express.
                let names = |w: wit_parser::WorldId, imports: bool| -> Vec<String> {
                    let world = &resolve.worlds[w];
                    let items = if imports { &world.imports } else { &world.exports };
                    items.keys().map(|k| resolve.name_world_key(k)).collect()
                };
                assert_eq!(names(prev, true), names(next, true), "{} -> {}", pair[0].0, pair[1].0);
                let mut added = names(next, false);
                added.retain(|n| !names(prev, false).contains(n));
                assert_eq!(added, ["down"], "{} -> {}", pair[0].0, pair[1].0);
                continue;
            }
            wit_component::semver_check(resolve, prev, next)
                .unwrap_or_else(|e| panic!("{} -> {}: {e:#}", pair[0].0, pair[1].0));
        }
    }

    #[test]
    fn the_copy_of_0_2_0_in_0_3_0_deps_is_byte_identical() {
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let original = std::fs::read(wit.join("v0.2.0/migration.wit")).unwrap();
        let copy = std::fs::read(wit.join("v0.3.0/deps/v0.2.0/migration.wit")).unwrap();
        assert!(original == copy, "wit/v0.3.0/deps/v0.2.0 must be the frozen 0.2.0 file");
    }
}
