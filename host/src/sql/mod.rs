//! SQL text: splitting scripts into statements the way SQLite does, what a
//! migration's statements may do, `pack-sql` components (generating them and
//! recognising them again), and importing other tools' migration directories.
//!
//! Nothing here runs SQL; the sandbox does, and uses this folder for the
//! statement policy and to recognise `pack-sql` components.

pub(crate) mod import;
pub(crate) mod json_paths;
mod policy;
pub(crate) mod script;
pub(crate) mod split;

pub use json_paths::MAX_JSON_PATHS;
pub use policy::PRAGMA_ALLOWLIST;
