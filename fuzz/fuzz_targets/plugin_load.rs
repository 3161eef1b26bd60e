//! Plugin loading up to (not including) compilation: preamble, section walk,
//! signature parsing and verification, manifest decoding, name check, and
//! recognising a `pack-sql` component (which then runs as direct SQL).
//! Never panics, and never accepts a file the trust policy did not sign.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wasmig::{Plugin, TrustPolicy, Verdict};

fn trust() -> &'static (TrustPolicy, wasmsign2::PublicKey) {
    static T: OnceLock<(TrustPolicy, wasmsign2::PublicKey)> = OnceLock::new();
    T.get_or_init(|| {
        let key = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys/fuzz.key.pub");
        let pk = wasmsign2::PublicKey::from_file(&key).expect("fuzz/keys/fuzz.key.pub");
        (TrustPolicy::from_key_files(&[key]).expect("trust policy"), pk)
    })
}

fuzz_target!(|data: &[u8]| {
    // Recognition reads untrusted bytes too (with --allow-unsigned): it must
    // never panic, and what it recognises always has statements to run.
    if let Some(script) = wasmig::recognise_sql_component(data) {
        assert!(!script.statements.is_empty());
    }
    let (policy, pk) = trust();
    let name =
        wasmig::read_manifest(data).map(|m| m.file_name()).unwrap_or_else(|_| "0001_x.wasm".into());
    if let Ok(p) = Plugin::from_bytes(Path::new(&name), data.to_vec(), policy, 1 << 24) {
        // Accepted: it must be signed by the trusted key over the whole file,
        // as the standard verifier sees it too.
        assert!(matches!(p.verdict, Verdict::Trusted(_)));
        pk.verify(&mut &data[..], None).expect("accepted file verifies with the standard verifier");
        assert_eq!(&data[4..8], &[0x0d, 0, 1, 0], "only components are accepted");
    }
});
