//! Applying one set of migrations to many databases at once (one database
//! per tenant, say).
//!
//! Each component is compiled once for the whole fleet; databases are
//! migrated in parallel by a bounded number of workers, each with its own
//! connection. A database that fails is reported and left as it was; it
//! never stops or affects the others.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::migrator::{Migrator, Report};
use crate::error::{Error, Result};

/// How a fleet apply runs.
#[derive(Debug, Clone, Copy)]
pub struct FleetOptions {
    /// Databases migrated at the same time.
    pub parallelism: usize,
    /// How long each connection waits for a lock held by someone else.
    pub busy_timeout: Duration,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            busy_timeout: Duration::from_secs(30),
        }
    }
}

/// One database's result.
#[derive(Debug)]
pub struct DbResult {
    /// The database file.
    pub db: PathBuf,
    /// What apply reported, or why it failed (the database is then as before
    /// the failing migration; earlier ones in the same run stay committed).
    pub outcome: Result<Report>,
    /// Time spent on this database.
    pub elapsed: Duration,
}

impl DbResult {
    /// `applied`, `up-to-date` or `failed`.
    pub fn label(&self) -> &'static str {
        match &self.outcome {
            Ok(r) if r.applied.is_empty() => "up-to-date",
            Ok(_) => "applied",
            Err(_) => "failed",
        }
    }
}

/// Every database's result, in the order they were given.
#[derive(Debug)]
pub struct FleetReport {
    /// Per database.
    pub results: Vec<DbResult>,
    /// Wall-clock time of the whole fleet.
    pub elapsed: Duration,
}

impl FleetReport {
    /// Number of databases with the given [`DbResult::label`].
    pub fn count(&self, label: &str) -> usize {
        self.results.iter().filter(|r| r.label() == label).count()
    }

    /// True when no database failed.
    pub fn all_ok(&self) -> bool {
        self.results.iter().all(|r| r.outcome.is_ok())
    }
}

impl Migrator {
    /// Applies the pending migrations to every database in `dbs`, creating
    /// missing files. A database on a LiteFS replica is only read (see
    /// [`Migrator::apply_replica`]). `progress(done, total)` is called after each database.
    pub fn apply_fleet(
        &self,
        dbs: &[PathBuf],
        options: FleetOptions,
        progress: impl Fn(usize, usize) + Sync,
    ) -> FleetReport {
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let slots: Mutex<Vec<Option<DbResult>>> = Mutex::new((0..dbs.len()).map(|_| None).collect());
        let workers = options.parallelism.clamp(1, dbs.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(db) = dbs.get(i) else { break };
                        let t = Instant::now();
                        let outcome = self.apply_to_file(db, options.busy_timeout);
                        let result = DbResult { db: db.clone(), outcome, elapsed: t.elapsed() };
                        if let Ok(mut s) = slots.lock() {
                            s[i] = Some(result);
                        }
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1, dbs.len());
                    }
                });
            }
        });
        let results = slots
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .zip(dbs)
            .map(|(r, db)| {
                r.unwrap_or_else(|| DbResult {
                    db: db.clone(),
                    outcome: Err(Error::Internal("worker stopped before this database".into())),
                    elapsed: Duration::ZERO,
                })
            })
            .collect();
        FleetReport { results, elapsed: started.elapsed() }
    }

    fn apply_to_file(&self, db: &Path, busy_timeout: Duration) -> Result<Report> {
        // Each database on its own: a LiteFS replica among them is only read
        // (and never created), the others are applied as usual.
        if super::migrator::litefs_replica(db).is_some() {
            return self.apply_replica(db, busy_timeout, |_| {});
        }
        let mut conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(Error::sqlite(format!("opening {}", db.display())))?;
        conn.busy_timeout(busy_timeout).map_err(Error::sqlite("setting busy timeout"))?;
        self.apply(&mut conn)
    }
}

/// Expands the `--db` arguments: `@FILE` reads paths from FILE (one per
/// line, `#` comments), a name with `*` or `?` is matched against its
/// directory (sorted), anything else is taken as it is.
pub fn expand_databases(args: &[String]) -> Result<Vec<PathBuf>> {
    expand(args).map_err(Error::Usage)
}

fn expand(args: &[String]) -> std::result::Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for a in args {
        if let Some(list) = a.strip_prefix('@') {
            let text = std::fs::read_to_string(list).map_err(|e| format!("{list}: {e}"))?;
            out.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(PathBuf::from),
            );
        } else if a.contains(['*', '?']) {
            let path = Path::new(a);
            let pattern = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if dir.to_str().is_some_and(|d| d.contains(['*', '?'])) {
                return Err(format!("{a}: wildcards are supported in the file name only"));
            }
            let mut matched: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| e.file_name().to_str().is_some_and(|n| wildcard_match(pattern, n)))
                .map(|e| e.path())
                .collect();
            if matched.is_empty() {
                return Err(format!("{a}: no database files match"));
            }
            matched.sort();
            out.append(&mut matched);
        } else {
            out.push(PathBuf::from(a));
        }
    }
    Ok(out)
}

/// `*` matches any run of characters, `?` any one character.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.db", "tenant-1.db"));
        assert!(wildcard_match("t?-*.db", "t1-x.db"));
        assert!(!wildcard_match("*.db", "tenant.db-wal"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*b", "ac"));
    }
}
