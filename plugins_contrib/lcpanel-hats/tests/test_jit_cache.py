"""hats compiles its pixel-tree kernels with numba on first use in every process (16 s of
a 22 s export of 2e4 objects on a 2-core machine): the plugin keeps them compiled on
disk, so a later process loads them instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CALL = r"""
import json
import numpy as np
import lcpanel_hats.kernels  # what every HATS search and export imports first
from hats.pixel_tree.moc_filter import perform_filter_by_moc
kept = perform_filter_by_moc(np.array([[0, 10], [20, 30]], dtype=np.int64), np.array([[5, 6]], dtype=np.int64))
stats = perform_filter_by_moc.stats
print(json.dumps({"kept": kept.tolist(), "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def _run(cache_dir) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", CALL], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_compiled_kernel_instead_of_compiling_it(tmp_path):
    first = _run(tmp_path)
    assert first["kept"] == [True, False]  # the kernel's answer: only the first range meets the MOC
    assert first["misses"] >= 1 and first["hits"] == 0  # compiled, then written to the cache
    assert any(tmp_path.rglob("*.nbi")), "nothing written to the numba cache directory"
    second = _run(tmp_path)
    assert second["kept"] == first["kept"]
    assert second["hits"] >= 1 and second["misses"] == 0, second
