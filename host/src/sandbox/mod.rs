//! Running one migration under limits: the engine, the `sql` bindings, the
//! host side of each call, the SQL gate and the compiled-code cache.

mod bindings;
pub mod compile_cache;
mod engine;
pub mod gate;
mod host_sql;

pub use compile_cache::CompileCache;
pub use engine::*;
pub use host_sql::CallLimits;
pub(crate) use host_sql::{CallStats, HostState, SqliteBudget, Value};
