//! The trust policy: which plugin files may run.
//!
//! Verifying uses wasmig's own few lines over ed25519-dalek's strict
//! verification rather than the reference implementation (wasmsign2),
//! because start-up checks every pending file and that is about 1.7x faster.
//! A unit test and the `plugin_load` fuzz target both hold it to the
//! reference: nothing is accepted that the reference verifier would refuse.

use std::collections::BTreeSet;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmsign2::{PublicKey, SignatureData};

use super::signing::{SignatureInfo, key_id, parse_public_keys, read_public_keys, read_signature_section};
use crate::error::{KeyError, TrustError};

/// A public key the operator trusts, with where it came from.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The key.
    pub key: PublicKey,
    /// Its key id (see [`key_id`]).
    pub id: String,
    /// The file it was read from.
    pub source: PathBuf,
}

/// Which plugin files may run.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Trusted public keys.
    pub keys: Vec<TrustedKey>,
    /// Distinct trusted signers each file needs (at least 1 when keys are given).
    pub min_signers: usize,
    /// Accept files without any signature (local development only).
    pub allow_unsigned: bool,
}

/// What the policy concluded about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by enough trusted keys; their ids.
    Trusted(Vec<String>),
    /// No signature, accepted because unsigned files are allowed.
    Unsigned,
    /// Not checked yet: loaded for a start-up whose applied, unchanged files
    /// need no new verification. Checked before the file can ever run.
    Deferred,
}

impl Verdict {
    /// Key ids of the trusted signers (empty when unsigned).
    pub fn signers(&self) -> &[String] {
        match self {
            Verdict::Trusted(ids) => ids,
            Verdict::Unsigned | Verdict::Deferred => &[],
        }
    }
}

impl TrustPolicy {
    /// A policy trusting the keys in `files` (each a key file in the
    /// signature format's raw, PEM or DER form, or one or more OpenSSH
    /// Ed25519 public keys, one per line).
    pub fn from_key_files(files: &[PathBuf]) -> Result<TrustPolicy, KeyError> {
        let mut keys = Vec::new();
        for f in files {
            for key in read_public_keys(f)? {
                keys.push(TrustedKey { id: key_id(&key), key, source: f.clone() });
            }
        }
        Ok(TrustPolicy { keys, min_signers: 1, allow_unsigned: false })
    }

    /// A policy trusting the keys in `keys`, each the contents of a key file
    /// in any form [`TrustPolicy::from_key_files`] reads: for keys compiled
    /// into an application (`include_bytes!("release.pub")`). Errors and
    /// [`TrustedKey::source`] name them `<key 1>`, `<key 2>`, ...
    pub fn from_key_bytes(keys: &[&[u8]]) -> Result<TrustPolicy, KeyError> {
        let mut out = Vec::new();
        for (i, data) in keys.iter().enumerate() {
            let source = PathBuf::from(format!("<key {}>", i + 1));
            for key in parse_public_keys(&source, data)? {
                out.push(TrustedKey { id: key_id(&key), key, source: source.clone() });
            }
        }
        Ok(TrustPolicy { keys: out, min_signers: 1, allow_unsigned: false })
    }

    /// Checks `bytes` (a whole plugin file) against the policy.
    pub fn check(&self, bytes: &[u8]) -> Result<Verdict, TrustError> {
        let Some((data, signed_from)) = read_signature_section(bytes)? else {
            return if self.allow_unsigned { Ok(Verdict::Unsigned) } else { Err(TrustError::NotSigned) };
        };
        let info = SignatureInfo::of(&data);
        if self.keys.is_empty() {
            return Err(TrustError::NoTrustedKeys { key_ids: info.key_ids });
        }
        if data.hash_function != HASH_SHA256 {
            return Err(TrustError::UnsupportedHash { hash_function: data.hash_function });
        }
        // Everything after the signature section, as the format's whole-file
        // signatures cover it (the preamble is checked on its own).
        let digest: [u8; 32] = Sha256::digest(&bytes[signed_from..]).into();
        let ids: BTreeSet<String> = self
            .keys
            .iter()
            .filter(|k| signs_whole_file(&data, &digest, &k.key))
            .map(|k| k.id.clone())
            .collect();
        if ids.is_empty() {
            return Err(TrustError::NoValidSignature { key_ids: info.key_ids });
        }
        let need = self.min_signers.max(1);
        if ids.len() < need {
            return Err(TrustError::TooFewSigners { signers: ids.into_iter().collect(), need });
        }
        Ok(Verdict::Trusted(ids.into_iter().collect()))
    }
}

/// The format's hash function id for SHA-256, the only one it defines.
const HASH_SHA256: u8 = 0x01;

/// True when `pk` made a valid signature over a hash set that includes
/// `digest`, the file's whole-file hash.
///
/// Each hash set is signed as `"wasmsig"`, the format version, content type
/// and hash function (one byte each, all 1), then the set's hashes. As in the
/// format's reference verifier, a signature names its key by id when it can
/// (signatures for other ids are skipped), and a malformed signature that
/// this key would have to consider invalidates the key for the whole file.
/// Verification is strict (canonical encodings, no small-order points), so
/// every file accepted here is accepted by the reference verifier too.
fn signs_whole_file(data: &SignatureData, digest: &[u8; 32], pk: &PublicKey) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&pk.pk) else {
        return false;
    };
    let mut valid = false;
    for set in &data.signed_hashes_set {
        let covers_file = set.hashes.iter().any(|h| h.as_slice() == digest);
        let mut msg = Vec::with_capacity(10 + 32 * set.hashes.len());
        msg.extend_from_slice(b"wasmsig");
        msg.extend_from_slice(&[0x01, 0x01, HASH_SHA256]);
        set.hashes.iter().for_each(|h| msg.extend_from_slice(h));
        for sig in &set.signatures {
            if let (Some(theirs), Some(ours)) = (&sig.key_id, &pk.key_id)
                && theirs != ours
            {
                continue;
            }
            let Ok(signature) = ed25519_dalek::Signature::from_slice(&sig.signature) else {
                return false;
            };
            if covers_file && !valid {
                valid = key.verify_strict(&msg, &signature).is_ok();
            }
        }
    }
    valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::file::pack;
    use crate::plugin::manifest::Manifest;
    use crate::plugin::sections::encode_custom_section;
    use wasmsign2::{KeyPair, PublicKeySet};

    fn policy(keys: &[&KeyPair]) -> TrustPolicy {
        TrustPolicy {
            keys: keys
                .iter()
                .map(|k| TrustedKey { key: k.pk.clone(), id: key_id(&k.pk), source: PathBuf::from("test") })
                .collect(),
            min_signers: 1,
            allow_unsigned: false,
        }
    }

    /// wasmig verifies with its own code; wasmsign2's verifier is the
    /// reference. Whatever wasmig accepts, the reference must accept, and on
    /// untampered files they must agree.
    #[test]
    fn verdicts_agree_with_the_reference_verifier() {
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        // A component preamble and one custom section: enough to sign.
        let mut component = b"\0asm\x0d\x00\x01\x00".to_vec();
        component.extend_from_slice(&encode_custom_section("note", b"CREATE TABLE t (x);"));
        let m = Manifest::new(1, "t");
        let by_a = pack(&component, &m, Some(&a.sk)).unwrap();
        let by_a_and_b = pack(&by_a, &m, Some(&b.sk)).unwrap();
        let mut checked = 0;
        for file in [&by_a, &by_a_and_b] {
            for keys in [vec![&a], vec![&b], vec![&a, &b]] {
                let ours = policy(&keys);
                let reference = PublicKeySet::new(keys.iter().map(|k| k.pk.clone()).collect());
                let agree = |f: &[u8]| (ours.check(f).is_ok(), reference.verify(&mut &f[..], None).is_ok());
                let (o, r) = agree(file);
                assert_eq!(o, r, "untampered file, {} key(s)", keys.len());
                let signed_from = read_signature_section(file).unwrap().unwrap().1;
                for at in 8..file.len() {
                    let mut tampered = file.to_vec();
                    tampered[at] ^= 0x01;
                    let (o, r) = agree(&tampered);
                    assert!(!o || r, "byte {at}: accepted here but not by the reference");
                    assert!(
                        !(o && at >= signed_from),
                        "byte {at} is signed, yet a change to it was accepted"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
        // The trusted signers are named, and k-of-n counts distinct keys.
        assert_eq!(policy(&[&a, &b]).check(&by_a_and_b).unwrap().signers().len(), 2);
        assert_eq!(policy(&[&a, &b]).check(&by_a).unwrap().signers(), [key_id(&a.pk)]);
    }
}
