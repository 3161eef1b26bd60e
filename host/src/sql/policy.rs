//! What a migration's statements may do, as far as text can tell: the
//! PRAGMAs a guest may read. The splitter refuses other statements at pack
//! time ([`check_allowed`](super::split::check_allowed)); the SQL gate in the
//! sandbox enforces the same list while a guest runs, whatever it sends.

/// PRAGMAs a guest may read (never assign): schema introspection and checks.
pub const PRAGMA_ALLOWLIST: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
    "collation_list",
    "function_list",
    "user_version",
    "schema_version",
    "foreign_keys",
    "encoding",
    "page_count",
    "page_size",
    "freelist_count",
];
