"""Parse sky positions typed or uploaded by users into decimal degrees.

Two entry points:

- :func:`parse_coordinate_string` reads one position with an optional radius,
  as typed into a cone-search box.
- :func:`parse_crossmatch_list` reads an uploaded ``id ra dec`` list, one object
  per line, and reports every line it cannot use instead of dropping it.

A position is RA then Dec, separated by whitespace or a comma, written as

- decimal degrees: ``290.0 45.0``, ``290.0, -45.0``
- sexagesimal with colons: ``19:20:00.5 +45:00:00`` (RA in hours)
- sexagesimal with letters: ``19h20m00s +45d00m00s``
- sexagesimal with spaces: ``19 20 00 +45 00 00``

Decimal RA is in degrees, sexagesimal RA in hours; Dec is always in degrees.
A cone-search string may end with a radius in decimal arcminutes.  Every
problem raises :class:`CoordinateError`, whose message says what was wrong and
shows an accepted example.
"""

from __future__ import annotations

import math
import re

MAX_INPUT_CHARS = 200
MAX_ID_CHARS = 100
ERROR_LINE_CHARS = 80

POSITION_EXAMPLES = "'290.0 45.0', '19:20:00 +45:00:00' or '19h20m00s +45d00m00s'"
CONE_EXAMPLES = "'290.0 45.0', '290.0 -45.0 5' (radius 5 arcmin) or '19:20:00 +45:00:00 5'"
LINE_EXAMPLES = "'star1 290.0 45.0' or 'star1 19:20:00 +45:00:00'"

_SEPARATORS = re.compile(r"[\s,]+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_SECONDS = r"\d+(?:\.\d*)?|\.\d+"
_COLON_FORM = re.compile(rf"([+-]?)(\d+):(\d+)(?::({_SECONDS}))?", re.ASCII)
_HMS_FORM = re.compile(rf"([+-]?)(\d+)h(\d+)m(?:({_SECONDS})s?)?", re.ASCII | re.IGNORECASE)
_DMS_FORM = re.compile(rf"([+-]?)(\d+)[d°](\d+)['m′](?:({_SECONDS})[\"s″]?)?", re.ASCII | re.IGNORECASE)
_INTEGER_FIELD = re.compile(r"[+-]?\d+", re.ASCII)
_SECONDS_FIELD = re.compile(_SECONDS, re.ASCII)


class CoordinateError(ValueError):
    """A position or radius a user gave cannot be used; the message says why."""


# --------------------------------------------------------------------------
# Public entry points


def parse_coordinate_string(text, default_radius_arcmin=None, max_radius_arcmin=None):
    """Read ``'RA Dec [radius]'`` into ``(ra_deg, dec_deg, radius_arcmin)``.

    The radius is in arcminutes; without one, ``default_radius_arcmin`` is
    returned (which may be None).  Raises :class:`CoordinateError`.
    """
    tokens = _tokens(text, CONE_EXAMPLES)
    position_tokens, radius_token = _split_radius(tokens)
    ra, dec = _position(position_tokens, CONE_EXAMPLES)
    if radius_token is None:
        return ra, dec, None if default_radius_arcmin is None else float(default_radius_arcmin)
    return ra, dec, _radius_arcmin(radius_token, max_radius_arcmin)


def parse_crossmatch_list(text, max_lines):
    """Read one ``id ra dec`` object per line into ``(entries, errors)``.

    ``entries`` holds ``(line_number, id, ra_deg, dec_deg)`` and ``errors``
    holds ``(line_number, line_text, message)`` for every object line that
    cannot be used, duplicate ids included; line numbers start at 1 and
    ``line_text`` is cut to a readable length.  Blank lines and lines starting
    with ``#`` are skipped.  More than ``max_lines`` object lines raises
    :class:`CoordinateError`.
    """
    object_lines = [(number, line) for number, line in enumerate(_lines(text), start=1)
                    if line.strip() and not line.lstrip().startswith("#")]
    if len(object_lines) > max_lines:
        raise CoordinateError(
            f"the list has {len(object_lines)} objects but at most {max_lines} are allowed; "
            "split it into smaller lists"
        )
    entries, errors = [], []
    first_seen = {}
    for number, line in object_lines:
        try:
            object_id, ra, dec = _crossmatch_line(line)
        except CoordinateError as exc:
            errors.append((number, _truncated(line), str(exc)))
            continue
        if object_id in first_seen:
            errors.append((number, _truncated(line),
                           f"duplicate id {object_id!r}, first used on line {first_seen[object_id]}"))
            continue
        first_seen[object_id] = number
        entries.append((number, object_id, ra, dec))
    return entries, errors


# --------------------------------------------------------------------------
# Tokens and positions


def _tokens(text, examples):
    if not isinstance(text, str):
        raise CoordinateError(f"expected text, got {type(text).__name__}; write e.g. {examples}")
    if len(text) > MAX_INPUT_CHARS:
        raise CoordinateError(
            f"the input is {len(text)} characters long; at most {MAX_INPUT_CHARS} are allowed. "
            f"Write e.g. {examples}"
        )
    tokens = [token for token in _SEPARATORS.split(text.strip()) if token]
    if not tokens:
        raise CoordinateError(f"no coordinates given; write e.g. {examples}")
    return tokens


def _split_radius(tokens):
    """Separate a trailing radius from the position tokens, judging by the token count."""
    spaced_sexagesimal = len(tokens) >= 6 and all(_DECIMAL.fullmatch(t) for t in tokens[:6])
    position_count = 6 if spaced_sexagesimal else 2
    if len(tokens) == position_count + 1:
        return tokens[:position_count], tokens[position_count]
    return tokens, None


def _position(tokens, examples):
    """RA and Dec in degrees from 2 tokens, or 6 space-separated sexagesimal fields."""
    if len(tokens) == 2:
        return _ra_deg(tokens[0]), _dec_deg(tokens[1])
    if len(tokens) == 6 and all(_DECIMAL.fullmatch(t) for t in tokens):
        return _spaced_ra_deg(tokens[:3]), _spaced_dec_deg(tokens[3:])
    raise CoordinateError(
        f"expected RA and Dec, found {_count(len(tokens), 'value')} ({' '.join(tokens)[:60]!r}); "
        f"write e.g. {examples}"
    )


def _ra_deg(token):
    """RA from one token: decimal degrees or sexagesimal hours."""
    _reject_non_finite(token, "RA")
    if _DECIMAL.fullmatch(token):
        ra = float(token)
        _check_finite(ra, token, "RA")
        if not 0.0 <= ra < 360.0:
            raise CoordinateError(
                f"RA {token} is outside 0 <= RA < 360 degrees; write e.g. {POSITION_EXAMPLES}"
            )
        return ra + 0.0  # no -0.0
    match = _COLON_FORM.fullmatch(token) or _HMS_FORM.fullmatch(token)
    if match is None:
        raise CoordinateError(f"RA {token!r} is not a number or a sexagesimal angle; "
                              f"write e.g. {POSITION_EXAMPLES}")
    return _sexagesimal_ra_deg(token, *match.groups())


def _dec_deg(token):
    """Dec from one token: decimal or sexagesimal degrees."""
    _reject_non_finite(token, "Dec")
    if _DECIMAL.fullmatch(token):
        dec = float(token)
        _check_finite(dec, token, "Dec")
        _check_dec_range(dec, token)
        return dec
    match = _COLON_FORM.fullmatch(token) or _DMS_FORM.fullmatch(token)
    if match is None:
        raise CoordinateError(f"Dec {token!r} is not a number or a sexagesimal angle; "
                              f"write e.g. {POSITION_EXAMPLES}")
    return _sexagesimal_dec_deg(token, *match.groups())


def _spaced_ra_deg(fields):
    sign, hours, minutes, seconds = _spaced_fields(fields, "RA")
    return _sexagesimal_ra_deg(" ".join(fields), sign, hours, minutes, seconds)


def _spaced_dec_deg(fields):
    sign, degrees, minutes, seconds = _spaced_fields(fields, "Dec")
    return _sexagesimal_dec_deg(" ".join(fields), sign, degrees, minutes, seconds)


def _spaced_fields(fields, name):
    """Split '19', '20', '00.5' into sign and fields; only seconds may have a fraction."""
    first, minutes, seconds = fields
    if not (_INTEGER_FIELD.fullmatch(first) and _INTEGER_FIELD.fullmatch(minutes)
            and minutes[0] not in "+-" and _SECONDS_FIELD.fullmatch(seconds)):
        raise CoordinateError(
            f"{name} '{' '.join(fields)}' is not a sexagesimal angle: whole "
            f"{'hours' if name == 'RA' else 'degrees'} and minutes, then seconds; "
            f"write e.g. '19 20 00.5 +45 00 00'"
        )
    sign = first[0] if first[0] in "+-" else ""
    return sign, first.lstrip("+-"), minutes, seconds


def _sexagesimal_ra_deg(token, sign, hours, minutes, seconds):
    if sign == "-":
        raise CoordinateError(f"RA {token} is negative; RA runs from 0h to 24h, e.g. '19:20:00'")
    value = _sexagesimal_value(token, "RA", hours, minutes, seconds)
    if value >= 24.0:
        raise CoordinateError(f"RA {token} is not below 24 hours; write e.g. '19:20:00'")
    ra = value * 15.0
    return ra if ra < 360.0 else 0.0  # 23:59:59.99999... can round up to 360


def _sexagesimal_dec_deg(token, sign, degrees, minutes, seconds):
    value = _sexagesimal_value(token, "Dec", degrees, minutes, seconds)
    dec = -value if sign == "-" else value
    _check_dec_range(dec, token)
    return dec


def _sexagesimal_value(token, name, whole, minutes, seconds):
    """whole + minutes/60 + seconds/3600, with minutes and seconds below 60."""
    if len(whole) > 3:
        raise CoordinateError(f"{name} {token} is out of range; write e.g. {POSITION_EXAMPLES}")
    seconds = seconds or "0"
    if int(minutes) >= 60 or float(seconds) >= 60.0:
        raise CoordinateError(
            f"{name} {token} has minutes or seconds of 60 or more; write e.g. '19:20:00 +45:59:59.9'"
        )
    return int(whole) + int(minutes) / 60.0 + float(seconds) / 3600.0


def _radius_arcmin(token, max_radius_arcmin):
    _reject_non_finite(token, "the radius", CONE_EXAMPLES)
    if not _DECIMAL.fullmatch(token):
        raise CoordinateError(
            f"the radius {token!r} is not a number; give it in decimal arcminutes, e.g. {CONE_EXAMPLES}"
        )
    radius = float(token)
    _check_finite(radius, token, "the radius", CONE_EXAMPLES)
    if radius <= 0:
        raise CoordinateError(f"the radius must be positive, got {token}; e.g. '290.0 45.0 5' for 5 arcmin")
    if max_radius_arcmin is not None and radius > max_radius_arcmin:
        raise CoordinateError(
            f"the radius {token} arcmin is above the maximum of {max_radius_arcmin:g} arcmin; "
            f"e.g. '290.0 45.0 {max_radius_arcmin:g}'"
        )
    return radius


def _reject_non_finite(token, name, examples=POSITION_EXAMPLES):
    if _NOT_FINITE.fullmatch(token):
        raise CoordinateError(f"{name} {token!r} is not a finite number; write e.g. {examples}")


def _check_finite(value, token, name, examples=POSITION_EXAMPLES):
    if not math.isfinite(value):
        raise CoordinateError(f"{name} {token} is too large a number; write e.g. {examples}")


def _check_dec_range(dec, token):
    if not -90.0 <= dec <= 90.0:
        raise CoordinateError(
            f"Dec {token} is outside -90 <= Dec <= 90 degrees; write e.g. {POSITION_EXAMPLES}"
        )


# --------------------------------------------------------------------------
# Cross-match lists


def _lines(text):
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CoordinateError("the list is not UTF-8 text; save it as plain text and upload again") from None
    if not isinstance(text, str):
        raise CoordinateError(f"expected text, got {type(text).__name__}")
    return text.splitlines()


def _crossmatch_line(line):
    """(id, ra_deg, dec_deg) from one 'id ra dec' line."""
    if len(line) > MAX_INPUT_CHARS:
        raise CoordinateError(f"the line is longer than {MAX_INPUT_CHARS} characters; write e.g. {LINE_EXAMPLES}")
    tokens = [token for token in _SEPARATORS.split(line.strip()) if token]
    if len(tokens) not in (3, 7):
        raise CoordinateError(
            f"expected an id, RA and Dec, found {_count(len(tokens), 'value')}; "
            f"write e.g. {LINE_EXAMPLES}"
        )
    object_id = tokens[0]
    if len(object_id) > MAX_ID_CHARS:
        raise CoordinateError(f"the id is longer than {MAX_ID_CHARS} characters")
    ra, dec = _position(tokens[1:], LINE_EXAMPLES)
    return object_id, ra, dec


def _count(n, noun):
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _truncated(line):
    line = line.strip()
    return line if len(line) <= ERROR_LINE_CHARS else line[: ERROR_LINE_CHARS - 1] + "…"
