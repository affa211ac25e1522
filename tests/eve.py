"""The check every alert line written by a test goes through: one line per
event, at most 8 KiB with its newline, JSON, an EVE `alert` event, and valid
against Suricata's own EVE JSON schema (Suricata 8, `etc/schema.json`),
which sits beside the checkout at `../shared/schemas/suricata-eve.schema.json`
(or the file named by `SCANWATCH_EVE_SCHEMA`). A missing schema skips the
test that needed it, saying so, or fails it under CI=true, as the shared
corpus does (conftest.py).
"""

import functools
import json
import os

import pytest

from conftest import ROOT

SCHEMA = os.environ.get(
    "SCANWATCH_EVE_SCHEMA",
    os.path.join(ROOT, "..", "shared", "schemas", "suricata-eve.schema.json"))
MAX_LINE = 8192


@functools.lru_cache(maxsize=1)
def validator():
    import jsonschema
    with open(SCHEMA) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def require_schema():
    if os.path.isfile(SCHEMA):
        return
    msg = f"EVE schema {SCHEMA} missing: alert lines not validated"
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " (CI=true: the schema is required)")
    pytest.skip(msg)


def check_lines(text, where=""):
    """Checks every line of `text` (an alerts stream); returns the events."""
    require_schema()
    v = validator()
    events = []
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        size = len(line.encode())
        assert size <= MAX_LINE, f"{where}:{n}: {size} bytes"
        assert line.endswith("\n"), f"{where}:{n}: no newline"
        ev = json.loads(line)
        errors = sorted(v.iter_errors(ev), key=lambda e: list(e.path))
        assert not errors, f"{where}:{n}: {errors[0].message} at {list(errors[0].path)}"
        assert ev["event_type"] == "alert", f"{where}:{n}"
        events.append(ev)
    return events


def check_file(path):
    """Checks an alerts.jsonl file; returns its events."""
    with open(path) as f:
        return check_lines(f.read(), str(path))


def scan(ev):
    """The scan's facts of an alert event."""
    return ev["alert"]["context"]["scan"]
