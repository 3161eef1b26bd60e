# wasmig tasks. `just` alone lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

guest_out := "guest-migrations/target/wasm32-unknown-unknown/release"
wasmig := "target/debug/wasmig"

default:
    @just --list

# Make sure the wasm target is present (rust-toolchain.toml names it too).
setup:
    rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target list --installed | grep -qx wasm32-unknown-unknown

# Build every guest component (examples, faulty and test guests).
guests: setup
    cd guest-migrations && cargo build --release --target wasm32-unknown-unknown --workspace --lib --examples

# Build the host library and the wasmig binary.
build:
    cargo build -p wasmig

# Main job: build the examples, sign them with a dev key, apply them to demo/app.db, show status.
demo: guests build
    mkdir -p demo/migrations
    test -f demo/dev.key || {{wasmig}} keygen --out demo/dev.key
    {{wasmig}} pack {{guest_out}}/example_baseline.wasm --id 1 --name baseline --key demo/dev.key --out demo/migrations
    {{wasmig}} pack {{guest_out}}/example_add_index.wasm --id 2 --name add_index --key demo/dev.key --out demo/migrations
    {{wasmig}} pack {{guest_out}}/example_backfill.wasm --id 3 --name backfill --key demo/dev.key --out demo/migrations
    {{wasmig}} pack {{guest_out}}/example_rebuild.wasm --id 4 --name rebuild --key demo/dev.key --out demo/migrations
    {{wasmig}} verify --trust demo/dev.key.pub demo/migrations
    {{wasmig}} apply --db demo/app.db --trust demo/dev.key.pub demo/migrations
    {{wasmig}} status --db demo/app.db --trust demo/dev.key.pub demo/migrations

# Every test: unit, end-to-end (real components, real files) and CLI.
test: guests
    cargo test --workspace

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all --check
    cd guest-migrations && cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd guest-migrations && cargo clippy --release --target wasm32-unknown-unknown --workspace --lib --examples -- -D warnings
