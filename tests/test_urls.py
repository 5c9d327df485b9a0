"""Object ids in API paths: quoted whole, so that every id comes back as it was."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest

from lcpanel.core.urls import object_path, segment

IDS = ["HAT-123-0000001", "LCP-000001", "TIC 25155310", "V* RR Lyr", "a+b", "50%", "x?y#z", "a/b", "ü-ß",
       "2MASS J14374811-5648595", "", "~x_y.z"]


@pytest.mark.parametrize("value", IDS)
def test_a_segment_is_the_standard_quoting_and_decodes_back(value):
    assert segment(value) == quote(value, safe="")
    assert unquote(segment(value)) == value
    assert "/" not in segment(value) and "+" not in segment(value).replace("%2B", "")


@pytest.mark.parametrize("value", [".", ".."])
def test_dot_segments_are_not_left_for_clients_to_resolve(value):
    assert segment(value) not in (".", "..")
    assert unquote(segment(value)) == value


def test_an_object_path_has_both_ids_as_single_segments():
    assert object_path("my coll", "TIC 1/2") == "/api/collections/my%20coll/objects/TIC%201%2F2"
