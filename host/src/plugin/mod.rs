//! The migration plugin file: sections, manifest, digest, signatures and
//! the trust policy, packing and loading.

mod file;
pub mod signing;

pub use file::*;
