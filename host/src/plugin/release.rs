//! The signed release index, `wasmig-release.json`: which migrations make up
//! a release, so that whoever can write the migrations directory cannot
//! withhold a file, add one, swap one for another signed file, or put back an
//! older signed set without start-up noticing.
//!
//! Per-file signatures say each file is genuine; they say nothing about the
//! set. The index lists every migration of a release by id, name and content
//! digest (the digest the ledger records, see
//! [`content_digest`](super::file::content_digest)), carries a release number
//! that only goes up, and is signed with the same Ed25519 keys and k-of-n
//! policy as the plugins.
//!
//! What is signed is not the JSON text but a canonical byte form built from
//! the parsed values, so formatting, key order and whitespace in the file do
//! not matter ([`ReleaseIndex::signed_bytes`]):
//!
//! ```text
//! wasmig-release 1\n
//! release <number>\n
//! migration <id> <name> <digest>\n      (one line per migration, ascending id)
//! ```
//!
//! Numbers are decimal without leading zeros, names are migration names
//! (letters, digits, `_`, `-`: no spaces or newlines), digests 64 lower-case
//! hex digits. The first line separates these signatures from any other use
//! of the same keys: a plugin signature signs a message starting `wasmsig`.
//! Each signature is a plain Ed25519 signature of those bytes (verified
//! strictly), named by the signer's key id.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::file::{Plugin, open_regular, read_bounded};
use super::manifest::validate_name;
use super::signing::{key_id, public_of};
use super::trust::TrustPolicy;
use crate::error::{Error, ReleaseError, Result, TrustError};

/// The index's file name inside a migrations directory.
pub const RELEASE_FILE: &str = "wasmig-release.json";

/// The index format this version writes and reads.
pub const RELEASE_FORMAT: u32 = 1;

/// Largest index file read. 10,000 migrations take about 1.2 MB.
const MAX_INDEX_SIZE: u64 = 16 * 1024 * 1024;

/// One migration of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseEntry {
    /// Migration id.
    pub id: i64,
    /// Migration name.
    pub name: String,
    /// Content digest of its file (as the ledger records it).
    pub digest: String,
}

/// One signature over [`ReleaseIndex::signed_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSignature {
    /// The signer's key id (see [`key_id`]).
    pub key_id: String,
    /// The Ed25519 signature, 64 bytes as hex.
    pub signature: String,
}

/// A release index: the release number, every migration, and signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseIndex {
    /// Index format ([`RELEASE_FORMAT`]).
    pub format: u32,
    /// The release number: at least 1, and never lower than a release
    /// already recorded in a database's ledger.
    pub release: i64,
    /// Every migration of the release, in ascending id order.
    pub migrations: Vec<ReleaseEntry>,
    /// Signatures over the canonical form.
    pub signatures: Vec<ReleaseSignature>,
}

impl ReleaseIndex {
    /// An unsigned index of `plugins` as release `number`.
    pub fn of_plugins(number: i64, plugins: &[Plugin]) -> Result<ReleaseIndex> {
        let mut migrations: Vec<ReleaseEntry> = plugins
            .iter()
            .map(|p| ReleaseEntry { id: p.id(), name: p.name().to_owned(), digest: p.digest.clone() })
            .collect();
        migrations.sort_by_key(|m| m.id);
        let index =
            ReleaseIndex { format: RELEASE_FORMAT, release: number, migrations, signatures: Vec::new() };
        index.validate().map_err(|reason| Error::Usage(format!("cannot make a release index: {reason}")))?;
        Ok(index)
    }

    /// The bytes every signature signs (see the module documentation).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = format!("wasmig-release {}\nrelease {}\n", self.format, self.release);
        for m in &self.migrations {
            out.push_str(&format!("migration {} {} {}\n", m.id, m.name, m.digest));
        }
        out.into_bytes()
    }

    /// Same release number and migrations (signatures aside).
    pub fn same_release(&self, other: &ReleaseIndex) -> bool {
        self.format == other.format && self.release == other.release && self.migrations == other.migrations
    }

    /// Adds `sk`'s signature, replacing an earlier one by the same key (so
    /// signing again is a no-op). Returns the key id.
    pub fn sign(&mut self, sk: &wasmsign2::SecretKey) -> String {
        let id = key_id(&public_of(sk));
        let sig = sk.sk.sign(self.signed_bytes(), None);
        self.signatures.retain(|s| s.key_id != id);
        self.signatures.push(ReleaseSignature { key_id: id.clone(), signature: hex::encode(*sig) });
        self.signatures.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        id
    }

    /// The trusted keys (ids) whose signatures verify, when they are enough
    /// for `policy`'s k-of-n. Unsigned indexes are refused even when the
    /// policy allows unsigned plugins: requiring a release is a gate for
    /// deployments, not for local development.
    pub fn verify(&self, policy: &TrustPolicy) -> std::result::Result<Vec<String>, TrustError> {
        if self.signatures.is_empty() {
            return Err(TrustError::NotSigned);
        }
        let named: Vec<String> = self.signatures.iter().map(|s| s.key_id.clone()).collect();
        if policy.keys.is_empty() {
            return Err(TrustError::NoTrustedKeys { key_ids: named });
        }
        let msg = self.signed_bytes();
        let signed: BTreeSet<String> = policy
            .keys
            .iter()
            .filter(|k| {
                let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&k.key.pk) else { return false };
                self.signatures.iter().filter(|s| s.key_id == k.id).any(|s| {
                    let bytes = hex::decode(&s.signature).unwrap_or_default();
                    ed25519_dalek::Signature::from_slice(&bytes)
                        .is_ok_and(|sig| vk.verify_strict(&msg, &sig).is_ok())
                })
            })
            .map(|k| k.id.clone())
            .collect();
        if signed.is_empty() {
            return Err(TrustError::NoValidSignature { key_ids: named });
        }
        let need = policy.min_signers.max(1);
        if signed.len() < need {
            return Err(TrustError::TooFewSigners { signers: signed.into_iter().collect(), need });
        }
        Ok(signed.into_iter().collect())
    }

    /// Every way `plugins` differ from the index: files the index lists but
    /// that are not there (withheld), files it does not list, and files whose
    /// name or digest differ. Empty when the set is exactly the release.
    pub fn problems(&self, plugins: &[Plugin]) -> Vec<ReleaseError> {
        let listed: BTreeMap<i64, &ReleaseEntry> = self.migrations.iter().map(|m| (m.id, m)).collect();
        let present: BTreeMap<i64, &Plugin> = plugins.iter().map(|p| (p.id(), p)).collect();
        let mut out = Vec::new();
        for (id, m) in &listed {
            match present.get(id) {
                None => out.push(ReleaseError::Withheld { id: *id, name: m.name.clone() }),
                Some(p) if p.name() != m.name || p.digest != m.digest => out.push(ReleaseError::Changed {
                    id: *id,
                    name: p.name().to_owned(),
                    path: p.path.clone(),
                    listed: format!("{} {}", m.name, m.digest),
                    actual: format!("{} {}", p.name(), p.digest),
                }),
                Some(_) => {}
            }
        }
        for (id, p) in &present {
            if !listed.contains_key(id) {
                out.push(ReleaseError::Unlisted { id: *id, name: p.name().to_owned(), path: p.path.clone() });
            }
        }
        out.sort_by_key(ReleaseError::id);
        out
    }

    /// Refuses a release older than one the ledger already records.
    pub fn check_not_older(&self, highest_recorded: Option<i64>) -> std::result::Result<(), ReleaseError> {
        match highest_recorded {
            Some(h) if self.release < h => Err(ReleaseError::Rollback { release: self.release, recorded: h }),
            _ => Ok(()),
        }
    }

    /// Decodes an index, checking its structure (not its signatures).
    pub fn decode(bytes: &[u8]) -> std::result::Result<ReleaseIndex, String> {
        let index: ReleaseIndex =
            serde_json::from_slice(bytes).map_err(|e| format!("not a release index: {e}"))?;
        index.validate()?;
        Ok(index)
    }

    /// The index as it is written: pretty JSON and a final newline.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("an index always serialises");
        out.push(b'\n');
        out
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.format != RELEASE_FORMAT {
            return Err(format!(
                "index format {} is not supported (this wasmig reads {RELEASE_FORMAT})",
                self.format
            ));
        }
        if self.release < 1 {
            return Err(format!("release number {} must be at least 1", self.release));
        }
        for m in &self.migrations {
            if m.id < 1 {
                return Err(format!("migration id {} must be positive", m.id));
            }
            validate_name(&m.name).map_err(|e| format!("migration {}: {e}", m.id))?;
            if m.digest.len() != 64
                || !m.digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(format!(
                    "migration {}: digest {:?} is not 64 lower-case hex digits",
                    m.id, m.digest
                ));
            }
        }
        if let Some(w) = self.migrations.windows(2).find(|w| w[0].id >= w[1].id) {
            return Err(format!(
                "migrations must be listed once each in ascending id order ({} then {})",
                w[0].id, w[1].id
            ));
        }
        for s in &self.signatures {
            if s.signature.len() != 128 || hex::decode(&s.signature).is_err() {
                return Err(format!("signature by {}: not 64 bytes of hex", s.key_id));
            }
        }
        Ok(())
    }
}

/// The index path of migrations directory `dir`.
pub fn release_path(dir: &Path) -> PathBuf {
    dir.join(RELEASE_FILE)
}

/// Reads `dir`'s index, `None` when there is none. Read like a plugin: a
/// regular file only (never a link, pipe or device), bounded.
pub fn read_release(dir: &Path) -> Result<Option<ReleaseIndex>> {
    let path = release_path(dir);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    let refuse = |reason: ReleaseError| Error::Release { index: path.clone(), reason: Box::new(reason) };
    let (file, meta) = open_regular(&path).map_err(|e| match e {
        super::file::OpenRefusal::NotRegular(what) => {
            refuse(ReleaseError::Malformed(format!("is {what}, not a regular file")))
        }
        super::file::OpenRefusal::Io(e) => Error::io(&path)(e),
    })?;
    let bytes = read_bounded(&file, meta.len(), MAX_INDEX_SIZE)
        .map_err(Error::io(&path))?
        .ok_or_else(|| refuse(ReleaseError::Malformed(format!("larger than {MAX_INDEX_SIZE} bytes"))))?;
    decode_release(&path, &bytes).map(Some)
}

/// Decodes index `bytes` (read from `path`, for messages).
pub fn decode_release(path: &Path, bytes: &[u8]) -> Result<ReleaseIndex> {
    ReleaseIndex::decode(bytes)
        .map_err(|r| Error::Release { index: path.to_owned(), reason: Box::new(ReleaseError::Malformed(r)) })
}

/// The index of `plugins` checked against `policy`: trusted signatures
/// (k of n), and exactly the listed files. `index` is what was read (`None`:
/// missing); `path` names it in errors.
pub fn check_release(
    path: &Path,
    index: Option<ReleaseIndex>,
    policy: &TrustPolicy,
    plugins: &[Plugin],
) -> Result<ReleaseIndex> {
    let refuse = |reason: ReleaseError| Error::Release { index: path.to_owned(), reason: Box::new(reason) };
    let index = index.ok_or_else(|| refuse(ReleaseError::Missing))?;
    index.verify(policy).map_err(|e| refuse(ReleaseError::Untrusted(e)))?;
    if let Some(first) = index.problems(plugins).into_iter().next() {
        return Err(refuse(first));
    }
    Ok(index)
}

/// What [`write_release`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeRelease {
    /// The index as written.
    pub index: ReleaseIndex,
    /// Where.
    pub path: PathBuf,
    /// The key id that signed now.
    pub signed_by: String,
    /// True when the directory already had this release and the signature
    /// was added to it (k of n); false when a new index was made.
    pub added_signature: bool,
}

/// `wasmig release`: writes `dir`'s index for the plugins in it, signed by
/// `sk`. When the directory's index already lists exactly these files
/// (and `number` is not given or is its number), `sk`'s signature is added
/// to it; otherwise a new index is made as release `number` (default: the
/// previous index's number + 1, or 1). Giving the number of an existing
/// release that lists other files is refused: two sets under one number
/// would defeat the rollback check. Every file passes the byte-level checks
/// a host makes (signatures are the host's business, per file).
pub fn write_release(
    dir: &Path,
    sk: &wasmsign2::SecretKey,
    number: Option<i64>,
    max_file_size: u64,
) -> Result<MadeRelease> {
    let mut plugins = super::file::list_dir(dir)?
        .iter()
        .map(|p| Plugin::load_deferred(p, max_file_size))
        .collect::<Result<Vec<_>>>()?;
    plugins.sort_by_key(Plugin::id);
    if let Some(w) = plugins.windows(2).find(|w| w[0].id() == w[1].id()) {
        return Err(Error::DuplicateId {
            id: w[0].id(),
            first: w[0].path.clone(),
            second: w[1].path.clone(),
        });
    }
    let path = release_path(dir);
    let previous = read_release(dir)?;
    let number = number.unwrap_or_else(|| match &previous {
        Some(p) if ReleaseIndex::of_plugins(p.release, &plugins).is_ok_and(|f| f.same_release(p)) => {
            p.release
        }
        Some(p) => p.release.saturating_add(1),
        None => 1,
    });
    let fresh = ReleaseIndex::of_plugins(number, &plugins)?;
    let (mut index, added_signature) = match previous {
        Some(p) if p.same_release(&fresh) => (p, true),
        Some(p) if p.release == number => {
            return Err(Error::Usage(format!(
                "{} already holds release {number} with other migrations; give a higher --number \
                 (or none: {} is next)",
                path.display(),
                number.saturating_add(1)
            )));
        }
        _ => (fresh, false),
    };
    let signed_by = index.sign(sk);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(Error::io(dir))?;
    std::io::Write::write_all(&mut tmp, &index.encode()).map_err(Error::io(tmp.path().to_owned()))?;
    // A temporary file is private to its owner; the index is shipped with
    // the migrations, which anyone who runs them must read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(Error::io(tmp.path().to_owned()))?;
    }
    tmp.persist(&path).map_err(|e| Error::io(&path)(e.error))?;
    Ok(MadeRelease { index, path, signed_by, added_signature })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::manifest::Manifest;
    use crate::plugin::trust::TrustedKey;
    use wasmsign2::KeyPair;

    fn plugin(id: i64, name: &str, note: &[u8]) -> Plugin {
        let mut c = b"\0asm\x0d\x00\x01\x00".to_vec();
        c.extend_from_slice(&crate::plugin::sections::encode_custom_section("note", note));
        let bytes = crate::plugin::file::with_manifest(&c, &Manifest::new(id, name)).unwrap();
        let path = PathBuf::from(format!("m/{id:04}_{name}.wasm"));
        Plugin::from_bytes_deferred(&path, bytes, u64::MAX).unwrap()
    }

    fn policy(keys: &[&KeyPair], k: usize) -> TrustPolicy {
        TrustPolicy {
            keys: keys
                .iter()
                .map(|kp| TrustedKey { key: kp.pk.clone(), id: key_id(&kp.pk), source: PathBuf::from("t") })
                .collect(),
            min_signers: k,
            allow_unsigned: true,
        }
    }

    #[test]
    fn canonical_form_is_exact_and_independent_of_json_layout() {
        let ps = [plugin(2, "b", b"2"), plugin(1, "a", b"1")];
        let index = ReleaseIndex::of_plugins(7, &ps).unwrap();
        let want = format!(
            "wasmig-release 1\nrelease 7\nmigration 1 a {}\nmigration 2 b {}\n",
            ps[1].digest, ps[0].digest
        );
        assert_eq!(String::from_utf8(index.signed_bytes()).unwrap(), want);
        // Reformatted JSON (one line, other key order) decodes to the same index.
        let v: serde_json::Value = serde_json::from_slice(&index.encode()).unwrap();
        let compact = serde_json::to_vec(&v).unwrap();
        assert_eq!(ReleaseIndex::decode(&compact).unwrap(), index);
        assert_eq!(ReleaseIndex::decode(&index.encode()).unwrap(), index);
    }

    #[test]
    fn decoding_refuses_malformed_indexes() {
        let ps = [plugin(1, "a", b"1"), plugin(2, "b", b"2")];
        let good: serde_json::Value =
            serde_json::from_slice(&ReleaseIndex::of_plugins(1, &ps).unwrap().encode()).unwrap();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            f(&mut v);
            ReleaseIndex::decode(&serde_json::to_vec(&v).unwrap()).unwrap_err()
        };
        assert!(with(&|v| v["format"] = 2.into()).contains("format 2"));
        assert!(with(&|v| v["release"] = 0.into()).contains("at least 1"));
        assert!(with(&|v| v["extra"] = 1.into()).contains("unknown field"));
        assert!(with(&|v| v["migrations"][0]["name"] = "a b".into()).contains("migration 1"));
        assert!(with(&|v| v["migrations"][0]["digest"] = "AB".into()).contains("hex"));
        assert!(with(&|v| v["migrations"][1]["id"] = 1.into()).contains("ascending"));
        assert!(
            with(&|v| v["signatures"] = serde_json::json!([{"key_id": "x", "signature": "00"}]))
                .contains("64 bytes")
        );
        assert!(ReleaseIndex::decode(b"not json").unwrap_err().contains("not a release index"));
    }

    #[test]
    fn signatures_follow_the_k_of_n_policy_and_cover_every_field() {
        let (a, b, c) = (KeyPair::generate(), KeyPair::generate(), KeyPair::generate());
        let ps = [plugin(1, "a", b"1"), plugin(2, "b", b"2")];
        let mut index = ReleaseIndex::of_plugins(3, &ps).unwrap();
        assert_eq!(index.verify(&policy(&[&a], 1)), Err(TrustError::NotSigned));
        index.sign(&a.sk);
        index.sign(&a.sk); // idempotent per key
        assert_eq!(index.signatures.len(), 1);
        assert_eq!(index.verify(&policy(&[&a, &b], 1)).unwrap(), vec![key_id(&a.pk)]);
        assert!(matches!(
            index.verify(&policy(&[&a, &b], 2)),
            Err(TrustError::TooFewSigners { need: 2, .. })
        ));
        assert!(matches!(index.verify(&policy(&[&c], 1)), Err(TrustError::NoValidSignature { .. })));
        index.sign(&b.sk);
        assert_eq!(index.verify(&policy(&[&a, &b], 2)).unwrap().len(), 2);
        // Changing any signed field invalidates every signature.
        for change in [
            &(|i: &mut ReleaseIndex| i.release = 4) as &dyn Fn(&mut ReleaseIndex),
            &|i| i.migrations[0].digest = i.migrations[1].digest.clone(),
            &|i| i.migrations[1].name = "c".into(),
            &|i| i.migrations[1].id = 3,
            &|i| {
                i.migrations.pop();
            },
        ] {
            let mut t = index.clone();
            change(&mut t);
            assert!(
                matches!(t.verify(&policy(&[&a, &b], 1)), Err(TrustError::NoValidSignature { .. })),
                "{t:?}"
            );
        }
        // A signature copied under another key's id does not count for it.
        let mut forged = index.clone();
        forged.signatures[1].signature = forged.signatures[0].signature.clone();
        assert_eq!(forged.verify(&policy(&[&a, &b], 1)).unwrap().len(), 1);
    }

    #[test]
    fn problems_name_withheld_unlisted_and_changed_files() {
        let ps = [plugin(1, "a", b"1"), plugin(2, "b", b"2"), plugin(3, "c", b"3")];
        let index = ReleaseIndex::of_plugins(1, &ps[..2]).unwrap();
        assert!(index.problems(&ps[..2]).is_empty());
        assert!(matches!(index.problems(&ps[..1])[..], [ReleaseError::Withheld { id: 2, .. }]));
        assert!(matches!(index.problems(&ps)[..], [ReleaseError::Unlisted { id: 3, .. }]));
        let swapped = [ps[0].clone(), plugin(2, "b", b"other")];
        assert!(matches!(index.problems(&swapped)[..], [ReleaseError::Changed { id: 2, .. }]));
        assert_eq!(index.check_not_older(Some(1)), Ok(()));
        assert_eq!(index.check_not_older(None), Ok(()));
        assert_eq!(index.check_not_older(Some(2)), Err(ReleaseError::Rollback { release: 1, recorded: 2 }));
    }
}
