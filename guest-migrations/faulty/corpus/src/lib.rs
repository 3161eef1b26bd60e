//! The faulty-migration corpus: each example in `examples/` builds to its
//! own component that breaks one sandbox limit or one SQL-gate rule. The
//! host's end-to-end tests run every one and check that the host survives,
//! the error names the cause, and the database is unchanged.
