//! Signatures: key files, signing, and reading the signature section.
//!
//! Plugins carry signatures in the standard WebAssembly signature custom
//! section (Ed25519 over SHA-256, key ids, several signatures per file), so
//! files signed here verify with other tools of that format and the other way
//! round. wasmig verifies only whole files: the signed hash must cover every
//! section after the signature header, so an unsigned section appended to a
//! signed file (or a partially signed file) is refused. The 8-byte preamble
//! is outside that format's hash; [`sections`](super::sections::sections)
//! checks it.
//!
//! Signing, key files and decoding the section use the format's reference
//! implementation (wasmsign2). Verifying is the trust policy's job (see
//! `trust`).

use std::path::{Path, PathBuf};

use wasmsign2::{KeyPair, Module, PublicKey, SecretKey, SignatureData};

use super::sections::{SIGNATURE_SECTION, read_leb_u32, sections};
use crate::error::{FormatError, KeyError};

/// A key id as wasmig prints and records it: 24 hex digits, the standard
/// default key id of the signature format (HMAC-SHA256("key_id", pk), 12 bytes).
pub fn key_id(pk: &PublicKey) -> String {
    let with_id = pk.clone().attach_default_key_id();
    hex::encode(with_id.key_id().expect("default key id attached"))
}

pub(crate) fn read_public_keys(path: &Path) -> Result<Vec<PublicKey>, KeyError> {
    let data = std::fs::read(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
    parse_public_keys(path, &data)
}

/// The public keys in `data` (any form [`read_public_keys`] reads); `path`
/// names where they came from in errors.
pub(crate) fn parse_public_keys(path: &Path, data: &[u8]) -> Result<Vec<PublicKey>, KeyError> {
    if let Ok(pk) = PublicKey::from_any(data) {
        // from_any takes the first OpenSSH key of a list; read them all.
        if let Ok(text) = std::str::from_utf8(data)
            && text.lines().filter(|l| l.trim_start().starts_with("ssh-ed25519")).count() > 1
        {
            return read_openssh_list(path, text);
        }
        return Ok(vec![pk]);
    }
    match std::str::from_utf8(data) {
        Ok(text) => read_openssh_list(path, text),
        Err(_) => Err(KeyError::NotAPublicKey { path: path.to_owned() }),
    }
}

fn read_openssh_list(path: &Path, text: &str) -> Result<Vec<PublicKey>, KeyError> {
    let keys: Vec<PublicKey> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            PublicKey::from_openssh(l)
                .map_err(|_| KeyError::NotEd25519 { path: path.to_owned(), line: l.to_owned() })
        })
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        return Err(KeyError::NoPublicKeys { path: path.to_owned() });
    }
    Ok(keys)
}

/// Reads a secret key (raw, PEM, DER or OpenSSH Ed25519).
pub fn read_secret_key(path: &Path) -> Result<SecretKey, KeyError> {
    let data = std::fs::read(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
    SecretKey::from_any(&data).map_err(|_| KeyError::NotASecretKey { path: path.to_owned() })
}

/// The public half of a secret key.
pub fn public_of(sk: &SecretKey) -> PublicKey {
    PublicKey { pk: sk.sk.public_key(), key_id: None }
}

/// Writes a new key pair: the secret key at `path` (readable by the owner
/// only) and the public key at `path.pub`. Refuses to overwrite either.
/// Returns the key id.
pub fn keygen(path: &Path) -> Result<String, KeyError> {
    let pub_path = pub_path(path);
    for p in [path, pub_path.as_path()] {
        if p.exists() {
            return Err(KeyError::Exists { path: p.to_owned() });
        }
    }
    let kp = KeyPair::generate();
    write_private(path, &kp.sk.to_bytes())
        .map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
    std::fs::write(&pub_path, kp.pk.to_bytes())
        .map_err(|source| KeyError::Io { path: pub_path.clone(), source })?;
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
pub fn sign(bytes: &[u8], sk: &SecretKey) -> Result<Vec<u8>, FormatError> {
    let bad = FormatError::Signature;
    let module = Module::deserialize(&mut &bytes[..]).map_err(|e| bad(format!("reading sections: {e}")))?;
    let pk = public_of(sk).attach_default_key_id();
    let (signed, _) = sk.sign_multi(module, pk.key_id(), false, false).map_err(|e| match e {
        wasmsign2::WSError::DuplicateSignature => {
            FormatError::Signed("the file is already signed by this key".to_owned())
        }
        other => bad(format!("signing: {other}")),
    })?;
    let mut out = Vec::with_capacity(bytes.len() + 128);
    signed.serialize(&mut out).map_err(|e| bad(format!("writing: {e}")))?;
    Ok(out)
}

/// Walks the signature section's structure, checking that every count is
/// within the format's limits and every length fits inside what encloses it,
/// before any decoder allocates from a length read out of untrusted bytes.
/// (Found by the `plugin_load` fuzz target: a length of 3 GB made the
/// decoder try to allocate it.)
fn check_signature_layout(data: &[u8]) -> Result<(), String> {
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

/// The decoded signature section and the offset where it ends, when the
/// file has one. A file with a signature section anywhere but first, or more
/// than one, is refused: verifiers of the format would ignore such a section
/// and it has no honest use.
pub(crate) fn read_signature_section(bytes: &[u8]) -> Result<Option<(SignatureData, usize)>, FormatError> {
    let secs = sections(bytes)?;
    let positions: Vec<usize> =
        secs.iter().enumerate().filter(|(_, s)| s.name == Some(SIGNATURE_SECTION)).map(|(i, _)| i).collect();
    match positions.as_slice() {
        [] => Ok(None),
        [0] => {
            check_signature_layout(secs[0].data).map_err(FormatError::Signature)?;
            let data = SignatureData::deserialize(secs[0].data)
                .map_err(|e| FormatError::Signature(format!("signature section cannot be decoded: {e}")))?;
            Ok(Some((data, secs[0].range.end)))
        }
        _ => Err(FormatError::Signature(
            "signature section must be the first section, and only one may be present".into(),
        )),
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
pub fn signature_info(bytes: &[u8]) -> Result<Option<SignatureInfo>, FormatError> {
    Ok(read_signature_section(bytes)?.map(|(data, _)| SignatureInfo::of(&data)))
}

impl SignatureInfo {
    pub(crate) fn of(data: &SignatureData) -> SignatureInfo {
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
    use crate::plugin::trust::TrustPolicy;

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

    /// Found by the `plugin_load` fuzz target: a hash set claiming 3 GB made
    /// the decoder allocate it. Now refused before decoding.
    #[test]
    fn huge_declared_lengths_are_refused_before_decoding() {
        // version 1, content type 1, hash function 1, one set of 0xC0000000 bytes.
        let file = with_signature_section(&[1, 1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x0c]);
        let err = signature_info(&file).unwrap_err().to_string();
        assert!(err.contains("runs past its end"), "{err}");
        let policy = TrustPolicy { allow_unsigned: true, ..TrustPolicy::default() };
        assert!(policy.check(&file).is_err());
        // Too many sets, and truncated input, are refused too.
        assert!(
            signature_info(&with_signature_section(&[1, 1, 1, 65]))
                .unwrap_err()
                .to_string()
                .contains("at most 64")
        );
        assert!(signature_info(&with_signature_section(&[1, 1])).is_err());
    }
}
