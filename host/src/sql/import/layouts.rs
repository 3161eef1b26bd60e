//! Each tool's directory layout, as the tool itself reads it (the source
//! file each rule comes from is named at the function).

use std::path::{Path, PathBuf};

use super::digest::{refinery_checksum, sha256, sha384};
use super::{DownScript, Entry, Order, Tool};

/// Every migration `tool` would find in `dir`.
pub(super) fn read(dir: &Path, tool: Tool) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    if tool == Tool::Refinery {
        walk(dir, dir, &mut out)?;
        return Ok(out);
    }
    for path in listing(dir)? {
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default().to_owned();
        let entry = match tool {
            Tool::Diesel => diesel(&path, &file)?,
            Tool::Sqlx => sqlx(&path, &file)?,
            Tool::Goose => goose(&path, &file)?,
            Tool::Dbmate => dbmate(&path, &file)?,
            Tool::GolangMigrate => golang_migrate(dir, &path, &file)?,
            Tool::Refinery => unreachable!("walked above"),
        };
        out.extend(entry);
    }
    if tool == Tool::GolangMigrate {
        golang_migrate_down_only(dir, &mut out)?;
    }
    Ok(out)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

fn listing(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort();
    Ok(entries)
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(io(path))
}

/// A down script kept in a file of its own.
fn read_down(path: &Path) -> Result<DownScript, String> {
    Ok(DownScript { source: path.to_owned(), sql: read_text(path)? })
}

/// Keeps line numbers: every line of `text` outside the part being read is blank.
fn blank_lines(text: &str) -> String {
    "\n".repeat(text.matches('\n').count())
}

/// diesel_migrations (`migrations_internals/src/lib.rs`): every non-empty
/// directory not starting with `.` is a migration and must hold `up.sql`;
/// the version is the folder name up to the first `_` with `-` removed,
/// and versions sort as strings (`MigrationVersion` derives `Ord`). An
/// empty `up.sql` is refused when it runs (`EmptyMigration`); one with only
/// comments runs and is recorded. `metadata.toml` may set
/// `run_in_transaction = false`, which wasmig cannot honour.
fn diesel(path: &Path, file: &str) -> Result<Option<Entry>, String> {
    if !path.is_dir() || file.starts_with('.') {
        return Ok(None);
    }
    if std::fs::read_dir(path).map_err(io(path))?.next().is_none() {
        return Ok(None);
    }
    let up = path.join("up.sql");
    if !up.is_file() {
        return Err(format!("{}: diesel needs an up.sql in every migration folder", path.display()));
    }
    let (version, name) = match file.split_once('_') {
        Some((v, name)) => (v.replace('-', ""), name),
        None => (file.replace('-', ""), file),
    };
    let text = read_text(&up)?;
    if text.is_empty() {
        return Err(format!(
            "{}: the file is empty, and diesel refuses to run an empty migration \
             (a comment makes it a no-op step)",
            up.display()
        ));
    }
    let meta = path.join("metadata.toml");
    if meta.is_file() {
        let toml = read_text(&meta)?;
        let off = toml.lines().any(|l| {
            let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
            l.starts_with("run_in_transaction=false")
        });
        if off {
            return Err(format!(
                "{}: 'run_in_transaction = false' cannot be honoured: every migration runs in one transaction",
                meta.display()
            ));
        }
    }
    let down = path.join("down.sql");
    Ok(Some(Entry {
        order: Order::Text(version.clone()),
        version,
        name: name.to_owned(),
        file: format!("{file}/up.sql"),
        digest: sha256(text.as_bytes()),
        up: text,
        source: up,
        down: down.is_file().then(|| read_down(&down)).transpose()?,
    }))
}

/// sqlx-core (`migrate/source.rs`, `resolve_blocking_with_config`): regular
/// files named `<version>_<description>.sql` (anything else is ignored),
/// the version parsed as `i64` (a file that fails to parse is an error),
/// `.up.sql` / `.down.sql` making a reversible pair; sorted by version. A
/// script starting with `-- no-transaction` runs outside a transaction,
/// which wasmig cannot honour. The checksum is SHA-384 of the file's text.
fn sqlx(path: &Path, file: &str) -> Result<Option<Entry>, String> {
    if !path.is_file() {
        return Ok(None);
    }
    let Some((v, rest)) = file.split_once('_') else { return Ok(None) };
    if !rest.ends_with(".sql") {
        return Ok(None);
    }
    let version: i64 = v.parse().map_err(|_| {
        format!("{}: sqlx expects an integer version before the first '_' (e.g. 01_foo.sql)", path.display())
    })?;
    if rest.ends_with(".down.sql") {
        return Ok(None); // the down half of a pair
    }
    let stem = rest.strip_suffix(".up.sql").or_else(|| rest.strip_suffix(".sql")).unwrap_or(rest);
    let text = read_text(path)?;
    if text.starts_with("-- no-transaction") {
        return Err(format!(
            "{}:1: '-- no-transaction' cannot be honoured: every migration runs in one transaction",
            path.display()
        ));
    }
    let down = rest.ends_with(".up.sql").then(|| path.with_file_name(format!("{v}_{stem}.down.sql")));
    Ok(Some(Entry {
        order: Order::Number(i128::from(version)),
        version: version.to_string(),
        name: stem.to_owned(),
        file: file.to_owned(),
        digest: sha384(text.as_bytes()),
        up: text,
        source: path.to_owned(),
        down: down.filter(|d| d.is_file()).map(|d| read_down(&d)).transpose()?,
    }))
}

/// refinery_core (`util.rs`, `find_migration_files` and
/// `parse_migration_name`): every file below the directory, at any depth,
/// whose name matches `^[U|V](\d+(?:\.\d+)?)__(\w+)\.sql$`; others are
/// skipped. The version must parse as refinery's integer; `V` and `U`
/// migrations share one numeric order (`U` ones are also applied when an
/// older one was missed). Rust (`.rs`) migrations have no SQL to import.
fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> Result<(), String> {
    for path in listing(dir)? {
        if path.is_dir() {
            walk(root, &path, out)?;
            continue;
        }
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        let (stem, rust) = match (file.strip_suffix(".sql"), file.strip_suffix(".rs")) {
            (Some(s), _) => (s, false),
            (None, Some(s)) => (s, true),
            _ => continue,
        };
        let Some((prefix, version, name)) = refinery_stem(stem) else { continue };
        if rust {
            return Err(format!("{}: Rust migrations cannot be imported; port them to SQL", path.display()));
        }
        if prefix == '|' {
            return Err(format!("{}: refinery reads '|' as a prefix and cannot run it", path.display()));
        }
        let v: i64 = version.parse().map_err(|_| {
            format!("{}: version {version:?} is not an integer, which refinery refuses", path.display())
        })?;
        let text = read_text(&path)?;
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        out.push(Entry {
            order: Order::Number(i128::from(v)),
            version: v.to_string(),
            digest: format!("siphash13:{}", refinery_checksum(name, v, &text)),
            name: name.to_owned(),
            file: rel,
            up: text,
            source: path.clone(),
            down: None,
        });
    }
    Ok(())
}

/// `stem` split as refinery's pattern splits it: prefix, version, name.
fn refinery_stem(stem: &str) -> Option<(char, &str, &str)> {
    let prefix = stem.chars().next().filter(|c| matches!(c, 'U' | 'V' | '|'))?;
    let rest = &stem[1..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let mut end = digits;
    if digits > 0 && rest[digits..].starts_with('.') {
        let more = rest[digits + 1..].bytes().take_while(u8::is_ascii_digit).count();
        if more > 0 {
            end = digits + 1 + more;
        }
    }
    let name = rest[end..].strip_prefix("__")?;
    // `\w` is Unicode-aware in refinery's regex: letters, marks, digits,
    // connector punctuation.
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '\u{200c}' || c == '\u{200d}';
    (digits > 0 && !name.is_empty() && name.chars().all(word)).then_some((prefix, &rest[..end], name))
}

/// goose (`migration.go`, `NumericComponent`; `provider_collect.go`):
/// `*.sql` and `*.go` files whose name up to the first `_` parses as an
/// `int64` of at least 1 (others, and `_test.go`, are skipped); numeric
/// order. The SQL is read as `internal/sqlparser/parser.go` reads it: it
/// must have `-- +goose Up`; annotations are lines starting `--` that
/// contain `+goose`; `NO TRANSACTION` and `ENVSUB ON` cannot be honoured.
fn goose(path: &Path, file: &str) -> Result<Option<Entry>, String> {
    if path.is_dir() || file.ends_with("_test.go") {
        return Ok(None);
    }
    let (stem, go) = match (file.strip_suffix(".sql"), file.strip_suffix(".go")) {
        (Some(s), _) => (s, false),
        (None, Some(s)) => (s, true),
        _ => return Ok(None),
    };
    let Some((v, name)) = stem.split_once('_') else { return Ok(None) };
    let Some(version) = go_int(v).filter(|n| *n >= 1) else { return Ok(None) };
    if go {
        return Err(format!("{}: Go migrations cannot be imported; port them to SQL", path.display()));
    }
    let text = read_text(path)?;
    let (up, down) =
        goose_sections(&text).map_err(|(line, why)| format!("{}:{line}: {why}", path.display()))?;
    Ok(Some(Entry {
        order: Order::Number(i128::from(version)),
        version: version.to_string(),
        name: name.to_owned(),
        file: file.to_owned(),
        digest: sha256(text.as_bytes()),
        up,
        source: path.to_owned(),
        down: down.map(|sql| DownScript { source: path.to_owned(), sql }),
    }))
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign, then digits.
fn go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The up section of a goose file, other lines blanked.
fn goose_sections(text: &str) -> Result<(String, Option<String>), (usize, String)> {
    let mut up = String::with_capacity(text.len());
    let mut down = String::new();
    let (mut in_up, mut seen_up, mut in_down) = (false, false, false);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let t = bare.trim();
        if t.starts_with("--") && bare.contains("+goose") {
            if bare.starts_with([' ', '\t']) {
                return Err((i + 1, "a goose annotation must not be indented".into()));
            }
            let cmd = bare.replace("--", "").replacen("+goose", "", 1);
            let cmd = cmd.trim();
            let is = |a: &str| cmd.eq_ignore_ascii_case(a);
            if is("Up") {
                if seen_up {
                    return Err((i + 1, "duplicate '-- +goose Up' annotation".into()));
                }
                (in_up, seen_up) = (true, true);
            } else if is("Down") {
                if !seen_up {
                    return Err((i + 1, "goose needs '-- +goose Up' before '-- +goose Down'".into()));
                }
                (in_up, in_down) = (false, true);
            } else if is("NO TRANSACTION") || is("ENVSUB ON") {
                return Err((
                    i + 1,
                    format!(
                        "'-- +goose {cmd}' cannot be honoured: every migration runs in one transaction, as written"
                    ),
                ));
            } else if !(is("StatementBegin") || is("StatementEnd") || is("ENVSUB OFF")) {
                return Err((i + 1, format!("unknown goose annotation {cmd:?}")));
            }
            // StatementBegin/End only guide goose's own splitter.
            up.push('\n');
            down.push('\n');
        } else if in_up {
            up.push_str(line);
            down.push_str(&blank_lines(line));
        } else if in_down {
            up.push_str(&blank_lines(line));
            down.push_str(line);
        } else {
            up.push_str(&blank_lines(line));
            down.push_str(&blank_lines(line));
        }
    }
    if !seen_up {
        return Err((1, "no '-- +goose Up' annotation, which goose requires".into()));
    }
    Ok((up, in_down.then_some(down)))
}

/// dbmate (`pkg/dbmate/db.go`, `FindMigrations`; `migration.go`): files
/// matching `^(\d+).*\.sql$`, the version being those digits, sorted by
/// file name. A file needs `-- migrate:up` and then `-- migrate:down`
/// (`(?m)^--\s*migrate:up(\s*$|\s+\S+)`), with nothing but comments before
/// the up block; the up block runs as one script. `transaction:false`
/// cannot be honoured, and a file with several up blocks records its
/// version once per block, which fails on SQLite.
fn dbmate(path: &Path, file: &str) -> Result<Option<Entry>, String> {
    let digits = file.bytes().take_while(u8::is_ascii_digit).count();
    if path.is_dir() || digits == 0 || !file.ends_with(".sql") || file.len() < digits + 4 {
        return Ok(None);
    }
    let text = read_text(path)?;
    let at = |line: usize, why: &str| format!("{}:{line}: {why}", path.display());
    let mut up = String::with_capacity(text.len());
    let mut down = String::new();
    let (mut ups, mut downs, mut in_up) = (0, 0, false);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        match dbmate_directive(bare) {
            Some(("up", options)) => {
                ups += 1;
                if ups > 1 {
                    return Err(at(
                        i + 1,
                        "a second '-- migrate:up' block: dbmate would record the version twice",
                    ));
                }
                if options.split_whitespace().any(|o| o == "transaction:false") {
                    return Err(at(
                        i + 1,
                        "'transaction:false' cannot be honoured: every migration runs in one transaction",
                    ));
                }
                in_up = true;
                up.push_str(line);
                down.push_str(&blank_lines(line));
            }
            Some((_, _)) => {
                if ups == 0 {
                    return Err(at(
                        i + 1,
                        "dbmate requires '-- migrate:up' to appear before '-- migrate:down'",
                    ));
                }
                downs += 1;
                in_up = false;
                up.push_str(&blank_lines(line));
                down.push_str(&blank_lines(line));
            }
            None if in_up => {
                up.push_str(line);
                down.push_str(&blank_lines(line));
            }
            None if downs > 0 => {
                up.push_str(&blank_lines(line));
                down.push_str(line);
            }
            None => {
                let t = bare.trim();
                if ups == 0 && !t.is_empty() && !t.starts_with("--") {
                    return Err(at(
                        i + 1,
                        "dbmate does not support statements before the '-- migrate:up' block",
                    ));
                }
                up.push_str(&blank_lines(line));
                down.push_str(&blank_lines(line));
            }
        }
    }
    if ups == 0 {
        return Err(at(1, "no '-- migrate:up' block, which dbmate requires"));
    }
    if downs == 0 {
        return Err(at(1, "no '-- migrate:down' block, which dbmate requires in every migration"));
    }
    let name = file[digits..].trim_end_matches(".sql");
    Ok(Some(Entry {
        order: Order::Text(file.to_owned()),
        version: file[..digits].to_owned(),
        name: name.strip_prefix('_').unwrap_or(name).to_owned(),
        file: file.to_owned(),
        digest: sha256(text.as_bytes()),
        up,
        source: path.to_owned(),
        down: Some(DownScript { source: path.to_owned(), sql: down }),
    }))
}

/// `("up" | "down", options)` when `line` is a dbmate block directive.
fn dbmate_directive(line: &str) -> Option<(&'static str, &str)> {
    let rest = line.strip_prefix("--")?.trim_start().strip_prefix("migrate:")?;
    for dir in ["up", "down"] {
        if let Some(after) = rest.strip_prefix(dir)
            && (after.trim().is_empty() || after.starts_with(char::is_whitespace))
        {
            return Some((dir, after.trim()));
        }
    }
    None
}

/// golang-migrate (`source/parse.go`): files matching
/// `^([0-9]+)_(.*)\.(down|up)\.(.*)$` (others are skipped), the version
/// parsed as `uint64`, numeric order; the whole up file runs as one script
/// (`database/sqlite3/sqlite3.go`, `Run`).
fn golang_migrate(dir: &Path, path: &Path, file: &str) -> Result<Option<Entry>, String> {
    let Some((version, name, up)) = golang_migrate_name(file) else { return Ok(None) };
    if path.is_dir() || !up {
        return Ok(None);
    }
    let v: u64 = version
        .parse()
        .map_err(|_| format!("{}: version {version} is beyond golang-migrate's uint64", path.display()))?;
    let text = read_text(path)?;
    let down = listing(dir)?.into_iter().find(|p| {
        p.file_name()
            .and_then(|f| f.to_str())
            .and_then(golang_migrate_name)
            .is_some_and(|(dv, _, is_up)| !is_up && dv.parse::<u64>().ok() == Some(v))
    });
    Ok(Some(Entry {
        order: Order::Number(i128::from(v)),
        version: v.to_string(),
        name: name.to_owned(),
        file: file.to_owned(),
        digest: sha256(text.as_bytes()),
        up: text,
        source: path.to_owned(),
        down: down.map(|d| read_down(&d)).transpose()?,
    }))
}

/// `(version digits, name, is_up)` for a golang-migrate file name. The
/// name is greedy, as in the pattern: the last `.up.` or `.down.` counts.
fn golang_migrate_name(file: &str) -> Option<(&str, &str, bool)> {
    let digits = file.bytes().take_while(u8::is_ascii_digit).count();
    let rest = file[digits..].strip_prefix('_').filter(|_| digits > 0)?;
    let (at, up) = match (rest.rfind(".up."), rest.rfind(".down.")) {
        (Some(u), Some(d)) if d > u => (d, false),
        (Some(u), _) => (u, true),
        (None, Some(d)) => (d, false),
        (None, None) => return None,
    };
    Some((&file[..digits], &rest[..at], up))
}

/// A version that has only a down file still counts in golang-migrate:
/// migrating up through it just sets the version. It becomes a step that
/// does nothing.
fn golang_migrate_down_only(dir: &Path, out: &mut Vec<Entry>) -> Result<(), String> {
    for path in listing(dir)? {
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        let Some((version, name, false)) = golang_migrate_name(file) else { continue };
        let Ok(v) = version.parse::<u64>() else { continue };
        if path.is_dir() || out.iter().any(|e| e.order == Order::Number(i128::from(v))) {
            continue;
        }
        out.push(Entry {
            order: Order::Number(i128::from(v)),
            version: v.to_string(),
            name: name.to_owned(),
            file: file.to_owned(),
            digest: sha256(b""),
            up: String::new(),
            source: path.clone(),
            down: Some(read_down(&path)?),
        });
    }
    Ok(())
}
