//! Write wasmig migrations in Rust.
//!
//! A migration is one function that receives no arguments and talks to the
//! database through [`exec`], [`query`], [`add_column_if_missing`] and, for
//! large backfills, [`Batch`] (one host call per many rows). Every
//! call runs inside the single transaction the host opened for this
//! migration: return `Ok(())` and the host commits, return an error (or panic)
//! and the host rolls everything back.
//!
//! ```ignore
//! use wasmig_guest::{exec, params, Result};
//!
//! fn up() -> Result<()> {
//!     exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)", &[])?;
//!     exec("INSERT INTO notes (body) VALUES (?1)", params!["hello"])?;
//!     Ok(())
//! }
//!
//! wasmig_guest::migration!(up);
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown` and the
//! `wasm-component-ld` linker (see this repository's `.cargo/config.toml`).

extern crate self as wasmig_guest;

mod text;
mod value;

pub use value::{FromValue, Value};

use std::fmt;

// The one place that touches generated code. Everything public below is our
// own type, so a regenerated binding never changes the SDK's API.
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        // The newest world, for `exec-many`: every component built with
        // this SDK imports it, so it needs a host that runs world 0.2.0.
        // Hosts keep running every released world.
        path: "../../wit/v0.2.0",
        world: "wasmig:migration/migration@0.2.0",
        // The generated glue reads parameters from, and writes result
        // columns into, our own `Value` (its variants mirror the WIT
        // `value`), so a call copies nothing on the way out and converts
        // nothing on the way back. A WIT change that breaks the mirror
        // fails to compile here.
        with: { "wasmig:migration/sql@0.2.0/value": crate::Value },
        pub_export_macro: true,
        export_macro_name: "__export_migration",
        default_bindings_module: "wasmig_guest::bindings",
        runtime_path: "wasmig_guest::__wit_bindgen_rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen::rt as __wit_bindgen_rt;

use bindings::wasmig::migration::sql as wit;

/// What kind of failure a [`SqlError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// SQLite reported an error; [`SqlError::code`] is its extended result code.
    Sqlite,
    /// The host's policy refused the statement (transaction control, ATTACH,
    /// PRAGMA assignments, ...).
    Denied,
    /// A sandbox limit was reached.
    Limit,
    /// The call's arguments were malformed (several statements, bad identifier).
    Invalid,
}

/// An error returned by a host call, with the statement that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// SQLite's extended result code, or 0 when SQLite was not involved.
    pub code: i32,
    /// The host's message.
    pub message: String,
    /// The SQL (or identifier) the call was made with.
    pub sql: String,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SqlError {
    /// The text `Display` shows, built without `core::fmt`: `?` turns a
    /// `SqlError` into an [`Error`] through this, and a guest that never
    /// formats anything itself then links no formatting machinery (about a
    /// fifth of a one-statement migration's code).
    fn describe(&self) -> String {
        let kind = match self.kind {
            ErrorKind::Sqlite => "sqlite error",
            ErrorKind::Denied => "denied by host policy",
            ErrorKind::Limit => "sandbox limit",
            ErrorKind::Invalid => "invalid call",
        };
        let mut out = String::with_capacity(kind.len() + self.message.len() + self.sql.len() + 24);
        out.push_str(kind);
        if self.code != 0 {
            out.push_str(" (code ");
            text::push_int(&mut out, i64::from(self.code));
            out.push(')');
        }
        out.push_str(": ");
        out.push_str(&self.message);
        if !self.sql.is_empty() {
            out.push_str(" [in: ");
            out.push_str(&self.sql);
            out.push(']');
        }
        out
    }
}

impl std::error::Error for SqlError {}

impl SqlError {
    fn from_wit(e: wit::SqlError, sql: &str) -> Self {
        let kind = match e.kind {
            wit::ErrorKind::Sqlite => ErrorKind::Sqlite,
            wit::ErrorKind::Denied => ErrorKind::Denied,
            wit::ErrorKind::Limit => ErrorKind::Limit,
            wit::ErrorKind::Invalid => ErrorKind::Invalid,
        };
        SqlError { kind, code: e.code, message: e.message, sql: sql.to_owned() }
    }
}

/// A migration's failure: its message is what the host reports and records.
///
/// `?` converts [`SqlError`], `String` and `&str` into it; for other error
/// types use `.map_err(|e| Error::new(e.to_string()))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }

    /// The message the host will report.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<SqlError> for Error {
    fn from(e: SqlError) -> Self {
        Error(e.describe())
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.to_owned())
    }
}

/// `Result` with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs exactly one statement with `params` bound to `?1`, `?2`, ... and
/// returns the number of rows it changed.
pub fn exec(sql: &str, params: &[Value]) -> Result<u64, SqlError> {
    wit::exec(sql, params).map_err(|e| SqlError::from_wit(e, sql))
}

/// Runs one statement `runs` times in a single host call and returns the
/// rows changed in total. `params` holds every run's parameters back to
/// back (run i binds `params[i*n..(i+1)*n]` for a statement with n
/// parameters). Runs stop at the first failure, whose index the error
/// carries; the runs before it stay applied. [`Batch`] is the convenient
/// way to call this.
pub fn exec_many(sql: &str, runs: u32, params: &[Value]) -> Result<u64, BatchError> {
    wit::exec_many(sql, runs, params)
        .map_err(|e| BatchError { run: e.run, error: SqlError::from_wit(e.error, sql) })
}

/// A failed [`exec_many`] or [`Batch`]: which run failed and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    /// The run that failed, counted from 0 (for a [`Batch`], from its first
    /// push). `None` when the call was refused before any of its runs (too
    /// long, does not prepare, too many parameters, wrong number of values);
    /// for a [`Batch`], groups sent earlier may have run.
    pub run: Option<u32>,
    /// Why it failed.
    pub error: SqlError,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl BatchError {
    /// The text `Display` shows, built without `core::fmt` (see [`SqlError`]).
    fn describe(&self) -> String {
        let mut out = String::new();
        match self.run {
            Some(run) => {
                out.push_str("run ");
                text::push_int(&mut out, i64::from(run));
                out.push_str(" of a batch (counting from 0): ");
            }
            None => out.push_str("batch: "),
        }
        out.push_str(&self.error.describe());
        out
    }
}

impl std::error::Error for BatchError {}

impl From<BatchError> for Error {
    fn from(e: BatchError) -> Self {
        Error(e.describe())
    }
}

/// Runs one statement many times with different parameters, sending the
/// runs to the host in groups ([`Batch::DEFAULT_RUNS_PER_CALL`] by
/// default) instead of one host call each: the fast way to backfill.
///
/// ```ignore
/// use wasmig_guest::{Batch, row, Result};
///
/// fn up() -> Result<()> {
///     let mut batch = Batch::new("INSERT INTO notes (id, body) VALUES (?1, ?2)");
///     for i in 0..100_000 {
///         batch.push(row![i, format!("note {i}")])?;
///     }
///     batch.finish()?;
///     Ok(())
/// }
/// ```
///
/// Call [`Batch::finish`] to send the last group and learn how many rows
/// changed. A batch dropped with runs still buffered sends them then, and
/// panics (rolling the migration back) if that fails, so a forgotten
/// `finish` never loses runs. (If `up` is already returning another error,
/// that send is wasted work, and a failure of it replaces the error with the
/// panic.) When a run fails, the error names it, the runs after it in the
/// same group are not sent, and later pushes start a new group.
#[derive(Debug)]
pub struct Batch<'a> {
    sql: &'a str,
    params: Vec<Value>,
    width: Option<usize>,
    buffered: u32,
    per_call: u32,
    sent: u32,
    changed: u64,
}

impl<'a> Batch<'a> {
    /// Runs sent per host call unless [`Batch::with_runs_per_call`] says otherwise.
    pub const DEFAULT_RUNS_PER_CALL: u32 = 1024;

    /// A batch of runs of `sql`.
    pub fn new(sql: &'a str) -> Self {
        Self::with_runs_per_call(sql, Self::DEFAULT_RUNS_PER_CALL)
    }

    /// A batch that sends its runs `per_call` at a time (at least 1).
    pub fn with_runs_per_call(sql: &'a str, per_call: u32) -> Self {
        Batch {
            sql,
            params: Vec::new(),
            width: None,
            buffered: 0,
            per_call: per_call.max(1),
            sent: 0,
            changed: 0,
        }
    }

    /// Adds one run with `params` (see [`row!`]); sends a group when full.
    /// Every run must have as many values as the first.
    pub fn push(&mut self, params: impl IntoIterator<Item = Value>) -> Result<(), BatchError> {
        let before = self.params.len();
        self.params.extend(params);
        let width = self.params.len() - before;
        if *self.width.get_or_insert(width) != width {
            self.params.truncate(before);
            let run = self.sent.saturating_add(self.buffered);
            let message = text::concat(&[
                "run has ",
                &text::int(width as i64),
                " value(s) but the batch's first run had ",
                &text::int(self.width.unwrap_or(0) as i64),
            ]);
            return Err(BatchError {
                run: Some(run),
                error: SqlError { kind: ErrorKind::Invalid, code: 0, message, sql: self.sql.to_owned() },
            });
        }
        self.buffered += 1;
        if self.buffered == self.per_call {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the buffered runs now.
    pub fn flush(&mut self) -> Result<(), BatchError> {
        if self.buffered == 0 {
            return Ok(());
        }
        let (runs, sent) = (self.buffered, self.sent);
        self.buffered = 0;
        self.sent = self.sent.saturating_add(runs);
        let result = exec_many(self.sql, runs, &self.params);
        // Keep the allocation for the next group.
        self.params.clear();
        self.changed += result.map_err(|e| BatchError { run: e.run.map(|r| sent.saturating_add(r)), ..e })?;
        Ok(())
    }

    /// Sends the remaining runs and returns the rows changed by all of them.
    pub fn finish(mut self) -> Result<u64, BatchError> {
        self.flush()?;
        Ok(self.changed)
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if self.buffered > 0
            && !std::thread::panicking()
            && let Err(e) = self.flush()
        {
            // A panic's message never leaves the guest (panics abort), so
            // none is formatted; the host reports the trap and rolls back.
            let _ = e;
            panic!("a Batch dropped without finish() failed sending its last runs");
        }
    }
}

/// Runs each statement in order with no parameters, stopping at the first error.
pub fn exec_each(statements: &[&str]) -> Result<u64, SqlError> {
    let mut changed = 0;
    for sql in statements {
        changed += exec(sql, &[])?;
    }
    Ok(changed)
}

/// Runs exactly one statement and returns every row it produced.
pub fn query(sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
    let rows = wit::query(sql, params).map_err(|e| SqlError::from_wit(e, sql))?;
    Ok(Rows { columns: rows.columns, rows: rows.values })
}

/// Adds `column` to `table` (declared as `decl`, e.g. `"TEXT NOT NULL DEFAULT ''"`)
/// unless the table already has it. Returns `true` when the column was added.
///
/// Identifiers are quoted by the host, so names with spaces, quotes or
/// keywords are fine; `decl` must be a single column definition.
pub fn add_column_if_missing(table: &str, column: &str, decl: &str) -> Result<bool, SqlError> {
    wit::add_column_if_missing(table, column, decl)
        .map_err(|e| SqlError::from_wit(e, &text::concat(&[table, ".", column, " ", decl])))
}

/// The rows a [`query`] returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// Column names in select-list order.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the query returned no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Iterates over the rows.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(move |values| Row { columns: &self.columns, values })
    }
}

/// One row of a [`Rows`] result.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl Row<'_> {
    /// The value at column `index`, converted to `T`.
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T, Error> {
        let v = self.values.get(index).ok_or_else(|| {
            Error::new(text::concat(&[
                "no column ",
                &text::int(index as i64),
                " in row of ",
                &text::int(self.values.len() as i64),
            ]))
        })?;
        T::from_value(v)
            .map_err(|e| Error::new(text::concat(&["column ", &text::int(index as i64), ": ", &e])))
    }

    /// The value of the column called `name`, converted to `T`.
    pub fn get_named<T: FromValue>(&self, name: &str) -> Result<T, Error> {
        let index = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::new(text::concat(&["no column named \"", name, "\""])))?;
        self.get(index)
    }

    /// The raw values of this row.
    pub fn values(&self) -> &[Value] {
        self.values
    }
}

/// Builds a `&[Value]` parameter list from anything convertible to [`Value`].
///
/// ```ignore
/// exec("INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3)", params![1, "two", None::<i64>])?;
/// ```
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::Value] };
    ($($p:expr),+ $(,)?) => { &[$($crate::Value::from($p)),+] as &[$crate::Value] };
}

/// Builds one [`Batch`] run's parameters (an array of [`Value`]) from
/// anything convertible to [`Value`], moving rather than copying strings.
///
/// ```ignore
/// batch.push(row![id, format!("item {id}"), None::<f64>])?;
/// ```
#[macro_export]
macro_rules! row {
    ($($p:expr),* $(,)?) => { [$($crate::Value::from($p)),*] };
}

/// Exports `up` (a `fn() -> Result<(), E>` with `E: Display`) as this
/// component's migration body.
///
/// `migration!(up, down)` also exports `down`, the step that reverts `up`
/// (`wasmig down`); the component then targets world 0.3.0, which hosts
/// from this release on run. `down` must leave the schema and rows exactly
/// as they were before `up`.
///
/// With this crate's [`Error`] (the default of [`Result`]) the message is
/// moved to the host as it is; any other `E` is formatted with `Display`.
#[macro_export]
macro_rules! migration {
    ($up:path) => {
        struct __WasmigMigration;

        impl $crate::bindings::Guest for __WasmigMigration {
            fn up() -> ::core::result::Result<(), ::std::string::String> {
                #[allow(unused_imports)]
                use $crate::__private::{DisplayMessage as _, OwnMessage as _};
                match $up() {
                    ::core::result::Result::Ok(()) => ::core::result::Result::Ok(()),
                    ::core::result::Result::Err(e) => ::core::result::Result::Err(
                        (&&$crate::__private::Failure(::core::cell::Cell::new(
                            ::core::option::Option::Some(e),
                        )))
                            .__wasmig_message(),
                    ),
                }
            }
        }

        $crate::bindings::__export_migration!(__WasmigMigration);
    };
    ($up:path, $down:path $(,)?) => {
        struct __WasmigMigration;

        impl $crate::reversible_bindings::Guest for __WasmigMigration {
            fn up() -> ::core::result::Result<(), ::std::string::String> {
                $up().map_err(|e| ::std::string::ToString::to_string(&e))
            }

            fn down() -> ::core::result::Result<(), ::std::string::String> {
                $down().map_err(|e| ::std::string::ToString::to_string(&e))
            }
        }

        $crate::reversible_bindings::__export_reversible_migration!(__WasmigMigration);
    };
}

// World 0.3.0: the same `sql@0.2.0` (reused, not generated again) plus a
// `down` export. Its export glue, and the world description that makes a
// component export `down`, are only expanded by `migration!(up, down)`, so
// a guest written with `migration!(up)` still targets world 0.2.0. The
// generator names its macros after the world, and both worlds are called
// `migration`, so 0.3.0 is reached through a local world that includes it
// (a component's imports and exports are the same either way). It sits at
// the end of the file so the code above keeps its line numbers, which panic
// locations compiled into guests record.
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod reversible_bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.3.0",
        inline: "package wasmig:guest-sdk;\nworld reversible { include wasmig:migration/migration@0.3.0; }",
        world: "wasmig:guest-sdk/reversible",
        with: { "wasmig:migration/sql@0.2.0": crate::bindings::wasmig::migration::sql },
        pub_export_macro: true,
        export_macro_name: "__export_reversible_migration",
        default_bindings_module: "wasmig_guest::reversible_bindings",
        runtime_path: "wasmig_guest::__wit_bindgen_rt",
        disable_custom_section_link_helpers: true,
    });
}

/// Support for [`migration!`]: picks the message of `up`'s error without
/// `core::fmt` when it is an [`Error`] (method resolution tries the
/// `&Failure<Error>` impl before the `Display` one), so a guest that never
/// formats links no formatting code.
#[doc(hidden)]
pub mod __private {
    use std::cell::Cell;

    /// `up`'s error, taken out once by whichever impl resolution picks.
    pub struct Failure<E>(pub Cell<Option<E>>);

    /// The `Error` case: moves the message.
    pub trait OwnMessage {
        /// The message for the host.
        fn __wasmig_message(&self) -> String;
    }

    impl OwnMessage for &Failure<crate::Error> {
        fn __wasmig_message(&self) -> String {
            self.0.take().map(|e| e.0).unwrap_or_default()
        }
    }

    /// Every other error type: its `Display` text.
    pub trait DisplayMessage {
        /// The message for the host.
        fn __wasmig_message(&self) -> String;
    }

    impl<E: std::fmt::Display> DisplayMessage for Failure<E> {
        fn __wasmig_message(&self) -> String {
            self.0.take().map(|e| e.to_string()).unwrap_or_default()
        }
    }
}
