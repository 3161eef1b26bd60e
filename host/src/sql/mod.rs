//! SQL text: splitting scripts into statements, what a migration's
//! statements may do, `pack-sql` components and importing other tools'
//! migration directories.

pub mod import;
pub mod script;
pub mod split;
