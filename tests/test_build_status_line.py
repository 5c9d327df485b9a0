"""The dataset page's line under a product build's progress bar: how far, how fast and how
long is left, from the product status the JSON API also returns (``done``, ``total``,
``rate``: files per second since the request, the queue's wait included)."""

from __future__ import annotations

import re

import pytest

from lcpanel.views.dataset_page import build_status_line as html_line


def build_status_line(status: dict) -> str:
    """The line as read (its markup left out)."""
    return re.sub(r"<[^>]+>", "", html_line(status))


def running(done, total, rate, status="running"):
    return {"status": status, "done": done, "total": total, "rate": rate, "progress": done / max(total, 1)}


def test_a_long_build_says_its_rate_and_the_time_left():
    line = build_status_line(running(12_345, 100_000, 2_150.4))
    assert "12,345 of 100,000 files" in line
    assert "2,150 files/s" in line
    # (100,000 - 12,345) / 2,150.4 = 40.8 s
    assert "about 41 s left" in line


@pytest.mark.parametrize(("done", "total", "rate", "left"), [
    (10, 100, 1.0, "about 1 min 30 s left"),          # 90 s
    (0, 120, 1.0, "about 2 min left"),                # done 0 but a rate: 120 s
    (100, 15_000, 0.5, "about 8 h 17 min left"),      # 29,800 s = 8 h 16 min 40 s
    (0, 7_200, 2.0, "about 1 h left"),                # 3,600 s
    (99_999, 100_000, 5_000.0, "about 1 s left"),     # 0.0002 s: never "0 s"
])
def test_the_time_left_reads_in_the_largest_units(done, total, rate, left):
    assert left in build_status_line(running(done, total, rate))


def test_a_slow_rate_keeps_its_first_digits():
    assert "0.5 files/s" in build_status_line(running(3, 10, 0.5))
    assert "2.2 files/s" in build_status_line(running(3, 10, 2.16))


def test_before_the_first_file_there_is_no_rate_nor_estimate():
    line = build_status_line(running(0, 300, None, status="queued"))
    assert line.startswith("queued: 0 of 300 files")
    assert "/s" not in line and "left" not in line


def test_the_status_word_is_escaped():
    assert "<b>" not in html_line(running(1, 2, 1.0, status="<b>x</b>"))


def test_a_narrow_screen_wraps_the_line_only_between_its_parts():
    parts = re.findall(r'<span class="lcp-nowrap">([^<]*)</span>', html_line(running(5, 10, 2.0)))
    assert parts == ["running: 5 of 10 files", "2 files/s", "about 3 s left"]
