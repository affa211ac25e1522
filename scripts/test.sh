#!/usr/bin/env bash
# Sets up and runs every test: formatting, clippy, the Rust tests (unit,
# proptest, integration over pcaps/ and ../shared/pcaps when present) and
# the Python output tests (pyarrow, dpkt, jq), the live tests in network
# namespaces (nmap, as root), output failures on a tmpfs, the Debian package
# (built, installed, run as its service user, purged), and the fuzzers
# for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true
PY=$(bash scripts/pyenv.sh)
cargo fmt --all -- --check
# One profile for the build and every test (release optimisation, no LTO):
# the Python tests run the same binary, target/ci/scanwatch.
cargo clippy --profile ci --locked --all-targets -- -D warnings
cargo build --profile ci --locked
cargo test --profile ci --locked
# tests/ includes test_package.py: scripts/package.sh packages this binary
# (target/debian/*.deb), dpkg -i installs it, the installed binary captures
# a scan as the scanwatch user, dpkg --purge removes it.
SCANWATCH="$PWD/target/ci/scanwatch" "$PY" -m pytest -q tests/
# Fuzz each target for a bounded time (FUZZ_SECS, default 60) on stable.
bash scripts/fuzz.sh "${FUZZ_SECS:-60}"
