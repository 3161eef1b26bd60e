//! `wasmig.toml` and the `WASMIG_*` environment: defaults for the flags a
//! team would otherwise retype on every command.
//!
//! The file is the first `wasmig.toml` found in the working directory or
//! its nearest parent; paths in it are relative to the file. Precedence is
//! flag > environment > file. Every key is one line of the [`settings!`]
//! list below (its type says how it is read from the file, rebased and read
//! from the environment), so adding a key is adding a line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::args::LimitArgs;
use crate::exit::Usage;

/// The file name looked for.
pub const FILE_NAME: &str = "wasmig.toml";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env(&'static str),
    /// The configuration file.
    File(PathBuf),
}

impl Source {
    fn label(&self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env(_) => "env",
            Source::File(_) => "file",
        }
    }

    fn origin(&self) -> String {
        match self {
            Source::Flag => "command line".to_owned(),
            Source::Env(var) => (*var).to_owned(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// One effective value and where it came from.
#[derive(Debug, Clone)]
pub struct Setting<T> {
    /// The value (paths already relative to the working directory).
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// How a setting's type is read from the file (rebased to the file's
/// directory) and from an environment variable.
pub trait Value: Sized + Serialize {
    /// The value with relative paths taken relative to `base`.
    fn rebase(self, _base: &Path) -> Self {
        self
    }
    /// Parses an environment variable's value.
    fn from_env(var: &str, raw: OsString) -> Result<Self> {
        let _ = raw;
        Err(Usage(format!("{var}: this setting cannot come from the environment")).into())
    }
}

impl Value for PathBuf {
    fn rebase(self, base: &Path) -> Self {
        base.join(self)
    }
    fn from_env(_var: &str, raw: OsString) -> Result<Self> {
        Ok(PathBuf::from(raw))
    }
}

impl Value for Vec<PathBuf> {
    fn rebase(self, base: &Path) -> Self {
        self.into_iter().map(|p| base.join(p)).collect()
    }
    /// A list of paths separated as in `PATH` (`:` on Unix).
    fn from_env(_var: &str, raw: OsString) -> Result<Self> {
        Ok(std::env::split_paths(&raw).filter(|p| !p.as_os_str().is_empty()).collect())
    }
}

impl Value for bool {
    fn from_env(var: &str, raw: OsString) -> Result<Self> {
        match raw.to_str() {
            Some("1" | "true" | "yes") => Ok(true),
            Some("0" | "false" | "no") => Ok(false),
            _ => Err(Usage(format!("{var}: expected true or false, got {raw:?}")).into()),
        }
    }
}

impl Value for usize {
    fn from_env(var: &str, raw: OsString) -> Result<Self> {
        raw.to_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Usage(format!("{var}: expected a whole number, got {raw:?}")).into())
    }
}

impl Value for LimitArgs {}

/// Declares every configuration key: its documentation, type and, where
/// it has one, its environment variable.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $key:ident : $ty:ty $(, env $env:literal)? ;)*) => {
        /// `wasmig.toml` as written; any other key is an error naming it.
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FileConfig {
            $( $(#[doc = $doc])* $key: Option<$ty>, )*
        }

        /// The effective configuration (file, then environment over it);
        /// flags are applied by the commands, over both.
        #[derive(Debug, Default)]
        pub struct Config {
            /// The configuration file found, if any.
            pub file: Option<PathBuf>,
            $( $(#[doc = $doc])* pub $key: Option<Setting<$ty>>, )*
        }

        impl Config {
            fn merge(file: Option<(PathBuf, FileConfig)>, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Config> {
                let mut c = Config::default();
                if let Some((path, f)) = file {
                    let base = path.parent().unwrap_or(Path::new("."));
                    $( c.$key = f.$key.map(|v| Setting { value: v.rebase(base), source: Source::File(path.clone()) }); )*
                    c.file = Some(path);
                }
                $( $(
                    if let Some(raw) = env($env) {
                        c.$key = Some(Setting { value: <$ty as Value>::from_env($env, raw)?, source: Source::Env($env) });
                    }
                )? )*
                Ok(c)
            }

            /// Every key, in declaration order, for `wasmig config`.
            pub fn entries(&self) -> Vec<Entry> {
                vec![ $( Entry::of(stringify!($key), self.$key.as_ref()), )* ]
            }
        }
    };
}

settings! {
    /// The SQLite database file.
    db: PathBuf, env "WASMIG_DB";
    /// The directory of migration plugin files.
    dir: PathBuf, env "WASMIG_DIR";
    /// Trusted public key files.
    trust: Vec<PathBuf>, env "WASMIG_TRUST";
    /// Signatures each file needs from distinct trusted keys.
    min_signers: usize;
    /// Directory of compiled components kept between runs.
    cache_dir: PathBuf;
    /// Sandbox limits, named as the flags are (`fuel`, `deadline`, ...).
    limits: LimitArgs;
    /// Refuse to apply when the schema was changed outside wasmig.
    strict_schema: bool, env "WASMIG_STRICT_SCHEMA";
    /// Distinct trusted signers a file declaring `destructive` needs.
    min_signers_destructive: usize;
    /// Refuse unless DIR's signed release index matches (apply, status, check).
    require_release: bool, env "WASMIG_REQUIRE_RELEASE";
    /// Keep wasmig's header stamp in `PRAGMA user_version` (apply).
    stamp_user_version: bool, env "WASMIG_STAMP_USER_VERSION";
}

/// One key as `wasmig config` shows it.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// The key.
    pub key: &'static str,
    /// Its value; `null` when not set.
    pub value: serde_json::Value,
    /// `flag`, `env` or `file`; `null` when not set.
    pub source: Option<&'static str>,
    /// The flag, variable or file it came from.
    pub origin: Option<String>,
}

impl Entry {
    fn of<T: Serialize>(key: &'static str, s: Option<&Setting<T>>) -> Entry {
        Entry {
            key,
            value: s.map(|s| serde_json::to_value(&s.value).expect("settings serialise")).unwrap_or_default(),
            source: s.map(|s| s.source.label()),
            origin: s.map(|s| s.source.origin()),
        }
    }
}

impl Config {
    /// The configuration for this process: `wasmig.toml` from the working
    /// directory or its nearest parent, and the environment.
    pub fn discover() -> Result<Config> {
        let cwd = std::env::current_dir().context("reading the working directory")?;
        let file = cwd.ancestors().map(|d| d.join(FILE_NAME)).find(|p| p.is_file());
        let parsed = file.map(|p| read_file(&p).map(|f| (p, f))).transpose()?;
        Config::merge(parsed, &|var| std::env::var_os(var).filter(|v| !v.is_empty()))
    }

    /// The migrations directory: `flag`, else the configured one.
    pub fn dir(&self, flag: Option<PathBuf>) -> Result<PathBuf> {
        pick(flag, &self.dir).ok_or_else(|| {
            Usage(format!("no migrations directory: give DIR, set WASMIG_DIR, or set `dir` in {FILE_NAME}"))
                .into()
        })
    }

    /// The database: `flag`, else the configured one.
    pub fn db(&self, flag: Option<PathBuf>) -> Result<PathBuf> {
        self.db_if_any(flag).ok_or_else(|| {
            Usage(format!("no database: give --db, set WASMIG_DB, or set `db` in {FILE_NAME}")).into()
        })
    }

    /// The database: `flag`, else the configured one, if any.
    pub fn db_if_any(&self, flag: Option<PathBuf>) -> Option<PathBuf> {
        pick(flag, &self.db)
    }

    /// The compiled-component cache: `flag`, else the configured one.
    pub fn cache_dir(&self, flag: Option<PathBuf>) -> Option<PathBuf> {
        pick(flag, &self.cache_dir)
    }

    /// Trust flags with what they leave unset taken from the configuration.
    pub fn trust(&self, mut args: crate::args::TrustArgs) -> crate::args::TrustArgs {
        if args.keys.is_empty()
            && let Some(t) = &self.trust
        {
            args.keys = t.value.clone();
        }
        args.min_signers = pick(args.min_signers, &self.min_signers);
        args
    }

    /// `--strict-schema`, or the configured `strict_schema` (a flag can
    /// only turn it on).
    pub fn strict_schema(&self, flag: bool) -> bool {
        switched_on(flag, &self.strict_schema)
    }

    /// `--require-release`, or the configured `require_release` (a flag can
    /// only turn it on).
    pub fn require_release(&self, flag: bool) -> bool {
        switched_on(flag, &self.require_release)
    }

    /// `--stamp-user-version`, or the configured `stamp_user_version` (a
    /// flag can only turn it on).
    pub fn stamp_user_version(&self, flag: bool) -> bool {
        switched_on(flag, &self.stamp_user_version)
    }

    /// `--min-signers-destructive`, else the configured value, else 0.
    pub fn min_signers_destructive(&self, flag: Option<usize>) -> usize {
        pick(flag, &self.min_signers_destructive).unwrap_or(0)
    }

    /// Library options with the trust policy and limits these flags and
    /// the configuration give; everything else at its default.
    pub fn options(&self, trust: crate::args::TrustArgs, limits: LimitArgs) -> Result<wasmig::Options> {
        Ok(wasmig::Options {
            trust: self.trust(trust).policy()?,
            limits: self.limits(limits).limits()?,
            ..wasmig::Options::default()
        })
    }

    /// Limit flags with what they leave unset taken from `[limits]`.
    pub fn limits(&self, args: LimitArgs) -> LimitArgs {
        match &self.limits {
            Some(l) => args.or(&l.value),
            None => args,
        }
    }
}

/// The flag's value, else the setting's.
fn pick<T: Clone>(flag: Option<T>, setting: &Option<Setting<T>>) -> Option<T> {
    flag.or_else(|| setting.as_ref().map(|s| s.value.clone()))
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| Usage(format!("{}: {}", path.display(), e.message())).into())
}

/// A switch a flag can only turn on: the flag, or the configured value.
fn switched_on(flag: bool, setting: &Option<Setting<bool>>) -> bool {
    flag || setting.as_ref().is_some_and(|s| s.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))
    }

    #[test]
    fn file_paths_are_relative_to_the_file_and_the_environment_wins() {
        let f =
            parse("db = 'app.db'\ndir = 'migrations'\ntrust = ['keys/a.pub']\nmin_signers = 2\n").unwrap();
        let env = |var: &str| (var == "WASMIG_DB").then(|| OsString::from("/elsewhere.db"));
        let c = Config::merge(Some((PathBuf::from("/proj/wasmig.toml"), f)), &env).unwrap();
        assert_eq!(c.dir.as_ref().unwrap().value, Path::new("/proj/migrations"));
        assert_eq!(c.trust.as_ref().unwrap().value, vec![PathBuf::from("/proj/keys/a.pub")]);
        let db = c.db.as_ref().unwrap();
        assert_eq!((db.value.as_path(), &db.source), (Path::new("/elsewhere.db"), &Source::Env("WASMIG_DB")));
        assert_eq!(c.min_signers.as_ref().unwrap().value, 2);
        assert_eq!(c.db(Some("flag.db".into())).unwrap(), Path::new("flag.db"), "a flag beats both");
    }

    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml\ndb = ").expect("README has the example") + "```toml\n".len();
        let text = &readme[start..start + readme[start..].find("```").unwrap()];
        let f = parse(text).unwrap();
        let limits = f.limits.unwrap();
        assert_eq!((limits.fuel, limits.deadline), (Some(20_000_000_000), Some(600.0)));
        assert_eq!(limits.compiler, Some(wasmig::Compiler::Cranelift));
        assert_eq!(f.min_signers, Some(2));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = parse("db = 'a.db'\ndatabase = 'b.db'\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `database`"), "{e}");
        let e = parse("[limits]\nfuel = 5\nmemory = 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `memory`"), "{e}");
    }

    #[test]
    fn the_compiler_is_a_limits_key_by_name() {
        let f = parse("[limits]\ncompiler = 'winch'\n").unwrap();
        let limits = f.limits.unwrap();
        assert_eq!(limits.compiler, Some(wasmig::Compiler::Winch));
        assert_eq!(limits.limits().unwrap().compiler, wasmig::Compiler::Winch);
        let flag = LimitArgs { compiler: Some(wasmig::Compiler::Cranelift), ..LimitArgs::default() };
        assert_eq!(flag.or(&limits).compiler, Some(wasmig::Compiler::Cranelift), "a flag beats the file");
        assert_eq!(LimitArgs::default().limits().unwrap().compiler, wasmig::Compiler::Cranelift);
        let e = parse("[limits]\ncompiler = 'llvm'\n").unwrap_err().to_string();
        assert!(e.contains("llvm") && e.contains("winch"), "{e}");
    }

    #[test]
    fn trust_from_the_environment_is_a_path_list() {
        let env = |var: &str| (var == "WASMIG_TRUST").then(|| OsString::from("a.pub:/k/b.pub"));
        let c = Config::merge(None, &env).unwrap();
        assert_eq!(c.trust.unwrap().value, vec![PathBuf::from("a.pub"), PathBuf::from("/k/b.pub")]);
    }
}
