"""Small things the pages show: readable names of datasets made from id lists, the
variability flag in words, and search-form examples and the default cone taken from
the collections actually served."""

from __future__ import annotations


def test_dataset_from_an_id_list_has_a_readable_name():
    from lcpanel.core.datasets import default_name

    ids = [f"HAT-772-{i:07d}" for i in range(10)]
    assert default_name({"type": "objectid", "params": {"ids": ids}}) == \
        "objectid: HAT-772-0000000, HAT-772-0000001, HAT-772-0000002 and 7 more"
    assert default_name({"type": "objectid", "params": {"ids": ["A", " B "]}}) == "objectid: A, B"
    assert default_name({"type": "cone", "params": {"coords": "290 45 5"}}) == "cone: 290 45 5"
    assert default_name({"type": "fts", "params": {"query": "RR Lyrae\nsecond line"}}) == "fts: RR Lyrae"
    assert default_name({"type": "filter", "params": {}}) == "filter"


def test_objectisvar_in_words_on_the_dataset_page():
    from lcpanel.views.dataset_page import variability_words

    assert variability_words([0, 1, 2, 3, None, float("nan"), 1.0]) == \
        ["unreviewed", "variable", "not variable", "can't tell", "", "", "variable"]
