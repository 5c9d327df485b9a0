"""Tests for lcpanel.core.catalogs.skyindex against brute-force numpy on random catalogues."""

import os

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Latitude, Longitude, SkyCoord
from cdshealpix import nested
from hypothesis import given, settings
from hypothesis import strategies as st
from support.procstatus import rss_kib

from lcpanel.core.catalogs import skyindex
from lcpanel.core.catalogs.skyindex import (
    NPIX29,
    SkyIndex,
    angular_separation_deg,
    cone_hpx29_ranges,
    radec_to_hpx29,
    radec_to_xyz,
)

# Pairs closer than this to the radius may legitimately fall either side of it
# in two different (correct) float computations.
BOUNDARY_TOLERANCE_DEG = 1e-9


# --------------------------------------------------------------------------
# Catalogues and the brute-force reference


def uniform_sky(rng, n):
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def around(rng, ra0, dec0, n, max_deg):
    """Points uniform in a cap of ``max_deg`` around (ra0, dec0)."""
    pa = rng.uniform(0, 2 * np.pi, n)
    dist = np.radians(max_deg) * np.sqrt(rng.uniform(0, 1, n))
    return offset(ra0, dec0, pa, dist)


def offset(ra0, dec0, pa, dist_rad):
    """Destination of great-circle steps of ``dist_rad`` at bearing ``pa`` from (ra0, dec0)."""
    ra0, dec0 = np.radians(ra0), np.radians(dec0)
    dec = np.arcsin(np.sin(dec0) * np.cos(dist_rad) + np.cos(dec0) * np.sin(dist_rad) * np.cos(pa))
    ra = ra0 + np.arctan2(np.sin(pa) * np.sin(dist_rad) * np.cos(dec0),
                          np.cos(dist_rad) - np.sin(dec0) * np.sin(dec))
    return np.mod(np.degrees(ra), 360.0), np.clip(np.degrees(dec), -90, 90)


def haversine_deg(ra1, dec1, ra2, dec2):
    """Reference separation, deliberately a different formula from the module's."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


CATALOGUES = {
    "uniform": lambda rng: uniform_sky(rng, 20_000),
    "north_pole": lambda rng: around(rng, 0.0, 89.9, 4_000, 0.5),
    "south_pole": lambda rng: around(rng, 123.0, -89.9, 4_000, 0.5),
    "ra_wrap": lambda rng: around(rng, 0.0, 10.0, 4_000, 0.5),
    # the 3-way base-cell corner at (RA 45, Dec +41.8) has cells with 7 neighbours
    "base_cell_corner": lambda rng: around(rng, 45.0, 41.8103149, 4_000, 0.5),
}

RADII_DEG = [1 / 3600, 10 / 3600, 1 / 60, 0.1, 1.0, 5.0]


@pytest.fixture(scope="module", params=sorted(CATALOGUES))
def catalogue(request):
    rng = np.random.default_rng(sorted(CATALOGUES).index(request.param))
    ra, dec = CATALOGUES[request.param](rng)
    return request.param, ra, dec, SkyIndex.build(ra, dec)


def centres_for(rng, ra, dec, n):
    """Half within 0.5" of catalogue rows (so small cones find something), half anywhere nearby."""
    picks = rng.choice(len(ra), n, replace=False)
    c_ra, c_dec = offset(ra[picks], dec[picks], rng.uniform(0, 2 * np.pi, n), np.radians(rng.uniform(0, 0.5 / 3600, n)))
    spread = around(rng, ra[picks[0]], dec[picks[0]], n, 1.0)
    half = n // 2
    return np.concatenate([c_ra[:half], spread[0][half:]]), np.concatenate([c_dec[:half], spread[1][half:]])


def assert_same_rows(got_rows, sep, radius_deg):
    """``got_rows`` must be exactly the rows with sep <= radius, up to boundary ties."""
    expected = set(np.flatnonzero(sep <= radius_deg).tolist())
    unsure = set(np.flatnonzero(np.abs(sep - radius_deg) <= BOUNDARY_TOLERANCE_DEG).tolist())
    got = set(got_rows.tolist())
    assert got - unsure == expected - unsure


# --------------------------------------------------------------------------
# Kernels


def test_radec_to_xyz_gives_unit_vectors_matching_astropy():
    rng = np.random.default_rng(1)
    ra, dec = uniform_sky(rng, 1000)
    xyz = radec_to_xyz(ra, dec)
    assert xyz.shape == (1000, 3) and xyz.dtype == np.float64
    expected = SkyCoord(ra, dec, unit=u.deg).cartesian.xyz.value.T
    np.testing.assert_allclose(xyz, expected, atol=1e-15)


def test_radec_to_hpx29_is_the_cdshealpix_order_29_nested_id():
    rng = np.random.default_rng(2)
    ra, dec = uniform_sky(rng, 1000)
    ids = radec_to_hpx29(ra, dec)
    assert ids.dtype == np.int64
    expected = nested.lonlat_to_healpix(Longitude(ra, u.deg), Latitude(dec, u.deg), 29)
    np.testing.assert_array_equal(ids, expected.astype(np.int64))
    assert ids.min() >= 0 and ids.max() < NPIX29


def test_angular_separation_matches_astropy_and_is_stable_at_small_angles():
    rng = np.random.default_rng(3)
    ra1, dec1 = uniform_sky(rng, 1000)
    ra2, dec2 = uniform_sky(rng, 1000)
    expected = SkyCoord(ra1, dec1, unit=u.deg).separation(SkyCoord(ra2, dec2, unit=u.deg)).deg
    np.testing.assert_allclose(angular_separation_deg(ra1, dec1, ra2, dec2), expected, atol=1e-12)
    assert angular_separation_deg(10.0, 20.0, 10.0, 20.0 + 1e-10) == pytest.approx(1e-10, rel=1e-6)
    assert angular_separation_deg(0.0, 0.0, 180.0, 0.0) == pytest.approx(180.0, abs=1e-12)
    assert angular_separation_deg(359.9999, 0.0, 0.0001, 0.0) == pytest.approx(2e-4, rel=1e-6)


@pytest.mark.parametrize("ra, dec, radius", [
    (10.0, 20.0, 1.0), (0.0, 90.0, 0.5), (123.0, -90.0, 0.01), (359.9999, 0.0, 1 / 3600),
    (0.0, 0.0, 5.0), (45.0, 41.8103149, 1e-7), (200.0, -30.0, 120.0),
])
def test_cone_ranges_are_sorted_disjoint_and_merged(ra, dec, radius):
    ranges = cone_hpx29_ranges(ra, dec, radius)
    assert ranges.dtype == np.int64 and ranges.ndim == 2 and ranges.shape[1] == 2
    assert len(ranges) >= 1
    assert np.all(ranges[:, 0] < ranges[:, 1])
    assert np.all(ranges[1:, 0] > ranges[:-1, 1])
    assert ranges[0, 0] >= 0 and ranges[-1, 1] <= NPIX29


def test_cone_ranges_of_a_whole_sky_cone():
    np.testing.assert_array_equal(cone_hpx29_ranges(10.0, 10.0, 180.0), [[0, NPIX29]])


def in_ranges(ids, ranges):
    slot = np.searchsorted(ranges[:, 0], ids, side="right") - 1
    return (slot >= 0) & (ids < ranges[np.maximum(slot, 0), 1])


@settings(max_examples=60, deadline=None)
@given(
    ra=st.floats(0, 360, exclude_max=True),
    dec=st.floats(-90, 90),
    log_radius=st.floats(np.log10(1e-5 / 3600), np.log10(10.0)),
    seed=st.integers(0, 2**32 - 1),
)
def test_cone_ranges_contain_every_point_of_the_cone(ra, dec, log_radius, seed):
    radius = 10**log_radius
    rng = np.random.default_rng(seed)
    pa = rng.uniform(0, 2 * np.pi, 500)
    dist = np.radians(radius) * np.concatenate([np.sqrt(rng.uniform(0, 1, 400)), np.full(100, 1 - 1e-9)])
    p_ra, p_dec = offset(ra, dec, pa, dist)
    ranges = cone_hpx29_ranges(ra, dec, radius)
    assert in_ranges(radec_to_hpx29(p_ra, p_dec), ranges).all()


# --------------------------------------------------------------------------
# SkyIndex


def test_build_sorts_rows_by_hpx29_and_keeps_the_permutation():
    rng = np.random.default_rng(4)
    ra, dec = uniform_sky(rng, 5000)
    index = SkyIndex.build(ra, dec)
    assert len(index) == 5000
    assert index.hpx29.dtype == np.int64 and index.order.dtype == np.int64
    assert np.all(np.diff(index.hpx29) >= 0)
    np.testing.assert_array_equal(np.sort(index.order), np.arange(5000))
    np.testing.assert_array_equal(index.hpx29, radec_to_hpx29(ra, dec)[index.order])
    np.testing.assert_allclose(index.xyz, radec_to_xyz(ra[index.order], dec[index.order]), atol=0)
    assert index.xyz.shape == (5000, 3) and index.xyz.dtype == np.float64


@pytest.mark.parametrize("radius", RADII_DEG)
def test_cone_matches_brute_force(catalogue, radius):
    name, ra, dec, index = catalogue
    rng = np.random.default_rng(int(radius * 3600))
    c_ra, c_dec = centres_for(rng, ra, dec, 12)
    for centre in zip(c_ra, c_dec):
        rows, dist = index.cone(*centre, radius)
        assert rows.dtype == np.int64 and dist.dtype == np.float64
        sep = haversine_deg(centre[0], centre[1], ra, dec)
        assert_same_rows(rows, sep, radius)
        np.testing.assert_allclose(dist, sep[rows], atol=1e-10)
        assert np.all(np.diff(dist) >= 0)
    if name != "uniform":
        assert len(index.cone(c_ra[0], c_dec[0], radius)[0]) >= 1


@pytest.mark.parametrize("centre", [(0.0, 90.0), (77.0, -90.0), (0.0, 10.0), (359.99999, 10.0), (360.0, 10.0)])
def test_cone_at_poles_and_ra_zero(centre):
    rng = np.random.default_rng(5)
    ra, dec = np.concatenate([around(rng, 0, 89.9, 3000, 0.5), around(rng, 0, -89.9, 3000, 0.5),
                              around(rng, 0, 10, 3000, 0.5)], axis=1)
    index = SkyIndex.build(ra, dec)
    for radius in (0.05, 0.3, 1.0):
        rows, _ = index.cone(*centre, radius)
        assert len(rows) > 0
        assert_same_rows(rows, haversine_deg(centre[0], centre[1], ra, dec), radius)


def test_cone_ties_are_broken_by_row_id():
    ra = np.array([10.0, 10.1, 10.0, 10.1, 10.0])
    dec = np.array([0.0, 0.0, 0.0, 0.0, 0.0])
    rows, dist = SkyIndex.build(ra, dec).cone(10.0, 0.0, 1.0)
    np.testing.assert_array_equal(rows, [0, 2, 4, 1, 3])


def test_cone_of_the_whole_sky_returns_every_row():
    rng = np.random.default_rng(6)
    ra, dec = uniform_sky(rng, 2000)
    rows, dist = SkyIndex.build(ra, dec).cone(10.0, 10.0, 180.0)
    np.testing.assert_array_equal(np.sort(rows), np.arange(2000))


def check_crossmatch(index, ra, dec, q_ra, q_dec, radius_arcsec):
    radius_deg = radius_arcsec / 3600
    sep = haversine_deg(q_ra[:, None], q_dec[:, None], ra[None, :], dec[None, :])
    inputs, rows, dist = index.crossmatch(q_ra, q_dec, radius_arcsec, nearest=False)
    assert inputs.dtype == np.int64 and rows.dtype == np.int64 and dist.dtype == np.float64
    sure = np.abs(sep - radius_deg) > BOUNDARY_TOLERANCE_DEG
    expected_pairs = np.flatnonzero((sep <= radius_deg) & sure)
    got_pairs = np.sort((inputs * len(ra) + rows)[sure[inputs, rows]])
    np.testing.assert_array_equal(got_pairs, expected_pairs)
    np.testing.assert_allclose(dist, sep[inputs, rows] * 3600, atol=1e-6)
    step_input, step_dist, step_row = np.diff(inputs), np.diff(dist), np.diff(rows)
    assert np.all((step_input > 0) | ((step_input == 0) & (
        (step_dist > 0) | ((step_dist == 0) & (step_row > 0)))))

    n_inputs, n_rows, n_dist = index.crossmatch(q_ra, q_dec, radius_arcsec, nearest=True)
    assert np.all(np.diff(n_inputs) > 0)
    matched = np.flatnonzero((sep <= radius_deg).any(axis=1))
    unsure_inputs = np.flatnonzero((~sure).any(axis=1))
    np.testing.assert_array_equal(np.setdiff1d(n_inputs, unsure_inputs), np.setdiff1d(matched, unsure_inputs))
    nearest_sep = np.where(sep <= radius_deg, sep, np.inf).min(axis=1)
    np.testing.assert_allclose(n_dist, sep[n_inputs, n_rows] * 3600, atol=1e-6)
    ok = np.isin(n_inputs, matched)
    np.testing.assert_allclose(n_dist[ok], nearest_sep[n_inputs[ok]] * 3600, atol=1e-6)
    return len(inputs)


@pytest.mark.parametrize("radius_arcsec", [1.0, 10.0, 60.0, 600.0, 3600.0, 18000.0])
def test_crossmatch_matches_brute_force(catalogue, radius_arcsec):
    name, ra, dec, index = catalogue
    rng = np.random.default_rng(int(radius_arcsec))
    # every input matches thousands of rows at the largest radii; fewer inputs suffice
    q_ra, q_dec = centres_for(rng, ra, dec, 200 if radius_arcsec < 3600 else 40)
    found = check_crossmatch(index, ra, dec, q_ra, q_dec, radius_arcsec)
    if name != "uniform" or radius_arcsec >= 60:
        assert found > 0


@pytest.mark.parametrize("depth", [0, 3, 9, 14])
def test_crossmatch_at_the_largest_radius_of_each_depth(depth):
    """The 3x3-neighbourhood argument is most stretched at the largest radius per depth."""
    radius_rad = skyindex._NEIGHBOURHOOD_RADIUS_FACTOR * skyindex._cell_size_rad(depth)
    radius_arcsec = np.degrees(radius_rad) * 3600 * (1 - 1e-12)
    assert skyindex._crossmatch_depth(np.radians(radius_arcsec / 3600)) == depth
    rng = np.random.default_rng(depth)
    size = np.degrees(radius_rad) * 3
    spots = [(0, 90), (0, -90), (45, 41.8103149), (90, -41.8103149), (0, 0), (200, 60)]
    ra, dec = np.concatenate([around(rng, r0, d0, 600, size) for r0, d0 in spots], axis=1)
    q_ra, q_dec = np.concatenate([around(rng, r0, d0, 40, size) for r0, d0 in spots], axis=1)
    assert check_crossmatch(SkyIndex.build(ra, dec), ra, dec, q_ra, q_dec, radius_arcsec) > 0


def test_crossmatch_beyond_the_neighbourhood_limit_scans_everything():
    rng = np.random.default_rng(7)
    ra, dec = uniform_sky(rng, 3000)
    q_ra, q_dec = uniform_sky(rng, 40)
    assert skyindex._crossmatch_depth(np.radians(40.0)) is None
    assert check_crossmatch(SkyIndex.build(ra, dec), ra, dec, q_ra, q_dec, 40 * 3600) > 0


def test_crossmatch_in_small_chunks_gives_the_same_result(monkeypatch):
    rng = np.random.default_rng(8)
    ra, dec = around(rng, 30, 30, 5000, 0.2)
    q_ra, q_dec = around(rng, 30, 30, 500, 0.2)
    index = SkyIndex.build(ra, dec)
    for nearest in (True, False):
        whole = index.crossmatch(q_ra, q_dec, 30.0, nearest=nearest)
        monkeypatch.setattr(skyindex, "_MAX_PAIRS_PER_CHUNK", 7)
        chunked = index.crossmatch(q_ra, q_dec, 30.0, nearest=nearest)
        monkeypatch.undo()
        for a, b in zip(whole, chunked, strict=True):
            np.testing.assert_array_equal(a, b)


def test_crossmatch_ties_go_to_the_smaller_row_id():
    ra = np.array([10.0, 20.0, 10.0, 10.0])
    dec = np.array([5.0, 5.0, 5.0, 5.0])
    index = SkyIndex.build(ra, dec)
    q_ra, q_dec = np.array([20.0, 10.0, 50.0]), np.array([5.0, 5.0, 5.0])
    inputs, rows, dist = index.crossmatch(q_ra, q_dec, 1.0)
    np.testing.assert_array_equal(inputs, [0, 1])
    np.testing.assert_array_equal(rows, [1, 0])
    inputs, rows, dist = index.crossmatch(q_ra, q_dec, 1.0, nearest=False)
    np.testing.assert_array_equal(inputs, [0, 1, 1, 1])
    np.testing.assert_array_equal(rows, [1, 0, 2, 3])
    np.testing.assert_array_equal(dist, 0.0)


# --------------------------------------------------------------------------
# Files and edge cases


def test_save_and_load_round_trip_with_mmap(tmp_path):
    rng = np.random.default_rng(9)
    ra, dec = uniform_sky(rng, 4000)
    index = SkyIndex.build(ra, dec)
    path = tmp_path / "catalog-skyindex.npy"
    index.save(path)
    assert os.listdir(tmp_path) == [path.name]

    raw = np.load(path, allow_pickle=False)
    assert raw.dtype.names == ("hpx29", "x", "y", "z", "row")
    assert raw.shape == (4000,)

    loaded = SkyIndex.load(path)
    assert isinstance(loaded._records, np.memmap)
    assert not loaded.hpx29.flags.writeable
    assert len(loaded) == len(index)
    np.testing.assert_array_equal(loaded.hpx29, index.hpx29)
    np.testing.assert_array_equal(loaded.order, index.order)
    np.testing.assert_array_equal(loaded.xyz, index.xyz)
    for got, expected in zip(loaded.cone(100.0, -20.0, 3.0), index.cone(100.0, -20.0, 3.0), strict=True):
        np.testing.assert_array_equal(got, expected)
    q_ra, q_dec = uniform_sky(rng, 200)
    for got, expected in zip(loaded.crossmatch(q_ra, q_dec, 3600.0, nearest=False),
                             index.crossmatch(q_ra, q_dec, 3600.0, nearest=False), strict=True):
        np.testing.assert_array_equal(got, expected)

    in_memory = SkyIndex.load(path, mmap=False)
    assert not isinstance(in_memory._records, np.memmap)
    np.testing.assert_array_equal(in_memory.order, index.order)


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "idx.npy"
    SkyIndex.build([1.0, 2.0], [3.0, 4.0]).save(path)
    SkyIndex.build([5.0], [6.0]).save(path)
    assert len(SkyIndex.load(path)) == 1
    assert os.listdir(tmp_path) == ["idx.npy"]


def test_load_rejects_other_arrays(tmp_path):
    path = tmp_path / "other.npy"
    np.save(path, np.zeros(5))
    with pytest.raises(ValueError, match="sky index"):
        SkyIndex.load(path)


def test_empty_index_and_empty_inputs(tmp_path):
    empty = SkyIndex.build([], [])
    assert len(empty) == 0
    rows, dist = empty.cone(10.0, 20.0, 1.0)
    assert rows.dtype == np.int64 and dist.dtype == np.float64 and len(rows) == 0
    for nearest in (True, False):
        for result in (empty.crossmatch([1.0], [2.0], 5.0, nearest=nearest),
                       SkyIndex.build([1.0], [2.0]).crossmatch([], [], 5.0, nearest=nearest),
                       SkyIndex.build([1.0], [2.0]).crossmatch([100.0], [-2.0], 5.0, nearest=nearest)):
            inputs, rows, dist = result
            assert [a.dtype for a in result] == [np.int64, np.int64, np.float64]
            assert len(inputs) == len(rows) == len(dist) == 0
    empty.save(tmp_path / "empty.npy")
    assert len(SkyIndex.load(tmp_path / "empty.npy")) == 0
    assert len(SkyIndex.build([1.0], [2.0]).cone(100.0, -2.0, 1.0)[0]) == 0


@pytest.mark.parametrize("call", [
    lambda index: index.cone(10.0, 91.0, 1.0),
    lambda index: index.cone(np.nan, 0.0, 1.0),
    lambda index: index.cone(10.0, 0.0, 0.0),
    lambda index: index.cone(10.0, 0.0, -1.0),
    lambda index: index.cone(10.0, 0.0, np.inf),
    lambda index: index.crossmatch([1.0, 2.0], [0.0, -90.5], 1.0),
    lambda index: index.crossmatch([1.0], [0.0, 1.0], 1.0),
    lambda index: index.crossmatch([1.0], [0.0], 0.0),
    lambda index: SkyIndex.build([1.0, np.inf], [0.0, 0.0]),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call(SkyIndex.build([1.0, 2.0], [3.0, 4.0]))


def test_a_cone_is_covered_without_building_astropy_angles(monkeypatch):
    """Every cone search covers its cone with HEALPix cells. cdshealpix's Python wrapper
    turns the centre into astropy ``Longitude``/``Latitude`` objects first, which cost ten
    times the covering itself (0.39 ms against 0.035 ms per cone on a 2-core machine);
    lcpanel asks cdshealpix's compiled covering directly, in radians."""
    import astropy.coordinates.angles.core as angles

    made = []
    for cls in (angles.Longitude, angles.Latitude):
        monkeypatch.setattr(cls, "__new__", lambda c, *a, _orig=cls.__new__, **k: made.append(c) or _orig(c, *a, **k))
    for ra, dec, radius in ((10.0, 20.0, 1 / 60), (359.99, -89.9, 0.5), (0.0, 0.0, 5.0)):
        cone_hpx29_ranges(ra, dec, radius)
    assert made == []
    # nor does a cross-match (its inputs' cells and their neighbours) or an ingest batch's ids
    index = SkyIndex.build(*uniform_sky(np.random.default_rng(3), 2000))
    index.crossmatch(np.array([10.0, 359.999, 180.0]), np.array([20.0, -89.99, 0.0]), 30.0)
    radec_to_hpx29(np.array([0.0, 120.0]), np.array([90.0, -45.0]))
    assert made == []


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), depth=st.integers(0, 29), n=st.integers(1, 50))
def test_cells_and_neighbours_are_cdshealpix_public_ones(seed, depth, n):
    """The cells of positions and their neighbours, from cdshealpix's compiled functions,
    are those of its public ``lonlat_to_healpix`` and ``neighbours``."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix import nested

    from lcpanel.core.catalogs import skyindex

    rng = np.random.default_rng(seed)
    ra, dec = uniform_sky(rng, n)
    ra[: n // 4] = rng.choice([0.0, 359.9999999, 180.0], n // 4)
    dec[n // 4: n // 2] = rng.choice([90.0, -90.0, 0.0, 41.8103149], n // 2 - n // 4)
    cells = skyindex._healpix_cells(ra, dec, depth)
    expected = nested.lonlat_to_healpix(Longitude(ra, unit=u.deg), Latitude(dec, unit=u.deg), depth).astype(np.int64)
    np.testing.assert_array_equal(cells, expected)
    np.testing.assert_array_equal(skyindex._neighbour_cells(cells, depth), nested.neighbours(expected, depth))


@settings(max_examples=300, deadline=None)
@given(
    ra=st.floats(0, 360, exclude_max=True),
    dec=st.floats(-90, 90),
    log_radius=st.floats(np.log10(1e-5 / 3600), np.log10(179.0)),
)
def test_cone_ranges_are_cdshealpix_public_coverings(ra, dec, log_radius):
    """The direct covering gives exactly the cells of cdshealpix's public ``cone_search``
    (with astropy angles), merged into ranges as before."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix import nested

    from lcpanel.core.catalogs import skyindex

    radius = 10**log_radius
    radius_rad = np.radians(radius)
    depth = skyindex._cone_covering_depth(radius_rad)
    cells, depths, _ = nested.cone_search(Longitude(ra, unit=u.deg), Latitude(dec, unit=u.deg), radius_rad * u.rad,
                                          depth, min(skyindex._CONE_DEPTH_DELTA, skyindex.HPX_DEPTH - depth))
    shift = 2 * (skyindex.HPX_DEPTH - depths.astype(np.int64))
    starts, stops = cells.astype(np.int64) << shift, (cells.astype(np.int64) + 1) << shift
    order = np.argsort(starts)
    expected = skyindex._merge_ranges(starts[order], stops[order])
    np.testing.assert_array_equal(cone_hpx29_ranges(ra, dec, radius), expected)


# --------------------------------------------------------------------------
# Cone reads on a saved index


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RssFile from /proc")
def test_cones_on_a_saved_index_do_not_map_it_into_the_process(tmp_path):
    """A server answers cones all day: mapped pages of the index would count in each process's
    RSS (a 1e7-row index, 400 MB, was all mapped after 250 random cones); reads must not stay."""
    rng = np.random.default_rng(21)
    path = tmp_path / "sky.npy"
    SkyIndex.build(*uniform_sky(rng, 200_000)).save(path)  # 8 MB
    index = SkyIndex.load(path)
    centres = uniform_sky(rng, 300)
    index.cone(10.0, 10.0, 1.0)
    before = rss_kib("self", "RssFile")
    found = sum(len(index.cone(ra, dec, 1.0)[0]) for ra, dec in zip(*centres))
    grown = rss_kib("self", "RssFile") - before
    assert found > 300 * 5
    assert grown < 1024, f"RssFile grew by {grown} kB over 300 cones on an 8 MB index"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=200).map(sorted), st.lists(st.integers(-2, 42), max_size=30),
       st.integers(1, 9))
def test_fence_windows_hold_every_searchsorted_position(values, keys, stride):
    hpx = np.array(values, dtype=np.int64)
    keys = np.array(keys, dtype=np.int64)
    places = np.searchsorted(hpx[::stride], keys)
    lo, hi = np.array([skyindex._fence_window(place, stride, len(hpx)) for place in places], dtype=int).reshape(-1, 2).T
    exact = np.searchsorted(hpx, keys)
    assert np.all(lo <= exact) and np.all(exact <= hi)
    assert np.all(hi - lo <= stride)


@pytest.mark.parametrize("one_read,gap,block", [(4096, 1024, 1 << 18), (0, 0, 1 << 18), (0, 1024, 1 << 18),
                                                (4096, 1024, 7), (0, 0, 50)])
@pytest.mark.parametrize("stride", [1, 3, 64])
@pytest.mark.parametrize("n", [0, 1, 5, 2_001])
def test_saved_and_in_memory_cones_agree_for_any_fence_stride(tmp_path, monkeypatch, stride, n, one_read, gap, block):
    """Whatever the stride, and whether a cone's rows are read at once, range by range, in
    merged reads, or cut in blocks searched one at a time."""
    monkeypatch.setattr(skyindex, "FENCE_STRIDE", stride)
    monkeypatch.setattr(skyindex, "_ONE_READ_ROWS", one_read)
    monkeypatch.setattr(skyindex, "_READ_GAP_ROWS", gap)
    monkeypatch.setattr(skyindex, "_MAX_BLOCK_ROWS", block)
    rng = np.random.default_rng(n)
    ra, dec = np.concatenate([uniform_sky(rng, n // 2), around(rng, 30.0, -60.0, n - n // 2, 2.0)], axis=1)
    built = SkyIndex.build(ra, dec)
    built.save(tmp_path / "sky.npy")
    saved = SkyIndex.load(tmp_path / "sky.npy")
    for centre_ra, centre_dec, radius in [(30.0, -60.0, 0.5), (30.0, -60.0, 3.0), (200.0, 10.0, 40.0),
                                          (0.0, 90.0, 100.0), (1.0, 2.0, 180.0), (31.0, -61.0, 1 / 60)]:
        rows, dist = built.cone(centre_ra, centre_dec, radius)
        sep = haversine_deg(centre_ra, centre_dec, ra, dec)
        assert_same_rows(rows, sep, radius)
        for got, expected in zip(saved.cone(centre_ra, centre_dec, radius), (rows, dist), strict=True):
            np.testing.assert_array_equal(got, expected)


def test_opening_a_saved_index_reads_it_a_block_at_a_time(tmp_path, monkeypatch):
    """The fence is read from the whole file when the index is opened: one block of it in
    memory at a time, not all of it (a server process would keep the freed heap)."""
    import tracemalloc

    rng = np.random.default_rng(22)
    path = tmp_path / "sky.npy"
    built = SkyIndex.build(*uniform_sky(rng, 200_000))  # 8 MB
    built.save(path)
    monkeypatch.setattr(skyindex, "_FENCE_READ_ROWS", 4096)  # 160 kB
    tracemalloc.start()
    try:
        index = SkyIndex.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(index._fence, built.hpx29[::skyindex.FENCE_STRIDE])
    assert peak < 1_000_000, f"opening an 8 MB index held {peak / 1e6:.1f} MB at once"


def test_no_ranges_read_no_rows(tmp_path):
    SkyIndex.build(*uniform_sky(np.random.default_rng(3), 100)).save(tmp_path / "sky.npy")
    for index in (SkyIndex.load(tmp_path / "sky.npy"), SkyIndex.load(tmp_path / "sky.npy", mmap=False)):
        assert list(index._blocks_near(np.empty((0, 2), dtype=np.int64))) == []


def test_a_cone_of_the_whole_sky_holds_one_block_of_the_index_at_a_time(tmp_path, monkeypatch):
    """A TAP or cone-search client may ask for the whole sky: the index is read and searched a
    block at a time, so the search holds its answer and one block, not the index read whole
    beside every candidate (184 B per row at once before, 144 B when cones searched the
    mapped file; 64 B now, the answer's rows and distances while they are sorted)."""
    import tracemalloc

    rng = np.random.default_rng(23)
    path = tmp_path / "sky.npy"
    SkyIndex.build(*uniform_sky(rng, 200_000)).save(path)
    monkeypatch.setattr(skyindex, "_MAX_BLOCK_ROWS", 8192)
    index = SkyIndex.load(path)
    tracemalloc.start()
    try:
        rows, _ = index.cone(10.0, 10.0, 180.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(rows) == 200_000
    assert peak / len(rows) < 100, f"{peak / len(rows):.0f} bytes per row held at once"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RssFile from /proc")
def test_a_crossmatch_on_a_saved_index_leaves_none_of_it_mapped(tmp_path):
    """A cross-match reads much of the index; the pages it touched must leave the process's RSS
    when it ends (a 1e7-row server process stayed at 514 MB after 4 uploads of 5,000 positions:
    396 MB of them the mapped index). It answers as the index in memory does."""
    rng = np.random.default_rng(22)
    ra, dec = uniform_sky(rng, 200_000)
    path = tmp_path / "sky.npy"
    SkyIndex.build(ra, dec).save(path)  # 8 MB
    index = SkyIndex.load(path)
    q_ra, q_dec = uniform_sky(rng, 20_000)
    in_memory = SkyIndex.load(path, mmap=False)
    in_memory.crossmatch(q_ra[:10], q_dec[:10], 1800.0)  # imports and compiled kernels
    before = rss_kib("self", "RssFile")
    for nearest in (True, False):
        got = index.crossmatch(q_ra, q_dec, 1800.0, nearest=nearest)
        want = in_memory.crossmatch(q_ra, q_dec, 1800.0, nearest=nearest)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    assert len(got[0]) > 1000
    grown = rss_kib("self", "RssFile") - before
    assert grown < 1024, f"RssFile grew by {grown} kB over a cross-match of 20,000 positions on an 8 MB index"
