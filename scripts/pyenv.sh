#!/usr/bin/env bash
# Creates target/pyenv with the Python packages the tests and the report use.
# Prints the path of its python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/pyenv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
# stix2-validator, misp-stix (MISP's STIX 2 import) and yacryptopan (an
# independent Crypto-PAn) check what `scanwatch share` writes (tests/test_share.py).
"$VENV/bin/python" -m pip install -q --disable-pip-version-check pyarrow dpkt pytest polars duckdb matplotlib stix2 stix2-validator misp-stix yacryptopan pyspark jsonschema pandas medallion taxii2-client >&2
echo "$VENV/bin/python"
