//! Support for wasmig's end-to-end tests: building the real guest
//! components, packaging them as plugins, loading the fixture databases and
//! taking comparable snapshots of SQLite files.

pub mod support;
