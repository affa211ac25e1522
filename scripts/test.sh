#!/usr/bin/env bash
# Sets up and runs every test: formatting, clippy, the Rust tests (unit,
# proptest, integration over pcaps/ and ../shared/pcaps when present) and
# the Python output tests (pyarrow, dpkt, jq).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true
PY=$(bash scripts/pyenv.sh)
cargo fmt --all -- --check
cargo clippy --release --locked --all-targets -- -D warnings
cargo build --release --locked
cargo test --release --locked
"$PY" -m pytest -q tests/
