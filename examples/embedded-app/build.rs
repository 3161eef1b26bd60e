//! Compiles `migrations/` (signed plugins and their release index) into the
//! binary, with digests computed now; see `wasmig_embed`.

fn main() {
    wasmig_embed::embed_dir("migrations");
}
