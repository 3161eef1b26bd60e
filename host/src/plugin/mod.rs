//! The migration plugin file: its sections, manifest, signatures, trust
//! policy, packing and loading (the format is described in `file`).
//!
//! Inside this folder the dependencies point one way: `sections` (the byte
//! walk) is used by everything; `signing` reads and writes the signature
//! section; `trust` verifies it against the policy; `manifest` is the
//! manifest type; `file` packs and loads whole files using all of them;
//! `release` is the signed index of a whole set of files.

mod embedded;
mod file;
mod manifest;
mod release;
mod sections;
mod signing;
mod trust;

pub(crate) use crate::worlds::sql_import_of;
pub use embedded::*;
pub use file::*;
pub use manifest::*;
pub use release::*;
pub use sections::*;
pub use signing::{
    SignatureInfo, key_id, keygen, pub_path, public_of, read_secret_key, sign, signature_info,
};
pub use trust::*;
