//! Importing an existing directory of SQL migrations from another tool.
//!
//! Each tool's naming and ordering conventions are read as that tool reads
//! them, only the "up" part of each migration is taken, and each becomes a
//! plugin whose id is the tool's own version number: ids stay stable when
//! the directory is imported again after new migrations are added.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The tools whose directories can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `migrations/<version>_<name>/up.sql` (version digits, dashes allowed).
    Diesel,
    /// `<version>_<name>.sql` or `<version>_<name>.up.sql`.
    Sqlx,
    /// `V<version>__<name>.sql`.
    Refinery,
    /// `<version>_<name>.sql` with `-- +goose Up` / `-- +goose Down` sections.
    Goose,
    /// `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down` sections.
    Dbmate,
}

impl std::str::FromStr for Tool {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "diesel" => Tool::Diesel,
            "sqlx" => Tool::Sqlx,
            "refinery" => Tool::Refinery,
            "goose" => Tool::Goose,
            "dbmate" => Tool::Dbmate,
            other => {
                return Err(Error::Usage(format!(
                    "unknown tool {other:?}; use diesel, sqlx, refinery, goose or dbmate"
                )));
            }
        })
    }
}

/// One migration found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The id it gets: the tool's version number.
    pub id: i64,
    /// Its name, made safe for a plugin file name.
    pub name: String,
    /// The file its SQL came from.
    pub source: PathBuf,
    /// The up SQL.
    pub sql: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .take(100)
        .collect();
    if s.is_empty() { "migration".into() } else { s }
}

fn version(digits: &str, path: &Path) -> Result<i64, String> {
    let d: String = digits.chars().filter(|c| *c != '-').collect();
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{}: {digits:?} is not a version number", path.display()));
    }
    match d.parse::<i64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{}: version {digits:?} must be a positive 63-bit number", path.display())),
    }
}

/// Reads `dir` as `tool` lays it out; returns the up migrations in order.
pub fn scan(dir: &Path, tool: Tool) -> Result<Vec<Found>, Error> {
    scan_dir(dir, tool).map_err(Error::Import)
}

fn scan_dir(dir: &Path, tool: Tool) -> Result<Vec<Found>, String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort();
    let mut found = Vec::new();
    for path in entries {
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default().to_owned();
        if file.starts_with('.') {
            continue;
        }
        let item = match tool {
            Tool::Diesel => diesel(&path, &file)?,
            Tool::Sqlx => sqlx(&path, &file)?,
            Tool::Refinery => refinery(&path, &file)?,
            Tool::Goose => sectioned(&path, &file, Sections::Goose)?,
            Tool::Dbmate => sectioned(&path, &file, Sections::Dbmate)?,
        };
        found.extend(item);
    }
    found.sort_by_key(|f| f.id);
    if let Some(w) = found.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(format!(
            "version {} appears twice: {} and {}",
            w[0].id,
            w[0].source.display(),
            w[1].source.display()
        ));
    }
    if found.is_empty() {
        return Err(format!("{}: no migrations found in the layout expected", dir.display()));
    }
    Ok(found)
}

fn split_version(stem: &str, sep: &str) -> Option<(String, String)> {
    let (v, name) = stem.split_once(sep)?;
    Some((v.to_owned(), name.to_owned()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(io(path))
}

fn diesel(path: &Path, file: &str) -> Result<Option<Found>, String> {
    if !path.is_dir() {
        return Ok(None);
    }
    let Some((v, name)) = split_version(file, "_") else {
        return Err(format!("{}: expected <version>_<name>", path.display()));
    };
    let up = path.join("up.sql");
    Ok(Some(Found { id: version(&v, path)?, name: sanitize(&name), sql: read(&up)?, source: up }))
}

fn sqlx(path: &Path, file: &str) -> Result<Option<Found>, String> {
    if file.ends_with(".down.sql") || !file.ends_with(".sql") || path.is_dir() {
        return Ok(None);
    }
    let stem = file.trim_end_matches(".sql").trim_end_matches(".up");
    let Some((v, name)) = split_version(stem, "_") else {
        return Err(format!("{}: expected <version>_<description>.sql", path.display()));
    };
    Ok(Some(Found {
        id: version(&v, path)?,
        name: sanitize(&name),
        sql: read(path)?,
        source: path.to_owned(),
    }))
}

/// The stem of a `.sql` migration file; `None` for anything else, and an
/// error for a migration written in `language` (files ending in `ext`),
/// which has no SQL to import.
fn sql_stem<'a>(path: &Path, file: &'a str, ext: &str, language: &str) -> Result<Option<&'a str>, String> {
    if path.is_dir() {
        return Ok(None);
    }
    if file.ends_with(ext) {
        return Err(format!(
            "{}: {language} migrations cannot be imported; port them to SQL",
            path.display()
        ));
    }
    Ok(file.ends_with(".sql").then(|| file.trim_end_matches(".sql")))
}

fn refinery(path: &Path, file: &str) -> Result<Option<Found>, String> {
    let Some(stem) = sql_stem(path, file, ".rs", "Rust")? else { return Ok(None) };
    if stem.starts_with('U') {
        return Err(format!(
            "{}: unversioned (U) migrations have no fixed place in the order",
            path.display()
        ));
    }
    let Some((v, name)) = stem.strip_prefix('V').and_then(|s| split_version(s, "__")) else {
        return Err(format!("{}: expected V<version>__<name>.sql", path.display()));
    };
    Ok(Some(Found {
        id: version(&v, path)?,
        name: sanitize(&name),
        sql: read(path)?,
        source: path.to_owned(),
    }))
}

#[derive(Clone, Copy)]
enum Sections {
    Goose,
    Dbmate,
}

fn sectioned(path: &Path, file: &str, kind: Sections) -> Result<Option<Found>, String> {
    let Some(stem) = sql_stem(path, file, ".go", "Go")? else { return Ok(None) };
    let Some((v, name)) = split_version(stem, "_") else {
        return Err(format!("{}: expected <version>_<name>.sql", path.display()));
    };
    let text = read(path)?;
    let mut up = String::new();
    let mut in_up = false;
    let mut seen_up = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        let directive = |p: &str| t.strip_prefix(p).map(str::trim);
        let (is_up, is_down, extra) = match kind {
            Sections::Goose => match directive("-- +goose") {
                Some(d) if d.eq_ignore_ascii_case("up") => (true, false, ""),
                Some(d) if d.eq_ignore_ascii_case("down") => (false, true, ""),
                Some(d) if d.to_ascii_uppercase().starts_with("NO TRANSACTION") => {
                    return Err(format!(
                        "{}:{}: '-- +goose NO TRANSACTION' cannot be honoured: every migration runs in one transaction",
                        path.display(),
                        i + 1
                    ));
                }
                // StatementBegin/End only guide goose's own splitter.
                Some(_) => {
                    up.push('\n');
                    continue;
                }
                None => (false, false, ""),
            },
            Sections::Dbmate => match directive("-- migrate:") {
                Some(d) if d.starts_with("up") => (true, false, d.trim_start_matches("up").trim()),
                Some(d) if d.starts_with("down") => (false, true, ""),
                _ => (false, false, ""),
            },
        };
        if extra.contains("transaction:false") {
            return Err(format!(
                "{}:{}: 'transaction:false' cannot be honoured: every migration runs in one transaction",
                path.display(),
                i + 1
            ));
        }
        if is_up {
            in_up = true;
            seen_up = true;
            up.push('\n');
        } else if is_down {
            in_up = false;
            up.push('\n');
        } else if in_up {
            up.push_str(line);
            up.push('\n');
        } else {
            // Keep line numbers of the up section meaningful.
            up.push('\n');
        }
    }
    if !seen_up {
        return Err(format!("{}: no up section", path.display()));
    }
    Ok(Some(Found { id: version(&v, path)?, name: sanitize(&name), sql: up, source: path.to_owned() }))
}
