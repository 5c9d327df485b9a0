"""Tests for lcpanel.core.catalogs.coords: accepted coordinate forms, rejections, cross-match lists."""

import math

import astropy.units as u
import pytest
from astropy.coordinates import SkyCoord
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lcpanel.core.catalogs.coords import CoordinateError, parse_coordinate_string, parse_crossmatch_list

DEG = (u.deg, u.deg)
HOURS = (u.hourangle, u.deg)

# (typed text, the position part as astropy reads it, astropy units, radius in arcmin)
ACCEPTED = [
    ("290.0 45.0", "290.0 45.0", DEG, None),
    ("290.0, 45.0", "290.0 45.0", DEG, None),
    ("290.0,45.0", "290.0 45.0", DEG, None),
    ("290.0 -45.0 5", "290.0 -45.0", DEG, 5.0),
    ("  0 -90  ", "0 -90", DEG, None),
    ("359.9999999 90", "359.9999999 90", DEG, None),
    ("1.5e2 -1e-3", "150.0 -0.001", DEG, None),
    ("19:20:00 +45:00:00", "19:20:00 +45:00:00", HOURS, None),
    ("19:20:00.5 +45:00:00 30", "19:20:00.5 +45:00:00", HOURS, 30.0),
    ("00:00:00 -89:59:59.9", "00:00:00 -89:59:59.9", HOURS, None),
    ("19 20 00 +45 00 00", "19 20 00 +45 00 00", HOURS, None),
    ("19 20 00 +45 00 00 30", "19 20 00 +45 00 00", HOURS, 30.0),
    ("19 20 00 -00 30 00", "19 20 00 -00 30 00", HOURS, None),
    ("23 59 59.99 -45 12 13.5", "23 59 59.99 -45 12 13.5", HOURS, None),
    ("19h20m00s +45d00m00s", "19h20m00s +45d00m00s", None, None),
    ("19h20m00.25s -5d30m10s 2.5", "19h20m00.25s -5d30m10s", None, 2.5),
]


@pytest.mark.parametrize("text, astropy_text, units, radius", ACCEPTED)
def test_accepted_forms_agree_with_astropy(text, astropy_text, units, radius):
    ra, dec, got_radius = parse_coordinate_string(text)
    expected = SkyCoord(astropy_text, unit=units) if units else SkyCoord(astropy_text)
    assert ra == pytest.approx(expected.ra.deg, abs=1e-9)
    assert dec == pytest.approx(expected.dec.deg, abs=1e-9)
    assert got_radius == radius
    assert all(type(v) is float for v in (ra, dec))


def test_default_radius_is_used_when_none_is_given():
    assert parse_coordinate_string("290 45", default_radius_arcmin=3) == (290.0, 45.0, 3.0)
    assert parse_coordinate_string("290 45 7", default_radius_arcmin=3) == (290.0, 45.0, 7.0)


def test_radius_up_to_the_maximum_is_accepted():
    assert parse_coordinate_string("290 45 60", max_radius_arcmin=60) == (290.0, 45.0, 60.0)


REJECTED = [
    ("", "no coordinates"),
    ("   ,  ", "no coordinates"),
    ("garbage", "found 1 value"),
    ("hello world", "RA 'hello'"),
    ("290.0 abc", "Dec 'abc'"),
    ("360 0", "outside 0 <= RA < 360"),
    ("400.5 10", "outside 0 <= RA < 360"),
    ("-0.5 10", "outside 0 <= RA < 360"),
    ("24:00:00 +10:00:00", "not below 24 hours"),
    ("25 00 00 +10 00 00", "not below 24 hours"),
    ("-01:00:00 +10:00:00", "negative"),
    ("19:60:00 +10:00:00", "60 or more"),
    ("19:20:60 +10:00:00", "60 or more"),
    ("19 20 00 +45 60 00", "60 or more"),
    ("19h20m00s +45d00m60s", "60 or more"),
    ("10 90.0001", "outside -90 <= Dec <= 90"),
    ("10 -91", "outside -90 <= Dec <= 90"),
    ("19:20:00 +90:00:01", "outside -90 <= Dec <= 90"),
    ("nan 10", "not a finite number"),
    ("10 -inf", "not a finite number"),
    ("10 NaN", "not a finite number"),
    ("1e400 10", "too large"),
    ("10 20 nan", "not a finite number"),
    ("10 20 0", "must be positive"),
    ("10 20 -3", "must be positive"),
    ("10 20 five", "radius 'five' is not a number"),
    ("1 2 3 4", "found 4 values"),
    ("19 20 00 +45 00", "found 5 values"),
    ("19 20 00 +45 00 00 30 1", "found 8 values"),
    ("19.5 20 00 +45 00 00", "not a sexagesimal angle"),
    ("19 -20 00 +45 00 00", "not a sexagesimal angle"),
    ("290,5 45,2", "found 4 values"),
    ("1_000 10", "RA '1_000'"),
]


@pytest.mark.parametrize("text, fragment", REJECTED)
def test_rejections_say_what_is_wrong_and_show_an_example(text, fragment):
    with pytest.raises(CoordinateError) as info:
        parse_coordinate_string(text)
    message = str(info.value)
    assert fragment in message
    assert "e.g." in message


def test_radius_above_the_maximum_names_the_maximum():
    with pytest.raises(CoordinateError, match="above the maximum of 30 arcmin"):
        parse_coordinate_string("290 45 31", max_radius_arcmin=30)


def test_too_long_input_is_rejected():
    with pytest.raises(CoordinateError, match="at most 200"):
        parse_coordinate_string("290.0 45.0" + " " * 200)


def test_non_text_is_rejected():
    with pytest.raises(CoordinateError, match="expected text"):
        parse_coordinate_string(None)


def test_coordinate_error_is_a_value_error():
    assert issubclass(CoordinateError, ValueError)


# --------------------------------------------------------------------------
# Cross-match lists

LIST_TEXT = """\
# id ra dec
star1 290.0 45.0
star2, 19:20:00, +45:00:00

star3 19 20 00 -45 30 00
  # indented comment
star4\t19h20m00s\t+45d00m00s
star5 400 10
star6 1
star1 10 10
"""


def test_crossmatch_list_reads_every_form_with_line_numbers():
    entries, errors = parse_crossmatch_list(LIST_TEXT, max_lines=100)
    assert entries == [
        (2, "star1", 290.0, 45.0),
        (3, "star2", 290.0, 45.0),
        (5, "star3", 290.0, -45.5),
        (7, "star4", 290.0, 45.0),
    ]
    assert [(number, text) for number, text, _ in errors] == [
        (8, "star5 400 10"), (9, "star6 1"), (10, "star1 10 10")]
    messages = [message for _, _, message in errors]
    assert "outside 0 <= RA < 360" in messages[0]
    assert "expected an id, RA and Dec, found 2 values" in messages[1]
    assert "duplicate id 'star1'" in messages[2] and "line 2" in messages[2]


def test_crossmatch_list_accepts_crlf_and_bytes():
    text = "a 1 2\r\nb 3 4\r\n"
    expected = [(1, "a", 1.0, 2.0), (2, "b", 3.0, 4.0)]
    assert parse_crossmatch_list(text, 10) == (expected, [])
    assert parse_crossmatch_list(text.encode(), 10) == (expected, [])


def test_crossmatch_list_truncates_long_lines_in_errors():
    line = "x " + "9" * 150
    _, errors = parse_crossmatch_list(line, 10)
    (number, text, _), = errors
    assert number == 1
    assert len(text) <= 80 and text.endswith("…")


def test_crossmatch_list_over_the_limit_names_the_limit():
    text = "# header\n\n" + "".join(f"s{i} 10 {i % 80}\n" for i in range(6))
    assert len(parse_crossmatch_list(text, max_lines=6)[0]) == 6
    with pytest.raises(CoordinateError, match="at most 5"):
        parse_crossmatch_list(text, max_lines=5)


def test_crossmatch_list_counts_bad_lines_towards_the_limit():
    with pytest.raises(CoordinateError, match="at most 1"):
        parse_crossmatch_list("a 1 2\nbad line here and more\n", max_lines=1)


def test_empty_crossmatch_list_has_no_entries():
    assert parse_crossmatch_list("", 10) == ([], [])
    assert parse_crossmatch_list("# only a comment\n\n", 10) == ([], [])


# --------------------------------------------------------------------------
# Properties

COORDINATE_ALPHABET = "0123456789+-.:, hmsd°'\"eE\tnaifNx\n"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=250), st.text(alphabet=COORDINATE_ALPHABET, max_size=40)))
def test_arbitrary_text_gives_a_valid_position_or_a_coordinate_error(text):
    try:
        ra, dec, radius = parse_coordinate_string(text, max_radius_arcmin=600)
    except CoordinateError:
        return
    assert 0.0 <= ra < 360.0
    assert -90.0 <= dec <= 90.0
    assert radius is None or 0.0 < radius <= 600.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=60), st.text(alphabet=COORDINATE_ALPHABET + "abc", max_size=40)),
                max_size=8))
def test_arbitrary_lists_never_drop_a_line(lines):
    text = "\n".join(lines)
    try:
        entries, errors = parse_crossmatch_list(text, max_lines=5)
    except CoordinateError:
        return
    object_lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(entries) + len(errors) == len(object_lines)
    numbers = sorted([e[0] for e in entries] + [e[0] for e in errors])
    assert numbers == sorted(set(numbers))


positions = st.tuples(
    st.floats(min_value=0.0, max_value=359.9999, allow_nan=False),
    st.floats(min_value=-90.0, max_value=90.0, allow_nan=False),
)


def _sexagesimal_fields(value, unit_per_deg):
    """(sign, whole, minutes, seconds) of |value| * unit_per_deg, seconds to 1e-6."""
    micro = round(abs(value) * unit_per_deg * 3600 * 10**6)
    whole, micro = divmod(micro, 3600 * 10**6)
    minutes, micro = divmod(micro, 60 * 10**6)
    seconds, micro = divmod(micro, 10**6)
    return ("-" if value < 0 else "+"), whole, minutes, f"{seconds:02d}.{micro:06d}"


def _formats(ra, dec):
    _, h, hm, hs = _sexagesimal_fields(ra, 1 / 15)
    sign, d, dm, ds = _sexagesimal_fields(dec, 1)
    return [
        f"{ra!r} {dec!r}",
        f"{ra:.10f}, {dec:.10f}",
        f"{h:02d}:{hm:02d}:{hs} {sign}{d:02d}:{dm:02d}:{ds}",
        f"{h:02d} {hm:02d} {hs} {sign}{d:02d} {dm:02d} {ds}",
        f"{h}h{hm}m{hs}s {sign}{d}d{dm}m{ds}s",
    ]


@settings(max_examples=300, deadline=None)
@given(positions)
def test_formatted_positions_round_trip(position):
    ra, dec = position
    assume(round(ra / 15 * 3600 * 10**6) < 24 * 3600 * 10**6)
    for text in _formats(ra, dec):
        got_ra, got_dec, radius = parse_coordinate_string(text)
        assert radius is None
        assert abs(got_ra - ra) <= 1e-6, text
        assert abs(got_dec - dec) <= 1e-6, text


@settings(max_examples=100, deadline=None)
@given(positions, st.floats(min_value=0.001, max_value=600, allow_nan=False))
def test_formatted_positions_with_radius_round_trip(position, radius):
    ra, dec = position
    assume(round(ra / 15 * 3600 * 10**6) < 24 * 3600 * 10**6)
    for text in _formats(ra, dec):
        got_ra, got_dec, got_radius = parse_coordinate_string(f"{text} {radius!r}")
        assert math.isclose(got_radius, radius)
        assert abs(got_ra - ra) <= 1e-6 and abs(got_dec - dec) <= 1e-6


@settings(max_examples=50, deadline=None)
@given(st.lists(positions, min_size=1, max_size=20))
def test_crossmatch_lists_round_trip(position_list):
    lines = []
    for i, (ra, dec) in enumerate(position_list):
        assume(round(ra / 15 * 3600 * 10**6) < 24 * 3600 * 10**6)
        lines.append(f"obj{i} {_formats(ra, dec)[i % 5]}")
    entries, errors = parse_crossmatch_list("\n".join(lines), max_lines=20)
    assert errors == []
    for (number, object_id, ra, dec), (ra0, dec0) in zip(entries, position_list, strict=True):
        assert object_id == f"obj{number - 1}"
        assert abs(ra - ra0) <= 1e-6 and abs(dec - dec0) <= 1e-6
