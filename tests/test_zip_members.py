"""Members of product zips as lcpanel writes them (products._add): every header field
checked against an independent reading of the raw bytes (local header, central
directory, raw deflate by zlib), against zipfile's own test and, where installed,
Info-ZIP's ``unzip -t``; and the same members give the same bytes."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest

from lcpanel.core import products

MEMBERS = {
    "lightcurves/a/one.csv": b"# header\n" + b"\n".join(b"%d,%.6f" % (i, np.sin(i)) for i in range(5000)),
    "lightcurves/a/empty.csv": b"",
    "lightcurves/b/noise.fits": np.random.default_rng(3).bytes(300_000),  # does not compress
    "lightcurves/b/two.csv.gz": zlib.compress(b"stored as it is" * 100),
    "README.txt": "caf\u00e9 \u2013 light curves\n".encode(),
    "lightcurves/\u00e9toiles/HD 12\u2013\u4e2d.csv": b"a,b\n1,2\n" * 300,  # a UTF-8 name (flag bit 11)
}


def write(path):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in MEMBERS.items():
            products._add(zf, name, data)
    return path.read_bytes()


def test_members_read_back_exactly_and_headers_agree(tmp_path):
    raw = write(tmp_path / "a.zip")
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert zf.testzip() is None
        assert zf.namelist() == list(MEMBERS)
        for info in zf.infolist():
            data = MEMBERS[info.filename]
            assert zf.read(info) == data
            stored = info.filename.endswith(products.STORED_SUFFIXES)
            assert info.compress_type == (zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
            # the local header, read by hand, says what the central directory says
            sig, _, flags, method, _, _, crc, csize, usize, nlen, xlen = struct.unpack(
                "<IHHHHHIIIHH", raw[info.header_offset:info.header_offset + 30])
            assert sig == 0x04034B50 and flags & 0x08 == 0  # sizes in the header, no descriptor
            assert (method, crc, csize, usize) == (info.compress_type, zlib.crc32(data), info.compress_size,
                                                   len(data))
            start = info.header_offset + 30 + nlen + xlen
            assert raw[info.header_offset + 30:info.header_offset + 30 + nlen] == info.filename.encode()
            assert bool(flags & 0x800) == (not info.filename.isascii())
            body = raw[start:start + csize]
            got = body if stored else zlib.decompressobj(-15).decompress(body)
            assert got == data
            if not stored and len(data) > 1000:
                assert csize < len(data) * 0.6 or info.filename.endswith(".fits")


def test_identical_members_give_identical_zips(tmp_path):
    assert write(tmp_path / "a.zip") == write(tmp_path / "b.zip")


@pytest.mark.skipif(not shutil.which("unzip"), reason="Info-ZIP unzip is not installed")
def test_unzip_accepts_the_zip(tmp_path):
    write(tmp_path / "a.zip")
    out = subprocess.run(["unzip", "-t", str(tmp_path / "a.zip")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No errors detected" in out.stdout


_DIGEST = """
import hashlib, io, zipfile
import numpy as np
from lcpanel.core import products
from lcpanel.core.objects.lcfast import gzipped
rng = np.random.default_rng(11)
h = hashlib.sha256()
for i in range(130):
    n = int(rng.integers(0, 4000)) if i < 120 else int(rng.integers(20_000, 200_000))
    text = b"\\n".join(b"%.6f,%.4f,%d" % (t, m, f) for t, m, f in
                       zip(rng.uniform(0, 3e3, n), rng.normal(12, 0.01 * (i % 7 + 1), n), rng.integers(0, 3, n)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        products._add(zf, f"m/{i:04d}.csv", text)
    h.update(buf.getvalue())
    h.update(gzipped(text))
print(h.hexdigest())
"""


#: glibc's malloc filling every allocation with the byte appended (large ones from the heap too)
_FILLED = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.perturb="


def _digest(env=None) -> str:
    out = subprocess.run([sys.executable, "-c", _DIGEST], capture_output=True, text=True, check=True,
                         env=None if env is None else {**os.environ, **env})
    return out.stdout.strip()


def test_every_fresh_process_deflates_the_same_input_to_the_same_bytes():
    """A split build's workers must write what one worker writes: the zip members and the
    csv.gz of the same inputs (empty to ~4 MB) in several fresh processes."""
    digests = {_digest() for _ in range(6)}
    assert len(digests) == 1 and len(next(iter(digests))) == 64


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tunables")
def test_the_bytes_do_not_depend_on_what_the_compressor_memory_held():
    """A compressor given memory uncleared may read what it did not write (python-isal
    gives ISA-L such memory, and its bytes once differed between the workers of a CI run).
    glibc fills every allocation with a chosen byte under ``malloc.perturb`` (and a high
    mmap threshold makes even large ones come from the reused heap): a compressor that
    read memory it had not written would give other bytes under another filling."""
    digests = {_digest(), _digest({"GLIBC_TUNABLES": _FILLED + "165"}), _digest({"GLIBC_TUNABLES": _FILLED + "90"})}
    assert len(digests) == 1


_UNINITIALISED = """
import ctypes, hashlib
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
print(hashlib.sha256(ctypes.string_at(libc.malloc(1 << 20), 1 << 20)).hexdigest())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tunables")
def test_the_memory_filling_changes_what_uninitialised_memory_holds():
    """The check above can fail: under the same tunables, memory read before it is written
    differs from one filling to the other."""
    seen = {subprocess.run([sys.executable, "-c", _UNINITIALISED], capture_output=True, text=True, check=True,
                           env={**os.environ, "GLIBC_TUNABLES": _FILLED + fill}).stdout for fill in ("165", "90")}
    assert len(seen) == 2
