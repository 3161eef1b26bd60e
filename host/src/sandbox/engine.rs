//! Running one migration component inside limits.
//!
//! The sandbox owns the wasmtime engine and the linker (which provides only
//! the `sql` interface). [`Sandbox::prepare`] compiles and type-checks a
//! component; [`Sandbox::run`] moves the connection into a fresh store (a
//! store's data must be `'static`), closes the SQL gate, calls `up` under
//! fuel, epoch, memory and SQLite-work limits, and hands the connection back
//! with the outcome. Opening and ending the transaction is the caller's job.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, Store, Strategy, Trap, WasmBacktraceDetails};

pub use super::bindings::Entry;
use super::bindings::{self, Prepared};
use super::compile_cache::CompileCache;
use super::gate::{Denials, SqlLimits};
use super::host_sql::{CallLimits, CallStats, HostState, SqliteBudget};
use super::limiter::{GuestLimiter, MEMORY_LIMIT_HIT, TABLE_LIMIT_HIT};
use super::session::{Session, SessionLimits};
use crate::error::{Error, Result};
use crate::plugin::{self, Plugin};

/// How often the epoch ticker advances; the deadline's resolution.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// SQLite virtual-machine steps between progress-handler checks.
const SQLITE_OPS_PER_CHECK: u64 = 1000;

/// Resource limits for one migration. Every limit is reported by name when hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// WebAssembly fuel (roughly, instructions) the guest may burn.
    pub fuel: u64,
    /// Wall-clock time for the whole migration, guest and SQLite together.
    pub deadline: Duration,
    /// Largest linear memory, in bytes.
    pub max_memory_bytes: usize,
    /// Largest table, in elements.
    pub max_table_elements: usize,
    /// Most instances (core and component) one migration may create.
    pub max_instances: usize,
    /// Guest stack, in bytes.
    pub max_stack_bytes: usize,
    /// SQLite virtual-machine steps across all of a migration's statements.
    pub sqlite_ops: u64,
    /// Bytes SQLite itself may allocate for this migration, on top of what
    /// the process's SQLite held when it started (see the `sqlite_heap`
    /// module: the bound is process-wide while guests run).
    pub max_sqlite_heap_bytes: u64,
    /// Limits SQLite enforces on statements.
    pub sql: SqlLimits,
    /// Limits on each host call.
    pub calls: CallLimits,
    /// Run components that `pack-sql` generated as direct SQL (see
    /// [`Compiled::is_direct_sql`]). On by default; off compiles and
    /// instantiates them like any other component.
    pub direct_sql: bool,
    /// Which of wasmtime's compilers turns components into machine code.
    /// Part of the engine configuration, so of the compiled-component cache's
    /// key: an entry one compiler wrote is never loaded by the other.
    pub compiler: Compiler,
}

/// Which of wasmtime's code generators compiles migrations.
///
/// Both run the same sandbox: fuel, the epoch deadline, memory, table,
/// instance and stack limits, and traps with backtraces are reported the same
/// way (the e2e tests run every limit under both). They differ in cost:
/// Winch compiles about four times faster and its code runs slower, which
/// matters for guests that loop long in WebAssembly (backfills); see the
/// README's Performance section for the numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compiler {
    /// Cranelift, wasmtime's optimising compiler.
    #[default]
    Cranelift,
    /// Winch, wasmtime's single-pass baseline compiler. Fuel is counted as
    /// under Cranelift except for bulk operations: Cranelift also charges
    /// one unit per byte of `memory.copy`, `memory.fill` and `memory.init`
    /// (and per element of `table.grow`, `table.fill`, `table.copy` and
    /// `table.init`), Winch only the instruction.
    Winch,
}

impl Compiler {
    /// Every compiler, in the order the CLI lists them.
    pub const ALL: [Compiler; 2] = [Compiler::Cranelift, Compiler::Winch];

    /// The name the CLI and `wasmig.toml` use: `cranelift` or `winch`.
    pub fn name(self) -> &'static str {
        match self {
            Compiler::Cranelift => "cranelift",
            Compiler::Winch => "winch",
        }
    }

    fn strategy(self) -> Strategy {
        match self {
            Compiler::Cranelift => Strategy::Cranelift,
            Compiler::Winch => Strategy::Winch,
        }
    }
}

impl std::fmt::Display for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compiler {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Compiler, String> {
        Compiler::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown compiler `{s}`: expected `cranelift` or `winch`"))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            deadline: Duration::from_secs(300),
            max_memory_bytes: 256 * 1024 * 1024,
            max_table_elements: 100_000,
            max_instances: 32,
            max_stack_bytes: 512 * 1024,
            sqlite_ops: 50_000_000_000,
            max_sqlite_heap_bytes: 256 * 1024 * 1024,
            sql: SqlLimits::default(),
            calls: CallLimits::default(),
            direct_sql: true,
            compiler: Compiler::default(),
        }
    }
}

/// Counters from a successful run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Host calls the guest made.
    pub calls: u64,
    /// Rows changed by its `exec` calls.
    pub rows_changed: u64,
    /// Fuel it consumed (0 for direct SQL, which runs no WebAssembly).
    pub fuel_used: u64,
    /// It was a recognised `pack-sql` component and the host ran its
    /// statements directly (see [`Compiled::is_direct_sql`]).
    pub direct_sql: bool,
}

/// How a run ended. The connection's transaction is untouched in every case.
#[derive(Debug)]
pub enum Outcome {
    /// `up` returned `Ok`.
    Ok(RunStats),
    /// `up` returned `Err(message)`.
    GuestErr {
        /// The guest's message.
        message: String,
        /// The last host call that failed, if any.
        last_failure: Option<String>,
    },
    /// The guest trapped, hit a limit, or a host call aborted it.
    Trap {
        /// What happened, with the guest backtrace when available.
        reason: String,
        /// The last host call that failed, if any.
        last_failure: Option<String>,
    },
    /// The host itself failed around the guest (gate, settings).
    Host(Error),
}

/// Advances the engine's epoch so a guest in a loop meets its deadline.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts a thread that advances `engine`'s epoch once per
    /// [`EPOCH_TICK`] until the ticker is dropped.
    fn start(engine: Engine) -> Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("wasmig-epoch".into())
            .spawn(move || {
                // Parked rather than asleep, so that dropping the sandbox
                // (every start-up ends by dropping its migrator) wakes it at
                // once instead of waiting out up to a tick. Ticks are due
                // on a fixed schedule: a wake-up before one is due
                // (spurious or not) advances nothing, and a late one
                // catches up, so a deadline of n ticks is n ticks of wall
                // clock.
                let mut due = Instant::now() + EPOCH_TICK;
                while !stopped.load(Ordering::Acquire) {
                    let now = Instant::now();
                    if now < due {
                        std::thread::park_timeout(due - now);
                        continue;
                    }
                    engine.increment_epoch();
                    due += EPOCH_TICK;
                }
            })
            .map_err(|e| Error::Sandbox(format!("starting the epoch ticker: {e}")))?;
        Ok(Ticker { stop, handle: Some(handle) })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

/// A compiled, type-checked migration ready to run.
#[derive(Clone)]
pub struct Compiled {
    body: Body,
}

/// How a migration runs.
#[derive(Clone)]
enum Body {
    /// An instance of the compiled component calls `up` (or `down`).
    Component(Prepared),
    /// A component that `pack-sql` generated, recognised byte for byte
    /// ([`crate::sql::script::recognise`]): its `up` would only call `exec` on
    /// these statements in order and return the first error, so the host
    /// makes those same calls itself, with the same gate and limits, and
    /// skips compiling and instantiating code whose every step it knows.
    /// The second list is what `down` runs, for a component generated with
    /// a down script.
    Script(Arc<[String]>, Option<Arc<[String]>>),
}

impl Compiled {
    /// True when the migration is a recognised `pack-sql` component whose
    /// statements the host runs directly (same host calls, gate and limits;
    /// no code is compiled or instantiated).
    pub fn is_direct_sql(&self) -> bool {
        matches!(self.body, Body::Script(..))
    }

    /// True when the migration exports `down` (world 0.3.0), so it can be
    /// reverted with [`Sandbox::run_entry`] and [`Entry::Down`].
    pub fn has_down(&self) -> bool {
        match &self.body {
            Body::Component(prepared) => prepared.has_down(),
            Body::Script(_, down) => down.is_some(),
        }
    }
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("direct_sql", &self.is_direct_sql()).finish_non_exhaustive()
    }
}

/// The wasmtime engine, linker and limits shared by every migration.
pub struct Sandbox {
    engine: Engine,
    linker: wasmtime::component::Linker<HostState>,
    limits: Limits,
    _ticker: Ticker,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// An engine configured for untrusted migrations under `limits`.
    pub fn new(limits: Limits) -> Result<Sandbox> {
        let mut config = Config::new();
        config
            .strategy(limits.compiler.strategy())
            .consume_fuel(true)
            .epoch_interruption(true)
            .wasm_backtrace_details(WasmBacktraceDetails::Enable)
            .max_wasm_stack(limits.max_stack_bytes)
            // Reserve only what a migration may use, plus guard pages, so
            // many databases can be migrated at once without exhausting
            // virtual address space.
            .memory_reservation(limits.max_memory_bytes as u64)
            .memory_guard_size(64 * 1024)
            .memory_reservation_for_growth(0)
            // Each component is instantiated once per database, so a
            // copy-on-write memory image (a memfd per component, mapped per
            // instance) costs more system calls than copying the few data
            // segments a migration has.
            .memory_init_cow(false);
        let engine = Engine::new(&config).map_err(|e| Error::Sandbox(format!("{e:#}")))?;
        let linker = bindings::linker(&engine).map_err(|e| Error::Sandbox(format!("{e:#}")))?;
        let ticker = Ticker::start(engine.clone())?;
        Ok(Sandbox { engine, linker, limits, _ticker: ticker })
    }

    /// The limits every run uses.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles `plugin`'s bytes (the same bytes that were checked), refuses
    /// imports other than `sql`, and type-checks it against the world.
    pub fn prepare(&self, plugin: &Plugin) -> Result<Compiled> {
        self.prepare_cached(plugin, None)
    }

    /// Like [`Sandbox::prepare`], but takes the compiled code from `cache`
    /// when it holds an entry for these exact bytes, and fills it otherwise.
    /// Pass a cache only for files whose signature was just verified.
    ///
    /// A component that `pack-sql` generated is recognised and runs as direct
    /// SQL (see [`Compiled::is_direct_sql`]) unless `direct_sql` in the
    /// limits is off, or a limit is so tight that the real component might
    /// hit it, in which case it is compiled so that it fails exactly as it
    /// would.
    pub fn prepare_cached(&self, plugin: &Plugin, cache: Option<&CompileCache>) -> Result<Compiled> {
        if let Some(script) = self.direct_script(plugin) {
            return Ok(Compiled {
                body: Body::Script(script.statements.into(), script.down.map(Into::into)),
            });
        }
        self.prepare_component(plugin, cache)
    }

    /// The statements of `plugin` when it can run as direct SQL.
    fn direct_script(&self, plugin: &Plugin) -> Option<crate::sql::script::Script> {
        let l = &self.limits;
        if !l.direct_sql {
            return None;
        }
        // A generated component imports world 0.1.0's `sql` (0.3.0's with
        // `down`); under any other manifest world the compiled path refuses
        // it, so must this.
        let script = crate::sql::script::recognise(&plugin.bytes)?;
        let (world_sql, reversible) =
            (plugin::sql_import_of(&plugin.manifest.world), plugin.manifest.is_reversible());
        let expected = if script.down.is_some() {
            crate::sql::script::reversible_sql_import()
        } else {
            crate::sql::script::SQL_IMPORT
        };
        if world_sql != Some(expected) || reversible != script.down.is_some() {
            return None;
        }
        // The generated component needs its data segment in memory, a few
        // core instances and a one-entry table, and spends a few dozen fuel
        // units per statement. Well inside the limits it cannot hit one;
        // near them, compile it and let the real thing decide.
        let n = script.statements.len().max(script.down.as_ref().map_or(0, Vec::len)) as u64;
        let roomy = script.memory_bytes.saturating_mul(2) <= l.max_memory_bytes as u64
            && l.fuel >= DIRECT_FUEL_BASE + DIRECT_FUEL_PER_STATEMENT.saturating_mul(n)
            && l.max_instances >= 16
            && l.max_table_elements >= 16
            && l.max_stack_bytes >= 64 * 1024;
        roomy.then_some(script)
    }

    fn prepare_component(&self, plugin: &Plugin, cache: Option<&CompileCache>) -> Result<Compiled> {
        let invalid = |reason: String| Error::InvalidComponent { path: plugin.path.clone(), reason };
        let component = match cache.and_then(|c| c.load(&self.engine, &plugin.digest)) {
            Some(component) => component,
            None => {
                let component =
                    Component::new(&self.engine, &plugin.bytes).map_err(|e| invalid(format!("{e:#}")))?;
                if let Some(cache) = cache {
                    cache.store(&self.engine, &plugin.digest, &component);
                }
                component
            }
        };
        // The manifest was validated, so its world is one this host runs.
        let allowed = plugin::sql_import_of(&plugin.manifest.world).unwrap_or_default();
        let foreign: Vec<String> =
            bindings::import_names(&self.engine, &component).into_iter().filter(|n| n != allowed).collect();
        if !foreign.is_empty() {
            return Err(invalid(format!(
                "imports {} but a migration targeting {} may import only {allowed}",
                foreign.join(", "),
                plugin.manifest.world
            )));
        }
        let pre = self.linker.instantiate_pre(&component).map_err(|e| invalid(format!("{e:#}")))?;
        let prepared =
            Prepared::new(pre, plugin.manifest.is_reversible()).map_err(|e| invalid(format!("{e:#}")))?;
        Ok(Compiled { body: Body::Component(prepared) })
    }

    /// Runs `compiled`'s `up` against `conn` (which must be inside the
    /// migration's transaction) and returns the connection with the outcome.
    pub fn run(&self, compiled: &Compiled, conn: Connection) -> (Connection, Outcome) {
        self.run_entry(compiled, conn, Entry::Up)
    }

    /// Like [`Sandbox::run`], calling `entry`: `down` runs under exactly the
    /// gate and limits `up` does. Calling `down` on a forward-only migration
    /// is a host error (callers check [`Compiled::has_down`] first).
    pub fn run_entry(
        &self,
        compiled: &Compiled,
        mut conn: Connection,
        entry: Entry,
    ) -> (Connection, Outcome) {
        if entry == Entry::Down && !compiled.has_down() {
            return (conn, Outcome::Host(Error::Internal("down called on a forward-only migration".into())));
        }
        let limits = self.limits;
        let denials = Denials::default();
        let budget = Arc::new(SqliteBudget {
            periods_left: AtomicU64::new(limits.sqlite_ops / SQLITE_OPS_PER_CHECK),
            deadline: Instant::now() + limits.deadline,
            hit: Mutex::new(None),
        });
        let session_limits = SessionLimits {
            sql: limits.sql,
            heap_bytes: limits.max_sqlite_heap_bytes,
            ops_per_check: SQLITE_OPS_PER_CHECK,
            total_ops: limits.sqlite_ops,
        };
        let session = match Session::open(&mut conn, session_limits, &budget, denials.clone()) {
            Ok(s) => s,
            Err(e) => return (conn, Outcome::Host(e)),
        };
        let state = HostState {
            conn,
            store_limits: GuestLimiter::new(
                limits.max_memory_bytes,
                limits.max_table_elements,
                limits.max_instances,
            ),
            limits: limits.calls,
            denials,
            budget: budget.clone(),
            stats: CallStats::default(),
            poisoned: None,
            cache_statements: !compiled.is_direct_sql(),
            checked_sql: Default::default(),
        };
        let (result, fuel_used, HostState { mut conn, stats, .. }) = match &compiled.body {
            Body::Component(prepared) => self.call_component(prepared, state, entry),
            Body::Script(up, down) => {
                let statements = match entry {
                    Entry::Up => up,
                    Entry::Down => down.as_ref().unwrap_or(up),
                };
                let mut state = state;
                (run_script(&mut state, statements), 0, state)
            }
        };
        let restored = session.close(&mut conn);
        let outcome = match (result, restored) {
            (_, Err(e)) => Outcome::Host(e),
            // A migration that attempted a refused action fails, even if it
            // swallowed the error: it was not written for this host.
            (Ok(Ok(())), Ok(())) if stats.first_denial.is_some() => Outcome::GuestErr {
                message: format!(
                    "{} (the guest ignored the refusal; a migration that attempts a refused action fails)",
                    stats.first_denial.clone().unwrap_or_default()
                ),
                last_failure: stats.last_failure,
            },
            (Ok(Ok(())), Ok(())) => Outcome::Ok(RunStats {
                calls: stats.calls,
                rows_changed: stats.rows_changed,
                fuel_used,
                direct_sql: compiled.is_direct_sql(),
            }),
            (Ok(Err(message)), Ok(())) => Outcome::GuestErr { message, last_failure: stats.last_failure },
            (Err(trap), Ok(())) => Outcome::Trap {
                reason: describe_trap(&trap, &limits, &budget),
                last_failure: stats.last_failure,
            },
        };
        (conn, outcome)
    }
}

impl Sandbox {
    /// Instantiates the component in a fresh store owning `state` and calls
    /// `entry` under fuel and the epoch deadline; returns the state with the
    /// result and the fuel burnt.
    fn call_component(
        &self,
        prepared: &Prepared,
        state: HostState,
        entry: Entry,
    ) -> (wasmtime::Result<Result<(), String>>, u64, HostState) {
        let limits = self.limits;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.store_limits);
        let ticks = (limits.deadline.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        let result = match store.set_fuel(limits.fuel) {
            Ok(()) => prepared.call(&mut store, entry),
            Err(e) => Err(e),
        };
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        (result, fuel_used, store.into_data())
    }
}

/// Fuel a generated `pack-sql` component could need at most: instantiation
/// and return, then each turn of its loop (about 40 instructions), with a
/// wide margin. Below this, such a component is compiled and run for real.
const DIRECT_FUEL_BASE: u64 = 10_000;
const DIRECT_FUEL_PER_STATEMENT: u64 = 200;

/// What a generated `pack-sql` component's `up` does, done by the host:
/// `exec` each statement with no parameters; the first error's message is
/// the migration's `Err`; a host fault ends it like a trap.
fn run_script(state: &mut HostState, statements: &[String]) -> wasmtime::Result<Result<(), String>> {
    for sql in statements {
        match state.exec_sql(sql, Vec::new()) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Ok(Err(e.message)),
            Err(fault) => return Err(wasmtime::Error::msg(fault.0)),
        }
    }
    Ok(Ok(()))
}

/// Names the limit (or panic) behind a trap and appends the guest backtrace.
fn describe_trap(err: &wasmtime::Error, limits: &Limits, budget: &SqliteBudget) -> String {
    let backtrace = err.downcast_ref::<wasmtime::WasmBacktrace>().map(ToString::to_string);
    let cause = match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => format!("fuel limit exhausted ({} units)", limits.fuel),
        Some(Trap::Interrupt) => {
            format!("deadline limit exceeded ({:?} wall-clock)", limits.deadline)
        }
        Some(Trap::StackOverflow) => {
            format!("stack limit exceeded ({} KiB; runaway recursion?)", limits.max_stack_bytes / 1024)
        }
        Some(Trap::UnreachableCodeReached) => "guest panicked (wasm `unreachable` executed)".to_owned(),
        Some(Trap::MemoryOutOfBounds) => {
            "guest memory access out of bounds (a guest bug, or its shadow stack overflowed)".to_owned()
        }
        Some(other) => format!("wasm trap: {other}"),
        None => {
            // The backtrace is one link of the error's chain; it is appended
            // once below, so leave it out of the message.
            let msg = err
                .chain()
                .map(ToString::to_string)
                .filter(|link| Some(link) != backtrace.as_ref())
                .collect::<Vec<_>>()
                .join(": ");
            if msg.contains(MEMORY_LIMIT_HIT) || msg.contains("memory minimum size") {
                format!("memory limit exceeded ({} MiB): {msg}", limits.max_memory_bytes / (1024 * 1024))
            } else if msg.contains(TABLE_LIMIT_HIT) {
                format!("table limit exceeded ({} elements): {msg}", limits.max_table_elements)
            } else if msg.contains("count too high") {
                // wasmtime's own refusal of one instance, memory or table
                // too many; the limiter allows a few of the latter two per
                // instance.
                let n = limits.max_instances;
                format!(
                    "instance limit exceeded ({n} instances, {n} memories, {} tables): {msg}",
                    n.saturating_mul(4)
                )
            } else if let Some(hit) = budget.hit.lock().ok().and_then(|h| h.clone()) {
                format!("{hit}: {msg}")
            } else {
                msg
            }
        }
    };
    match backtrace {
        Some(bt) => format!("{cause}\n{bt}"),
        None => cause,
    }
}
