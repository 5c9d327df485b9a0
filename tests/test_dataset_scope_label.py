"""The dataset page's choice of a product of every object reads as English for any count
(it read "All 1 objects" for a one-object dataset), and never ends like the selection's
choice ("N selected"), which is how the page tells the two apart."""

from __future__ import annotations

import pytest

from lcpanel.views.dataset_page import every_object_label


@pytest.mark.parametrize("n,label", [(0, "No objects"), (1, "The 1 object"), (2, "All 2 objects"),
                                     (1000, "All 1,000 objects"), (123456, "All 123,456 objects")])
def test_the_every_object_choice_reads_right(n, label):
    assert every_object_label(n) == label
    assert not every_object_label(n).endswith("selected")
