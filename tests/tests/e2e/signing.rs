//! Signed plugin files: every way a file can be untrustworthy is refused
//! before anything runs, and signatures interoperate with the standard
//! WebAssembly signature format.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tempfile::TempDir;
use wasmig::{Error, Migrator, Options, Plugin, TrustPolicy};
use wasmig_test_support::*;

fn tmp() -> (TempDir, PathBuf, PathBuf) {
    let s = scratch();
    (s.tmp, s.dir, s.db)
}

fn policy(keys: &[&str], min: usize) -> TrustPolicy {
    let files: Vec<PathBuf> = keys.iter().map(|k| test_pub(k)).collect();
    let mut p = TrustPolicy::from_key_files(&files).unwrap();
    p.min_signers = min;
    p
}

fn load(path: &Path, trust: &TrustPolicy) -> wasmig::Result<Plugin> {
    Plugin::load(path, trust, wasmig::DEFAULT_MAX_FILE_SIZE)
}

fn apply_with(dir: &Path, db: &Path, trust: TrustPolicy) -> wasmig::Result<wasmig::Report> {
    let mut conn = Connection::open(db).unwrap();
    Migrator::from_dir_with(dir, Options { trust, ..Options::default() })?.apply(&mut conn)
}

#[test]
fn any_tampered_byte_is_refused() {
    let (_t, dir, _db) = tmp();
    let path = pack(&dir, "example-backfill", 3, "backfill");
    let good = std::fs::read(&path).unwrap();
    let trust = trust();
    assert!(Plugin::from_bytes(&path, good.clone(), &trust, u64::MAX).is_ok());
    // About a thousand bytes spread evenly over the file (a stride that is
    // not a power of two, so it lands at every offset within a section),
    // plus named regions: the manifest, the first and last bytes of the
    // code, and the signature section itself.
    let secs = wasmig::sections(&good).unwrap();
    let manifest = secs.iter().find(|s| s.name == Some(wasmig::MANIFEST_SECTION)).unwrap().range.clone();
    let stride = (good.len() / 1000).max(1) | 1;
    let mut positions: Vec<usize> = (0..good.len()).step_by(stride).collect();
    positions.extend([manifest.start + 5, manifest.end - 2, good.len() - 1, 4, 9, 20]);
    // The key id inside a signature is an unsigned hint in the signature
    // format (a verifier tries the trusted keys whatever it says), so
    // flipping one of its bytes leaves a file that still verifies. Those
    // bytes are left out here; every other byte must be noticed.
    let info = wasmig::signature_info(&good).unwrap().unwrap();
    let hint = hex::decode(&info.key_ids[0]).unwrap();
    let sig = &secs[0].range;
    let at = good[sig.clone()].windows(hint.len()).position(|w| w == hint).unwrap() + sig.start;
    positions.retain(|p| !(at..at + hint.len()).contains(p));
    let mut refused = 0;
    for pos in positions {
        let mut bad = good.clone();
        bad[pos] ^= 0x01;
        let r = Plugin::from_bytes(&path, bad, &trust, u64::MAX);
        assert!(r.is_err(), "flipping byte {pos} of {} was not noticed", good.len());
        refused += 1;
    }
    assert!(refused > 500, "a meaningful sample was tried ({refused})");
}

#[test]
fn tampered_file_in_a_directory_changes_nothing() {
    let (_t, dir, db) = tmp();
    pack_examples(&dir, 1);
    apply_with(&dir, &db, trust()).unwrap();
    let before = std::fs::read(&db).unwrap();
    let second = pack(&dir, "example-add-index", 2, "add_index");
    let mut bytes = std::fs::read(&second).unwrap();
    let data = wasmig::sections(&bytes).unwrap().iter().find(|s| s.id != 0).unwrap().range.clone();
    bytes[data.end - 10] ^= 0x80;
    std::fs::write(&second, bytes).unwrap();
    let err = apply_with(&dir, &db, trust()).unwrap_err();
    assert!(matches!(err, Error::Untrusted { .. }), "{err:?}");
    assert!(err.to_string().contains("0002_add_index.wasm"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn unsigned_wrong_key_and_untrusted_key_are_refused() {
    let (_t, dir, _db) = tmp();
    let unsigned = pack_with(&dir, "example-baseline", 1, "baseline", &[]);
    let err = load(&unsigned, &trust()).unwrap_err();
    assert!(err.to_string().contains("not signed"), "{err}");
    // Unsigned is accepted only when explicitly allowed.
    let allow = TrustPolicy { allow_unsigned: true, ..trust() };
    assert_eq!(load(&unsigned, &allow).unwrap().verdict, wasmig::Verdict::Unsigned);

    let other = pack_with(&dir, "example-baseline", 1, "baseline", &["other"]);
    let err = load(&other, &trust()).unwrap_err();
    assert!(err.to_string().contains("no valid signature by a trusted key"), "{err}");
    // allow_unsigned does not let a file signed by a stranger through.
    assert!(load(&other, &allow).is_err());
    // No keys at all: a signed file cannot be judged, so it is refused.
    assert!(load(&other, &TrustPolicy::default()).is_err());
}

#[test]
fn k_of_n_signers() {
    let (_t, dir, _db) = tmp();
    let one = pack_with(&dir, "example-baseline", 1, "baseline", &["dev"]);
    let err = load(&one, &policy(&["dev", "ops"], 2)).unwrap_err();
    assert!(err.to_string().contains("requires at least 2"), "{err}");
    let both = pack_with(&dir, "example-baseline", 1, "baseline", &["dev", "ops"]);
    let p = load(&both, &policy(&["dev", "ops"], 2)).unwrap();
    assert_eq!(p.verdict.signers().len(), 2);
    // Two signatures by the same key count once.
    let manifest = p.manifest.clone();
    let sk = wasmig::read_secret_key(&test_key("dev")).unwrap();
    assert!(
        wasmig::pack(&std::fs::read(&one).unwrap(), &manifest, Some(&sk)).is_err(),
        "duplicate signature refused"
    );
}

#[test]
fn swapped_preamble_and_core_modules_are_refused() {
    let (_t, dir, _db) = tmp();
    let path = pack(&dir, "example-baseline", 1, "baseline");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4..8].copy_from_slice(&[1, 0, 0, 0]);
    std::fs::write(&path, &bytes).unwrap();
    let err = load(&path, &trust()).unwrap_err();
    assert!(err.to_string().contains("core WebAssembly module"), "{err}");
    bytes[4..8].copy_from_slice(&[0x0e, 0, 1, 0]);
    std::fs::write(&path, &bytes).unwrap();
    assert!(load(&path, &trust()).unwrap_err().to_string().contains("preamble"));
}

#[test]
fn renamed_signed_file_is_refused() {
    let (_t, dir, db) = tmp();
    let p = pack(&dir, "example-add-index", 7, "add_index");
    std::fs::rename(&p, dir.join("0001_add_index.wasm")).unwrap();
    let err = apply_with(&dir, &db, trust()).unwrap_err();
    assert!(err.to_string().contains("file name does not match its manifest"), "{err}");
    assert!(!has_table(&db, "schema_migrations"), "nothing ran");
}

#[test]
fn re_signing_is_not_drift_but_a_changed_file_is_until_accepted() {
    let (_t, dir, db) = tmp();
    let p = pack(&dir, "example-baseline", 1, "baseline");
    apply_with(&dir, &db, trust()).unwrap();
    // Key rotation: the ops key adds its signature to the applied file.
    let sk = wasmig::read_secret_key(&test_key("ops")).unwrap();
    let resigned =
        wasmig::pack(&std::fs::read(&p).unwrap(), &wasmig::Manifest::new(1, "baseline"), Some(&sk)).unwrap();
    std::fs::write(&p, resigned).unwrap();
    let report = apply_with(&dir, &db, policy(&["ops"], 1)).unwrap();
    assert_eq!(report.already_applied, vec![1], "re-signed file is the same migration");

    // A real change to the code is drift, naming both digests.
    let old_digest = load(&p, &trust()).unwrap().digest;
    pack(&dir, "example-add-index", 1, "baseline");
    let new_digest = load(&p, &trust()).unwrap().digest;
    let err = apply_with(&dir, &db, trust()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&old_digest) && text.contains(&new_digest), "{text}");

    // Accepting it is explicit and audited.
    let conn = Connection::open(&db).unwrap();
    let m = Migrator::from_dir_with(&dir, options()).unwrap();
    assert!(m.accept_drift(&conn, 1, "  ").is_err(), "a reason is required");
    m.accept_drift(&conn, 1, "rebuilt with a newer compiler; same SQL").unwrap();
    let audit =
        rows(&conn, "SELECT id, action, old_checksum, new_checksum, reason FROM schema_migrations_audit");
    assert_eq!(
        audit,
        vec![format!(
            "1 | 'accept-drift' | '{old_digest}' | '{new_digest}' | 'rebuilt with a newer compiler; same SQL'"
        )]
    );
    drop(conn);
    assert!(apply_with(&dir, &db, trust()).unwrap().applied.is_empty());
}

#[test]
fn ledger_records_signers_world_and_host_version() {
    let (_t, dir, db) = tmp();
    pack_with(&dir, "example-baseline", 1, "baseline", &["dev", "ops"]);
    apply_with(&dir, &db, policy(&["dev", "ops"], 2)).unwrap();
    let conn = Connection::open(&db).unwrap();
    let (signers, world, host): (String, String, String) = conn
        .query_row("SELECT signers, world, host_version FROM schema_migrations WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    let mut ids = [
        wasmig::key_id(&wasmsign2::PublicKey::from_file(test_pub("dev")).unwrap()),
        wasmig::key_id(&wasmsign2::PublicKey::from_file(test_pub("ops")).unwrap()),
    ];
    ids.sort();
    assert_eq!(signers, ids.join(","));
    assert_eq!(world, "wasmig:migration/migration@0.2.0", "the SDK targets world 0.2.0");
    assert_eq!(host, wasmig::VERSION);
}

#[test]
fn files_signed_here_verify_with_the_standard_verifier() {
    let (_t, dir, _db) = tmp();
    let p = pack_with(&dir, "example-baseline", 1, "baseline", &["dev", "ops"]);
    let bytes = std::fs::read(&p).unwrap();
    for k in ["dev", "ops"] {
        let pk = wasmsign2::PublicKey::from_file(test_pub(k)).unwrap();
        pk.verify(&mut &bytes[..], None).unwrap_or_else(|e| panic!("standard verifier rejected {k}: {e}"));
    }
    let stranger = wasmsign2::PublicKey::from_file(test_pub("other")).unwrap();
    assert!(stranger.verify(&mut &bytes[..], None).is_err());
}

#[test]
fn files_signed_by_the_standard_signer_are_accepted() {
    let (_t, dir, db) = tmp();
    let unsigned = pack_with(&dir, "example-baseline", 1, "baseline", &[]);
    let module = wasmsign2::Module::deserialize_from_file(&unsigned).unwrap();
    let sk = wasmsign2::SecretKey::from_file(test_key("dev")).unwrap();
    // The format's single-signature API, with no key id.
    let signed = sk.sign(module, None).unwrap();
    signed.serialize_to_file(&unsigned).unwrap();
    let report = apply_with(&dir, &db, trust()).unwrap();
    assert_eq!(report.applied.len(), 1);
}

#[test]
fn openssh_keys_sign_and_verify() {
    let (t, dir, db) = tmp();
    // An OpenSSH Ed25519 key pair, written in OpenSSH's own formats.
    let kp = wasmsign2::KeyPair::generate();
    let raw_pk = kp.pk.pk.as_ref().to_vec();
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), raw_pk.as_slice()] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let b64 = base64_encode(&blob);
    let pub_line = format!("ssh-ed25519 {b64} test@wasmig\n");
    let pub_file = t.path().join("id_ed25519.pub");
    std::fs::write(&pub_file, format!("# trusted operators\n{pub_line}")).unwrap();
    let manifest = wasmig::Manifest::new(1, "baseline");
    let bytes = wasmig::pack(&guest_bytes("example-baseline"), &manifest, Some(&kp.sk)).unwrap();
    std::fs::write(dir.join(manifest.file_name()), bytes).unwrap();
    let trust = TrustPolicy::from_key_files(&[pub_file]).unwrap();
    assert_eq!(apply_with(&dir, &db, trust).unwrap().applied.len(), 1);
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
