//! Support for wasmig's test binaries (the end-to-end tests in `tests/`, the
//! CLI tests in `cli/tests/` and the example application's test): building
//! the real guest components, packaging them as plugins, loading the fixture
//! databases and taking comparable snapshots of SQLite files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// The repository root.
pub fn repo_root() -> PathBuf {
    // The crates using this sit at different depths; the root holds wit/.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|d| d.join("wit").join("migration.wit").is_file())
        .expect("running inside the wasmig repository")
        .to_owned()
}

/// A scratch directory holding a `migrations/` folder and an `app.db` path
/// (not created), removed when dropped.
pub struct Scratch {
    /// Keeps the directory alive.
    pub tmp: tempfile::TempDir,
    /// `migrations/`, created.
    pub dir: PathBuf,
    /// `app.db`, not created.
    pub db: PathBuf,
}

/// A new [`Scratch`].
pub fn scratch() -> Scratch {
    let tmp = tempfile::TempDir::new().expect("temp dir");
    let dir = tmp.path().join("migrations");
    std::fs::create_dir(&dir).expect("migrations dir");
    let db = tmp.path().join("app.db");
    Scratch { tmp, dir, db }
}

/// Builds every guest crate (once per test process) with the plain cargo
/// command the README documents, and returns the output directory.
pub fn guest_out_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let guests = repo_root().join("guest-migrations");
        let target = guests.join("target");
        let status = Command::new(env!("CARGO"))
            .current_dir(&guests)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--workspace",
                "--lib",
                "--examples",
                "--quiet",
            ])
            // Own target dir: the outer `cargo test` holds the lock on its own.
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("running cargo to build the guest components");
        assert!(status.success(), "building guest components failed: {status}");
        target.join("wasm32-unknown-unknown").join("release")
    })
}

/// The bytes of the component built from guest crate `crate_name`.
pub fn guest_bytes(crate_name: &str) -> Vec<u8> {
    let path = guest_out_dir().join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A test signing key (created once, kept under `target/test-keys/`);
/// returns the secret key's path. The public key is beside it (`.pub`).
pub fn test_key(name: &str) -> PathBuf {
    // Tests in one process run on several threads; one creates the key
    // while the others wait, so none reads a half-written file.
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = repo_root().join("target").join("test-keys");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.key"));
    if !path.exists() {
        wasmig::keygen(&path).expect("generating a test key");
    }
    path
}

/// The public key file of [`test_key`] `name`.
pub fn test_pub(name: &str) -> PathBuf {
    wasmig::pub_path(&test_key(name))
}

/// A policy trusting test key "dev".
pub fn trust() -> wasmig::TrustPolicy {
    wasmig::TrustPolicy::from_key_files(&[test_pub("dev")]).unwrap()
}

/// Default options, trusting test key "dev".
pub fn options() -> wasmig::Options {
    wasmig::Options { trust: trust(), ..wasmig::Options::default() }
}

/// A migrator over `dir` trusting test key "dev".
pub fn migrator(dir: &Path) -> wasmig::Result<wasmig::Migrator> {
    wasmig::Migrator::from_dir_with(dir, options())
}

/// The bytes of faulty-corpus example `name` (`guest-migrations/faulty/corpus/examples/`).
pub fn corpus_bytes(name: &str) -> Vec<u8> {
    let path = guest_out_dir().join("examples").join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Packages guest `crate_name` as migration `id`/`name` into `dir`, signed
/// by test key "dev"; returns the file.
pub fn pack(dir: &Path, crate_name: &str, id: i64, name: &str) -> PathBuf {
    pack_with(dir, crate_name, id, name, &["dev"])
}

/// Like [`pack`], signed by each named test key in turn (none: unsigned).
pub fn pack_with(dir: &Path, crate_name: &str, id: i64, name: &str, keys: &[&str]) -> PathBuf {
    pack_manifest(dir, crate_name, wasmig::Manifest::new(id, name), keys)
}

/// Packages guest `crate_name` with `manifest`, signed by the named test keys.
pub fn pack_manifest(dir: &Path, crate_name: &str, manifest: wasmig::Manifest, keys: &[&str]) -> PathBuf {
    let mut bytes = wasmig::pack(&guest_bytes(crate_name), &manifest, None).expect("packing");
    for k in keys {
        let sk = wasmig::read_secret_key(&test_key(k)).unwrap();
        bytes = wasmig::pack(&bytes, &manifest, Some(&sk)).expect("signing");
    }
    let path = dir.join(manifest.file_name());
    std::fs::write(&path, bytes).expect("writing plugin");
    path
}

/// The four example migrations, as ids 1 to 4.
pub const EXAMPLES: &[(&str, i64, &str)] = &[
    ("example-baseline", 1, "baseline"),
    ("example-add-index", 2, "add_index"),
    ("example-backfill", 3, "backfill"),
    ("example-rebuild", 4, "rebuild"),
];

/// Packs the examples with ids `1..=upto` into `dir`.
pub fn pack_examples(dir: &Path, upto: i64) {
    for (krate, id, name) in EXAMPLES.iter().filter(|e| e.1 <= upto) {
        pack(dir, krate, *id, name);
    }
}

/// The SQL of a fixture database from `tests/fixtures/` (inside the
/// repository: tests never read outside it).
pub fn fixture_sql(name: &str) -> String {
    let path = repo_root().join("tests").join("fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}

/// Creates `db` from a fixture.
pub fn load_fixture(db: &Path, name: &str) {
    let conn = Connection::open(db).expect("open fixture db");
    conn.execute_batch(&fixture_sql(name)).expect("load fixture");
}

/// Everything observable in a database: every schema object and every row
/// of every table (the library's own snapshot, taken read-only).
pub fn snapshot(db: &Path) -> wasmig::Snapshot {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open for snapshot");
    wasmig::Snapshot::take(&conn).expect("snapshot")
}

fn fmt_value(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => format!("{r:?}"),
        ValueRef::Text(t) => format!("'{}'", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("x'{}'", hex::encode(b)),
    }
}

/// The rows of `table`, each as text, sorted.
pub fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    let mut out: Vec<String> = stmt
        .query_map([], |r| {
            Ok((0..n).map(|i| fmt_value(r.get_ref(i).unwrap())).collect::<Vec<_>>().join(" | "))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    out.sort();
    out
}

/// The ids in the database's ledger, in order.
pub fn ledger_ids(db: &Path) -> Vec<i64> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM schema_migrations ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

/// True when `db` has a table called `name`.
pub fn has_table(db: &Path, name: &str) -> bool {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1", [name], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap()
        == 1
}

/// Packs SQL `up` (with `down` when given) as migration `id`/`name` into
/// `dir`, signed by test key "dev"; returns the file.
pub fn pack_sql(dir: &Path, id: i64, name: &str, up: &str, down: Option<&str>) -> PathBuf {
    let component = match down {
        Some(down) => wasmig::component_for_sql_with_down(up, down),
        None => wasmig::component_for_sql(up),
    }
    .expect("packing SQL");
    let m = wasmig::Manifest::new(id, name);
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    let path = dir.join(m.file_name());
    std::fs::write(&path, wasmig::pack(&component, &m, Some(&sk)).unwrap()).unwrap();
    path
}
