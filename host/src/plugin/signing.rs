//! Signatures and the trust policy.
//!
//! Plugins carry signatures in the standard WebAssembly signature custom
//! section (Ed25519 over SHA-256, key ids, several signatures per file), so
//! files signed here verify with other tools of that format and the other way
//! round. wasmig verifies only whole files: the signed hash must cover every
//! section after the signature header, so an unsigned section appended to a
//! signed file (or a partially signed file) is refused. The 8-byte preamble
//! is outside that format's hash; [`crate::plugin::sections`] checks it.
//!
//! Signing, key files and decoding the section use the format's reference
//! implementation (wasmsign2). Verifying uses wasmig's own few lines over
//! ed25519-dalek's strict verification, because start-up checks every pending
//! file and that is about 1.7x faster. A unit test and the `plugin_load`
//! fuzz target both hold it to the reference: nothing is accepted that the
//! reference verifier would refuse.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmsign2::{KeyPair, Module, PublicKey, SecretKey, SignatureData};

use crate::plugin::SIGNATURE_SECTION;

/// A key id as wasmig prints and records it: 24 hex digits, the standard
/// default key id of the signature format (HMAC-SHA256("key_id", pk), 12 bytes).
pub fn key_id(pk: &PublicKey) -> String {
    let with_id = pk.clone().attach_default_key_id();
    hex::encode(with_id.key_id().expect("default key id attached"))
}

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
    pub fn from_key_files(files: &[PathBuf]) -> Result<TrustPolicy, String> {
        let mut keys = Vec::new();
        for f in files {
            for key in read_public_keys(f)? {
                keys.push(TrustedKey { id: key_id(&key), key, source: f.clone() });
            }
        }
        Ok(TrustPolicy { keys, min_signers: 1, allow_unsigned: false })
    }

    /// Checks `bytes` (a whole plugin file) against the policy.
    pub fn check(&self, bytes: &[u8]) -> Result<Verdict, String> {
        let Some((data, signed_from)) = read_signature_section(bytes)? else {
            return if self.allow_unsigned {
                Ok(Verdict::Unsigned)
            } else {
                Err("file is not signed (pass --allow-unsigned for local development only)".into())
            };
        };
        let info = SignatureInfo::of(&data);
        if self.keys.is_empty() {
            return Err(format!(
                "file is signed by key(s) {} but no trusted keys were given (--trust)",
                info.key_ids.join(", ")
            ));
        }
        if data.hash_function != HASH_SHA256 {
            return Err(format!(
                "signature section is not valid: unsupported hash function {:#04x}",
                data.hash_function
            ));
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
            return Err(format!(
                "no valid signature by a trusted key over the whole file (signature key ids: {}); \
                 the file was modified after signing or is signed by other keys",
                info.key_ids.join(", ")
            ));
        }
        let need = self.min_signers.max(1);
        if ids.len() < need {
            return Err(format!(
                "signed by {} trusted key(s) ({}) but the policy requires at least {need}",
                ids.len(),
                ids.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(Verdict::Trusted(ids.into_iter().collect()))
    }
}

fn read_public_keys(path: &Path) -> Result<Vec<PublicKey>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(pk) = PublicKey::from_any(&data) {
        // from_any takes the first OpenSSH key of a list; read them all.
        if let Ok(text) = std::str::from_utf8(&data)
            && text.lines().filter(|l| l.trim_start().starts_with("ssh-ed25519")).count() > 1
        {
            return read_openssh_list(path, text);
        }
        return Ok(vec![pk]);
    }
    match std::str::from_utf8(&data) {
        Ok(text) => read_openssh_list(path, text),
        Err(_) => Err(format!("{}: not a public key file", path.display())),
    }
}

fn read_openssh_list(path: &Path, text: &str) -> Result<Vec<PublicKey>, String> {
    let keys: Vec<PublicKey> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            PublicKey::from_openssh(l)
                .map_err(|_| format!("{}: not an Ed25519 public key: {l}", path.display()))
        })
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        return Err(format!("{}: no public keys found", path.display()));
    }
    Ok(keys)
}

/// Reads a secret key (raw, PEM, DER or OpenSSH Ed25519).
pub fn read_secret_key(path: &Path) -> Result<SecretKey, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    SecretKey::from_any(&data).map_err(|_| format!("{}: not an Ed25519 secret key", path.display()))
}

/// The public half of a secret key.
pub fn public_of(sk: &SecretKey) -> PublicKey {
    PublicKey { pk: sk.sk.public_key(), key_id: None }
}

/// Writes a new key pair: the secret key at `path` (readable by the owner
/// only) and the public key at `path.pub`. Refuses to overwrite either.
/// Returns the key id.
pub fn keygen(path: &Path) -> Result<String, String> {
    let pub_path = pub_path(path);
    for p in [path, pub_path.as_path()] {
        if p.exists() {
            return Err(format!("{} already exists; refusing to overwrite a key", p.display()));
        }
    }
    let kp = KeyPair::generate();
    write_private(path, &kp.sk.to_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(&pub_path, kp.pk.to_bytes()).map_err(|e| format!("{}: {e}", pub_path.display()))?;
    Ok(key_id(&kp.pk))
}

/// `PATH.pub` for a secret key at `PATH`.
pub fn pub_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Adds a signature by `sk` to `bytes` (keeping any existing signatures, so a
/// second key can sign during a key rotation). The signature covers every
/// section, the manifest included.
pub fn sign(bytes: &[u8], sk: &SecretKey) -> Result<Vec<u8>, String> {
    let module = Module::deserialize(&mut &bytes[..]).map_err(|e| format!("reading sections: {e}"))?;
    let pk = public_of(sk).attach_default_key_id();
    let (signed, _) = sk.sign_multi(module, pk.key_id(), false, false).map_err(|e| match e {
        wasmsign2::WSError::DuplicateSignature => "the file is already signed by this key".to_owned(),
        other => format!("signing: {other}"),
    })?;
    let mut out = Vec::with_capacity(bytes.len() + 128);
    signed.serialize(&mut out).map_err(|e| format!("writing: {e}"))?;
    Ok(out)
}

/// Walks the signature section's structure, checking that every count is
/// within the format's limits and every length fits inside what encloses it,
/// before any decoder allocates from a length read out of untrusted bytes.
/// (Found by the `plugin_load` fuzz target: a length of 3 GB made the
/// decoder try to allocate it.)
fn check_signature_layout(data: &[u8]) -> Result<(), String> {
    use crate::plugin::read_leb_u32;
    fn slice<'a>(buf: &'a [u8], pos: &mut usize, what: &str) -> Result<&'a [u8], String> {
        let len = read_leb_u32(buf, pos).map_err(|e| format!("signature section: {what}: {e}"))? as usize;
        let end = pos
            .checked_add(len)
            .filter(|e| *e <= buf.len())
            .ok_or_else(|| format!("signature section: {what} of {len} bytes runs past its end"))?;
        let s = &buf[*pos..end];
        *pos = end;
        Ok(s)
    }
    let bad = |what: &str| format!("signature section: {what}");
    let mut pos = 0;
    for field in ["version", "content type", "hash function"] {
        read_leb_u32(data, &mut pos).map_err(|e| bad(&format!("{field}: {e}")))?;
    }
    let sets = read_leb_u32(data, &mut pos).map_err(|e| bad(&e))?;
    if sets > 64 {
        return Err(bad(&format!("{sets} hash sets (at most 64)")));
    }
    for _ in 0..sets {
        let set = slice(data, &mut pos, "hash set")?;
        let mut p = 0;
        let hashes = read_leb_u32(set, &mut p).map_err(|e| bad(&e))? as usize;
        if hashes > 64 || p + hashes * 32 > set.len() {
            return Err(bad(&format!("{hashes} hashes do not fit")));
        }
        p += hashes * 32;
        let sigs = read_leb_u32(set, &mut p).map_err(|e| bad(&e))?;
        if sigs > 256 {
            return Err(bad(&format!("{sigs} signatures (at most 256)")));
        }
        for _ in 0..sigs {
            let sig = slice(set, &mut p, "signature")?;
            let mut q = 0;
            slice(sig, &mut q, "key id")?;
            if q >= sig.len() {
                return Err(bad("signature without algorithm"));
            }
            q += 1;
            slice(sig, &mut q, "signature bytes")?;
        }
    }
    Ok(())
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

/// The decoded signature section and the offset where it ends, when the
/// file has one. A file with a signature section anywhere but first, or more
/// than one, is refused: verifiers of the format would ignore such a section
/// and it has no honest use.
fn read_signature_section(bytes: &[u8]) -> Result<Option<(SignatureData, usize)>, String> {
    let secs = crate::plugin::sections(bytes)?;
    let positions: Vec<usize> =
        secs.iter().enumerate().filter(|(_, s)| s.name == Some(SIGNATURE_SECTION)).map(|(i, _)| i).collect();
    match positions.as_slice() {
        [] => Ok(None),
        [0] => {
            check_signature_layout(secs[0].data)?;
            let data = SignatureData::deserialize(secs[0].data)
                .map_err(|e| format!("signature section cannot be decoded: {e}"))?;
            Ok(Some((data, secs[0].range.end)))
        }
        _ => Err("signature section must be the first section, and only one may be present".into()),
    }
}

/// What the signature section of a file says, before any verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    /// Key ids named by the signatures (hex); `"-"` for a signature without one.
    pub key_ids: Vec<String>,
    /// Number of signatures.
    pub count: usize,
}

/// Reads the signature section, if any (see [`read_signature_section`] for
/// where it must be).
pub fn signature_info(bytes: &[u8]) -> Result<Option<SignatureInfo>, String> {
    Ok(read_signature_section(bytes)?.map(|(data, _)| SignatureInfo::of(&data)))
}

impl SignatureInfo {
    fn of(data: &SignatureData) -> SignatureInfo {
        let mut key_ids = Vec::new();
        for set in &data.signed_hashes_set {
            for sig in &set.signatures {
                key_ids.push(sig.key_id.as_ref().map(hex::encode).unwrap_or_else(|| "-".into()));
            }
        }
        let count = key_ids.len();
        key_ids.sort();
        key_ids.dedup();
        SignatureInfo { key_ids, count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmsign2::PublicKeySet;

    fn with_signature_section(data: &[u8]) -> Vec<u8> {
        let mut payload = vec![SIGNATURE_SECTION.len() as u8];
        payload.extend_from_slice(SIGNATURE_SECTION.as_bytes());
        payload.extend_from_slice(data);
        let mut file = b"\0asm\x0d\x00\x01\x00".to_vec();
        file.push(0);
        let mut len = payload.len() as u32;
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            file.push(if len == 0 { b } else { b | 0x80 });
            if len == 0 {
                break;
            }
        }
        file.extend_from_slice(&payload);
        file
    }

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
        let component = crate::sql::script::component_for_sql("CREATE TABLE t (x);").unwrap();
        let m = crate::Manifest::new(1, "t");
        let by_a = crate::plugin::pack(&component, &m, Some(&a.sk)).unwrap();
        let by_a_and_b = crate::plugin::pack(&by_a, &m, Some(&b.sk)).unwrap();
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

    /// Found by the `plugin_load` fuzz target: a hash set claiming 3 GB made
    /// the decoder allocate it. Now refused before decoding.
    #[test]
    fn huge_declared_lengths_are_refused_before_decoding() {
        // version 1, content type 1, hash function 1, one set of 0xC0000000 bytes.
        let file = with_signature_section(&[1, 1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x0c]);
        let err = signature_info(&file).unwrap_err();
        assert!(err.contains("runs past its end"), "{err}");
        let policy = TrustPolicy { allow_unsigned: true, ..TrustPolicy::default() };
        assert!(policy.check(&file).is_err());
        // Too many sets, and truncated input, are refused too.
        assert!(signature_info(&with_signature_section(&[1, 1, 1, 65])).unwrap_err().contains("at most 64"));
        assert!(signature_info(&with_signature_section(&[1, 1])).is_err());
    }
}
