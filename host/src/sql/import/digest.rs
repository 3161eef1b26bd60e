//! The digests the tools keep of a migration, spelled as provenance spells
//! them: sqlx stores SHA-384 of the file's text (`sqlx-core`,
//! `migrate/migration.rs`, `checksum`); refinery stores a SipHash-1-3
//! (keys 0, 0) of the migration's name, version and SQL, fed as Rust's
//! `Hash` feeds them (`refinery_core`, `runner.rs`, `Migration::unapplied`);
//! the others keep none, so provenance has SHA-256 of the file.

use sha2::{Digest, Sha256, Sha384};

/// `sha256:<hex>` of `text`.
pub(super) fn sha256(text: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text)))
}

/// `sha384:<hex>` of `text`: sqlx's checksum.
pub(super) fn sha384(text: &[u8]) -> String {
    format!("sha384:{}", hex::encode(Sha384::digest(text)))
}

/// refinery's checksum of a migration called `name` (the part after `__`),
/// at `version`, with `sql` as read from the file. refinery hashes the
/// version at the width it was built with: `i32` unless its `int8-versions`
/// feature is on, which a version beyond `i32` needs, so that is the width
/// used for one.
pub(super) fn refinery_checksum(name: &str, version: i64, sql: &str) -> u64 {
    // `str`'s Hash writes its bytes and then 0xff; integers write their
    // little-endian bytes (native order on every platform refinery
    // supports; the result is stored, so it is fixed).
    let mut msg = Vec::with_capacity(name.len() + sql.len() + 10);
    msg.extend_from_slice(name.as_bytes());
    msg.push(0xff);
    match i32::try_from(version) {
        Ok(v) => msg.extend_from_slice(&v.to_le_bytes()),
        Err(_) => msg.extend_from_slice(&version.to_le_bytes()),
    }
    msg.extend_from_slice(sql.as_bytes());
    msg.push(0xff);
    siphash13(&msg)
}

/// SipHash-1-3 with both keys 0 (one compression round per block, three
/// finalisation rounds), over `msg`.
fn siphash13(msg: &[u8]) -> u64 {
    let mut v = [0x736f6d6570736575u64, 0x646f72616e646f6du64, 0x6c7967656e657261u64, 0x7465646279746573u64];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut blocks = msg.chunks_exact(8);
    for b in &mut blocks {
        let m = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        v[3] ^= m;
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    let tail = blocks.remainder();
    last[..tail.len()].copy_from_slice(tail);
    last[7] = msg.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..3 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{Hash, Hasher};

    /// refinery first computed its checksum with the standard library's
    /// `DefaultHasher::new()` (SipHash-1-3, keys 0) and kept the algorithm
    /// when it switched to the `siphasher` crate; today's `DefaultHasher`
    /// is still that, so it is the reference here.
    #[test]
    #[allow(deprecated)]
    fn refinery_checksum_is_the_hash_refinery_computes() {
        for (name, version, sql) in [
            ("initial", 1i32, "CREATE TABLE persons (id int, name varchar(255), city varchar(255));"),
            ("add_cars_and_motos_table", 2, ""),
            ("x", 2_000_000_000, "-- only a comment\n"),
            ("long_name_with_more_than_eight_bytes_and_then_some", 17, "SELECT 1;\nSELECT 2;\n"),
        ] {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            name.to_owned().hash(&mut h);
            version.hash(&mut h);
            sql.to_owned().hash(&mut h);
            assert_eq!(refinery_checksum(name, i64::from(version), sql), h.finish(), "{name}");
        }
        // An int8 version is hashed as 8 bytes.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        "big".hash(&mut h);
        5_000_000_000i64.hash(&mut h);
        "SELECT 1;".hash(&mut h);
        assert_eq!(refinery_checksum("big", 5_000_000_000, "SELECT 1;"), h.finish());
    }

    #[test]
    fn sha_digests_are_spelled_with_their_algorithm() {
        assert_eq!(sha256(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(sha384(b"").starts_with("sha384:38b060a751ac9638"));
        assert_eq!(sha384(b"").len(), 7 + 96);
    }
}
