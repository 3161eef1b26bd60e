//! The runner: load a directory of plugins, check everything, then apply the
//! pending migrations in id order, one transaction each.
//!
//! Order of work, so that bad input changes nothing:
//! 1. every file's bytes are checked (size, preamble, manifest, name) and
//!    duplicate ids refused ([`Migrator::from_dir`]);
//! 2. the ledger is read and compared: drift and out-of-order ids refused;
//! 3. every pending component is compiled and type-checked;
//! 4. only then does the first migration run: `BEGIN IMMEDIATE`, re-check the
//!    ledger (another process may have applied it meanwhile), call `up`,
//!    record and `COMMIT` on `Ok`, `ROLLBACK` and stop on anything else.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::attest::{self, SchemaCheck, SchemaState};
use super::catalog::Catalog;
use super::ledger_guard;
use super::object_lines;
use super::shape::Shape;
use crate::error::{Error, Result};
use crate::ledger::{self, LedgerRow};
use crate::plugin::{self, Plugin};
use crate::plugin::{ReleaseIndex, TrustPolicy, Verdict};
use crate::sandbox::CompileCache;
use crate::sandbox::{Compiled, Entry, Limits, Outcome, RunStats, Sandbox};

mod check;
mod embedded;
mod replica;
mod revert;
mod stamp;
mod status;
mod together;

pub use check::{CheckReport, Problem, check_dir};
pub use replica::{LITEFS_PRIMARY_FILE, ReplicaWait, litefs_replica};
pub use revert::{RevertReport, Reverted};
pub use status::{MigrationState, StatusRow};

/// Settings for a [`Migrator`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Apply a pending migration whose id is below the highest applied id.
    pub allow_out_of_order: bool,
    /// Go on when the ledger records migrations that have no file here
    /// (deleted files, or a database migrated by a newer release).
    pub allow_missing: bool,
    /// Sandbox limits for every migration.
    pub limits: Limits,
    /// Largest plugin file accepted, in bytes.
    pub max_file_size: u64,
    /// Which files may run. The default trusts no key and refuses unsigned
    /// files, so nothing runs until keys (or `allow_unsigned`) are given.
    pub trust: TrustPolicy,
    /// A directory of compiled components to reuse across runs (see
    /// [`crate::sandbox::compile_cache`] for why it must be private). Only files whose
    /// signature verified are cached. `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Apply all pending migrations in one transaction: all of them or none.
    /// By default each migration has its own transaction, so a failure keeps
    /// the ones before it. Each migration is still atomic either way; this
    /// trades keeping that progress for one commit instead of one per
    /// migration. Refused (before anything runs) when a pending migration
    /// needs foreign keys off, which SQLite cannot switch inside a transaction.
    pub single_transaction: bool,
    /// On a replica (a LiteFS replica, or a database that opens read-only),
    /// where wasmig never writes: how long apply waits, reading the ledger
    /// with backoff, for every migration here to be recorded by the primary
    /// and delivered by replication. `None` looks once. Either way apply
    /// returns `Ok` once they are all recorded and
    /// [`Error::ReplicaNotCaughtUp`] otherwise; on a writable database it is
    /// not used.
    pub replica_wait: Option<Duration>,
    /// Files whose manifest declares `destructive` need signatures by at
    /// least this many distinct trusted keys (0: no more than any other
    /// file; 1 or more also refuses an unsigned one). Refused before
    /// anything runs.
    pub min_signers_destructive: usize,
    /// Refuse to apply (before anything runs) when the schema differs from
    /// the one the ledger recorded after the last migration, instead of
    /// only reporting it in [`Report::schema_changes`].
    pub strict_schema: bool,
    /// Refuse, before anything runs, unless the directory's signed release
    /// index (`wasmig-release.json`, see [`crate::ReleaseIndex`]) is trusted
    /// by [`Options::trust`] (k of n), lists exactly the files present with
    /// their digests, and is not older than a release the ledger records.
    /// Each migration applied records the release number. Off by default:
    /// then an index in the directory is not read at all.
    pub require_release: bool,
    /// Let wasmig keep a header stamp in `PRAGMA user_version`, so that a
    /// no-op start-up reads two header fields instead of the ledger (which
    /// makes SQLite load the whole schema). Only for applications that do
    /// not use `user_version` themselves. Once a migrator with this set has
    /// stamped a database, the database records it (an audit row) and
    /// every later wasmig keeps the stamp right, with or without this
    /// option; the stamp matches only while the ledger holds exactly the
    /// migrator's set and the schema has not changed since wasmig checked
    /// it (see the README, "No-op start-up"); with
    /// [`Options::require_release`], also the same release number. Off by
    /// default.
    pub stamp_user_version: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow_out_of_order: false,
            allow_missing: false,
            limits: Limits::default(),
            max_file_size: plugin::DEFAULT_MAX_FILE_SIZE,
            trust: TrustPolicy::default(),
            cache_dir: None,
            single_transaction: false,
            replica_wait: None,
            min_signers_destructive: 0,
            strict_schema: false,
            require_release: false,
            stamp_user_version: false,
        }
    }
}

/// One migration applied by [`Migrator::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Migration id.
    pub id: i64,
    /// Migration name.
    pub name: String,
    /// Time from `BEGIN IMMEDIATE` to `COMMIT`.
    pub duration: Duration,
    /// What the guest did.
    pub stats: RunStats,
    /// Tables and columns it dropped or renamed; only a migration that
    /// declared `destructive` can have any (others are rolled back).
    pub destroyed: Vec<super::shape::Destruction>,
}

/// What [`Migrator::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Migrations applied by this call, in order.
    pub applied: Vec<Applied>,
    /// Ids that were already in the ledger before this call.
    pub already_applied: Vec<i64>,
    /// Ids another process applied while this call was waiting to run them.
    pub applied_concurrently: Vec<i64>,
    /// Wall-clock time of the whole call.
    pub elapsed: Duration,
    /// Set when the database was a replica (or read-only): nothing was
    /// applied, and this says how the ledger was found caught up.
    pub replica: Option<ReplicaWait>,
    /// How the schema found compared with the one the ledger recorded after
    /// the last migration (a change made outside wasmig is
    /// [`SchemaState::Changed`], refused instead under
    /// [`Options::strict_schema`]); `None` when nothing was compared (no
    /// ledger yet).
    pub schema_check: Option<SchemaCheck>,
    /// The header stamp showed that nothing changed since wasmig last
    /// verified this set (see [`Options::stamp_user_version`]): the ledger
    /// was not read, `already_applied` lists the whole set and
    /// `schema_check` is `None`.
    pub header_stamp_matched: bool,
}

/// The pending migrations of a database, checked and compiled.
#[derive(Clone)]
pub struct Plan<'m> {
    /// Migrations to run, in order.
    pub steps: Vec<Step<'m>>,
    /// Ids already in the ledger.
    pub already_applied: Vec<i64>,
    /// The schema found, compared with the recorded one (see
    /// [`Report::schema_check`]).
    pub schema_check: Option<SchemaCheck>,
}

/// One pending migration, verified and compiled.
#[derive(Clone)]
pub struct Step<'m> {
    /// Its plugin file.
    pub plugin: &'m Plugin,
    /// What the trust policy concluded.
    pub verdict: Verdict,
    compiled: Compiled,
    /// The first step of a plan creates (or adopts) the ledger inside its
    /// own transaction; the ones after it find it there.
    sets_up_ledger: bool,
}

/// Loads, checks and applies migration plugins.
///
/// Typical start-up use: trust the release key, apply what is pending.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use wasmig::{Migrator, Options, TrustPolicy};
///
/// let trust = TrustPolicy::from_key_files(&["keys/release.pub".into()])?;
/// let migrator = Migrator::from_dir_with("migrations", Options { trust, ..Options::default() })?;
/// let mut conn = rusqlite::Connection::open("app.db")?;
/// let report = migrator.apply(&mut conn)?;
/// for m in &report.applied {
///     println!("applied {} {} in {:?}", m.id, m.name, m.duration);
/// }
/// # Ok(())
/// # }
/// ```
///
/// With nothing pending, apply compiles nothing and writes nothing:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("wasmig-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let mut conn = rusqlite::Connection::open_in_memory()?;
/// let report = wasmig::Migrator::from_dir(&dir)?.apply(&mut conn)?;
/// assert!(report.applied.is_empty());
/// assert!(!wasmig::ledger_exists(&conn)?, "no ledger is created when nothing runs");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Migrator {
    plugins: Vec<Plugin>,
    options: Options,
    sandbox: OnceLock<Sandbox>,
    /// Compiled components by id, so a migrator serving many databases (or
    /// called again) compiles each component once.
    compiled: Mutex<HashMap<i64, Compiled>>,
    /// Held while compiling, so concurrent appliers wait for one compilation
    /// instead of repeating it.
    compile_lock: Mutex<()>,
    /// Verdicts on deferred files, by id: a fleet plans every database
    /// against the same in-memory bytes, so each signature is checked once.
    verdicts: Mutex<HashMap<i64, Verdict>>,
    /// The compiled-component cache, opened (and its permissions checked)
    /// the first time something needs compiling.
    cache: OnceLock<Option<CompileCache>>,
    /// With [`Options::require_release`]: the checked release index, and
    /// where it came from (for messages).
    release: Option<(PathBuf, ReleaseIndex)>,
    /// The plugins carry build-time manifests and digests (an embedded
    /// set): each is checked again from its bytes before it can run.
    precomputed: bool,
    /// The schema each database (by path) had after the last migration
    /// this migrator committed there (see [`SchemaMemo`]).
    schema_memo: Mutex<HashMap<String, SchemaMemo>>,
}

/// The tables, columns and attestation a committed migration left, with
/// the schema cookie they belong to. SQLite moves the cookie (in the file)
/// on every schema change, by anyone, and never back once committed, so
/// finding the same cookie in the next migration's transaction means the
/// same schema: its "before" needs no second read of the whole schema.
/// Stored only after COMMIT, since a rolled-back change can leave a cookie
/// value that a later, different schema reaches.
#[derive(Debug, Clone)]
pub(super) struct SchemaMemo {
    cookie: i64,
    shape: Shape,
    attestation: attest::Attestation,
    own_tables: ledger_guard::OwnTables,
    /// The ledger row that recorded `attestation` (the next row's object
    /// lines are stored as the change from it, see `object_lines`).
    recorded_by: i64,
}

impl Migrator {
    /// Reads every `*.wasm` plugin in `dir` with default [`Options`], whose
    /// trust policy accepts no file: use [`Migrator::from_dir_with`] with
    /// trusted keys (or, for local development, `allow_unsigned`).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Migrator> {
        Migrator::from_dir_with(dir, Options::default())
    }

    /// Reads every `*.wasm` plugin in `dir`, checking each file's bytes and
    /// refusing duplicate ids (naming both files).
    ///
    /// With [`Options::require_release`], also reads and checks the
    /// directory's release index (see [`Migrator::from_plugins_and_release`]).
    pub fn from_dir_with(dir: impl AsRef<Path>, options: Options) -> Result<Migrator> {
        let dir = dir.as_ref();
        let paths = plugin::list_dir(dir)?;
        let plugins = load_parallel(&paths, options.max_file_size)?;
        let index = if options.require_release { plugin::read_release(dir)? } else { None };
        Migrator::from_plugins_and_release(plugins, options, &plugin::release_path(dir), index)
    }

    /// Builds a migrator from already-loaded plugins. With
    /// [`Options::require_release`] this refuses (there is no index): use
    /// [`Migrator::from_plugins_and_release`].
    pub fn from_plugins(plugins: Vec<Plugin>, options: Options) -> Result<Migrator> {
        Migrator::from_plugins_and_release(plugins, options, Path::new(plugin::RELEASE_FILE), None)
    }

    /// Builds a migrator from already-loaded plugins and the release index
    /// that came with them (`None`: there was none; `index_path` names it in
    /// messages). With [`Options::require_release`], refuses
    /// ([`Error::Release`]) an index that is missing, not trusted by
    /// [`Options::trust`], or does not list exactly these files with these
    /// digests; the release number is checked against each database's
    /// ledger before anything runs. Without it, `index` is ignored.
    pub fn from_plugins_and_release(
        mut plugins: Vec<Plugin>,
        options: Options,
        index_path: &Path,
        index: Option<ReleaseIndex>,
    ) -> Result<Migrator> {
        plugins.sort_by(|a, b| a.id().cmp(&b.id()).then_with(|| a.path.cmp(&b.path)));
        if let Some(w) = plugins.windows(2).find(|w| w[0].id() == w[1].id()) {
            return Err(Error::DuplicateId {
                id: w[0].id(),
                first: w[0].path.clone(),
                second: w[1].path.clone(),
            });
        }
        let release = if options.require_release {
            let checked = plugin::check_release(index_path, index, &options.trust, &plugins)?;
            Some((index_path.to_owned(), checked))
        } else {
            None
        };
        Ok(Migrator {
            release,
            precomputed: false,
            plugins,
            options,
            sandbox: OnceLock::new(),
            compiled: Mutex::new(HashMap::new()),
            compile_lock: Mutex::new(()),
            verdicts: Mutex::new(HashMap::new()),
            cache: OnceLock::new(),
            schema_memo: Mutex::new(HashMap::new()),
        })
    }

    /// Drops what this migrator remembers of `conn`'s schema (see
    /// [`SchemaMemo`]), so that its next migration there reads it afresh.
    pub(super) fn forget_schema(&self, conn: &Connection) {
        if let (Some(path), Ok(mut memo)) = (conn.path().filter(|p| !p.is_empty()), self.schema_memo.lock()) {
            memo.remove(path);
        }
    }

    /// The plugins, in id order.
    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The checked release index, when [`Options::require_release`] is set.
    pub fn release(&self) -> Option<&ReleaseIndex> {
        self.release.as_ref().map(|(_, r)| r)
    }

    /// Refuses a required release older than one `ledger` records.
    fn check_release_order(&self, ledger: &BTreeMap<i64, LedgerRow>) -> Result<()> {
        let Some((path, index)) = &self.release else { return Ok(()) };
        let highest = ledger.values().filter_map(|r| r.release).max();
        index
            .check_not_older(highest)
            .map_err(|reason| Error::Release { index: path.clone(), reason: Box::new(reason) })
    }

    fn cache(&self) -> Result<Option<&CompileCache>> {
        get_or_try_init(&self.cache, || self.options.cache_dir.as_ref().map(CompileCache::open).transpose())
            .map(Option::as_ref)
    }

    fn sandbox(&self) -> Result<&Sandbox> {
        get_or_try_init(&self.sandbox, || Sandbox::new(self.options.limits))
    }

    /// The plugins not yet applied, after refusing drift and out-of-order ids.
    /// Reads only; changes nothing.
    pub fn pending(&self, conn: &Connection) -> Result<Vec<&Plugin>> {
        let ledger = ledger::read_all(conn)?;
        self.pending_given(&ledger)
    }

    fn pending_given(&self, ledger: &BTreeMap<i64, LedgerRow>) -> Result<Vec<&Plugin>> {
        match self.ledger_problems(ledger).into_iter().next() {
            Some(e) => Err(e),
            None => Ok(self.plugins.iter().filter(|p| !ledger.contains_key(&p.id())).collect()),
        }
    }

    /// Every reason the ledger gives to refuse these files, in the order
    /// `apply` reports them (it stops at the first; `check` lists them all):
    /// missing files (or a newer database), drift, then out-of-order ids.
    fn ledger_problems(&self, ledger: &BTreeMap<i64, LedgerRow>) -> Vec<Error> {
        let mut problems = Vec::new();
        if let Err(e) = self.check_release_order(ledger) {
            problems.push(e);
        }
        let known: std::collections::BTreeSet<i64> = self.plugins.iter().map(Plugin::id).collect();
        let missing: Vec<i64> = ledger.keys().copied().filter(|id| !known.contains(id)).collect();
        if !missing.is_empty() && !self.options.allow_missing {
            let newest_known = known.iter().next_back().copied().unwrap_or(0);
            let beyond: Vec<i64> = missing.iter().copied().filter(|id| *id > newest_known).collect();
            problems.push(if beyond.is_empty() {
                Error::MissingFiles { ids: missing }
            } else {
                Error::NewerDatabase { ids: beyond, newest_known }
            });
        }
        for p in &self.plugins {
            if let Some(row) = ledger.get(&p.id())
                && let Err(e) = check_drift(p, row)
            {
                problems.push(e);
            }
        }
        let pending = self.plugins.iter().filter(|p| !ledger.contains_key(&p.id()));
        if !self.options.allow_out_of_order
            && let Some(&highest) = ledger.keys().next_back()
        {
            problems.extend(pending.filter(|p| p.id() < highest).map(|p| Error::OutOfOrder {
                id: p.id(),
                name: p.name().to_owned(),
                highest_applied: highest,
            }));
        }
        problems
    }

    /// Everything `apply` checks before running anything (drift, order,
    /// missing files, and compiling every pending component), without
    /// writing: the migrations that would run. The ledger is not created.
    pub fn dry_run(&self, conn: &Connection) -> Result<Vec<&Plugin>> {
        let pending = self.pending(conn)?;
        if !pending.is_empty() {
            let verdicts = self.verify(&pending)?;
            self.compile(&pending, &verdicts)?;
        }
        Ok(pending)
    }

    /// Verifies and compiles every plugin, pending or not, through the
    /// compiled-component cache when one is configured, and runs nothing:
    /// what `wasmig prepare` does at deploy time so that start-up only
    /// loads compiled code. Returns the plugins in id order.
    pub fn prepare_all(&self) -> Result<Vec<&Plugin>> {
        let all: Vec<&Plugin> = self.plugins.iter().collect();
        if !all.is_empty() {
            let verdicts = self.verify(&all)?;
            self.compile(&all, &verdicts)?;
        }
        Ok(all)
    }

    /// True when migration `id` was compiled as a component by this
    /// migrator (false when it is not compiled yet, or runs as direct SQL).
    pub fn is_compiled_component(&self, id: i64) -> bool {
        self.compiled.lock().is_ok_and(|c| c.get(&id).is_some_and(|c| !c.is_direct_sql()))
    }

    /// Applies every pending migration. See [`Migrator::apply_with`].
    pub fn apply(&self, conn: &mut Connection) -> Result<Report> {
        self.apply_with(conn, |_| {})
    }

    /// Applies every pending migration in id order, calling `on_applied`
    /// after each commit. Stops at the first failure, which is rolled back
    /// completely; later migrations do not run, and the next call resumes at
    /// the failed one.
    ///
    /// With [`Options::single_transaction`], every pending migration runs in
    /// one transaction instead: a failure rolls them all back, and
    /// `on_applied` is called for each after the one commit.
    ///
    /// What it does to `conn` beyond the migrations: while a guest runs, the
    /// connection carries wasmig's SQL authorizer, progress handler,
    /// hardening and limits (see the threat model in the README), and
    /// SQLite's heap is bounded process-wide. Afterwards the hardening,
    /// limits and heap bound are restored to what they were, but **no
    /// authorizer and no progress handler are left installed**: SQLite
    /// offers no way to read back the ones an application had set, and
    /// keeping a guest's handlers would be worse. An application that uses
    /// its own should install them after `apply` returns (as start-up code
    /// usually does anyway, since migrations run before serving).
    pub fn apply_with(&self, conn: &mut Connection, mut on_applied: impl FnMut(&Applied)) -> Result<Report> {
        let started = Instant::now();
        // A replica is only read, in every mode.
        if let Some(cause) = replica::cause_of(conn)? {
            return self.apply_read_only(conn, cause);
        }
        if self.stamp_says_unchanged(conn)? {
            return Ok(Report { elapsed: started.elapsed(), ..self.stamped_report() });
        }
        if self.options.single_transaction {
            let mut report = self.apply_in_one_transaction(conn)?;
            report.applied.iter().for_each(&mut on_applied);
            self.restamp(conn);
            report.elapsed = started.elapsed();
            return Ok(report);
        }
        let plan = self.plan(conn)?;
        let mut report = Report {
            already_applied: plan.already_applied.clone(),
            schema_check: plan.schema_check.clone(),
            ..Report::default()
        };
        for step in &plan.steps {
            match self.apply_step(conn, step)? {
                Some(applied) => {
                    on_applied(&applied);
                    report.applied.push(applied);
                }
                None => report.applied_concurrently.push(step.plugin.id()),
            }
        }
        self.restamp(conn);
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Refuses drift and out-of-order ids, and verifies and compiles every
    /// pending component, so that [`Migrator::apply_step`] can run them one
    /// by one. Writes nothing: each step creates (or adopts) the ledger
    /// inside its own transaction when it is missing.
    pub fn plan(&self, conn: &mut Connection) -> Result<Plan<'_>> {
        // Every check reads only: a refused database is left byte-for-byte
        // as it was, even an old ledger that would need adopting.
        let ledger = ledger::read_all(conn)?;
        let pending = self.pending_given(&ledger)?;
        let already_applied =
            self.plugins.iter().map(Plugin::id).filter(|id| ledger.contains_key(id)).collect();
        let schema_check = self.check_schema_found(conn, &ledger)?;
        if pending.is_empty() {
            // Nothing to run: no engine, no compilation, no write.
            return Ok(Plan { steps: Vec::new(), already_applied, schema_check });
        }
        // Steps would write: never on a replica.
        if let Some(cause) = replica::cause_of(conn)? {
            return Err(Error::ReplicaNotCaughtUp {
                db: PathBuf::from(conn.path().unwrap_or("")),
                cause,
                pending: pending.iter().map(|p| p.id()).collect(),
                waited: None,
            });
        }
        // Verify and compile everything first: a bad file must change nothing.
        let verdicts = self.verify(&pending)?;
        let compiled = self.compile(&pending, &verdicts)?;
        let steps = pending
            .into_iter()
            .zip(compiled)
            .zip(verdicts)
            .enumerate()
            .map(|(i, ((plugin, compiled), verdict))| Step {
                plugin,
                compiled,
                verdict,
                sets_up_ledger: i == 0,
            })
            .collect();
        Ok(Plan { steps, already_applied, schema_check })
    }

    /// The schema as found, compared with the attestation of the last row
    /// of `ledger` (just read from `conn`; `None` without rows); refused
    /// under [`Options::strict_schema`] when it changed. Reads only.
    pub(super) fn check_schema_found(
        &self,
        conn: &Connection,
        ledger: &BTreeMap<i64, LedgerRow>,
    ) -> Result<Option<SchemaCheck>> {
        // From the rows in hand rather than another scan of the ledger.
        let Some(last) = ledger::last_applied(ledger) else { return Ok(None) };
        let last = ledger::LastAttestation { id: last.id, sha256: last.schema_sha256.clone() };
        let check = attest::check_schema_against(conn, Some(last))?;
        if check.state == SchemaState::Changed {
            if self.options.strict_schema {
                return Err(Error::SchemaChangedOutside {
                    after_id: check.after_id.unwrap_or_default(),
                    changes: check.changes,
                });
            }
            tracing::warn!(changes = %check.changes.join(", "), "the schema was changed outside wasmig");
        }
        Ok(Some(check))
    }

    /// The trust policy's verdict on `plugin` (checking it now if loading
    /// deferred the check).
    pub fn verdict_of(&self, plugin: &Plugin) -> Result<Verdict> {
        match &plugin.verdict {
            Verdict::Deferred => {
                // `plugin` is one of ours (its bytes never change after
                // loading), so a verdict reached once stands; refusals are
                // not remembered and are reported afresh each time.
                let ours = self.plugins.iter().any(|p| std::ptr::eq(p, plugin));
                if ours && let Some(v) = self.verdicts.lock().ok().and_then(|m| m.get(&plugin.id()).cloned())
                {
                    return Ok(v);
                }
                if self.precomputed {
                    plugin::recheck_embedded(plugin, self.options.max_file_size)?;
                }
                let v = self
                    .options
                    .trust
                    .check(&plugin.bytes)
                    .map_err(|reason| Error::Untrusted { path: plugin.path.clone(), reason })?;
                if ours && let Ok(mut m) = self.verdicts.lock() {
                    m.insert(plugin.id(), v.clone());
                }
                Ok(v)
            }
            v => Ok(v.clone()),
        }
    }

    /// True when `plugin`'s verdict needs no signature check now.
    fn verdict_known(&self, plugin: &Plugin) -> bool {
        !matches!(plugin.verdict, Verdict::Deferred)
            || self.verdicts.lock().is_ok_and(|m| m.contains_key(&plugin.id()))
    }

    /// True when migration `id` is already compiled (or recognised).
    fn compiled_known(&self, id: i64) -> bool {
        self.compiled.lock().is_ok_and(|c| c.contains_key(&id))
    }

    /// Checks every file that is about to run against the trust policy.
    fn verify(&self, plugins: &[&Plugin]) -> Result<Vec<Verdict>> {
        // A fleet verifies once and then finds every verdict remembered:
        // spawning checker threads per database would only make them queue
        // for cores the other databases' workers are busy on.
        let verdicts: Vec<Verdict> = if plugins.iter().all(|p| self.verdict_known(p)) {
            plugins.iter().map(|p| self.verdict_of(p)).collect::<Result<_>>()?
        } else {
            par_map(plugins, |p| self.verdict_of(p)).into_iter().collect::<Result<_>>()?
        };
        for (p, v) in plugins.iter().zip(&verdicts) {
            self.check_destructive_signers(p, v)?;
        }
        Ok(verdicts)
    }

    /// A file declaring `destructive` needs [`Options::min_signers_destructive`]
    /// distinct trusted signers (an unsigned file has none).
    pub(super) fn check_destructive_signers(&self, plugin: &Plugin, verdict: &Verdict) -> Result<()> {
        let need = self.options.min_signers_destructive;
        let signers = verdict.signers();
        if need == 0 || !plugin.manifest.declares_destructive() || signers.len() >= need {
            return Ok(());
        }
        Err(Error::DestructiveNeedsSigners {
            id: plugin.id(),
            name: plugin.name().to_owned(),
            file: plugin.path.clone(),
            signers: signers.to_vec(),
            need,
        })
    }

    /// Compiles `plugins` (each once per migrator; several in parallel),
    /// returning them in the same order, or the first error in id order.
    /// Only files whose `verdicts` say their signature verified go through
    /// the compiled-component cache.
    fn compile(&self, plugins: &[&Plugin], verdicts: &[Verdict]) -> Result<Vec<Compiled>> {
        let sandbox = self.sandbox()?;
        let cache = self.cache()?;
        let verified: std::collections::HashSet<i64> = plugins
            .iter()
            .zip(verdicts)
            .filter(|(_, v)| matches!(v, Verdict::Trusted(_)))
            .map(|(p, _)| p.id())
            .collect();
        let _one_at_a_time =
            self.compile_lock.lock().map_err(|_| Error::Internal("compile lock poisoned".into()))?;
        let started = Instant::now();
        let cached = |id: i64| self.compiled.lock().ok().and_then(|c| c.get(&id).cloned());
        let todo: Vec<&Plugin> = plugins.iter().copied().filter(|p| cached(p.id()).is_none()).collect();
        if !todo.is_empty() {
            let results =
                par_map(&todo, |p| sandbox.prepare_cached(p, cache.filter(|_| verified.contains(&p.id()))));
            let mut compiled =
                self.compiled.lock().map_err(|_| Error::Internal("compile cache poisoned".into()))?;
            for (p, r) in todo.iter().zip(results) {
                compiled.insert(p.id(), r?);
            }
            tracing::info!(
                compiled = todo.len(),
                ms = started.elapsed().as_millis() as u64,
                "compiled components"
            );
        }
        plugins
            .iter()
            .map(|p| cached(p.id()).ok_or_else(|| Error::Internal("compiled component missing".into())))
            .collect()
    }

    /// Applies one planned migration in its own transaction. `Ok(None)` means
    /// another process applied it meanwhile (nothing was run).
    pub fn apply_step(&self, conn: &mut Connection, step: &Step<'_>) -> Result<Option<Applied>> {
        self.apply_one(self.sandbox()?, conn, step)
    }

    /// One migration in one transaction. `Ok(None)`: someone else applied it.
    fn apply_one(
        &self,
        sandbox: &Sandbox,
        conn: &mut Connection,
        step: &Step<'_>,
    ) -> Result<Option<Applied>> {
        let plugin = step.plugin;
        let (id, name) = (plugin.id(), plugin.name().to_owned());
        // SQLite ignores `PRAGMA foreign_keys` inside a transaction, so a
        // migration that needs enforcement off gets it switched before BEGIN
        // and restored after COMMIT or ROLLBACK, whatever happened.
        with_foreign_keys_off(conn, plugin, &format!("migration {id} ({name})"), |conn| {
            self.apply_in_tx(sandbox, conn, step)
        })
    }

    fn apply_in_tx(
        &self,
        sandbox: &Sandbox,
        conn: &mut Connection,
        step: &Step<'_>,
    ) -> Result<Option<Applied>> {
        let plugin = step.plugin;
        let (id, name) = (plugin.id(), plugin.name().to_owned());
        let started = Instant::now();
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(Error::sqlite(format!("migration {id} ({name}): BEGIN IMMEDIATE")))?;
        let path = conn.path().filter(|p| !p.is_empty()).map(str::to_owned);
        let memo = path.as_ref().and_then(|p| self.schema_memo.lock().ok()?.get(p).cloned());
        let result = self.run_in_tx(sandbox, conn, step, started, memo);
        match result {
            Ok(Some((applied, after))) => {
                tracing::info!(id, name = %name, ms = applied.duration.as_millis() as u64, "committing");
                if let Err(e) = conn.execute_batch("COMMIT") {
                    rollback(conn);
                    return Err(Error::Sqlite {
                        context: format!("migration {id} ({name}): COMMIT"),
                        source: e,
                    });
                }
                if let (Some(p), Ok(mut m)) = (path, self.schema_memo.lock()) {
                    m.insert(p, after);
                }
                Ok(Some(applied))
            }
            Ok(None) => {
                rollback(conn);
                Ok(None)
            }
            Err(e) => {
                rollback(conn);
                tracing::warn!(id, name = %name, error = %e, "rolled back");
                Err(e)
            }
        }
    }

    /// One migration inside the caller's transaction. `memo`: the schema a
    /// committed migration of this migrator left in this database, if any.
    /// Returns what ran and the schema it leaves (for the caller to keep
    /// once committed).
    pub(super) fn run_in_tx(
        &self,
        sandbox: &Sandbox,
        conn: &mut Connection,
        step: &Step<'_>,
        started: Instant,
        memo: Option<SchemaMemo>,
    ) -> Result<Option<(Applied, SchemaMemo)>> {
        let (plugin, compiled) = (step.plugin, &step.compiled);
        let (id, name, file) = (plugin.id(), plugin.name().to_owned(), plugin.path.clone());
        // The ledger is created (or an earlier runner's adopted) in the same
        // transaction as the first migration, so a first migration that
        // fails leaves no trace at all, and no commit is spent on it alone.
        if step.sets_up_ledger {
            ledger::ensure_in_tx(conn)?;
        }
        if ledger::is_applied(conn, id)? {
            return Ok(None);
        }
        // Once per plan (its first step), the schema as found: a trigger that
        // forges ledger rows must not be blamed on, or hidden by, whichever
        // migration next changes the schema, and a ledger that may already
        // have been forged must not decide what runs. Nothing pending, no check.
        if step.sets_up_ledger {
            let found = ledger_guard::violations(conn)?;
            if !found.is_empty() {
                return Err(Error::LedgerTampering { id, name, file, objects: found, before_run: true });
            }
        }
        let watch =
            ledger_guard::Watch::start_knowing(conn, memo.as_ref().map(|m| (m.cookie, &m.own_tables)))?;
        // What a migration that did not declare `destructive` must keep (and
        // what one that did is reported to have dropped).
        let cookie_before = watch.schema_version();
        // The schema before, and the ledger row that recorded exactly it
        // (if one did): this migration's object lines are stored as the
        // change from that row's. With the cookie unchanged since this
        // migrator's last commit, that is the row it wrote.
        let (shape_before, attestation_before, base_row) = match memo.filter(|m| m.cookie == cookie_before) {
            Some(m) => (m.shape, m.attestation, Some(m.recorded_by)),
            None => {
                let catalog = Catalog::read(conn)?;
                let attestation = attest::of(&catalog);
                let last = ledger::last_attestation(conn)?;
                let base = last.filter(|l| l.sha256.as_ref() == Some(&attestation.sha256)).map(|l| l.id);
                (Shape::of(conn, &catalog)?, attestation, base)
            }
        };
        tracing::info!(id, name = %name, file = %file.display(), "running migration");
        let stats = match run_guest(sandbox, conn, compiled, Entry::Up)? {
            Outcome::Ok(stats) => stats,
            Outcome::GuestErr { message, last_failure } => {
                return Err(Error::GuestFailed { id, name, file, message, last_statement: last_failure });
            }
            Outcome::Trap { reason, last_failure } => {
                return Err(Error::Trap { id, name, file, reason, last_statement: last_failure });
            }
            Outcome::Host(e) => return Err(e),
        };
        check_after_guest(conn, plugin, "the migration's transaction ended while the guest ran")?;
        // After the guest (the gate is removed by now) and before the ledger
        // row and COMMIT: nothing it left in the schema may reach the ledger.
        let finished = watch.finish(conn)?;
        if !finished.found.is_empty() {
            return Err(Error::LedgerTampering {
                id,
                name,
                file,
                objects: finished.found,
                before_run: false,
            });
        }
        // An unchanged cookie means the guest changed no schema: the shape
        // (and the attestation, when known) are still the ones from before.
        // Otherwise the guard has just read the schema (it reads it exactly
        // when the cookie moved), and that one read serves the shape and
        // the attestation too.
        let cookie_after = finished.cookie;
        let same_schema = cookie_after == cookie_before;
        let catalog = finished.catalog;
        let shape_after = match &catalog {
            None => shape_before.clone(),
            Some(c) => Shape::of(conn, c)?,
        };
        let destroyed = shape_before.destroyed(&shape_after);
        if !destroyed.is_empty() && !plugin.manifest.declares_destructive() {
            let changes = destroyed.iter().map(ToString::to_string).collect();
            return Err(Error::UndeclaredDestructive { id, name, file, changes });
        }
        // The schema as this migration leaves it, for the next run to compare.
        let attestation = match &catalog {
            _ if same_schema => attestation_before.clone(),
            Some(c) => attest::of(c),
            None => attest::attest(conn)?,
        };
        let objects = object_lines::with_cookie(
            object_lines::encode(
                base_row.map(|row| (row, attestation_before.objects.as_str())),
                &attestation.objects,
            ),
            cookie_after,
        );
        let after = SchemaMemo {
            cookie: cookie_after,
            shape: shape_after,
            attestation: attestation.clone(),
            own_tables: finished.own_tables,
            recorded_by: id,
        };
        let duration = started.elapsed();
        let audit_table = after.own_tables.contains_key(ledger::AUDIT_TABLE);
        ledger::record_knowing(
            conn,
            &LedgerRow {
                id,
                name: name.clone(),
                applied_at: ledger::now_rfc3339(),
                checksum: Some(plugin.digest.clone()),
                duration_ms: Some(duration.as_millis() as i64),
                signers: Some(step.verdict.signers().join(",")).filter(|s| !s.is_empty()),
                world: Some(plugin.manifest.world.clone()),
                host_version: Some(crate::VERSION.to_owned()),
                schema_sha256: Some(attestation.sha256),
                release: self.release().map(|r| r.release),
            },
            Some(&objects),
            Some(audit_table),
        )?;
        Ok(Some((Applied { id, name, duration, stats, destroyed }, after)))
    }
}

/// An applied migration whose file changed is refused. Rows adopted from an
/// earlier runner have no digest; they are trusted by id as that runner was.
fn check_drift(p: &Plugin, row: &LedgerRow) -> Result<()> {
    match &row.checksum {
        Some(recorded) if *recorded != p.digest => Err(Error::Drift {
            id: p.id(),
            name: p.name().to_owned(),
            path: p.path.clone(),
            recorded: recorded.clone(),
            actual: p.digest.clone(),
        }),
        _ => Ok(()),
    }
}

/// `cell`'s value, set by `init` the first time; a failed `init` sets
/// nothing, so the next call tries again (and reports afresh).
fn get_or_try_init<T>(cell: &OnceLock<T>, init: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = init()?;
    Ok(cell.get_or_init(|| v))
}

/// Reads and checks `paths` on every core (hashing dominates start-up);
/// the first error in path order wins.
fn load_parallel(paths: &[PathBuf], max_size: u64) -> Result<Vec<Plugin>> {
    par_map(paths, |p| Plugin::load_deferred(p, max_size)).into_iter().collect()
}

/// The number of cores (asking the system reads cgroup files: once will do).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `f` over `items` on every core, results in input order. The items are
/// independent (files to hash, signatures to check, components to compile),
/// and a start-up with many of them should not wait on one core.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = cores().min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let f = &f;
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break mine };
                        mine.push((i, f(item)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker thread")).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

thread_local! {
    /// The idle in-memory connection that stands in for the real one while a
    /// guest's store owns it.
    static SPARE: std::cell::RefCell<Option<Connection>> = const { std::cell::RefCell::new(None) };
}

/// Every row `PRAGMA foreign_key_check` reports, as readable lines.
fn foreign_key_violations(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT \"table\", rowid, parent, fkid FROM pragma_foreign_key_check")
        .map_err(Error::sqlite("running foreign_key_check"))?;
    stmt.query_map([], |r| {
        let table: String = r.get(0)?;
        let rowid: Option<i64> = r.get(1)?;
        let parent: String = r.get(2)?;
        let fkid: i64 = r.get(3)?;
        Ok(format!(
            "{table} row {} references a missing row of {parent} (foreign key #{fkid})",
            rowid.map_or("?".to_owned(), |r| r.to_string())
        ))
    })
    .and_then(|it| it.collect())
    .map_err(Error::sqlite("running foreign_key_check"))
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        // A failing ROLLBACK leaves SQLite to roll back when the connection
        // closes; there is nothing better to do with the error here.
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// Runs `body` with foreign key enforcement switched off around it when
/// `plugin` declares that capability, restoring the setting afterwards
/// whatever happened (`what` names the migration in errors). SQLite ignores
/// `PRAGMA foreign_keys` inside a transaction, so this wraps BEGIN..COMMIT.
pub(super) fn with_foreign_keys_off<T>(
    conn: &mut Connection,
    plugin: &Plugin,
    what: &str,
    body: impl FnOnce(&mut Connection) -> Result<T>,
) -> Result<T> {
    if !plugin.manifest.needs_foreign_keys_off() {
        return body(conn);
    }
    let was: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(Error::sqlite(format!("{what}: reading foreign_keys")))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(Error::sqlite(format!("{what}: turning foreign keys off")))?;
    let result = body(conn);
    let restored = conn
        .execute_batch(if was { "PRAGMA foreign_keys = ON" } else { "PRAGMA foreign_keys = OFF" })
        .map_err(Error::sqlite(format!("{what}: restoring foreign_keys")));
    match (result, restored) {
        (Ok(_), Err(e)) => Err(e),
        (result, _) => result,
    }
}

/// Runs `entry` of `compiled` on `conn` in the sandbox. The store must own
/// its data ('static), so the connection moves in for the run and comes
/// back after; an idle in-memory connection holds its place meanwhile (kept
/// per thread, so it is opened once).
pub(super) fn run_guest(
    sandbox: &Sandbox,
    conn: &mut Connection,
    compiled: &Compiled,
    entry: Entry,
) -> Result<Outcome> {
    let placeholder = match SPARE.with(|s| s.borrow_mut().take()) {
        Some(c) => c,
        None => Connection::open_in_memory().map_err(Error::sqlite("opening a placeholder connection"))?,
    };
    let taken = std::mem::replace(conn, placeholder);
    let (back, outcome) = sandbox.run_entry(compiled, taken, entry);
    let spare = std::mem::replace(conn, back);
    SPARE.with(|s| *s.borrow_mut() = Some(spare));
    Ok(outcome)
}

/// What `up` and `down` must both leave after the guest returned `Ok`: the
/// transaction still open (`ended` says otherwise, as a trap) and, for a
/// migration that ran with foreign keys off, no violation.
pub(super) fn check_after_guest(conn: &Connection, plugin: &Plugin, ended: &str) -> Result<()> {
    let (id, name, file) = (plugin.id(), plugin.name().to_owned(), plugin.path.clone());
    if conn.is_autocommit() {
        return Err(Error::Trap { id, name, file, reason: ended.into(), last_statement: None });
    }
    if plugin.manifest.needs_foreign_keys_off() {
        let violations = foreign_key_violations(conn)?;
        if !violations.is_empty() {
            return Err(Error::ForeignKeyViolations { id, name, file, violations });
        }
    }
    Ok(())
}
