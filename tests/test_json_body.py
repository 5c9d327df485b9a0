"""The JSON API's body check (``JSONHandler.json_body``): a body nested deeper than
``MAX_JSON_DEPTH`` is refused before it is parsed, whichever path decides it (a body with
few brackets skips the depth count), and brackets inside strings do not count."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest

from lcpanel.errors import UserError
from lcpanel.jsonapi import MAX_JSON_DEPTH, JSONHandler, json_depth


def body_check(raw: bytes):
    return JSONHandler.json_body(SimpleNamespace(request=SimpleNamespace(body=raw)), max_bytes=10**7)


def nested(depth: int, siblings: int = 0) -> bytes:
    """An object ``depth`` deep, with ``siblings`` empty arrays beside its innermost value."""
    inner = "[" + ",".join(["[]"] * siblings) + "]" if depth > 1 else "1"
    return ('{"a":' * (depth - 1) + (inner if depth > 1 else '{"b":1}') + "}" * (depth - 1)).encode()


@pytest.mark.parametrize("depth", [1, 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH])
def test_bodies_up_to_the_limit_are_read(depth):
    raw = nested(depth)
    assert json_depth(raw) == depth
    assert body_check(raw) == json.loads(raw)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, MAX_JSON_DEPTH + 2, 5000])
def test_bodies_past_the_limit_are_refused(depth):
    with pytest.raises(UserError, match="nests"):
        body_check(nested(depth))


def test_many_brackets_but_shallow_or_inside_strings_are_read():
    wide = nested(3, siblings=3 * MAX_JSON_DEPTH)  # many brackets, depth 4
    assert json_depth(wide) == 4 and body_check(wide) == json.loads(wide)
    quoted = json.dumps({"query": "[" * 500 + "{" * 500}).encode()
    assert body_check(quoted) == json.loads(quoted)


def test_the_decision_is_the_depth_count_s_for_random_bodies():
    rng = random.Random(3)
    for _ in range(400):
        depth = rng.randint(1, 2 * MAX_JSON_DEPTH)
        raw = nested(depth, siblings=rng.choice([0, 1, 5, 40]))
        refused = False
        try:
            body_check(raw)
        except UserError:
            refused = True
        assert refused == (json_depth(raw) > MAX_JSON_DEPTH), (depth, raw[:80])
