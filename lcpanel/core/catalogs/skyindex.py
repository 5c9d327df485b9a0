"""Sky index of one catalogue: cone search and cross-match on plain numpy arrays.

Every catalogue row is keyed by its order-29 NESTED HEALPix id (``hpx29``, the
key HATS partitions on) and carries its unit vector (x, y, z).  Rows are kept
sorted by ``hpx29`` in one structured ``.npy`` file (fields hpx29, x, y, z,
row) that server processes open without building anything: cones read the
rows they need from it, a cross-match maps it for as long as it runs; either
way the pages are the system's file cache, shared by every process, and none
stay in a process's RSS after a search.

Cone search
    ``cdshealpix`` covers the cone with a MOC whose finest cells are a quarter
    to a half of the radius across (``_cone_covering_depth``: ~25 cells, covered
    area ~1.8x the cone; finer coverings cost more in ``cone_search`` than they
    save in candidates, coarser ones read ~3x the cone).  The cells become a few merged ``[start, stop)``
    ranges of order-29 ids, and an exact distance cut keeps the rows inside the cone.
    The ranges are turned into row spans through a *fence* held in memory (every
    ``FENCE_STRIDE``-th id, 1.25 MB for 1e7 rows), which narrows each range end to
    a window of 64 rows; the windows are read with ``pread`` into memory that is
    freed after the search, in blocks of at most 10 MB searched one at a time (a
    cone of the whole sky holds its answer and one block).  A binary search on the mapped file touched ~24 pages
    per range end, each mapping 16 neighbours (the kernel's fault-around): 250
    random cones on 1e7 rows left all 400 MB of the index mapped into the process,
    counted in its RSS, and in every server process's.

Cross-match
    A HEALPix neighbourhood join: every input position takes its cell at the
    finest depth whose cells are at least twice the match radius across
    (``_crossmatch_depth``), plus the 8 neighbours, which together contain the
    whole match disc.  The 3x3 block is merged into runs of consecutive cells
    (4.5 per input on average), the inputs are processed in cell order so the
    bulk ``np.searchsorted`` keys increase (numpy then narrows each search
    from the previous result: 7x faster than random order on a 1e7-row
    index), the candidate pairs are expanded with ``np.repeat``, and the exact
    distance cut follows. The file is mapped for the call and unmapped after
    it: a mapping kept open left all 400 MB of a 1e7-row index in the RSS of
    every process that had answered a large cross-match. Mapping again costs a
    1,000-position match 0.7-1.6 ms (1e7 rows: 1.0-1.8 -> 1.9-2.7 ms; 1e6 rows:
    1.6 -> 2.3-3.2 ms) and a 100,000-position one nothing measurable at 1e7 rows,
    4-12 ms (62-63 -> 67-76 ms) at 1e6 rows, where it touches the whole index.

    This was measured against a scipy ``cKDTree`` on the unit vectors
    (``benchmarks/bench_skyindex.py``; 1e5 inputs, 1e7 rows, r = 2", 2 cores):
    the join takes ~0.1 s with nothing to set up; ``cKDTree.query`` takes
    0.13 s with 2 workers (0.26 s with 1) after a 2-9 s build whose ~0.5 GB
    cannot be memory-mapped, so every server process would rebuild or unpickle
    it.  The join is chosen: as fast or faster, nothing to build or keep in
    sync, and it runs on the shared memory-mapped file (a bulk join reads much
    of it in any case).

Distances
    The cut first compares squared chord lengths ``|a - c|**2`` with a slightly
    widened bound (the dot-product test ``a.c >= cos r`` written without the
    cancellation that makes it useless at arcsecond radii), then keeps the
    pairs whose angle ``atan2(|a x c|, a.c)`` -- accurate at every separation --
    is at most the radius.  Rows exactly on the boundary are inside.
"""

from __future__ import annotations

import functools
import mmap
import os
import weakref

import numpy as np

from ..atomic import atomic_path

HPX_DEPTH = 29
NPIX29 = 12 * 4**HPX_DEPTH
_BASE_CELL_SIZE_RAD = np.sqrt(4 * np.pi / 12)
# Empirically a disc stays inside a cell's 3x3 neighbourhood up to radius
# ~0.7 cell size (tested at depths 0..12, base-cell corners and poles
# included); 0.5 leaves a margin.
_NEIGHBOURHOOD_RADIUS_FACTOR = 0.5
_CONE_DEPTH_DELTA = 2
# Candidate pairs are expanded in chunks of about this many, bounding the
# memory of huge-radius cross-matches by the size of their result.
_MAX_PAIRS_PER_CHUNK = 1 << 21

# Rows per fence entry: a range end is found in a window of this many rows (2.5 kB).
FENCE_STRIDE = 64
# A cone's rows are read at once when they span at most this many rows (160 kB), and
# otherwise in reads fewer than _READ_GAP_ROWS apart.
_ONE_READ_ROWS = 4096
_READ_GAP_ROWS = 1024
# A cone is cut in blocks of at most this many rows (10 MB), read and searched one at a time.
_MAX_BLOCK_ROWS = 1 << 18
# Rows read at a time while the fence of a saved index is built.
_FENCE_READ_ROWS = 1 << 16

RECORD_DTYPE = np.dtype(
    [("hpx29", "<i8"), ("x", "<f8"), ("y", "<f8"), ("z", "<f8"), ("row", "<i8")]
)


# --------------------------------------------------------------------------
# Position kernels


def radec_to_xyz(ra_deg, dec_deg) -> np.ndarray:
    """Unit vectors, shape (n, 3), of positions given in degrees."""
    ra = np.radians(np.atleast_1d(np.asarray(ra_deg, dtype=np.float64)))
    dec = np.radians(np.atleast_1d(np.asarray(dec_deg, dtype=np.float64)))
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def radec_to_hpx29(ra_deg, dec_deg) -> np.ndarray:
    """Order-29 NESTED HEALPix ids (int64) of positions given in degrees."""
    ra, dec = _validated_positions(ra_deg, dec_deg)
    return _healpix_cells(ra, dec, HPX_DEPTH)


def angular_separation_deg(ra1, dec1, ra2, dec2):
    """Angular separation in degrees (Vincenty formula, stable at all angles).

    Arguments broadcast against each other like numpy arrays.
    """
    lon1, lat1, lon2, lat2 = (
        np.radians(np.asarray(v, dtype=np.float64)) for v in (ra1, dec1, ra2, dec2)
    )
    dlon = lon2 - lon1
    sin_dlon, cos_dlon = np.sin(dlon), np.cos(dlon)
    sin1, cos1 = np.sin(lat1), np.cos(lat1)
    sin2, cos2 = np.sin(lat2), np.cos(lat2)
    num1 = cos2 * sin_dlon
    num2 = cos1 * sin2 - sin1 * cos2 * cos_dlon
    denominator = sin1 * sin2 + cos1 * cos2 * cos_dlon
    return np.degrees(np.arctan2(np.hypot(num1, num2), denominator))


@functools.cache
def _compiled():
    """cdshealpix's compiled functions, which its public ones call (see :func:`_cone_cells`),
    or None. Imported at first use, as is the public fallback (:func:`_public`): the
    ``cdshealpix`` package imports ``astropy.coordinates``, about a second that a process
    which never covers the sky (a CLI command) need not pay."""
    try:
        from cdshealpix import cdshealpix
    except ImportError:
        return None
    return cdshealpix


def preload() -> bool:
    """Import cdshealpix's compiled functions now, as a server does before it answers
    anyone (:mod:`lcpanel.warmup`); whether they are there."""
    return _compiled() is not None


def _public():
    """cdshealpix's public ``nested`` functions and astropy's angle classes."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix import nested

    return nested, Longitude, Latitude, u


def _cone_cells(lon_rad: float, lat_rad: float, radius_rad: float, depth: int, depth_delta: int):
    """cdshealpix's MOC covering of a cone (cells, their depths, fully-covered flags), from
    its compiled ``cone_search``, which its public ``nested.cone_search`` calls after making
    astropy ``Longitude``/``Latitude``/``Quantity`` objects of the arguments: 0.39 against
    0.035 ms per cone on a 2-core machine. The public function is the fallback should a
    cdshealpix release change the compiled one (tests compare the two); so for
    :func:`_healpix_cells` and :func:`_neighbour_cells`."""
    try:
        return _compiled().cone_search(np.uint8(depth), np.uint8(depth_delta), np.float64(lon_rad),
                                       np.float64(lat_rad), np.float64(radius_rad), False)
    except (AttributeError, TypeError):
        nested, Longitude, Latitude, u = _public()
        return nested.cone_search(Longitude(lon_rad, unit=u.rad), Latitude(lat_rad, unit=u.rad),
                                  radius_rad * u.rad, depth, depth_delta)


def cone_hpx29_ranges(ra_deg, dec_deg, radius_deg) -> np.ndarray:
    """Sorted, disjoint ``[start, stop)`` order-29 id ranges covering a cone.

    Returns an int64 array of shape (k, 2).  The covering may include cells
    that only come near the cone; it never misses one that intersects it.
    """
    ra, dec = _validated_positions(ra_deg, dec_deg)
    if ra.size != 1:
        raise ValueError("cone_hpx29_ranges takes one centre")
    radius_rad = np.radians(_validated_radius_deg(radius_deg))
    if radius_rad >= np.pi:
        return np.array([[0, NPIX29]], dtype=np.int64)
    depth = _cone_covering_depth(radius_rad)
    cells, depths, _ = _cone_cells(np.radians(ra[0]), np.radians(dec[0]), radius_rad, depth,
                                   min(_CONE_DEPTH_DELTA, HPX_DEPTH - depth))
    shift = 2 * (HPX_DEPTH - depths.astype(np.int64))
    cells = cells.astype(np.int64)
    starts = cells << shift
    stops = (cells + 1) << shift
    by_start = np.argsort(starts)
    return _merge_ranges(starts[by_start], stops[by_start])


# --------------------------------------------------------------------------
# The index


class SkyIndex:
    """Catalogue rows sorted by order-29 HEALPix id, with their unit vectors.

    Attributes (views into one structured array, possibly memory-mapped):
    ``hpx29`` sorted int64 ids, ``xyz`` (n, 3) float64 unit vectors in the
    same order, ``order`` int64 original row id of each sorted row.
    """

    def __init__(self, records: np.ndarray, fd: int | None = None):
        """``records`` sorted by ``hpx29``; ``fd``, an open descriptor of the file ``records``
        maps (:meth:`load`), is what cones read from, and is closed with the index."""
        if records.dtype != RECORD_DTYPE or records.ndim != 1:
            raise ValueError(
                f"a sky index needs a 1-d array of dtype {RECORD_DTYPE}, "
                f"got {records.ndim}-d {records.dtype}"
            )
        self._records = records
        self.hpx29 = records["hpx29"]
        self.order = records["row"]
        self.xyz = _xyz(records)
        self._stride = FENCE_STRIDE
        self._fd = fd
        # self._read(lo, hi): the bytes of records [lo, hi), from memory or from the file
        if fd is None:
            self._read = lambda lo, hi: records[lo:hi].tobytes()
        else:
            weakref.finalize(self, os.close, fd)
            self._read = functools.partial(_pread_rows, fd, records.offset)
        self._fence = _read_fence(self._read, len(records), self._stride)

    @classmethod
    def build(cls, ra_deg, dec_deg) -> SkyIndex:
        """Index positions given in degrees; row ids are their input positions."""
        ra, dec = _validated_positions(ra_deg, dec_deg)
        hpx29 = _healpix_cells(ra, dec, HPX_DEPTH)
        order = np.argsort(hpx29, kind="stable")
        xyz = radec_to_xyz(ra[order], dec[order])
        records = np.empty(len(order), dtype=RECORD_DTYPE)
        records["hpx29"] = hpx29[order]
        records["x"], records["y"], records["z"] = xyz.T
        records["row"] = order
        return cls(records)

    def save(self, path) -> None:
        """Write the index to one ``.npy`` file atomically (temp file + ``os.replace``)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(self._records), allow_pickle=False)

    @classmethod
    def load(cls, path, mmap: bool = True) -> SkyIndex:
        """Open a saved index; with ``mmap`` the file is mapped read-only (where the system
        has ``pread``, cones read it through a descriptor of the same file instead)."""
        if not mmap:
            return cls(np.load(os.fspath(path), allow_pickle=False))
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"a sky index needs a .npy file of format 1.0 or 2.0, got {version}")
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(fh)
            if dtype != RECORD_DTYPE or len(shape) != 1 or fortran_order:
                raise ValueError(f"a sky index needs a 1-d array of dtype {RECORD_DTYPE}, "
                                 f"got shape {shape} of dtype {dtype}")
            records = np.memmap(fh, dtype=dtype, mode="r", offset=fh.tell(), shape=shape) if shape[0] else \
                np.empty(0, dtype=RECORD_DTYPE)
            return cls(records, os.dup(fh.fileno()) if hasattr(os, "pread") and shape[0] else None)

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"<SkyIndex rows={len(self)}>"

    def cone(self, ra_deg, dec_deg, radius_deg):
        """Rows within ``radius_deg`` of a centre: ``(rows, dist_deg)``.

        Sorted by distance, ties by row id; rows are original row ids (int64).
        """
        ranges = cone_hpx29_ranges(ra_deg, dec_deg, radius_deg)
        radius_rad = np.radians(float(radius_deg))
        centre, keys = radec_to_xyz(ra_deg, dec_deg), ranges.ravel()
        found = [_cone_in(block, keys, centre, radius_rad) for block in self._blocks_near(ranges)]
        if len(found) == 1:
            rows, dist_rad = found[0]
        else:
            rows = np.concatenate([f[0] for f in found] or [np.empty(0, dtype=np.int64)])
            dist_rad = np.concatenate([f[1] for f in found] or [np.empty(0)])
        by_distance = np.lexsort((rows, dist_rad))
        return rows[by_distance], np.degrees(dist_rad[by_distance])

    def _blocks_near(self, ranges: np.ndarray):
        """Blocks of records, in index order and of at most ``_MAX_BLOCK_ROWS`` rows, that
        together hold every row of the sorted, disjoint ``[start, stop)`` id ranges, each range
        widened to fence windows; read one at a time, so a cone of the whole sky holds one
        block of the index, not all of it. One read where the rows lie within
        ``_ONE_READ_ROWS``; otherwise reads fewer than ``_READ_GAP_ROWS`` apart are made one
        (a ``pread`` costs more than 40 kB more of it)."""
        places = np.searchsorted(self._fence, ranges.ravel()).tolist()
        if not places:
            return
        n, stride = len(self), self._stride
        start, stop = _fence_window(places[0], stride, n)[0], _fence_window(places[-1], stride, n)[1]
        if stop - start <= min(_ONE_READ_ROWS, _MAX_BLOCK_ROWS):  # most cones: one read, no loop
            yield np.frombuffer(self._read(start, stop), dtype=RECORD_DTYPE)
            return
        spans: list[list[int]] = []
        for first, last in zip(places[0::2], places[1::2]):  # a cone has a few ranges: numpy calls cost more
            start, stop = _fence_window(first, stride, n)[0], _fence_window(last, stride, n)[1]
            if spans and start <= spans[-1][1] + _READ_GAP_ROWS:
                spans[-1][1] = max(spans[-1][1], stop)
            else:
                spans.append([start, stop])
        parts, size = [], 0
        for lo, b in spans:
            while lo < b:
                hi = min(lo + _MAX_BLOCK_ROWS - size, b)
                parts.append(self._read(lo, hi))
                size, lo = size + hi - lo, hi
                if size == _MAX_BLOCK_ROWS:
                    # bytes, not arrays, are joined: concatenating structured arrays costs 10 us of dtype checks
                    yield np.frombuffer(b"".join(parts), dtype=RECORD_DTYPE)
                    parts, size = [], 0
        if parts:
            yield np.frombuffer(b"".join(parts), dtype=RECORD_DTYPE)

    def crossmatch(self, ra_deg, dec_deg, radius_arcsec, nearest: bool = True):
        """Match many positions: ``(input_index, rows, dist_arcsec)``.

        With ``nearest`` each matched input gets its closest row (ties: smaller
        row id), in input order; otherwise every pair within the radius, sorted
        by input index, then distance, then row id.

        A saved index is mapped for the call and unmapped after it, so the pages it
        touched do not stay in the process's RSS.
        """
        ra, dec = _validated_positions(ra_deg, dec_deg)
        radius_rad = np.radians(_validated_radius_deg(radius_arcsec / 3600.0))
        if ra.size == 0 or len(self) == 0:
            return _empty_matches()
        if self._fd is None:
            return _crossmatch(self._records, ra, dec, radius_rad, nearest)
        mapping = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        try:
            return _crossmatch(np.frombuffer(mapping, RECORD_DTYPE, len(self), self._records.offset),
                               ra, dec, radius_rad, nearest)
        finally:
            try:
                mapping.close()
            except BufferError:  # a traceback still holds a view: unmapped when it goes
                pass


def _crossmatch(records: np.ndarray, ra, dec, radius_rad: float, nearest: bool):
    """:meth:`SkyIndex.crossmatch` on the index's records (validated, non-empty inputs);
    what it returns holds no view of ``records``."""
    hpx29, order, xyz = records["hpx29"], records["row"], _xyz(records)
    run_inputs, lo, hi = _candidate_spans(hpx29, ra, dec, radius_rad)
    centres = radec_to_xyz(ra, dec)
    parts = []
    for chunk in _chunks_of_total(hi - lo, _MAX_PAIRS_PER_CHUNK):
        spans, positions = _expand_spans(lo[chunk], hi[chunk])
        inputs = run_inputs[chunk][spans]
        kept, dist_rad = pairs_within(xyz[positions], centres[inputs], radius_rad)
        pairs = inputs[kept], order[positions[kept]], dist_rad
        parts.append(_nearest_pairs(*pairs, ra.size) if nearest else pairs)
    pairs = tuple(np.concatenate(column) for column in zip(*parts))
    inputs, rows, dist_rad = _nearest_pairs(*pairs, ra.size) if nearest else _sorted_pairs(*pairs)
    return inputs, rows, np.degrees(dist_rad) * 3600.0


def _candidate_spans(hpx29: np.ndarray, ra, dec, radius_rad):
    """Row spans ``[lo, hi)`` of the sorted ``hpx29`` that may hold matches, with the
    input each belongs to."""
    depth = _crossmatch_depth(radius_rad)
    if depth is None:
        return (
            np.arange(ra.size, dtype=np.int64),
            np.zeros(ra.size, dtype=np.int64),
            np.full(ra.size, len(hpx29), dtype=np.int64),
        )
    inputs, starts, stops = _neighbourhood_runs(ra, dec, depth)
    shift = 2 * (HPX_DEPTH - depth)
    keys = np.empty(2 * len(starts), dtype=np.int64)
    keys[0::2] = starts << shift
    keys[1::2] = stops << shift
    bounds = np.searchsorted(hpx29, keys)
    return inputs, bounds[0::2], bounds[1::2]


# --------------------------------------------------------------------------
# Helpers


def _xyz(records: np.ndarray) -> np.ndarray:
    """The (n, 3) unit vectors of sky-index records, a read-only view."""
    if not len(records):
        return np.empty((0, 3))
    if not records.flags.c_contiguous:
        records = np.ascontiguousarray(records)
    xyz = np.ndarray((len(records), 3), dtype=np.float64, buffer=records, offset=RECORD_DTYPE.fields["x"][1],
                     strides=(records.strides[0], RECORD_DTYPE["x"].itemsize))
    xyz.flags.writeable = False
    return xyz


def _cone_in(block: np.ndarray, keys: np.ndarray, centre: np.ndarray, radius_rad: float):
    """The rows of ``block`` within the id ranges ``keys`` (starts and stops, interleaved) and
    within ``radius_rad`` of ``centre``: (row ids, distances in radians), unsorted."""
    bounds = np.searchsorted(block["hpx29"], keys)
    _, positions = _expand_spans(bounds[0::2], bounds[1::2])
    candidates = _xyz(block)[positions]
    kept, dist_rad = pairs_within(candidates, np.broadcast_to(centre, candidates.shape), radius_rad)
    return block["row"][positions[kept]], dist_rad


def _fence_window(place: int, stride: int, n: int) -> tuple[int, int]:
    """``(lo, hi)``: where ``np.searchsorted`` of the whole sorted id column puts a key whose
    place among the fence's ids (``ids[::stride]``) is ``place``: ``lo <= p <= hi``, and
    ``hi - lo < stride``."""
    return max((place - 1) * stride + 1, 0), min(place * stride, n)


def _pread_rows(fd: int, offset: int, lo: int, hi: int) -> bytes:
    """Records ``[lo, hi)`` of a saved index, read into memory of their own."""
    size = (hi - lo) * RECORD_DTYPE.itemsize
    data = os.pread(fd, size, offset + lo * RECORD_DTYPE.itemsize)
    if len(data) != size:
        raise OSError(f"the sky index file ended early: {len(data)} of {size} bytes at row {lo}")
    return data


def _read_fence(read, n: int, stride: int) -> np.ndarray:
    """Every ``stride``-th id of an index, read in blocks (20 ms for 1e7 rows of a saved
    index in the file cache)."""
    block = max(stride, _FENCE_READ_ROWS // stride * stride)
    # each block's every stride-th id is copied out, so the block itself is freed at once
    return np.concatenate([np.frombuffer(read(lo, min(lo + block, n)), dtype=RECORD_DTYPE)["hpx29"][::stride].copy()
                           for lo in range(0, n, block)] or [np.empty(0, dtype=np.int64)])


def _validated_positions(ra_deg, dec_deg):
    """Float64 1-d arrays, RA wrapped into [0, 360); ValueError on bad input."""
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    if ra.ndim != 1 or ra.shape != dec.shape:
        raise ValueError(f"RA and Dec must be 1-d and of equal length, got {ra.shape} and {dec.shape}")
    bad = ~(np.isfinite(ra) & np.isfinite(dec))
    if bad.any():
        raise ValueError(f"position {np.flatnonzero(bad)[0]} is not finite")
    bad = np.abs(dec) > 90
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise ValueError(f"position {i}: Dec {dec[i]} is outside [-90, 90] degrees")
    return np.mod(ra, 360.0), dec


def _validated_radius_deg(radius_deg) -> float:
    radius = float(radius_deg)
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be a positive finite number, got {radius_deg!r}")
    return radius


def _healpix_cells(ra_deg, dec_deg, depth: int) -> np.ndarray:
    """The cells (int64) at ``depth`` of positions checked by :func:`_validated_positions`."""
    lon = np.radians(np.asarray(ra_deg, dtype=np.float64))
    lat = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cells = np.empty(lon.shape, dtype=np.uint64)
    offsets = np.empty(lon.shape, dtype=np.float64), np.empty(lon.shape, dtype=np.float64)
    try:
        _compiled().lonlat_to_healpix(np.full(lon.shape, depth, dtype=np.uint8), lon, lat, cells, *offsets,
                                      np.uint16(0))
    except (AttributeError, TypeError):
        nested, Longitude, Latitude, u = _public()
        cells = nested.lonlat_to_healpix(Longitude(ra_deg, unit=u.deg), Latitude(dec_deg, unit=u.deg), depth)
    return cells.astype(np.int64)


def _neighbour_cells(cells: np.ndarray, depth: int) -> np.ndarray:
    """Each cell's 3x3 block at ``depth`` (cdshealpix's ``neighbours``: -1 where a base-cell
    corner has none)."""
    block = np.zeros((len(cells), 9), dtype=np.int64)
    try:
        _compiled().neighbours(depth, cells.astype(np.uint64), block, np.uint16(0))
    except (AttributeError, TypeError):
        nested = _public()[0]
        block = nested.neighbours(cells, depth)
    return block


def _cell_size_rad(depth: int) -> float:
    """Square root of the area of a HEALPix cell at ``depth``."""
    return _BASE_CELL_SIZE_RAD / 2.0**depth


def _cone_covering_depth(radius_rad: float) -> int:
    """Depth whose cells are about a quarter of the radius across (between r/4 and r/2)."""
    depth = int(np.floor(np.log2(_BASE_CELL_SIZE_RAD / radius_rad))) + 2
    return int(np.clip(depth, 0, HPX_DEPTH))


def _crossmatch_depth(radius_rad: float) -> int | None:
    """Finest depth whose 3x3 cell blocks contain any disc of this radius.

    None when even base cells are too small (radius above ~29 degrees).
    """
    depth = int(np.floor(np.log2(_NEIGHBOURHOOD_RADIUS_FACTOR * _BASE_CELL_SIZE_RAD / radius_rad)))
    if depth < 0:
        return None
    return min(depth, HPX_DEPTH)


def _neighbourhood_runs(ra, dec, depth: int):
    """Runs of consecutive cells in each input's 3x3 block at ``depth``.

    Returns (input index, first cell, last cell + 1) per run, ordered by the
    inputs' own cells so that the run starts mostly increase.
    """
    cells = _healpix_cells(ra, dec, depth)
    by_cell = np.argsort(cells)
    block = _neighbour_cells(cells[by_cell], depth)
    width = block.shape[1]
    # A missing neighbour (-1, next to some base-cell corners) becomes a copy
    # of the centre cell, which the run merging absorbs.
    block = np.sort(np.where(block < 0, block[:, width // 2, None], block), axis=1).ravel()
    opens = np.empty(len(block), dtype=bool)
    opens[1:] = np.diff(block) > 1
    opens[::width] = True
    first = np.flatnonzero(opens)
    last = np.append(first[1:], len(block)) - 1
    return by_cell[first // width], block[first], block[last] + 1


def _merge_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Merge ranges sorted by start into disjoint, non-adjacent ranges, shape (k, 2)."""
    if len(starts) == 0:
        return np.empty((0, 2), dtype=np.int64)
    reach = np.maximum.accumulate(stops)
    opens = np.ones(len(starts), dtype=bool)
    opens[1:] = starts[1:] > reach[:-1]
    first = np.flatnonzero(opens)
    last = np.append(first[1:], len(starts)) - 1
    return np.stack([starts[first], reach[last]], axis=1)


def _expand_spans(lo: np.ndarray, hi: np.ndarray):
    """All positions of the spans ``[lo, hi)``: (span index, position) arrays."""
    counts = hi - lo
    span_index = np.repeat(np.arange(len(lo), dtype=np.int64), counts)
    span_offset = np.cumsum(counts) - counts
    positions = np.arange(counts.sum(), dtype=np.int64) + np.repeat(lo - span_offset, counts)
    return span_index, positions


def _chord2_bound(radius_rad: float) -> float:
    """Squared chord of a slightly widened radius: a superset of the exact cut."""
    widened = min(radius_rad * (1 + 1e-9) + 1e-15, np.pi)
    return (2.0 * np.sin(widened / 2.0)) ** 2


def angle_between_rad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between rows of unit-vector arrays, atan2(|a x b|, a.b)."""
    ax, ay, az = a[:, 0], a[:, 1], a[:, 2]
    bx, by, bz = b[:, 0], b[:, 1], b[:, 2]
    cross = np.sqrt((ay * bz - az * by) ** 2 + (az * bx - ax * bz) ** 2 + (ax * by - ay * bx) ** 2)
    return np.arctan2(cross, ax * bx + ay * by + az * bz)


def pairs_within(a: np.ndarray, b: np.ndarray, radius_rad: float):
    """Indices of the pairs (a[i], b[i]) at most ``radius_rad`` apart, and their angles."""
    diff = a - b
    near = np.flatnonzero(np.einsum("ij,ij->i", diff, diff) <= _chord2_bound(radius_rad))
    dist = angle_between_rad(a[near], b[near])
    inside = dist <= radius_rad
    return near[inside], dist[inside]


def _chunks_of_total(counts: np.ndarray, budget: int) -> list[slice]:
    """Consecutive slices of ``counts`` summing to about ``budget`` each (never none)."""
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    cuts = np.searchsorted(ends, np.arange(budget, total, budget), side="right")
    edges = np.unique(np.concatenate([[0], cuts, [len(counts)]]))
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])] or [slice(0, 0)]


def _sorted_pairs(inputs, rows, dist_rad):
    """Pairs sorted by input index, then distance, then row id."""
    order = np.lexsort((rows, dist_rad, inputs))
    return inputs[order], rows[order], dist_rad[order]


def _nearest_pairs(inputs, rows, dist_rad, n_inputs: int):
    """The closest pair of each input (ties: smaller row id), in input order."""
    no_row = np.iinfo(np.int64).max
    best_dist = np.full(n_inputs, np.inf)
    np.minimum.at(best_dist, inputs, dist_rad)
    is_best = dist_rad == best_dist[inputs]
    best_row = np.full(n_inputs, no_row, dtype=np.int64)
    np.minimum.at(best_row, inputs[is_best], rows[is_best])
    matched = np.flatnonzero(best_row != no_row)
    return matched, best_row[matched], best_dist[matched]


def _empty_matches():
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
