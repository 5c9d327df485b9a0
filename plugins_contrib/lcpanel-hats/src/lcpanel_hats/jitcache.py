"""hats' numba kernels kept compiled on disk between processes.

hats compiles its pixel-tree kernels (``hats.pixel_tree.pixel_alignment``,
``hats.pixel_tree.moc_filter``) with ``@njit`` and no cache, so every process compiled
them again on its first export, cone search or cross-match: 16 s of a 22 s export of 2e4
objects on a 2-core machine. :func:`cache_hats_kernels` turns on numba's own file cache
for them (``Dispatcher.enable_caching``, what ``@njit(cache=True)`` does): the first
process compiles and writes the cache (in ``NUMBA_CACHE_DIR`` when set, else next to the
module or in the user's cache directory), later ones load it. Numba checks each entry
against the module's source file and its own version, so an upgrade compiles anew.

The kernels run in Dask's worker processes too (an export's pipeline steps): a
LocalCluster that lcpanel starts gets :func:`cache_on_workers`, a worker plugin doing the
same in each of its workers, present and future.
"""

from __future__ import annotations

import importlib
import logging
import threading

log = logging.getLogger(__name__)

#: hats' modules whose ``@njit`` kernels are cached
MODULES = ("hats.pixel_tree.pixel_alignment", "hats.pixel_tree.moc_filter")

_done = False
_lock = threading.Lock()


def cache_hats_kernels() -> None:
    """Turn on numba's file cache for every kernel in :data:`MODULES` (once per process)."""
    global _done
    if _done:
        return
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    with _lock:
        if _done:
            return
        kernels = [kernel for name in MODULES for kernel in vars(importlib.import_module(name)).values()
                   if isinstance(kernel, Dispatcher) and isinstance(kernel._cache, NullCache)]
        for kernel in kernels:
            try:
                kernel.enable_caching()
            except RuntimeError as exc:  # no writable cache directory: compiled per process, as before
                log.warning("numba cannot cache hats' kernels (%s): %s", kernel.py_func.__qualname__, exc)
                break
        _done = True


def cache_on_workers(client) -> None:
    """:func:`cache_hats_kernels` in every worker of ``client``'s cluster (one lcpanel
    started: its workers import this plugin), now and when a worker restarts."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class CacheKernels(WorkerPlugin):
        def setup(self, worker):
            cache_hats_kernels()

    client.register_plugin(CacheKernels(), name="lcpanel-hats-jit-cache")
