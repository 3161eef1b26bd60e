//! A directory of compiled components, so a start-up with pending migrations
//! need not run Cranelift again for files it has compiled before.
//!
//! # Threat and defence
//!
//! A compiled artifact is native machine code that wasmtime maps executable
//! without validating it: whoever can write a file into the cache can run
//! code in every process that loads from it, with no signature in the way.
//! The cache is therefore only as safe as the directory, and wasmig treats it
//! like its own binary:
//!
//! - The directory must belong to the user wasmig runs as and must not be
//!   writable by group or others (it is created `0700`); anything else is
//!   refused with an error naming the directory and its mode. Its parent must
//!   not be writable by others either, unless it is sticky (like `/tmp`), so
//!   the directory cannot be swapped for another.
//! - Each entry is opened once, without following a link (`O_NOFOLLOW`) or
//!   blocking (`O_NONBLOCK`); on that open descriptor it must be a regular
//!   file with the same owner and no group/other write bit, and at most
//!   [`MAX_ENTRY_BYTES`] long; the artifact is read from that same
//!   descriptor (never by path again). Otherwise it is ignored and the
//!   component is compiled from its verified bytes instead.
//! - Entries are written only for files whose signature the trust policy has
//!   just verified, and only read for such files. An unsigned file (allowed
//!   with `--allow-unsigned`) is always compiled afresh.
//! - An entry's name is the verified file's content digest plus a hash of
//!   the engine's compilation settings and wasmig's version, so an entry is
//!   only ever loaded for the exact bytes and the exact engine it was built
//!   from; wasmtime checks the engine settings again while loading. The
//!   compiler ([`crate::Compiler`]) is one of those settings: Winch code uses
//!   its own calling convention, which is part of wasmtime's compatibility
//!   hash and of its load-time check, so neither compiler ever loads the
//!   other's entries.
//! - Each entry ends with the SHA-256 of the artifact, which catches torn or
//!   corrupted files (not a defence against an attacker, who could recompute
//!   it: that defence is the directory's ownership and mode). Entries are
//!   written to a temporary file and renamed into place, so a reader never
//!   sees half an entry.
//!
//! Loading an entry is the one place wasmig calls `unsafe` wasmtime API, and
//! it is audited below.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, Result};
use crate::plugin::OpenRefusal;

/// Length of the SHA-256 trailer after each artifact.
const TRAILER: usize = 32;

/// The largest entry read or written, trailer included. Plugin files are at
/// most 16 MiB and compile to a few times that; the bound only keeps a
/// damaged or planted giant file from being read into memory whole.
pub const MAX_ENTRY_BYTES: u64 = 256 << 20;

/// A directory of compiled components, opened after its ownership and mode
/// were checked.
#[derive(Clone)]
pub struct CompileCache {
    dir: PathBuf,
    #[cfg(unix)]
    uid: u32,
    /// The key part for the engine last seen: hashing its settings costs
    /// more than loading a small entry, and one cache serves one engine.
    engine_key: std::sync::OnceLock<(Engine, u64)>,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileCache").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// The per-user cache directory the CLI uses by default:
/// `$XDG_CACHE_HOME/wasmig` when that variable holds an absolute path (the
/// XDG base directory rule), else `$HOME/.cache/wasmig`; `None` when neither
/// is set. The library itself caches only where [`crate::Options::cache_dir`]
/// says.
pub fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").and_then(absolute) {
        return Some(xdg.join("wasmig"));
    }
    std::env::var_os("HOME").and_then(absolute).map(|home| home.join(".cache").join("wasmig"))
}

impl CompileCache {
    /// Opens (creating it `0700` if needed) the cache directory `dir`, and
    /// refuses it unless only the current user can write to it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<CompileCache> {
        let dir = dir.into();
        let refuse = |reason: String| Error::Cache { dir: dir.clone(), reason };
        create_private_dir(&dir).map_err(|e| refuse(format!("cannot create it: {e}")))?;
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| refuse(e.to_string()))?;
        if !meta.is_dir() {
            return Err(refuse("not a directory (a symlink is not accepted)".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let uid = current_uid(&dir).map_err(|e| refuse(format!("cannot write to it: {e}")))?;
            if meta.uid() != uid {
                return Err(refuse(format!(
                    "owned by uid {} but wasmig runs as uid {uid}; a compiled-component cache must \
                     belong to the user that loads it",
                    meta.uid()
                )));
            }
            if meta.mode() & 0o022 != 0 {
                return Err(refuse(format!(
                    "mode {:o} lets group or others write compiled code that wasmig would run; \
                     use `chmod 700`",
                    meta.mode() & 0o7777
                )));
            }
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let pmeta = std::fs::metadata(parent).map_err(|e| refuse(format!("its parent: {e}")))?;
            let sticky = pmeta.mode() & 0o1000 != 0;
            if pmeta.mode() & 0o002 != 0 && !sticky {
                return Err(refuse(format!(
                    "its parent {} is writable by others (mode {:o}), who could replace the cache",
                    parent.display(),
                    pmeta.mode() & 0o7777
                )));
            }
            Ok(CompileCache { dir, uid, engine_key: Default::default() })
        }
        #[cfg(not(unix))]
        Ok(CompileCache { dir, engine_key: Default::default() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry for `digest` compiled by `engine` lives.
    pub fn entry_path(&self, engine: &Engine, digest: &str) -> PathBuf {
        let key = match self.engine_key.get() {
            Some((seen, key)) if Engine::same(seen, engine) => *key,
            _ => {
                let key = engine_key(engine);
                let _ = self.engine_key.set((engine.clone(), key));
                key
            }
        };
        // The digest is ours (hex), but never let it steer the path.
        let digest: String = digest.chars().filter(char::is_ascii_hexdigit).take(64).collect();
        self.dir.join(format!("{digest}-{key:016x}.cwasm"))
    }

    /// The compiled component for the verified file with content `digest`,
    /// if a sound entry exists. Any doubt means `None`: compile instead.
    pub fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.entry_path(engine, digest);
        let ignore = |why: &str| {
            tracing::warn!(path = %path.display(), "ignoring a cache entry: {why}");
            None
        };
        // One descriptor, opened without following links or blocking; every
        // check below is on that descriptor and the bytes come from it, so
        // the entry cannot be swapped between the checks and the read.
        let (file, meta) = match crate::plugin::open_regular(&path) {
            Ok(opened) => opened,
            Err(OpenRefusal::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(OpenRefusal::Io(e)) => return ignore(&format!("cannot open it: {e}")),
            Err(OpenRefusal::NotRegular(what)) => {
                return ignore(&format!("it is {what}, not a regular file"));
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if meta.uid() != self.uid {
                return ignore(&format!("owned by uid {} but wasmig runs as uid {}", meta.uid(), self.uid));
            }
            if meta.mode() & 0o022 != 0 {
                return ignore(&format!("mode {:o} lets group or others write it", meta.mode() & 0o7777));
            }
        }
        if meta.len() > MAX_ENTRY_BYTES {
            return ignore(&format!("{} bytes is over the {MAX_ENTRY_BYTES}-byte bound", meta.len()));
        }
        let bytes = match crate::plugin::read_bounded(&file, meta.len(), MAX_ENTRY_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return ignore(&format!("it grew past the {MAX_ENTRY_BYTES}-byte bound")),
            Err(e) => return ignore(&format!("cannot read it: {e}")),
        };
        drop(file);
        let Some(split) = bytes.len().checked_sub(TRAILER) else {
            return ignore("truncated");
        };
        let (artifact, sum) = bytes.split_at(split);
        if Sha256::digest(artifact).as_slice() != sum {
            return ignore("corrupted (its SHA-256 trailer does not match)");
        }
        // SAFETY: `Component::deserialize` maps `artifact` as executable code
        // without validating it, so it must be an artifact this engine
        // configuration produced and nobody altered. It was written by
        // `store` below (Component::serialize of a component compiled from
        // signature-verified bytes with this digest), into a directory that
        // `open` checked only this user can write, as a regular file owned by
        // this user without group/other write (checked just above on the
        // descriptor these bytes were read from), and its SHA-256 trailer
        // matches. wasmtime itself refuses artifacts from a
        // different version or engine configuration. The threat model in
        // this module's documentation explains what remains trusted.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, artifact) };
        match component {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable cache entry");
                None
            }
        }
    }

    /// Writes `component` (compiled from the verified file with content
    /// `digest`) as its entry. Failing to write only costs a later compile.
    pub fn store(&self, engine: &Engine, digest: &str, component: &Component) {
        let path = self.entry_path(engine, digest);
        if let Err(e) = self.write_entry(&path, component) {
            tracing::warn!(path = %path.display(), error = %e, "could not write a cache entry");
        }
    }

    fn write_entry(&self, path: &Path, component: &Component) -> std::io::Result<()> {
        let artifact = component.serialize().map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        if artifact.len() as u64 + TRAILER as u64 > MAX_ENTRY_BYTES {
            // `load` would never read it back; writing it would only waste disk.
            return Err(std::io::Error::other(format!(
                "the compiled component is {} bytes, over the {MAX_ENTRY_BYTES}-byte entry bound",
                artifact.len()
            )));
        }
        // `tempfile_in` creates a new random name with O_CREAT | O_EXCL (so
        // it never opens an existing file or follows a planted link) and mode
        // 0600; the rename then replaces the entry's name atomically, and
        // replaces a planted symlink itself rather than writing through it.
        let mut tmp = tempfile::Builder::new().prefix(".entry").tempfile_in(&self.dir)?;
        tmp.write_all(&artifact)?;
        tmp.write_all(&Sha256::digest(&artifact))?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// A hash of everything that makes compiled code valid for `engine`.
fn engine_key(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    crate::VERSION.hash(&mut h);
    h.finish()
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// The uid this process creates files as, read from a file it creates in
/// `dir` (which also proves the directory is writable).
#[cfg(unix)]
fn current_uid(dir: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::Builder::new().prefix(".probe").tempfile_in(dir)?;
    Ok(probe.as_file().metadata()?.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    fn component(engine: &Engine) -> Component {
        let bytes = crate::sql::script::component_for_sql("CREATE TABLE t (x)").unwrap();
        Component::new(engine, bytes).expect("a pack-sql component compiles")
    }

    /// A fresh cache holding one entry for `digest`, and the entry's path.
    fn with_entry(tmp: &Path, engine: &Engine, digest: &str) -> (CompileCache, PathBuf) {
        let cache = CompileCache::open(tmp.join("cc")).unwrap();
        assert!(cache.load(engine, digest).is_none(), "empty cache has no entry");
        cache.store(engine, digest, &component(engine));
        assert!(cache.load(engine, digest).is_some(), "stored entry loads");
        let path = cache.entry_path(engine, digest);
        (cache, path)
    }

    #[test]
    fn round_trip_then_refuses_a_corrupted_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = engine();
        let digest = "ab".repeat(32);
        let (cache, path) = with_entry(tmp.path(), &engine, &digest);

        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert!(cache.load(&engine, &digest).is_none(), "a flipped byte is caught by the trailer");
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(cache.load(&engine, &digest).is_none(), "a truncated entry is ignored");
    }

    #[test]
    fn entries_are_keyed_by_digest_and_engine_settings() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = engine();
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let fueled = Engine::new(&config).unwrap();
        let d1 = "01".repeat(32);
        let (cache, _) = with_entry(tmp.path(), &plain, &d1);
        assert_ne!(cache.entry_path(&plain, &d1), cache.entry_path(&fueled, &d1));
        assert_ne!(cache.entry_path(&plain, &d1), cache.entry_path(&plain, &"02".repeat(32)));
        assert!(cache.load(&fueled, &d1).is_none(), "another engine's entry is never loaded");
        assert!(cache.load(&plain, &"02".repeat(32)).is_none(), "nor another digest's");
        assert!(
            cache.entry_path(&plain, "../../etc/x").starts_with(cache.dir()),
            "a digest cannot steer the path"
        );
    }

    /// An engine like the sandbox's, compiling with `strategy`.
    fn engine_with(strategy: wasmtime::Strategy) -> Engine {
        let mut config = wasmtime::Config::new();
        config.strategy(strategy).consume_fuel(true).epoch_interruption(true);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn winch_and_cranelift_entries_never_cross() {
        let tmp = tempfile::tempdir().unwrap();
        let cranelift = engine_with(wasmtime::Strategy::Cranelift);
        let winch = engine_with(wasmtime::Strategy::Winch);
        let digest = "5a".repeat(32);
        let cache = CompileCache::open(tmp.path().join("cc")).unwrap();
        cache.store(&winch, &digest, &component(&winch));
        let (winch_path, cranelift_path) =
            (cache.entry_path(&winch, &digest), cache.entry_path(&cranelift, &digest));
        // The key: wasmtime's compatibility hash covers the tunables, and
        // Winch's calling convention is one of them.
        assert_ne!(winch_path, cranelift_path, "each compiler has its own entry name");
        assert!(cache.load(&winch, &digest).is_some(), "Winch loads its own entry");
        assert!(cache.load(&cranelift, &digest).is_none(), "Cranelift finds no entry of its own");

        // Even a Winch entry copied under the Cranelift name (and the other
        // way round) passes every check of ours (owner, mode, trailer) and is
        // then refused by wasmtime's own check while deserializing.
        std::fs::copy(&winch_path, &cranelift_path).unwrap();
        assert!(cache.load(&cranelift, &digest).is_none(), "a Winch artifact is refused by Cranelift");
        let other = "a5".repeat(32);
        cache.store(&cranelift, &other, &component(&cranelift));
        std::fs::copy(cache.entry_path(&cranelift, &other), cache.entry_path(&winch, &other)).unwrap();
        assert!(cache.load(&winch, &other).is_none(), "a Cranelift artifact is refused by Winch");
        assert!(cache.load(&cranelift, &other).is_some(), "and still loads where it belongs");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_directories_others_can_write() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cc");
        let cache = CompileCache::open(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "created private");
        drop(cache);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = CompileCache::open(&dir).unwrap_err().to_string();
        assert!(err.contains("775") && err.contains("chmod 700"), "{err}");

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = CompileCache::open(&dir).unwrap_err().to_string();
        assert!(err.contains("parent") && err.contains("777"), "{err}");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(CompileCache::open(&dir).is_ok(), "a sticky parent like /tmp is fine");
    }

    #[cfg(unix)]
    #[test]
    fn ignores_entries_others_can_write_or_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let engine = engine();
        let digest = "cd".repeat(32);
        let (cache, path) = with_entry(tmp.path(), &engine, &digest);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(cache.load(&engine, &digest).is_none(), "group/other-writable entry ignored");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert!(cache.load(&engine, &digest).is_none(), "group-writable entry ignored");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(cache.load(&engine, &digest).is_some(), "the same entry, private again, loads");
        let elsewhere = tmp.path().join("elsewhere.cwasm");
        std::fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(cache.load(&engine, &digest).is_none(), "symlinked entry ignored");
        // Storing again replaces the link itself, never writing through it.
        let target_before = std::fs::read(&elsewhere).unwrap();
        cache.store(&engine, &digest, &component(&engine));
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file(), "the link was replaced");
        assert_eq!(std::fs::read(&elsewhere).unwrap(), target_before, "its target was not written");
        assert!(cache.load(&engine, &digest).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn ignores_an_entry_owned_by_another_user() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = engine();
        let digest = "ef".repeat(32);
        let (cache, path) = with_entry(tmp.path(), &engine, &digest);
        // Only root can give a file away; elsewhere this case cannot be set up.
        match std::os::unix::fs::chown(&path, Some(cache.uid + 4242), None) {
            Ok(()) => assert!(cache.load(&engine, &digest).is_none(), "another user's entry ignored"),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!("not root: cannot chown a cache entry, ownership case not exercised");
            }
            Err(e) => panic!("chown: {e}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn ignores_fifos_and_giant_entries_without_blocking_or_reading_them() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = engine();
        let digest = "0f".repeat(32);
        let (cache, path) = with_entry(tmp.path(), &engine, &digest);
        std::fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(made.success(), "mkfifo");
        // Opening a FIFO for reading blocks until a writer comes, unless
        // O_NONBLOCK; if this test hangs, that flag is missing.
        assert!(cache.load(&engine, &digest).is_none(), "a FIFO entry ignored");
        std::fs::remove_file(&path).unwrap();
        let giant = std::fs::File::create(&path).unwrap();
        giant.set_len(MAX_ENTRY_BYTES + 1).unwrap();
        assert!(cache.load(&engine, &digest).is_none(), "an entry over the bound ignored");
    }
}
