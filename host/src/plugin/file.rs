//! The migration plugin file format: writing the manifest into a
//! component, packing and signing, the content digest, and the checks a
//! file passes when loaded.
//!
//! A plugin is an ordinary WebAssembly component with one extra custom
//! section, [`MANIFEST_SECTION`], holding a small JSON manifest (format
//! version, migration id, name, target world). Because the manifest lives in
//! the component bytes, the id and name are covered by the same digest (and,
//! once signed, the same signature) as the code: renaming a file cannot
//! change which migration it is.
//!
//! Files are read in one place, [`read_file`] (regular files only, one
//! descriptor, a bounded read); everything else here works on bytes only,
//! and nothing is compiled. The loader checks the preamble, walks the
//! sections, decodes the manifest and checks the file name before any
//! compiler sees the bytes.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::Manifest;
use super::sections::{MANIFEST_SECTION, SIGNATURE_SECTION, encode_custom_section, sections};
use super::signing;
use super::trust::{TrustPolicy, Verdict};
use crate::error::{Error, FormatError, Result};

/// Largest plugin file accepted, in bytes. Real migrations are a few hundred
/// KiB; anything near this is a mistake or an attack on the compiler.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// SHA-256 (hex) of the file with every signature section left out: the
/// identity of a migration's content, unchanged by signing or re-signing.
pub fn content_digest(bytes: &[u8]) -> std::result::Result<String, FormatError> {
    let secs = sections(bytes)?;
    let mut h = Sha256::new();
    h.update(&bytes[..8]);
    for s in &secs {
        if s.name != Some(SIGNATURE_SECTION) {
            h.update(&bytes[s.range.clone()]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Returns `component` with `manifest` as its manifest section (replacing an
/// existing one). Refuses a file that already carries signatures, since
/// changing the manifest would silently invalidate them.
///
/// ```
/// use wasmig::{Manifest, read_manifest, with_manifest};
///
/// // The smallest component: just the preamble.
/// let component = b"\0asm\x0d\x00\x01\x00".to_vec();
/// let packed = with_manifest(&component, &Manifest::new(3, "backfill")).unwrap();
/// let m = read_manifest(&packed).unwrap();
/// assert_eq!((m.id, m.name.as_str()), (3, "backfill"));
/// assert_eq!(m.file_name(), "0003_backfill.wasm");
/// ```
pub fn with_manifest(component: &[u8], manifest: &Manifest) -> std::result::Result<Vec<u8>, FormatError> {
    attach_manifest(component, &manifest.targeting(component)?)
}

/// [`with_manifest`] for a manifest already targeting `component`'s world.
fn attach_manifest(component: &[u8], manifest: &Manifest) -> std::result::Result<Vec<u8>, FormatError> {
    manifest.validate()?;
    let secs = sections(component)?;
    if secs.iter().any(|s| s.name == Some(SIGNATURE_SECTION)) {
        return Err(FormatError::Signed(
            "the component is already signed; pack the unsigned component instead".into(),
        ));
    }
    let mut out = Vec::with_capacity(component.len() + 256);
    out.extend_from_slice(&component[..8]);
    for s in &secs {
        if s.name != Some(MANIFEST_SECTION) {
            out.extend_from_slice(&component[s.range.clone()]);
        }
    }
    out.extend_from_slice(&encode_custom_section(MANIFEST_SECTION, &manifest.encode()));
    Ok(out)
}

/// Finds and decodes the manifest section of a plugin.
pub fn read_manifest(bytes: &[u8]) -> std::result::Result<Manifest, FormatError> {
    let secs = sections(bytes)?;
    let mut found = secs.iter().filter(|s| s.name == Some(MANIFEST_SECTION));
    let section = found.next().ok_or_else(|| {
        FormatError::Manifest("no wasmig manifest section; package the component with `wasmig pack`".into())
    })?;
    if found.next().is_some() {
        return Err(FormatError::Manifest("more than one wasmig manifest section".to_owned()));
    }
    Manifest::decode(section.data)
}

/// A plugin file that passed every byte-level check, the trust policy included.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The file's bytes, exactly as checked; these same bytes are compiled.
    /// Borrowed for migrations compiled into the binary (see
    /// [`Embedded`](super::embedded::Embedded)), owned otherwise.
    pub bytes: Cow<'static, [u8]>,
    /// Content digest (see [`content_digest`]).
    pub digest: String,
    /// What the trust policy concluded.
    pub verdict: Verdict,
}

impl Plugin {
    /// Migration id.
    pub fn id(&self) -> i64 {
        self.manifest.id
    }

    /// Migration name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// True when the file carries no signature at all: the files a trust
    /// policy accepts as [`Verdict::Unsigned`] only because it allows
    /// unsigned files. Reads section headers only; no signature is checked
    /// (for that, [`crate::Migrator::verdict_of`]).
    pub fn is_unsigned(&self) -> bool {
        matches!(signing::read_signature_section(&self.bytes), Ok(None))
    }

    /// Checks `bytes` read from `path`, in this order: size, preamble and
    /// section structure, signature against `trust`, manifest, and that the
    /// file name agrees with the manifest. Nothing signed is parsed beyond
    /// the section walk until its signature has been checked.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>, trust: &TrustPolicy, max_size: u64) -> Result<Plugin> {
        Plugin::checked(path, bytes, Some(trust), max_size)
    }

    /// Like [`Plugin::from_bytes`] but leaves the signature for later
    /// ([`Verdict::Deferred`]): the migrator verifies only the files that are
    /// about to run, since an applied file whose digest still matches the
    /// ledger never runs again.
    pub fn from_bytes_deferred(path: &Path, bytes: Vec<u8>, max_size: u64) -> Result<Plugin> {
        Plugin::checked(path, bytes, None, max_size)
    }

    fn checked(path: &Path, bytes: Vec<u8>, trust: Option<&TrustPolicy>, max_size: u64) -> Result<Plugin> {
        if bytes.len() as u64 > max_size {
            return Err(Error::bad_plugin(
                path,
                format!("file is too large: {} bytes; the limit is {max_size}", bytes.len()),
            ));
        }
        sections(&bytes).map_err(|r| Error::bad_plugin(path, r.to_string()))?;
        let verdict = match trust {
            Some(t) => {
                t.check(&bytes).map_err(|reason| Error::Untrusted { path: path.to_owned(), reason })?
            }
            None => Verdict::Deferred,
        };
        let manifest = read_manifest(&bytes).map_err(|r| Error::bad_plugin(path, r.to_string()))?;
        check_file_name(path, &manifest)?;
        let digest = content_digest(&bytes).map_err(|r| Error::bad_plugin(path, r.to_string()))?;
        Ok(Plugin { path: path.to_owned(), manifest, bytes: Cow::Owned(bytes), digest, verdict })
    }

    /// Reads one plugin file with [`read_file`] (a regular file, one
    /// descriptor, at most `max_size` + 1 bytes) and checks it (see
    /// [`Plugin::from_bytes`]).
    pub fn load(path: &Path, trust: &TrustPolicy, max_size: u64) -> Result<Plugin> {
        Plugin::checked(path, read_file(path, max_size)?, Some(trust), max_size)
    }

    /// Reads one plugin file with [`read_file`], leaving its signature for
    /// later (see [`Plugin::from_bytes_deferred`]).
    pub fn load_deferred(path: &Path, max_size: u64) -> Result<Plugin> {
        Plugin::checked(path, read_file(path, max_size)?, None, max_size)
    }
}

/// Reads a plugin file the one way wasmig reads any plugin file it did not
/// write itself: never following a link, never blocking on a pipe or
/// device, never reading more than `max_size` + 1 bytes, and from one open
/// descriptor, so what was checked is what is read.
///
/// The file name is only a claim: a symlink, FIFO, socket, device or
/// directory called `0001_x.wasm` is refused with [`Error::BadPlugin`]
/// naming it and what it is, and so is a file larger than `max_size`
/// (whatever its metadata says; a file that grows while being read is
/// caught by the bound, not by the length reported by `fstat`).
pub fn read_file(path: &Path, max_size: u64) -> Result<Vec<u8>> {
    let (file, meta) = open_regular(path).map_err(|e| match e {
        OpenRefusal::NotRegular(what) => Error::bad_plugin(
            path,
            format!(
                "is {what}, not a regular file; a migration must be a regular file \
                 (wasmig never follows links or reads pipes, sockets or devices)"
            ),
        ),
        OpenRefusal::Io(e) => Error::io(path)(e),
    })?;
    let too_large = |size: String| {
        Error::bad_plugin(path, format!("file is too large: {size} bytes; the limit is {max_size}"))
    };
    // A cheap early refusal (a sparse 10 GiB file costs nothing to refuse);
    // the bounded read below is what actually enforces the limit.
    if meta.len() > max_size {
        return Err(too_large(meta.len().to_string()));
    }
    match read_bounded(&file, meta.len(), max_size).map_err(Error::io(path))? {
        Some(bytes) => Ok(bytes),
        None => Err(too_large(format!("more than {max_size} (it grew while being read)"))),
    }
}

/// Why [`open_regular`] did not hand back a file.
#[derive(Debug)]
pub(crate) enum OpenRefusal {
    /// The path names something other than a regular file: what it is, for
    /// messages ("a symbolic link", "a FIFO (named pipe)", ...).
    NotRegular(&'static str),
    /// The system refused (not found, permission denied, ...).
    Io(std::io::Error),
}

/// Opens `path` read-only if, and only if, it is a regular file itself
/// (not a link to one), and returns the descriptor's own metadata.
///
/// Three layers, each for a reason:
/// - `lstat` first, so a device is refused without ever being opened
///   (opening some devices has effects: a tape rewinds, a watchdog starts);
/// - `open` with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`, so a path swapped
///   for a symlink after that check is not followed (`ELOOP`), a path
///   swapped for a FIFO cannot block the open, and no child process
///   inherits the descriptor;
/// - `fstat` on the opened descriptor, the authority: everything later is
///   read from this same descriptor, so a rename race cannot substitute
///   another file between the check and the read.
pub(crate) fn open_regular(
    path: &Path,
) -> std::result::Result<(std::fs::File, std::fs::Metadata), OpenRefusal> {
    let before = std::fs::symlink_metadata(path).map_err(OpenRefusal::Io)?;
    if !before.file_type().is_file() {
        return Err(OpenRefusal::NotRegular(describe(&before.file_type())));
    }
    let file = open_no_follow(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return OpenRefusal::NotRegular("a symbolic link");
        }
        OpenRefusal::Io(e)
    })?;
    let meta = file.metadata().map_err(OpenRefusal::Io)?;
    if !meta.file_type().is_file() {
        return Err(OpenRefusal::NotRegular(describe(&meta.file_type())));
    }
    Ok((file, meta))
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_RDONLY comes from read(true); std adds O_CLOEXEC itself, and it is
    // named here too so the intent does not rest on that.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// What a file type is, in words, for an error message.
fn describe(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a file wasmig knows"
    }
}

/// Reads all of `file`, or `None` as soon as more than `limit` bytes
/// arrive: at most `limit` + 1 bytes are ever read or held. `size_hint` (the
/// metadata's length) only sizes the first allocation, capped by `limit`,
/// and is never trusted as the length.
pub(crate) fn read_bounded(
    file: &std::fs::File,
    size_hint: u64,
    limit: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    // The hint is capped too: a caller's limit may be huge, and a metadata
    // length is no reason to reserve gigabytes up front.
    const MAX_UP_FRONT: u64 = 64 << 20;
    let cap = usize::try_from(size_hint.min(limit).min(MAX_UP_FRONT).saturating_add(1)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(cap);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// Builds a plugin file from a component: writes the manifest, then signs
/// with `key` if given. When `component` is already a signed plugin with the
/// same manifest, adds `key`'s signature to the existing ones (key rotation);
/// any other change to a signed file is refused.
pub fn pack(
    component: &[u8],
    manifest: &Manifest,
    key: Option<&wasmsign2::SecretKey>,
) -> std::result::Result<Vec<u8>, FormatError> {
    let manifest = &manifest.targeting(component)?;
    manifest.validate()?;
    let already_signed = signing::signature_info(component)?.is_some();
    let unsigned = if already_signed {
        let existing = read_manifest(component)
            .map_err(|e| FormatError::Manifest(format!("signed input has no usable manifest: {e}")))?;
        // Re-signing from the command line gives no provenance: the
        // existing one stands (it is part of what was signed).
        let asked = match &manifest.provenance {
            None => Manifest { provenance: existing.provenance.clone(), ..manifest.clone() },
            Some(_) => manifest.clone(),
        };
        if existing != asked {
            return Err(FormatError::Signed(format!(
                "the input is already signed as id {} name {:?}; changing its manifest would \
                 invalidate those signatures (pack the unsigned component instead)",
                existing.id, existing.name
            )));
        }
        if key.is_none() {
            return Err(FormatError::Signed(
                "the input is already signed; give --key to add a signature".into(),
            ));
        }
        component.to_vec()
    } else {
        attach_manifest(component, manifest)?
    };
    match key {
        Some(k) => signing::sign(&unsigned, k),
        None => Ok(unsigned),
    }
}

/// The file name must be `<id>_<name>.wasm` (any zero padding) and agree with
/// the manifest, so a file cannot be renamed to run earlier or later.
fn check_file_name(path: &Path, m: &Manifest) -> Result<()> {
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
    let stem = file.strip_suffix(".wasm").unwrap_or(file);
    let parsed = stem.split_once('_').and_then(|(id, name)| {
        let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        id_ok.then(|| (id.parse::<i64>().ok(), name))
    });
    match parsed {
        Some((Some(id), name)) if id == m.id && name == m.name => Ok(()),
        _ => Err(Error::bad_plugin(
            path,
            format!(
                "file name does not match its manifest (id {}, name {:?}); expected {:?}",
                m.id,
                m.name,
                m.file_name()
            ),
        )),
    }
}

/// Lists the plugin files of a directory: every `*.wasm`, sorted by name.
/// Precompiled `.cwasm` files are refused outright: native code is never input.
/// Only names are listed: [`read_file`], which every loader goes through,
/// refuses an entry that is not a regular file (a symlink, FIFO, socket,
/// device or directory with a migration's name), so it is never skipped
/// silently.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = entry.map_err(Error::io(dir))?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") => out.push(path),
            Some("cwasm") => {
                return Err(Error::bad_plugin(
                    &path,
                    "precompiled .cwasm files are never accepted; ship the signed .wasm component",
                ));
            }
            _ => {}
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::sections::{COMPONENT_VERSION, CORE_MODULE_VERSION};
    use crate::worlds::WORLD;

    fn tiny_component() -> Vec<u8> {
        // Preamble plus one empty custom section: enough for byte-level checks.
        let mut b = b"\0asm".to_vec();
        b.extend_from_slice(&COMPONENT_VERSION);
        b.extend_from_slice(&encode_custom_section("note", b"hi"));
        b
    }

    #[test]
    fn manifest_round_trips_and_is_found() {
        let m = Manifest::new(7, "add_index");
        let packed = with_manifest(&tiny_component(), &m).unwrap();
        assert_eq!(read_manifest(&packed).unwrap(), m);
        // Re-packing replaces rather than duplicates.
        let m2 = Manifest::new(8, "other");
        let repacked = with_manifest(&packed, &m2).unwrap();
        assert_eq!(read_manifest(&repacked).unwrap(), m2);
        assert_eq!(sections(&repacked).unwrap().len(), 2);
    }

    #[test]
    fn core_module_and_garbage_are_refused() {
        let mut core = b"\0asm".to_vec();
        core.extend_from_slice(&CORE_MODULE_VERSION);
        assert!(sections(&core).unwrap_err().to_string().contains("core WebAssembly module"));
        assert!(sections(b"hello world!").unwrap_err().to_string().contains("magic"));
        let mut truncated = tiny_component();
        truncated.pop();
        assert!(sections(&truncated).unwrap_err().to_string().contains("past the end"));
    }

    #[test]
    fn digest_ignores_signature_sections_only() {
        let base = with_manifest(&tiny_component(), &Manifest::new(1, "a")).unwrap();
        let mut signed = base.clone();
        signed.extend_from_slice(&encode_custom_section(SIGNATURE_SECTION, b"sig"));
        assert_eq!(content_digest(&base).unwrap(), content_digest(&signed).unwrap());
        let other = with_manifest(&tiny_component(), &Manifest::new(1, "b")).unwrap();
        assert_ne!(content_digest(&base).unwrap(), content_digest(&other).unwrap());
    }

    #[test]
    fn manifest_validation() {
        assert!(
            Manifest::decode(br#"{"format":1,"id":0,"name":"x","world":"wasmig:migration/migration@0.1.0"}"#)
                .is_err()
        );
        assert!(
            Manifest::decode(br#"{"format":2,"id":1,"name":"x","world":"wasmig:migration/migration@0.1.0"}"#)
                .is_err()
        );
        assert!(
            Manifest::decode(
                br#"{"format":1,"id":1,"name":"a b","world":"wasmig:migration/migration@0.1.0"}"#
            )
            .is_err()
        );
        assert!(Manifest::decode(br#"{"format":1,"id":1,"name":"x","world":"other:w/w@1.0.0"}"#).is_err());
        assert!(
            Manifest::decode(
                br#"{"format":1,"id":1,"name":"x","world":"wasmig:migration/migration@0.1.0","extra":1}"#
            )
            .is_err()
        );
        assert!(
            Manifest::decode(br#"{"format":1,"id":1,"name":"x","world":"wasmig:migration/migration@0.1.0"}"#)
                .is_ok()
        );
        assert!(
            Manifest::decode(br#"{"format":1,"id":1,"name":"x","world":"wasmig:migration/migration@0.2.0"}"#)
                .is_ok()
        );
        assert!(
            Manifest::decode(br#"{"format":1,"id":1,"name":"x","world":"wasmig:migration/migration@0.3.0"}"#)
                .unwrap()
                .is_reversible()
        );
        let e =
            Manifest::decode(br#"{"format":1,"id":1,"name":"x","world":"wasmig:migration/migration@0.4.0"}"#)
                .unwrap_err();
        assert!(
            e.to_string().contains(
                "supports \"wasmig:migration/migration@0.1.0\", \"wasmig:migration/migration@0.2.0\", \"wasmig:migration/migration@0.3.0\""
            ),
            "{e}"
        );
        // A component that imports no `sql` keeps the first world.
        let packed = with_manifest(&tiny_component(), &Manifest::new(1, "x")).unwrap();
        assert_eq!(read_manifest(&packed).unwrap().world, WORLD);
    }

    #[test]
    fn read_file_reads_a_regular_file_within_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("0001_a.wasm");
        let bytes = with_manifest(&tiny_component(), &Manifest::new(1, "a")).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_file(&path, bytes.len() as u64).unwrap(), bytes, "exactly the limit is fine");
        let err = read_file(&path, bytes.len() as u64 - 1).unwrap_err();
        assert!(matches!(err, Error::BadPlugin { .. }), "{err:?}");
        assert!(err.to_string().contains("too large") && err.to_string().contains("0001_a.wasm"), "{err}");
        let missing = read_file(&tmp.path().join("0002_b.wasm"), 100).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }), "a missing file is an I/O error: {missing:?}");
    }

    #[test]
    fn read_bounded_stops_one_byte_past_the_limit_whatever_the_hint() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, vec![7u8; 1000]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // A hint that lies low or high changes nothing but the first allocation.
        assert_eq!(read_bounded(&file, 0, 1000).unwrap().map(|b| b.len()), Some(1000));
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(read_bounded(&file, u64::MAX, 999).unwrap(), None);
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(read_bounded(&file, 5, u64::MAX).unwrap().map(|b| b.len()), Some(1000));
    }

    #[cfg(unix)]
    #[test]
    fn read_file_refuses_what_is_not_a_regular_file_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real.bin");
        std::fs::write(&real, with_manifest(&tiny_component(), &Manifest::new(1, "a")).unwrap()).unwrap();
        let link = tmp.path().join("0001_a.wasm");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let dir = tmp.path().join("0002_b.wasm");
        std::fs::create_dir(&dir).unwrap();
        let fifo = tmp.path().join("0003_c.wasm");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success(), "mkfifo");
        let socket_path = tmp.path().join("0004_d.wasm");
        let _socket = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();
        for (path, what) in [
            (&link, "a symbolic link"),
            (&dir, "a directory"),
            (&fifo, "a FIFO (named pipe)"),
            (&socket_path, "a socket"),
            (&PathBuf::from("/dev/null"), "a character device"),
        ] {
            let err = read_file(path, DEFAULT_MAX_FILE_SIZE).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::BadPlugin { .. }), "{path:?}: {err:?}");
            assert!(text.contains(&path.display().to_string()), "names the file: {text}");
            assert!(text.contains(&format!("is {what}, not a regular file")), "{text}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_open_itself_refuses_a_symlink() {
        // The lstat pre-check cannot see a swap that happens after it; the
        // O_NOFOLLOW open is what refuses the link then. Exercise that path
        // directly.
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::write(&real, b"x").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = open_no_follow(&link).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        assert!(open_no_follow(&real).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_sparse_file_far_over_the_limit_is_refused_without_reading_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("0001_huge.wasm");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(10 << 30).unwrap();
        let err = read_file(&path, DEFAULT_MAX_FILE_SIZE).unwrap_err().to_string();
        assert!(err.contains("too large") && err.contains(&(10u64 << 30).to_string()), "{err}");
    }

    #[test]
    fn file_name_must_match_manifest() {
        let m = Manifest::new(12, "backfill");
        assert!(check_file_name(Path::new("d/0012_backfill.wasm"), &m).is_ok());
        assert!(check_file_name(Path::new("d/12_backfill.wasm"), &m).is_ok());
        assert!(check_file_name(Path::new("d/0001_backfill.wasm"), &m).is_err());
        assert!(check_file_name(Path::new("d/0012_other.wasm"), &m).is_err());
        assert!(check_file_name(Path::new("d/backfill.wasm"), &m).is_err());
    }
}
