//! `check`: everything `apply` verifies before running anything, without
//! running or writing anything, and without stopping at the first problem
//! where the checks are independent, so a reviewer or CI sees every reason
//! a directory (and, given a database, its ledger) would be refused.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{Migrator, Options, par_map};
use crate::error::{Error, Result};
use crate::ledger;
use crate::plugin::{self, Plugin, Verdict};

/// One reason `apply` would refuse the input.
#[derive(Debug)]
pub struct Problem {
    /// The file it is about, when it is about one.
    pub file: Option<PathBuf>,
    /// The migration it is about, when known.
    pub id: Option<i64>,
    /// The refusal itself, exactly as `apply` would report it.
    pub error: Error,
}

impl Problem {
    /// A short stable label for the class of problem (`bad-plugin`,
    /// `untrusted`, `duplicate-id`, `invalid-component`, `drift`,
    /// `out-of-order`, `missing-files`, `newer-database`, `ledger`, `other`).
    pub fn kind(&self) -> &'static str {
        match &self.error {
            Error::BadPlugin { .. } => "bad-plugin",
            Error::Untrusted { .. } => "untrusted",
            Error::DuplicateId { .. } => "duplicate-id",
            Error::InvalidComponent { .. } => "invalid-component",
            Error::Drift { .. } => "drift",
            Error::OutOfOrder { .. } => "out-of-order",
            Error::MissingFiles { .. } => "missing-files",
            Error::NewerDatabase { .. } => "newer-database",
            Error::Ledger(_) => "ledger",
            Error::DestructiveNeedsSigners { .. } => "destructive-signers",
            Error::SchemaChangedOutside { .. } => "schema-changed",
            Error::Release { .. } => "release",
            _ => "other",
        }
    }
}

/// What [`check_dir`] found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Plugin files found in the directory.
    pub files: usize,
    /// Ids that `apply` would run (every readable file without a database),
    /// whether or not they passed.
    pub pending: Vec<i64>,
    /// Files accepted only because the policy allows unsigned ones.
    pub unsigned: Vec<i64>,
    /// Every problem, in the order `apply` checks: files (bytes, manifest,
    /// name), duplicate ids, the ledger, signatures, compilation.
    pub problems: Vec<Problem>,
    /// With a database: its schema compared with the ledger's last
    /// attestation (`None` when nothing is recorded yet).
    pub schema: Option<crate::apply::SchemaCheck>,
}

impl CheckReport {
    /// True when `apply` would accept the input.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `dir` (and, with `conn`, its ledger) the way `apply` would before
/// running anything: each file's size, preamble, sections, manifest and
/// name; duplicate ids; drift, out-of-order ids and missing files against
/// the ledger; the signature of every file `apply` would run; and compiles
/// and type-checks each of those whose signature passed (untrusted bytes
/// are never compiled). Reads only: `conn` may be read-only, and nothing is
/// created.
///
/// Returns `Err` only when the check itself cannot be made (the directory
/// or database cannot be read); refusals are [`CheckReport::problems`].
pub fn check_dir(dir: &Path, options: Options, conn: Option<&Connection>) -> Result<CheckReport> {
    let paths = plugin::list_dir(dir)?;
    let mut report = CheckReport { files: paths.len(), ..CheckReport::default() };
    let mut loaded = Vec::new();
    for (path, result) in
        paths.iter().zip(par_map(&paths, |p| Plugin::load_deferred(p, options.max_file_size)))
    {
        match result {
            Ok(p) => loaded.push(p),
            Err(e) if e.is_refused_input() => report.problems.push(Problem {
                file: Some(path.clone()),
                id: plugin::read_file(path, options.max_file_size)
                    .ok()
                    .and_then(|b| plugin::read_manifest(&b).ok())
                    .map(|m| m.id),
                error: e,
            }),
            Err(e) => return Err(e),
        }
    }
    // Every file claiming a taken id is reported against the first; none of
    // them goes further, since which one would run is exactly the question.
    loaded.sort_by(|a, b| a.id().cmp(&b.id()).then_with(|| a.path.cmp(&b.path)));
    let mut unique: Vec<Plugin> = Vec::with_capacity(loaded.len());
    let mut duplicated = std::collections::BTreeSet::new();
    for p in loaded {
        match unique.last() {
            Some(first) if first.id() == p.id() => {
                report.problems.push(Problem {
                    file: Some(p.path.clone()),
                    id: Some(p.id()),
                    error: Error::DuplicateId {
                        id: p.id(),
                        first: first.path.clone(),
                        second: p.path.clone(),
                    },
                });
                duplicated.insert(p.id());
            }
            _ => unique.push(p),
        }
    }
    unique.retain(|p| !duplicated.contains(&p.id()));
    let migrator = if options.require_release {
        // A refused index is one problem; the other checks still run.
        let path = plugin::release_path(dir);
        let checked = plugin::read_release(dir)
            .and_then(|index| plugin::check_release(&path, index, &options.trust, &unique));
        match checked {
            Ok(index) => Migrator::from_plugins_and_release(unique, options, &path, Some(index))?,
            Err(e) if e.is_refused_input() => {
                report.problems.push(Problem { file: Some(path), id: None, error: e });
                Migrator::from_plugins(unique, Options { require_release: false, ..options })?
            }
            Err(e) => return Err(e),
        }
    } else {
        Migrator::from_plugins(unique, options)?
    };

    let ledger = match conn.map(ledger::read_all).transpose() {
        Ok(l) => l.unwrap_or_default(),
        Err(e) if e.is_refused_input() => {
            report.problems.push(Problem { file: None, id: None, error: e });
            Default::default()
        }
        Err(e) => return Err(e),
    };
    if let Some(conn) = conn {
        // As apply: a schema changed outside wasmig is reported, and is a
        // problem under `strict_schema`.
        match migrator.check_schema_found(conn, &ledger) {
            Ok(found) => report.schema = found,
            Err(e) if e.is_refused_input() => {
                report.problems.push(Problem { file: None, id: None, error: e })
            }
            Err(e) => return Err(e),
        }
    }
    for e in migrator.ledger_problems(&ledger) {
        let (file, id) = match &e {
            Error::Drift { id, path, .. } => (Some(path.clone()), Some(*id)),
            Error::OutOfOrder { id, .. } => (migrator.file_of(*id), Some(*id)),
            _ => (None, None),
        };
        report.problems.push(Problem { file, id, error: e });
    }

    let pending: Vec<&Plugin> = migrator.plugins.iter().filter(|p| !ledger.contains_key(&p.id())).collect();
    report.pending = pending.iter().map(|p| p.id()).collect();
    let verdicts = par_map(&pending, |p| migrator.verdict_of(p));
    let mut trusted = Vec::new();
    for (p, v) in pending.iter().zip(verdicts) {
        match v {
            Ok(v) => {
                if matches!(v, Verdict::Unsigned) {
                    report.unsigned.push(p.id());
                }
                match migrator.check_destructive_signers(p, &v) {
                    Ok(()) => trusted.push(*p),
                    Err(e) => report.problems.push(Problem {
                        file: Some(p.path.clone()),
                        id: Some(p.id()),
                        error: e,
                    }),
                }
            }
            Err(e) => {
                report.problems.push(Problem { file: Some(p.path.clone()), id: Some(p.id()), error: e })
            }
        }
    }
    if !trusted.is_empty() {
        let sandbox = migrator.sandbox()?;
        for (p, r) in trusted.iter().zip(par_map(&trusted, |p| sandbox.prepare(p))) {
            match r {
                Ok(_) => {}
                Err(e) if e.is_refused_input() => {
                    report.problems.push(Problem { file: Some(p.path.clone()), id: Some(p.id()), error: e })
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(report)
}

impl Migrator {
    /// The file of migration `id`, if there is one.
    fn file_of(&self, id: i64) -> Option<PathBuf> {
        self.plugins.iter().find(|p| p.id() == id).map(|p| p.path.clone())
    }
}
