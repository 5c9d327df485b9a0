"""Rows of period chips on the object page (:mod:`lcpanel.views.object.chips`): a click
runs the action of a chip shown, and nothing else a browser may send does anything."""

from __future__ import annotations

import json

from bokeh.document import Document

from lcpanel.views.object.chips import Chip, ChipRow


def _row(n: int):
    pressed = []
    row = ChipRow(lead=["pick"])
    row.show([Chip(f"{i + 0.5:.6g} d", "lcp-pick", f"fold at {i + 0.5} d", lambda i=i: pressed.append(i))
              for i in range(n)], empty="none yet")
    return row, pressed


def test_a_click_runs_the_action_of_the_chip_shown():
    row, pressed = _row(3)
    assert row.labels == ["0.5 d", "1.5 d", "2.5 d"]
    assert row.chips[1] == ["1.5 d", "lcp-pick", "fold at 1.5 d"] and row.empty == ["none yet"]
    row.clicked = json.dumps({"i": 2, "v": row.version, "n": 1})
    row.clicked = json.dumps({"i": 2, "v": row.version, "n": 2})  # the same chip again: a new message
    row.press(0)
    assert pressed == [2, 2, 0]


def test_nothing_else_a_browser_sends_does_anything():
    row, pressed = _row(3)
    v = row.version
    for n, bad in enumerate(({"i": 3}, {"i": -1}, {"i": True}, {"i": "1"}, {"i": 1.0}, {"x": 1},
                             {"i": 1, "v": None}, {"i": 1, "v": v + 1}, {"i": 1, "v": v - 1})):
        row.clicked = json.dumps({"v": v, **bad, "n": n})
    for raw in ("{not json", "", json.dumps([1]), json.dumps({"i": 1, "v": v, "pad": "x" * 300})):
        row.take_click(raw)
    assert pressed == []
    # redrawn since the browser drew its row (the chips may have moved): its click does nothing
    row.show([Chip("9 d", "lcp-pick", "", lambda: pressed.append("new"))])
    row.take_click(json.dumps({"i": 0, "v": v, "n": 99}))
    assert pressed == []
    row.press(0)
    assert pressed == ["new"]
    row.show([], empty="none yet")  # fewer chips: an index of the old ones is no chip now
    row.press(1)
    assert pressed == ["new"] and row.chips == []


def test_a_row_is_one_bokeh_model_whatever_its_chips():
    counts = []
    for n in (1, 12):
        row, _ = _row(n)
        counts.append(len(list(row.get_root(Document()).references())))
    assert counts[0] == counts[1]
