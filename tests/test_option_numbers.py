"""Numbers in the options of the object workbench's writes (a period search's options, a
saved period and epoch): whatever JSON holds, the answer is the value or a UserError (a
400) naming the field, never another exception (a 500).

JSON numbers have no size limit and Python reads an integer exactly: ``1e400`` is
infinity, but ``1`` followed by 400 zeros is an int no float can hold (``float()`` and
``math.isfinite`` raise OverflowError)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lcpanel.core.objects import periodsearch as ps
from lcpanel.core.objects.savedperiods import check_epoch, check_period_value
from lcpanel.errors import UserError

HUGE = [10**400, -(10**400), 10**309, 2**1024, -(2**1024), int("9" * 4000)]
NUMERIC = sorted({k for m in ps.METHODS.values() for k, spec in {**ps.COMMON, **m.extra}.items()
                  if spec[0] in ("int", "float", "sigclip")})


def _method_with(option: str) -> str:
    return next(code for code, m in ps.METHODS.items() if option in {**ps.COMMON, **m.extra})


@pytest.mark.parametrize("option", NUMERIC)
@pytest.mark.parametrize("value", HUGE, ids=lambda v: f"{'-' if v < 0 else ''}{len(str(abs(v)))}digits")
def test_a_huge_integer_in_a_period_search_option_is_a_400_naming_it(option, value):
    with pytest.raises(UserError) as err:
        ps.validate_options({"method": _method_with(option), option: value})
    assert err.value.field == option
    assert len(str(err.value)) < 300  # the number is not echoed digit by digit


@pytest.mark.parametrize("value", HUGE, ids=lambda v: f"{'-' if v < 0 else ''}{len(str(abs(v)))}digits")
def test_a_huge_integer_in_sigclip_pair_is_a_400(value):
    with pytest.raises(UserError) as err:
        ps.validate_options({"method": "gls", "sigclip": [3, value]})
    assert err.value.field == "sigclip"


def test_integers_within_bounds_are_still_taken():
    opts = ps.validate_options({"method": "bls", "startp": 1, "endp": 10**5, "nphasebins": 2000, "nbestpeaks": 20})
    assert (opts["startp"], opts["endp"], opts["nphasebins"], opts["nbestpeaks"]) == (1.0, 1e5, 2000, 20)
    assert ps.validate_options({"method": "gls", "tmin": -10**12, "tmax": 10**12})["tmax"] == 1e12


@pytest.mark.parametrize("check", [check_period_value, check_epoch])
@pytest.mark.parametrize("value", HUGE, ids=lambda v: f"{'-' if v < 0 else ''}{len(str(abs(v)))}digits")
def test_a_huge_integer_period_or_epoch_is_a_400(check, value):
    with pytest.raises(UserError) as err:
        check(value)
    assert err.value.field in ("period", "epoch")
    assert len(str(err.value)) < 300


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(HUGE + [0, -0.0, 1e-320]),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20)),
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=5), kids, max_size=3)),
    max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(st.sampled_from(["method"] + NUMERIC + ["magcol", "autofreq", "x"]), JSON, max_size=5),
       method=st.sampled_from(sorted(ps.METHODS)))
def test_any_json_options_give_options_or_a_user_error(body, method):
    body = {"method": method, **{k: v for k, v in body.items() if k != "method"}}
    try:
        opts = ps.validate_options(body)
    except UserError as exc:
        assert exc.field and len(str(exc)) < 400
        return
    json.dumps(opts, allow_nan=False)  # what was taken are plain finite numbers
    assert all(not isinstance(v, float) or math.isfinite(v) for v in opts.values())


@settings(max_examples=300, deadline=None)
@given(value=JSON)
def test_any_json_period_or_epoch_gives_a_number_or_a_user_error(value):
    for check in (check_period_value, check_epoch):
        try:
            out = check(value)
        except UserError:
            continue
        assert isinstance(out, float) and math.isfinite(out)


@pytest.mark.parametrize("field", ["varperiod", "varepoch", "objectisvar"])
@pytest.mark.parametrize("value", HUGE, ids=lambda v: f"{'-' if v < 0 else ''}{len(str(abs(v)))}digits")
def test_a_huge_integer_in_a_reviewer_s_variability_info_is_a_400(field, value):
    """A staff reviewer's varperiod, varepoch or objectisvar: float() overflowed (a 500)."""
    from lcpanel.core.objects.annotations import validate_changes

    with pytest.raises(UserError) as err:
        validate_changes({field: value})
    assert err.value.field == field
    assert len(str(err.value)) < 300


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(["varperiod", "varepoch", "objectisvar"]), JSON, max_size=3))
def test_any_json_variability_info_gives_values_or_a_user_error(changes):
    from lcpanel.core.objects.annotations import validate_changes

    try:
        out = validate_changes(changes)
    except UserError as exc:
        assert exc.field and len(str(exc)) < 400
        return
    json.dumps(out, allow_nan=False)
