//! Running one migration under limits: the engine, the `sql` bindings, the
//! host side of each call, the SQL gate and the compiled-code cache.

mod bindings;
mod compile_cache;
mod engine;
pub(crate) mod gate;
pub(crate) mod host_sql;
pub(crate) mod limiter;
pub(crate) mod session;
pub(crate) mod sqlfuncs;
pub(crate) mod sqlite_heap;

pub use compile_cache::{CompileCache, default_cache_dir};
pub use engine::*;
pub use gate::SqlLimits;
pub use host_sql::CallLimits;
