//! The only module that names types generated from `wit/`.
//!
//! It wires the generated `sql` host trait to [`HostState`]'s calls and
//! converts generated values to wasmig's own (moving, never cloning, the
//! payloads), so the rest of the crate is independent of the code generator.

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store};

use crate::host_sql::{CallResult, ErrorKind, HostState, QueryRows, SqlError, Value};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasmig:migration/migration@0.1.0",
        // Host calls may trap: a poisoned transaction must stop the guest.
        imports: { default: trappable },
    });
}

use generated::wasmig::migration::sql as wit;

/// The one interface a migration may import, as a component import name.
pub(crate) const SQL_IMPORT: &str = "wasmig:migration/sql@0.1.0";

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

fn finish<T, U>(r: CallResult<T>, ok: impl FnOnce(T) -> U) -> wasmtime::Result<Result<U, wit::SqlError>> {
    match r {
        Ok(Ok(v)) => Ok(Ok(ok(v))),
        Ok(Err(e)) => Ok(Err(err_to_wit(e))),
        Err(fault) => Err(wasmtime::Error::msg(fault.0)),
    }
}

impl wit::Host for HostState {
    fn exec(&mut self, sql: String, params: Vec<wit::Value>) -> wasmtime::Result<Result<u64, wit::SqlError>> {
        let params = params.into_iter().map(from_wit).collect();
        finish(self.exec_sql(&sql, params), |n| n)
    }

    fn query(
        &mut self,
        sql: String,
        params: Vec<wit::Value>,
    ) -> wasmtime::Result<Result<wit::Rows, wit::SqlError>> {
        let params = params.into_iter().map(from_wit).collect();
        finish(self.query_sql(&sql, params), |QueryRows { columns, values }| wit::Rows {
            columns,
            values: values.into_iter().map(|r| r.into_iter().map(to_wit).collect()).collect(),
        })
    }

    fn add_column_if_missing(
        &mut self,
        table: String,
        column: String,
        decl: String,
    ) -> wasmtime::Result<Result<bool, wit::SqlError>> {
        finish(self.add_column(&table, &column, &decl), |b| b)
    }
}

/// A linker that provides exactly the `sql` interface and nothing else.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    generated::Migration::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A component compiled, linked and type-checked against the migration world.
#[derive(Clone)]
pub(crate) struct Prepared(generated::MigrationPre<HostState>);

impl Prepared {
    /// Type-checks `pre`'s exports against the world.
    pub(crate) fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(Prepared(generated::MigrationPre::new(pre)?))
    }

    /// Instantiates and calls `up`. The outer error is a trap or host fault;
    /// the inner one is the guest's own `Err`.
    pub(crate) fn call_up(&self, store: &mut Store<HostState>) -> wasmtime::Result<Result<(), String>> {
        let instance = self.0.instantiate(&mut *store)?;
        instance.call_up(store)
    }
}

/// The import names of `component`, for refusing anything but [`SQL_IMPORT`]
/// with a message that lists them.
pub(crate) fn import_names(engine: &Engine, component: &Component) -> Vec<String> {
    component.component_type().imports(engine).map(|(name, _)| name.to_owned()).collect()
}
