"""What every Python test shares: where the shared capture corpus is, and
the one rule for when it is missing.

The corpus is `../shared/pcaps` beside the checkout (or the folder named by
`SCANWATCH_SHARED_PCAPS`); it is there when it holds its `truth.csv`. When it
is missing, a test over it is skipped with the reason printed, except under
`CI=true`, where it fails: CI must never pass by checking nothing.
(`crates/cli/tests/cli.rs` `shared()` holds the same rule for Rust.)
"""

import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SCANWATCH_SHARED_PCAPS", os.path.join(ROOT, "..", "shared", "pcaps"))


def shared_present():
    return os.path.isfile(os.path.join(SHARED, "truth.csv"))


def require_shared(what):
    """The shared corpus folder; when it is missing, fails the test under
    CI=true, and otherwise skips it, saying what was not checked."""
    if shared_present():
        return SHARED
    msg = f"shared corpus {SHARED} missing (no truth.csv): {what} not checked"
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " (CI=true: the corpus is required)")
    pytest.skip(msg)


def shared_params(pattern):
    """Parameters for a test over the shared corpus's files matching
    `pattern`: one per file, or a single `shared-corpus-missing` case (None)
    whose test calls `require_shared` and so is skipped or fails, never
    silently absent."""
    files = sorted(glob.glob(os.path.join(SHARED, pattern))) if shared_present() else []
    if not files:
        return [pytest.param(None, id="shared-corpus-missing")]
    return [pytest.param(f, id=os.path.basename(f)) for f in files]
